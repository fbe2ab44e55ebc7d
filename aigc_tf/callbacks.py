"""Keras callbacks of a training run: the NaN guard and the run recorder.

The family's own pieces (its per-epoch samples and its quality metric) come
from its task; every file goes through :class:`aigc_tf.run_dir.RunWriter`.
"""

from __future__ import annotations

import math
import time

import keras


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


def run_callbacks(task, cfg, writer, history: dict, quality=None):
    """``(guard, callbacks)`` in the order they must run: the quality callback adds to
    ``logs``, which the guard, the recorder and TensorBoard then see."""
    guard = NonFiniteGuard()
    tensorboard = keras.callbacks.TensorBoard(log_dir=str(writer.path("logs")), update_freq="epoch")
    own = [guard, RunRecorder(task, cfg, writer, history, guard)]
    if writer.active:
        own.append(tensorboard)
    return guard, [*([quality] if quality else []), *own]
