"""Training a config into a run directory: strategy, callbacks, resume.

A run directory holds::

    config.yaml          the resolved config (every default filled in)
    samples/             epoch_0001.png, ... a sample grid per epoch
    checkpoints/         last.keras (model + every optimizer) and state.json
    logs/                TensorBoard event files
    history.json         metrics per epoch (losses, validation, seconds)
    history.png          the same as curves
    model.keras          the final model, written when training finishes

Rerunning the same command on an interrupted run resumes from
``checkpoints/last.keras``; a finished run is only trained further when asked
(``resume=True`` with a larger ``train.epochs``).
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from pathlib import Path

import yaml

from aigc_tf.config import Config, from_dict
from aigc_tf.errors import ConfigError, RunDirError, UserError

STATE_FILE = "state.json"
LAST_CHECKPOINT = "last.keras"
FINAL_MODEL = "model.keras"
# Keys that may change between the first run and a resume of the same run.
RESUMABLE_KEYS = {
    "train.epochs", "train.verbose", "train.sample_every", "train.quality_every", "train.quality_samples",
    "train.sample_prompt", "train.sample_max_new_tokens", "train.sample_temperature",
}
# Metrics logged only on some epochs; history.json keeps their epochs in "<key>_epochs".
SPARSE_KEYS = ("fid", "test_elbo")
# What `train` itself writes before the first checkpoint exists.
OWN_ENTRIES = {"config.yaml", "logs", "samples", "history.json", "checkpoints"}


class TrainingDiverged(UserError):
    """A logged loss became NaN or Inf."""


# ----------------------------------------------------------------- helpers
def _truncate_history(history: dict, last_epoch: int) -> dict:
    """Keep only what was logged up to ``last_epoch`` (dense and sparse keys)."""
    out = {}
    for key, values in history.items():
        if key.endswith("_epochs"):
            continue
        epochs = history.get(f"{key}_epochs", history.get("epoch", []))
        keep = [i for i, e in enumerate(epochs) if e <= last_epoch]
        out[key] = [values[i] for i in keep if i < len(values)]
        if f"{key}_epochs" in history:
            out[f"{key}_epochs"] = [epochs[i] for i in keep]
    return out


def _write_json_atomic(path: Path, obj) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2))
    os.replace(tmp, path)


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def read_state(run_dir: Path) -> dict | None:
    path = Path(run_dir) / "checkpoints" / STATE_FILE
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        raise RunDirError(f"{path} is corrupt; delete the run directory or pass --run-dir NEW") from None


def load_run_config(run_dir: str | Path) -> Config:
    path = Path(run_dir) / "config.yaml"
    if not Path(run_dir).exists():
        raise RunDirError(f"{run_dir} does not exist; pass a run directory written by `aigc-tf train` (e.g. runs/dcgan_digits)")
    if not Path(run_dir).is_dir():
        raise RunDirError(f"{run_dir} is a file, not a run directory; pass a directory written by `aigc-tf train`")
    if not path.is_file():
        raise RunDirError(f"{run_dir} is not a run directory (no config.yaml); pass a directory written by `aigc-tf train`")
    return from_dict(yaml.safe_load(path.read_text()), str(path))


def prepare_run_dir(run_dir: Path, cfg: Config, resume: bool) -> int:
    """Create or check ``run_dir``; return the number of epochs already done."""
    if run_dir.exists() and not run_dir.is_dir():
        raise RunDirError(f"{run_dir} is a file, not a directory; pass --run-dir with a directory path")
    state = read_state(run_dir)
    if state is None:
        # New, empty, or stopped before its first checkpoint: (re)start at epoch 0.
        if run_dir.exists():
            foreign = sorted(p.name for p in run_dir.iterdir() if p.name not in OWN_ENTRIES)
            if foreign or ((run_dir / "logs").exists() and not (run_dir / "config.yaml").is_file()):
                raise RunDirError(
                    f"{run_dir} exists and is not an aigc-tf run (it holds {', '.join(foreign[:3]) or 'logs'}); "
                    "pass --run-dir NEW (nothing was changed)"
                )
            if (run_dir / "config.yaml").is_file():
                _check_same_config(run_dir, cfg)
        run_dir.mkdir(parents=True, exist_ok=True)
        cfg.dump(run_dir / "config.yaml")
        return 0
    _check_same_config(run_dir, cfg)
    done = int(state["epochs_done"])
    if state.get("finished") and done == cfg.train.epochs and not (run_dir / FINAL_MODEL).is_file():
        # Stopped after its last checkpoint but before model.keras appeared: finish it.
        cfg.dump(run_dir / "config.yaml")
        return done
    if state.get("finished") and not resume:
        raise RunDirError(
            f"{run_dir} holds a finished run ({done} epochs); use a new run directory "
            "(CLI: --run-dir NEW; Python: train(cfg, NEW_DIR)), or train it further with a larger train.epochs "
            "(CLI: --resume --set train.epochs=N; Python: train(cfg, run_dir, resume=True))"
        )
    if state.get("finished") and done >= cfg.train.epochs:
        raise RunDirError(
            f"{run_dir} has already trained {done} epochs; ask for more with --set train.epochs={done + 10}"
        )
    if done > cfg.train.epochs:
        raise RunDirError(
            f"{run_dir} has already trained {done} epochs, more than train.epochs={cfg.train.epochs}; "
            f"pass --set train.epochs={done} or more"
        )
    cfg.dump(run_dir / "config.yaml")
    return done


def _check_same_config(run_dir: Path, cfg: Config) -> None:
    old_cfg = load_run_config(run_dir)
    if old_cfg.train.lr_schedule == "cosine" and old_cfg.train.epochs != cfg.train.epochs:
        raise RunDirError(
            f"{run_dir} was trained with a cosine learning rate laid out over train.epochs={old_cfg.train.epochs}; "
            "changing epochs would continue at learning rate 0: pass --run-dir NEW for a longer run"
        )
    old = _flatten(old_cfg.to_dict())
    new = _flatten(cfg.to_dict())
    diff = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k) and k not in RESUMABLE_KEYS)
    if diff:
        shown = ", ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in diff[:3])
        raise RunDirError(
            f"{run_dir} holds a run with a different config ({shown}); pass --run-dir NEW for a new run"
        )


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
    or ``cpu_devices`` logical CPUs when there is no GPU."""
    import tensorflow as tf

    if name == "default":
        return tf.distribute.get_strategy()
    if tf.config.list_physical_devices("GPU"):
        return tf.distribute.MirroredStrategy()
    configure_cpu_devices(cpu_devices)
    devices = [d.name for d in tf.config.list_logical_devices("CPU")]
    return tf.distribute.MirroredStrategy(devices=devices)


