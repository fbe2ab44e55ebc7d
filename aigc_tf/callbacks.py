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
from aigc_tf.errors import ConfigError


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


def averaging_optimizer(model):
    """The model's optimizer if it keeps a moving average of the weights (``use_ema``), its
    loss-scale wrapper unwrapped; else None."""
    opt = getattr(model.optimizer, "inner_optimizer", model.optimizer)
    return opt if getattr(opt, "use_ema", False) else None


class AveragedWeights(keras.callbacks.Callback):
    """``train.ema_momentum``: the moving average of the weights where a trained model is looked at.

    The optimizer keeps the average (Keras' ``use_ema``, updated inside the
    train step); this swaps it into the model for validation and for the
    end-of-epoch work (the quality metric, the samples), and back for the
    checkpoint (see :meth:`raw`), so a checkpoint holds the raw weights beside
    their average and a resumed run continues exactly. At the end of ``fit``
    Keras writes the average into the model: the trained model is the average.
    Keras does that position by position over ``model.trainable_weights``,
    which :meth:`on_train_begin` checks lines up with the optimizer's variables.
    (GANs keep their own average of the generator, ``model.ema_kimg``.)
    """

    def __init__(self):
        super().__init__()
        self._raw = None  # the raw values while the average is in the model
        self.last_raw = None  # the raw values at the last epoch's end (Keras' end of fit overwrites them)

    def _pairs(self):
        opt = averaging_optimizer(self.model)
        return list(zip(opt._trainable_variables, opt._model_variables_moving_average, strict=True)) if opt else []

    def on_train_begin(self, logs=None):
        opt = averaging_optimizer(self.model)
        if opt is None:
            return
        if int(opt.iterations.numpy()) == 0:
            # Keras starts the average at zeros: until the first step is applied (a float16
            # loss scale may skip several) the "average" would be zeros, not the weights.
            for var, average in self._pairs():
                average.assign(var)
        finalized = opt._trainable_variables
        if [id(v) for v in self.model.trainable_weights[:len(finalized)]] != [id(v) for v in finalized]:
            raise ConfigError(f"train.ema_momentum does not work with {type(self.model).__name__}: its trainable "
                              "weights do not start with its averaged optimizer's variables; set train.ema_momentum=0")

    def swap_in(self):
        """Put the average into the model (no-op if it is there)."""
        if self._raw is None:
            pairs = self._pairs()
            self._raw = [var.numpy() for var, _ in pairs]
            for var, average in pairs:
                var.assign(average)

    def raw(self):
        """Put the raw weights back (no-op if they are there)."""
        if self._raw is not None:
            for (var, _), value in zip(self._pairs(), self._raw, strict=True):
                var.assign(value)
            self.last_raw, self._raw = self._raw, None

    def restore_last_raw(self):
        """Undo Keras' end-of-fit average write, for a run that goes on with another ``fit``."""
        if self.last_raw is not None:
            for (var, _), value in zip(self._pairs(), self.last_raw, strict=True):
                var.assign(value)

    def on_test_begin(self, logs=None):
        self.swap_in()

    def on_test_end(self, logs=None):
        self.raw()

    def on_epoch_end(self, epoch, logs=None):
        self.swap_in()

    def on_epoch_begin(self, epoch, logs=None):
        self.raw()


class RunRecorder(keras.callbacks.Callback):
    """Per epoch: the family's samples, ``history.json``, then checkpoint + state (atomic).
    With ``averaged`` (an :class:`AveragedWeights`), the samples come from the averaged
    weights and the checkpoint holds the raw ones."""

    def __init__(self, task, cfg, writer, history: dict, guard: NonFiniteGuard, averaged=None):
        super().__init__()
        self.task, self.cfg, self.writer, self.history, self.guard = task, cfg, writer, history, guard
        self.averaged = averaged
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
        if self.averaged is not None:
            self.averaged.raw()
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
    """``(guard, averaged, callbacks)`` in the order they must run: the averaged weights
    (``train.ema_momentum``; None without) go in first, the quality callback adds to
    ``logs``, which the guard, the recorder and TensorBoard then see."""
    guard = NonFiniteGuard()
    averaged = AveragedWeights() if cfg.train.ema_momentum else None
    tensorboard = keras.callbacks.TensorBoard(log_dir=str(writer.path("logs")), update_freq="epoch")
    own = [guard, RunRecorder(task, cfg, writer, history, guard, averaged)]
    if writer.active:
        own.append(tensorboard)
    return guard, averaged, [*([averaged] if averaged else []), *([quality] if quality else []), *own]
