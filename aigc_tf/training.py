"""Training a config into a run directory: strategy, fit, resume, rollback.

The family's pieces (data, model, compile, samples, quality metric) come
from its task (:mod:`aigc_tf.tasks`); the run directory's layout and state
are in :mod:`aigc_tf.run_dir`, the callbacks in :mod:`aigc_tf.callbacks`.
"""

from __future__ import annotations

import contextlib
import json
import sys
import types
from pathlib import Path

from aigc_tf.config import Config
from aigc_tf.distribute import Preempted, WorkerLost  # noqa: F401  (re-exported)
from aigc_tf.errors import ConfigError, RunDirError, UserError
from aigc_tf.run_dir import (  # noqa: F401  (re-exported: the public names of a run directory)
    FINAL_MODEL,
    LAST_CHECKPOINT,
    STATE_FILE,
    RunWriter,
    final_model_path,
    load_run_config,
    prepare_run_dir,
    read_state,
    resume_point,
    truncate_history,
)


class TrainingDiverged(UserError):
    """A logged loss became NaN or Inf."""


def task_of(cfg: Config):
    """The task of the config's model family."""
    from aigc_tf import registry

    return registry.task_for(cfg.model["name"])


def configure_cpu_devices(count: int) -> None:
    """Split the CPU into ``count`` logical devices (only before TF initialises)."""
    import tensorflow as tf

    if count > 1 and not tf.config.list_physical_devices("GPU"):
        cpu = tf.config.list_physical_devices("CPU")[0]
        try:
            tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * count)
        except RuntimeError:
            pass  # already initialised: use whatever logical devices exist


def resolve_strategy(name: str, cpu_devices: int = 1):
    """``default`` -> the default (one device) strategy; ``mirrored`` -> all GPUs,
    or ``cpu_devices`` logical CPUs when there is no GPU; ``multi_worker`` -> the
    cluster of ``TF_CONFIG`` (:func:`aigc_tf.distribute.multi_worker_strategy`)."""
    import tensorflow as tf

    if name == "default":
        return tf.distribute.get_strategy()
    if name == "multi_worker":
        from aigc_tf import distribute

        return distribute.multi_worker_strategy()
    if tf.config.list_physical_devices("GPU"):
        return tf.distribute.MirroredStrategy()
    configure_cpu_devices(cpu_devices)
    devices = [d.name for d in tf.config.list_logical_devices("CPU")]
    return tf.distribute.MirroredStrategy(devices=devices)


@contextlib.contextmanager
def precision_policy(name: str):
    """Keras' global dtype policy set to ``name`` (``train.precision``) inside the block.

    Layers take their policy when they are built, and a saved model records
    each layer's, so the policy is needed only while a model is built.
    """
    import keras

    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def load_data(cfg: Config, seed_offset: int = 0, model=None, vocabulary: list | None = None):
    """The config's dataset, as its family's task loads it.

    ``model`` (or, for text, ``vocabulary``): reuse what a trained model was
    built with (a text model's vocabulary) instead of deriving it from the data.
    """
    if model is None and vocabulary is not None:
        model = types.SimpleNamespace(vocabulary=vocabulary)  # what a text task reads from a model
    return task_of(cfg).load_data(cfg, seed_offset=seed_offset, model=model)


def build_model(cfg: Config, data):
    """Build and compile the configured model for ``data`` (call inside the strategy scope)."""
    return task_of(cfg).build_model(cfg, data)


def load_model(path: str | Path):
    """Load a ``.keras`` file written here (safe mode), with a clear error if it is bad."""
    import keras

    import aigc_tf  # noqa: F401  (its import registers the model classes lazily)

    path = Path(path)
    if not path.is_file():
        raise RunDirError(f"{path} not found; train the run first with `aigc-tf train`")
    try:
        # Under the model's own dtype policy: a model whose __init__ builds its layers
        # gives them the global policy, so a mixed-precision model would come back float32.
        policy = _saved_policy(path)
        with precision_policy(policy) if policy else contextlib.nullcontext():
            return keras.models.load_model(path, safe_mode=True)
    except Exception as exc:  # a truncated or foreign file fails deep inside Keras
        raise RunDirError(f"{path} could not be loaded ({type(exc).__name__}); it is corrupt or not an aigc-tf model") from None