def value_range_of(model_name: str) -> str:
    from aigc_tf import registry

    return "tanh" if registry.family(model_name) == "gan" else "unit"


def load_data(cfg: Config, seed_offset: int = 0, vocabulary: list | None = None):
    """The config's dataset: ``ImageData`` for image models, ``TextData`` for text models.

    ``vocabulary``: tokenise text with a trained model's vocabulary instead of
    building one from the training texts.
    """
    from aigc_tf import registry

    d = cfg.data
    if registry.is_text(cfg.model["name"]):
        from aigc_tf.data.text import load_text_data

        return load_text_data(
            d.name,
            task=registry.text_task(cfg.model["name"]),
            path=d.path,
            level=d.tokenizer,
            seq_len=d.seq_len,
            batch_size=d.batch_size,
            vocab_size=d.vocab_size,
            vocabulary=vocabulary,
            max_examples=d.max_examples,
            data_dir=d.data_dir,
            download=d.download,
            unsupervised=d.unsupervised,
            random_windows=d.random_windows,
            shuffle_buffer=d.shuffle_buffer,
            seed=cfg.seed + seed_offset,
        )
    from aigc_tf.data.images import load_image_data

    return load_image_data(
        d.name,
        path=d.path,
        batch_size=d.batch_size,
        value_range=value_range_of(cfg.model["name"]),
        image_size=d.image_size,
        channels=d.channels,
        shuffle_buffer=d.shuffle_buffer,
        seed=cfg.seed + seed_offset,
        max_examples=d.max_examples,
        data_dir=d.data_dir,
        download=d.download,
        cache=d.cache,
    )


