"""Keras callbacks of a training run: the NaN guard, the run recorder and the preemption saver.

The family's own pieces (its per-epoch samples and its quality metric) come
from its task; every file goes through :class:`aigc_tf.run_dir.RunWriter`.
Under a multi-worker strategy every worker runs the same callbacks on the same
(all-reduced) logs, so they all stop at the same step; only the chief's writer writes.
"""

from __future__ import annotations

import math
import signal
import threading
import time

import keras

from aigc_tf.distribute import Preempted


class NonFiniteGuard(keras.callbacks.Callback):
    """Stop at the first NaN/Inf in *any* logged metric (``TerminateOnNaN`` sees only ``loss``)."""

    def __init__(self):
        super().__init__()
        self.bad = None
        self.epoch = 0

    def _check(self, logs, where):
        for key, value in (logs or {}).items():
            if isinstance(value, (int, float)) and not math.isfinite(value):
                self.bad = (where, key, value)
                self.model.stop_training = True
                return

    def on_train_batch_end(self, batch, logs=None):
        if self.bad is None:
            self._check(logs, f"batch {batch + 1} of epoch {self.epoch + 1}")

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if self.bad is None:
            self._check(logs, f"the end of epoch {epoch + 1}")


class RunRecorder(keras.callbacks.Callback):
    """Per epoch: the family's samples, ``history.json``, then checkpoint + state (atomic)."""

    def __init__(self, task, cfg, writer, history: dict, guard: NonFiniteGuard):
        super().__init__()
        self.task, self.cfg, self.writer, self.history, self.guard = task, cfg, writer, history, guard
        self.t0 = time.time()

    def on_epoch_begin(self, epoch, logs=None):
        self.t0 = time.time()

    def on_epoch_end(self, epoch, logs=None):
        if self.guard.bad is not None:
            return  # never checkpoint a diverged model
        n, history = epoch + 1, self.history
        history.setdefault("epoch", []).append(n)
        history.setdefault("seconds", []).append(round(time.time() - self.t0, 3))
        for key, value in (logs or {}).items():
            history.setdefault(key, []).append(float(value))
            if key in self.task.sparse_metrics:
                history.setdefault(f"{key}_epochs", []).append(n)
        if n % self.cfg.train.sample_every == 0 or n == self.cfg.train.epochs:
            self.writer.samples(lambda folder: self.task.write_samples(self.cfg, self.model, folder, n))
        self.writer.json("history.json", history)
        self.writer.checkpoint(self.model, n)


class PreemptionCheckpoint(keras.callbacks.Callback):
    """On SIGTERM (a scheduler preempting the job): finish the step, save a checkpoint, stop.

    The signal only sets a flag; after each training step the workers agree
    (``any_worker``: an all-reduce of the flags, so a signal to one worker stops
    them all at the same step), the chief saves ``checkpoints/last.keras`` with
    the epochs and steps done, and every worker raises :class:`Preempted` out of
    ``fit`` (no validation or end-of-epoch work: a preempted job has seconds).
    A second SIGTERM acts at once (the previous handler). Use it as a context
    manager around ``fit``: the handler is installed inside (from the main thread only).

    Args:
        writer: the run's :class:`aigc_tf.run_dir.RunWriter`.
        any_worker: ``flag -> flag of any worker`` (None: this process alone).

    Attributes:
        step_offset: steps of the epoch done before this ``fit`` call (the rest of
            an epoch resumed mid-way is one ``fit`` of one epoch), added to its step count.
    """

    def __init__(self, writer, any_worker=None):
        super().__init__()
        self.writer, self.any_worker = writer, any_worker
        self.step_offset = 0
        self.received = False
        self._previous = None
        self.epoch = 0

    def _on_sigterm(self, signum, frame):
        self.received = True
        signal.signal(signal.SIGTERM, self._previous or signal.SIG_DFL)  # a second SIGTERM is not caught

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGTERM, self._on_sigterm)
        return self

    def __exit__(self, *exc):
        if self._previous is not None and signal.getsignal(signal.SIGTERM) == self._on_sigterm:
            signal.signal(signal.SIGTERM, self._previous)
        self._previous = None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        flag = self.received
        if self.any_worker is not None:
            flag = self.any_worker(flag)
        if flag:
            steps = self.step_offset + batch + 1
            self.writer.checkpoint(self.model, self.epoch, steps_done=steps)
            raise Preempted(self.epoch, steps)


def run_callbacks(task, cfg, writer, history: dict, quality=None):
    """``(guard, callbacks)`` in the order they must run: the quality callback adds to
    ``logs``, which the guard, the recorder and TensorBoard then see."""
    guard = NonFiniteGuard()
    tensorboard = keras.callbacks.TensorBoard(log_dir=str(writer.path("logs")), update_freq="epoch")
    own = [guard, RunRecorder(task, cfg, writer, history, guard)]
    if writer.active:
        own.append(tensorboard)
    return guard, [*([quality] if quality else []), *own]