def _saved_policy(path: Path) -> str | None:
    """The name of the dtype policy a ``.keras`` file's model was saved with (None if unreadable)."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            dtype = json.loads(archive.read("config.json"))["config"].get("dtype")
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return None
    if isinstance(dtype, dict):
        dtype = dtype.get("config", {}).get("name")
    return dtype if isinstance(dtype, str) else None


# ------------------------------------------------------------------- train
def train(cfg: Config, run_dir: str | Path, resume: bool = False, callbacks: list | None = None):
    """Train ``cfg`` into ``run_dir``; returns the trained model.

    ``callbacks`` are extra Keras callbacks, run after the run directory's own.
    A user error (bad data, a model that does not fit the data) in a run
    directory this call created removes that directory again, so the fixed
    command can reuse it; an existing run is never touched.
    """
    run_dir = Path(run_dir)
    fresh = not run_dir.exists()
    try:
        return _train(cfg, run_dir, resume, callbacks)
    except UserError as exc:
        if fresh and RunWriter(run_dir).active and not isinstance(exc, TrainingDiverged) \
                and not (run_dir / "checkpoints").exists():
            import shutil

            shutil.rmtree(run_dir, ignore_errors=True)
        raise


def _train(cfg: Config, run_dir: Path, resume: bool, callbacks: list | None):
    from aigc_tf import distribute
    from aigc_tf.callbacks import PreemptionCheckpoint, run_callbacks
    from aigc_tf.models import common

    task = task_of(cfg)
    writer = RunWriter(run_dir)
    # The strategy first: a multi-worker one must exist before TensorFlow runs anything.
    strategy = resolve_strategy(cfg.train.strategy, cfg.train.cpu_devices)
    multi = distribute.is_multi_worker(strategy)
    # Only the chief looks at (and writes) the run directory; the workers take its word.
    initial_epoch = prepare_run_dir(run_dir, cfg, resume, write=True) if writer.active else 0
    steps_done = resume_point(run_dir)[1] if writer.active and read_state(run_dir) else 0
    if multi:
        initial_epoch, steps_done = distribute.agree(strategy, [initial_epoch, steps_done])
    if initial_epoch >= cfg.train.epochs:
        steps_done = 0  # train.epochs lowered to the epochs done: finish, no partial epoch to complete

    import keras
    import tensorflow as tf

    replicas = strategy.num_replicas_in_sync
    if cfg.data.batch_size % replicas:
        raise ConfigError(
            f"data.batch_size={cfg.data.batch_size} must be divisible by the {replicas} replicas of "
            f"train.strategy={cfg.train.strategy}"
        )
    if cfg.train.jit_compile and replicas > 1 and not tf.config.list_physical_devices("GPU"):
        raise ConfigError(f"train.jit_compile=true with train.strategy={cfg.train.strategy} needs GPUs: XLA cannot "
                          "compile the all-reduces of several CPU replicas (TensorFlow b/194942685); set "
                          "train.jit_compile=false")
    if cfg.train.steps_per_execution > 1 and replicas > 1:
        raise ConfigError(f"train.steps_per_execution={cfg.train.steps_per_execution} does not run on several replicas "
                          "in Keras 3.15.1 (its multi-step loop puts the step's all-reduces inside a tf.cond and fails "
                          "with 'You must feed a value for placeholder'); set train.steps_per_execution=1")
    keras.utils.set_random_seed(cfg.seed + initial_epoch)
    if cfg.train.deterministic:
        tf.config.experimental.enable_op_determinism()
    # The data first, so a bad dataset fails before anything slow is prepared.
    # A resumed run gets a different shuffle seed so it does not replay epoch 1's order.
    data = load_data(cfg, seed_offset=initial_epoch)
    steps_per_epoch = cfg.train.steps_per_epoch
    if cfg.data.service:
        # An endless stream from the service: an epoch is a number of steps.
        steps_per_epoch = steps_per_epoch or _batches(data.train)
        data.train = distribute.through_service(data.train, cfg.data.service, distribute.job_name(cfg, initial_epoch))
    resumed = bool(initial_epoch or steps_done)
    checkpoint = run_dir / "checkpoints" / LAST_CHECKPOINT
    saved = None
    if resumed and multi and writer.active:
        # Read outside the strategy: loading into its variables would run collectives
        # the other workers (which cannot read this disk) do not join.
        saved = load_model(checkpoint)
    with strategy.scope(), precision_policy(cfg.train.precision):
        if resumed and not multi:
            model = load_model(checkpoint)
        else:
            # Under multi_worker every worker builds the model the same way (variables are
            # created in the same order) and takes the chief's values, whatever its own disk holds.
            model = task.build_model(cfg, data)
            if saved is not None:
                distribute.copy_state(saved, model, checkpoint)
        if multi:
            distribute.broadcast_from_chief(strategy, model)
    if resumed:
        where = f"after epoch {initial_epoch}" + (f" and {steps_done} steps" if steps_done else "")
        print(f"Resuming {run_dir} {where} of {cfg.train.epochs}", flush=True)
    if cfg.train.precision != "float32" and not common.supports_mixed_precision(model):
        raise ConfigError(f"model {cfg.model['name']!r} does not support train.precision={cfg.train.precision} "
                          "(its train step does not scale its loss or keep its losses in float32); use float32")
    task.check_model(cfg, model)
    # Only now, with data and model known to be good: it may train the FID classifier.
    quality = task.quality_callback(cfg)
    if quality is not None:
        # Seed again: training the feature classifier on a cold cache must not
        # change the random state training starts from (the pipeline's seeds and
        # the model's weights were fixed above).
        keras.utils.set_random_seed(cfg.seed + initial_epoch)
    # Preempted in its first epoch, a run has a checkpoint but no history yet.
    logged = run_dir / "history.json"
    history = json.loads(logged.read_text()) if resumed and writer.active and logged.exists() else {}
    if resumed:
        # Drop anything logged after the checkpoint (an epoch interrupted mid-save).
        history = truncate_history(history, initial_epoch)
    guard, averaged, own_callbacks = run_callbacks(task, cfg, writer, history, quality)
    preemption = PreemptionCheckpoint(writer, distribute.AnyWorker(strategy) if multi else None)
    verbose = cfg.train.verbose if writer.active else 0  # a worker's progress is the chief's
    if verbose == 1 and not sys.stdout.isatty():
        verbose = 2  # one line per epoch in logs and CI instead of a redrawn bar
    validation = data.test if (cfg.train.validate and data.test is not None) else None
    fit = dict(validation_data=validation, callbacks=[preemption, *own_callbacks, *(callbacks or [])],
               verbose=verbose, shuffle=False)  # shuffle: the tf.data pipeline already does
    try:
        with preemption, distribute.keras_fit(model, strategy):
            if steps_done:
                # The rest of the epoch the checkpoint was saved in, from a fresh shuffle.
                total = steps_per_epoch or _batches(data.train)
                preemption.step_offset = steps_done
                model.fit(data.train, epochs=initial_epoch + 1, initial_epoch=initial_epoch,
                          steps_per_epoch=max(total - steps_done, 1) if total else None, **fit)
                preemption.step_offset = 0
                initial_epoch += 1
                if averaged is not None:
                    averaged.restore_last_raw()  # the next fit goes on from the raw weights, not their average
            if guard.bad is None:
                # With initial_epoch == epochs (only the final save was missing) this is a no-op.
                model.fit(data.train, epochs=cfg.train.epochs, initial_epoch=initial_epoch,
                          steps_per_epoch=steps_per_epoch, **fit)
    except tf.errors.OpError as exc:
        if multi and distribute.lost_worker_error(exc):
            done = resume_point(run_dir)[0] if writer.active else "the chief's last"
            first = str(exc).strip().splitlines()[0][:200]
            raise WorkerLost(f"a worker of the cluster stopped ({type(exc).__name__}: {first}); the checkpoint of "
                             f"epoch {done} is kept; rerun the same command on every worker to resume") from None
        raise
    if guard.bad is not None:
        where, key, value = guard.bad
        done = (read_state(run_dir) or {}).get("epochs_done", 0)
        raise TrainingDiverged(
            f"training stopped: {key} became {value} at {where}; the last finite checkpoint "
            f"(epoch {done}) is kept in {run_dir / 'checkpoints'}; lower train.learning_rate or try model.loss=hinge"
        )
    writer.finish(model, cfg.train.epochs)  # atomic: a model.keras that exists is always complete
    writer.plot_history(history)
    if multi:
        # The workers leave together: one that exited while the chief still wrote would be reported as lost.
        distribute.barrier(strategy)
    return model


def _batches(dataset) -> int | None:
    """Batches in one pass of ``dataset`` (None if TensorFlow cannot tell)."""
    import tensorflow as tf

    n = int(tf.data.experimental.cardinality(dataset))
    return n if n > 0 else None