def learning_rate_of(cfg: Config, data):
    """``train.learning_rate``, or a warm-up + cosine schedule over the whole run."""
    import keras

    t = cfg.train
    if t.lr_schedule == "constant":
        return t.learning_rate
    steps_per_epoch = t.steps_per_epoch or int(data.train.cardinality())
    total = max(t.epochs * steps_per_epoch - t.warmup_steps, 1)
    return keras.optimizers.schedules.CosineDecay(
        0.0 if t.warmup_steps else t.learning_rate,
        decay_steps=total,
        warmup_target=t.learning_rate if t.warmup_steps else None,
        warmup_steps=t.warmup_steps,
    )


def build_model(cfg: Config, data):
    """Build and compile the configured model for ``data`` (call inside the strategy scope)."""
    import keras

    from aigc_tf import registry
    from aigc_tf.models import common

    text = registry.is_text(cfg.model["name"])
    if text:
        from_data = {"vocabulary": data.vocabulary, "tokenizer": data.level}
        described = f"{len(data.vocabulary) + 2} tokens, {data.level} level"
    else:
        from_data = {"image_shape": data.image_shape, "num_classes": data.num_classes}
        described = f"images {tuple(data.image_shape)}, {data.num_classes} classes"
    try:
        model = registry.build_model(cfg.model, cfg.seed, **from_data)
    except ValueError as exc:
        raise ConfigError(
            f"model {cfg.model['name']!r} cannot be built for data {cfg.data.name!r} ({described}): {exc}"
        ) from None
    context = getattr(model, "context_length", None)
    if context is not None and cfg.data.seq_len > context:
        raise ConfigError(
            f"data.seq_len={cfg.data.seq_len} is longer than model.context_length={context}; "
            "lower data.seq_len or raise model.context_length"
        )
    if context is not None and context > cfg.data.seq_len and getattr(model, "positions", "") == "learned":
        raise ConfigError(
            f"model.context_length={context} is longer than data.seq_len={cfg.data.seq_len}: learned positions "
            "beyond the training windows would never be trained; set them equal or use model.positions=sinusoidal"
        )
    t = cfg.train
    kwargs = dict(steps_per_execution=t.steps_per_execution, jit_compile=t.jit_compile)
    if registry.family(cfg.model["name"]) == "gan":
        model.compile(
            d_optimizer=common.adam(t.d_learning_rate or t.learning_rate, t.beta_1, t.beta_2, name="d_adam"),
            g_optimizer=common.adam(t.learning_rate, t.beta_1, t.beta_2, name="g_adam"),
            **kwargs,
        )
    elif text:
        optimizer = keras.optimizers.Adam(learning_rate_of(cfg, data), beta_1=t.beta_1, beta_2=t.beta_2)
        # Clipping in the model, not the optimizer: see TextModel.apply_clipped_gradients.
        model.compile(optimizer=optimizer, clip_norm=t.clipnorm, **kwargs)
    else:
        model.compile(optimizer=common.adam(t.learning_rate, t.beta_1, t.beta_2), **kwargs)
    return model


def load_model(path: str | Path):
    """Load a ``.keras`` file written here (safe mode), with a clear error if it is bad."""
    import keras

    import aigc_tf.registry  # noqa: F401  (registers the model classes)

    path = Path(path)
    if not path.is_file():
        raise RunDirError(f"{path} not found; train the run first with `aigc-tf train`")
    try:
        return keras.models.load_model(path, safe_mode=True)
    except Exception as exc:  # a truncated or foreign file fails deep inside Keras
        raise RunDirError(f"{path} could not be loaded ({type(exc).__name__}); it is corrupt or not an aigc-tf model") from None


def final_model_path(run_dir: str | Path) -> Path:
    """The finished model, or the last checkpoint of an unfinished run."""
    run_dir = Path(run_dir)
    if (run_dir / FINAL_MODEL).is_file():
        return run_dir / FINAL_MODEL
    if (run_dir / "checkpoints" / LAST_CHECKPOINT).is_file():
        return run_dir / "checkpoints" / LAST_CHECKPOINT
    raise RunDirError(f"{run_dir} has no trained model (no {FINAL_MODEL} or checkpoint); run `aigc-tf train` first")


def sample_texts(model, prompt: str, num_samples: int, max_new_tokens: int, temperature: float, seed: int,
                 top_k: int = 0, top_p: float = 1.0, use_cache: bool = True, fn=None) -> list[str]:
    """``num_samples`` continuations of ``prompt``; sample ``i`` uses seed ``seed + i``.

    Runs :func:`aigc_tf.models.text_base.text_generation_function`, the same
    graph the SavedModel export serves. ``fn``: a function made earlier by it.
    """
    import tensorflow as tf

    from aigc_tf.models.text_base import text_generation_function

    if fn is None:
        fn, _ = text_generation_function(model, use_cache=use_cache)
    n = num_samples
    out = fn(
        tf.constant([prompt] * n),
        tf.fill([n], max_new_tokens),
        tf.fill([n], float(temperature)),
        tf.fill([n], top_k),
        tf.fill([n], float(top_p)),
        tf.range(seed, seed + n, dtype=tf.int32),
    )
    return [t.decode("utf-8", errors="replace") for t in out["texts"].numpy()]


def sample_budget(model, prompt: str, requested: int | None) -> int:
    """New tokens for the per-epoch samples after ``prompt`` (``train.sample_max_new_tokens``).

    Raises :class:`ConfigError` if a language model's prompt is empty, or if an
    explicit ``requested`` does not fit what the model's context leaves.
    """
    used = int(model.tokenize([prompt])[1].numpy()[0])
    if used == 0 and model.family == "lm":
        raise ConfigError(f"train.sample_prompt {prompt!r} has no tokens; a language model needs a text to continue")
    room = model.context_room(used)
    if room is not None and room < 1:
        raise ConfigError(
            f"train.sample_prompt has {used} tokens and fills the context of {model.context_length}; shorten it"
        )
    try:
        return model.new_token_budget(used, requested, "train.sample_max_new_tokens")
    except UserError as exc:
        raise ConfigError(f"{exc} (train.sample_prompt {prompt!r})") from None


def write_text_samples(path: Path, prompt: str, texts: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    blocks = [f"--- sample {i + 1} (prompt {prompt!r})\n{t}" for i, t in enumerate(texts)]
    path.write_text("\n\n".join(blocks) + "\n", encoding="utf-8")


def sample_images(model, num_samples: int, seed: int):
    """Images in [0, 1] as numpy: the model's samples for a fixed seed."""
    from aigc_tf.viz import to_unit

    return to_unit(model.generate(num_samples, seed=seed).numpy(), model.value_range)


# --------------------------------------------------------------- callbacks
def _callbacks(cfg: Config, run_dir: Path, history: dict, quality=None):
    import keras

    from aigc_tf import registry, viz

    family = registry.family(cfg.model["name"])
    text = registry.is_text(cfg.model["name"])

    class NonFiniteGuard(keras.callbacks.Callback):
        """Stop at the first NaN/Inf in *any* logged loss (TerminateOnNaN sees only ``loss``)."""

        def __init__(self):
            super().__init__()
            self.bad = None

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

    guard = NonFiniteGuard()

    class RunRecorder(keras.callbacks.Callback):
        """Per epoch: sample grid, history.json, then checkpoint + state (atomic)."""

        def on_epoch_begin(self, epoch, logs=None):
            self.t0 = time.time()

        def _write_texts(self, n):
            t = cfg.train
            prompt = "" if family == "text_vae" else t.sample_prompt
            if not hasattr(self, "generate_fn"):
                from aigc_tf.models.text_base import text_generation_function

                self.generate_fn, _ = text_generation_function(self.model)
            max_new = sample_budget(self.model, prompt, t.sample_max_new_tokens)
            texts = sample_texts(self.model, prompt, t.num_samples, max_new, t.sample_temperature,
                                 cfg.seed, fn=self.generate_fn)
            write_text_samples(run_dir / "samples" / f"epoch_{n:04d}.txt", prompt,
                               [self.model.join(prompt, t) for t in texts])

        def on_epoch_end(self, epoch, logs=None):
            if guard.bad is not None:
                return  # never checkpoint a diverged model
            n = epoch + 1
            history.setdefault("epoch", []).append(n)
            history.setdefault("seconds", []).append(round(time.time() - self.t0, 3))
            for key, value in (logs or {}).items():
                history.setdefault(key, []).append(float(value))
                if key in SPARSE_KEYS:
                    history.setdefault(f"{key}_epochs", []).append(n)
            if n % cfg.train.sample_every == 0 or n == cfg.train.epochs:
                if text:
                    self._write_texts(n)
                else:
                    images = sample_images(self.model, cfg.train.num_samples, cfg.seed)
                    viz.save_grid(images, run_dir / "samples" / f"epoch_{n:04d}.png")
            _write_json_atomic(run_dir / "history.json", history)
            ckpt = run_dir / "checkpoints"
            ckpt.mkdir(exist_ok=True)
            self.model.save(ckpt / "last.tmp.keras")
            os.replace(ckpt / "last.tmp.keras", ckpt / LAST_CHECKPOINT)
            _write_json_atomic(ckpt / STATE_FILE, {"epochs_done": n, "finished": False})

    tensorboard = keras.callbacks.TensorBoard(log_dir=str(run_dir / "logs"), update_freq="epoch")
    # Order matters: the quality callback adds to `logs`, which the guard,
    # the recorder and TensorBoard then see.
    return guard, [*([quality] if quality else []), guard, RunRecorder(), tensorboard]


def quality_callback(cfg: Config):
    """Keras callback: FID (GAN) or binarised test ELBO (VAE) every K epochs into ``logs``."""
    import keras

    from aigc_tf import registry

    every, n = cfg.train.quality_every, cfg.train.quality_samples
    is_gan = registry.family(cfg.model["name"]) == "gan"

    class _Quality(keras.callbacks.Callback):
        def prepare(self):
            """Load (or train) the feature classifier and the reference data."""
            from aigc_tf import evaluate
            from aigc_tf.metrics.classifier import get_classifier

            if is_gan:
                self.classifier = get_classifier(evaluate.classifier_spec(cfg))
                real, _, _, _ = evaluate.reference_halves(cfg)
                self.real_features = self.classifier.features(real[:n])
            else:
                self.x, self.y = evaluate.binarised_test_set(cfg, limit=n, seed=cfg.seed)

        def on_epoch_end(self, epoch, logs=None):
            if logs is None or ((epoch + 1) % every and epoch + 1 != cfg.train.epochs):
                return
            if is_gan:
                from aigc_tf.evaluate import generate_unit
                from aigc_tf.metrics.distances import frechet_distance

                fake = self.classifier.features(generate_unit(self.model, len(self.real_features), cfg.seed))
                logs["fid"] = frechet_distance(fake, self.real_features)
            else:
                from aigc_tf.metrics.likelihood import evaluate_likelihood

                y = self.y if self.model.conditional else None
                logs["test_elbo"] = evaluate_likelihood(self.model, self.x, y, k=1, seed=cfg.seed)["elbo"]

    return _Quality()


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
        if fresh and not isinstance(exc, TrainingDiverged) and not (run_dir / "checkpoints").exists():
            import shutil

            shutil.rmtree(run_dir, ignore_errors=True)
        raise


def _train(cfg: Config, run_dir: Path, resume: bool, callbacks: list | None):
    initial_epoch = prepare_run_dir(run_dir, cfg, resume)

    import keras
    import tensorflow as tf

    strategy = resolve_strategy(cfg.train.strategy, cfg.train.cpu_devices)
    replicas = strategy.num_replicas_in_sync
    if cfg.data.batch_size % replicas:
        raise ConfigError(
            f"data.batch_size={cfg.data.batch_size} must be divisible by the {replicas} replicas of train.strategy=mirrored"
        )
    from aigc_tf import registry

    keras.utils.set_random_seed(cfg.seed + initial_epoch)
    if cfg.train.deterministic:
        tf.config.experimental.enable_op_determinism()
    # The data first, so a bad dataset fails before anything slow is prepared.
    # A resumed run gets a different shuffle seed so it does not replay epoch 1's order.
    data = load_data(cfg, seed_offset=initial_epoch)
    with strategy.scope():
        if initial_epoch:
            model = load_model(run_dir / "checkpoints" / LAST_CHECKPOINT)
            print(f"Resuming {run_dir} after epoch {initial_epoch} of {cfg.train.epochs}", flush=True)
        else:
            model = build_model(cfg, data)
    quality = None
    # Text models log val_perplexity every epoch; the quality callback is for images.
    if cfg.train.quality_every and not registry.is_text(cfg.model["name"]):
        # Only now, when data and model are known to be good: it may train the FID classifier.
        quality = quality_callback(cfg)
        quality.prepare()
        # Seed again: training the feature classifier on a cold cache must not
        # change the random state training starts from (the pipeline's seeds and
        # the model's weights were fixed above).
        keras.utils.set_random_seed(cfg.seed + initial_epoch)
    if registry.is_text(cfg.model["name"]):
        # Fail now, not after the first epoch, if the per-epoch samples cannot be written.
        sample_budget(model, "" if registry.family(cfg.model["name"]) == "text_vae" else cfg.train.sample_prompt,
                      cfg.train.sample_max_new_tokens)
    history = json.loads((run_dir / "history.json").read_text()) if initial_epoch else {}
    if initial_epoch:
        # Drop anything logged after the checkpoint (an epoch interrupted mid-save).
        history = _truncate_history(history, initial_epoch)
    guard, own_callbacks = _callbacks(cfg, run_dir, history, quality)
    verbose = cfg.train.verbose
    if verbose == 1 and not sys.stdout.isatty():
        verbose = 2  # one line per epoch in logs and CI instead of a redrawn bar
    validation = data.test if (cfg.train.validate and data.test is not None) else None
    model.fit(  # with initial_epoch == epochs (only the final save was missing) this is a no-op
        data.train,
        epochs=cfg.train.epochs,
        initial_epoch=initial_epoch,
        steps_per_epoch=cfg.train.steps_per_epoch,
        validation_data=validation,
        callbacks=own_callbacks + list(callbacks or []),
        verbose=verbose,
        shuffle=False,  # the tf.data pipeline already shuffles
    )
    if guard.bad is not None:
        where, key, value = guard.bad
        done = (read_state(run_dir) or {}).get("epochs_done", 0)
        raise TrainingDiverged(
            f"training stopped: {key} became {value} at {where}; the last finite checkpoint "
            f"(epoch {done}) is kept in {run_dir / 'checkpoints'}; lower train.learning_rate or try model.loss=hinge"
        )
    # Atomic: a model.keras that exists is always complete.
    model.save(run_dir / "model.tmp.keras")
    os.replace(run_dir / "model.tmp.keras", run_dir / FINAL_MODEL)
    _write_json_atomic(run_dir / "checkpoints" / STATE_FILE, {"epochs_done": cfg.train.epochs, "finished": True})
    from aigc_tf import viz

    if history.get("epoch"):
        viz.plot_history(history, run_dir / "history.png")
    return model
