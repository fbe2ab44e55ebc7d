"""SavedModel export for TF Serving, with named signatures, inputs and outputs.

Layout: ``EXPORT_ROOT/<model_name>/<version>/saved_model.pb`` + ``variables/``
+ ``assets.extra/tf_serving_warmup_requests``, and ``EXPORT_ROOT/models.config``.
A version directory is written under a temporary name and renamed into place,
so TF Serving never sees a half-written version and an existing one is never
overwritten.

Signatures (all ``tensorflow/serving/predict``):

* GAN: ``serving_default(z[, labels]) -> {images, pixels}``
* VAE: ``serving_default(z[, labels]) -> {images, pixels}`` (decode prior
  samples), ``decode`` (the same), ``encode(images[, labels]) -> {mean,
  log_var}``, ``reconstruct(images[, labels]) -> {images, pixels}``.

* Text models: ``serving_default(prompts, max_new_tokens, temperature,
  top_k, top_p, seed) -> {texts, token_ids}``: strings in, strings out, with
  tokenisation and detokenisation in the graph. Every input is ``[batch]``
  (one control per prompt; TF Serving's row format needs that), ``seed[i]``
  alone decides row ``i``'s draws, ``temperature <= 0`` is greedy. The text
  VAE also has ``encode(texts) -> {mean, log_var}`` and ``decode(z,
  max_new_tokens, temperature, top_k, top_p, seed) -> {texts, token_ids}``;
  its ``serving_default`` decodes each prompt's posterior mean (an empty
  prompt: a prior sample from its seed).
* Audio and table models: see their tasks (``waveforms``/``pcm16``/
  ``sample_rate``; one tensor per column from scalar ``rows`` and ``seed``).

``images`` are floats in the model's range ([-1, 1] for GANs, [0, 1] for
VAEs); ``pixels`` are ``uint8`` in [0, 255], ready to write as PNG. Noise is
an input (``z``), never drawn inside the graph, so a request is reproducible.

**Warmup.** Every version carries ``assets.extra/tf_serving_warmup_requests``:
a TFRecord file of ``PredictionLog`` records, one ``PredictRequest`` per
signature, which TF Serving replays when it loads the version (so the first
real request does not pay for tracing and kernel set-up). The inputs are a
batch of :data:`WARMUP_BATCH` built from each signature's ``TensorSpec`` by
:func:`warmup_value`'s rules, and the export replays them through the written
SavedModel before publishing it: TF Serving refuses to load a version whose
warmup fails, so a bad record is an export error, not a serving outage.
A family whose inputs these rules cannot fill may give a task method
``warmup_inputs(model, batch) -> {signature: {input: array}}`` (optional; no
task needs one today).

**models.config.** After each export, ``EXPORT_ROOT/models.config`` (TF
Serving's ``ModelServerConfig`` text proto, for ``--model_config_file``) lists
every model directory under the root, rewritten atomically (a temporary file
renamed over it, under an exclusive lock on the root). ``base_path`` is
``<base_path_prefix>/<name>``: the prefix defaults to ``/models``, where the
``tensorflow/serving`` container expects the root mounted (``-v
"$PWD/exports:/models"``), so the file works unchanged in the container;
``base_path_prefix=None`` writes each model's absolute local path instead (for
a ``tensorflow_model_server`` running on this machine). The version policy of
a new entry is ``all``: versions are immutable and numbered by this exporter,
so every version on disk is served and a client can pin one (``/versions/N``)
for reproducible requests; delete an old version directory to unload it. An
entry already in the file keeps its other fields (a hand-edited ``latest {
num_versions: 2 }`` policy, labels); only its ``base_path`` is rewritten, and
entries whose directory is gone are dropped.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from pathlib import Path

from aigc_tf.errors import RunDirError

WARMUP_DIR = "assets.extra"
WARMUP_FILE = "tf_serving_warmup_requests"
MODELS_CONFIG = "models.config"
DEFAULT_BASE_PATH_PREFIX = "/models"
# Two examples, not one: a batch dimension of 1 can hide a wrong reshape.
WARMUP_BATCH = 2
WARMUP_PROMPT = b"a"  # an unknown character is [UNK]: a one-token prompt for every vocabulary
# Named controls whose zero is not the cheap, always-valid choice.
WARMUP_CONTROLS = {
    "max_new_tokens": 1,  # 0 means "the default" (up to 200 tokens); one step warms the decode loop
    "temperature": 1.0,  # plain sampling
    "top_p": 1.0,  # nucleus filter off (0 would keep nothing)
}
NAME_PATTERN = r"[A-Za-z0-9_.\-]+"


def pixels(images, value_range: str):
    """Model images (``tanh`` [-1, 1] or ``unit`` [0, 1]) -> ``uint8`` [0, 255], in the graph."""
    import tensorflow as tf

    from aigc_tf.viz import unit_range

    return tf.cast(tf.round(tf.clip_by_value(unit_range(images, value_range), 0.0, 1.0) * 255.0), tf.uint8)


def endpoints(model) -> dict:
    """``{signature name: (function, input specs)}`` for ``model``, from its family's task."""
    from aigc_tf.tasks import task_for_model

    return task_for_model(model).export_endpoints(model)


def next_version(base: Path) -> int:
    versions = [int(p.name) for p in base.iterdir() if p.is_dir() and p.name.isdigit()] if base.is_dir() else []
    return max(versions, default=0) + 1


def export_model(model, export_root: str | Path, model_name: str, version: int | None = None, *,
                 base_path_prefix: str | None = DEFAULT_BASE_PATH_PREFIX) -> Path:
    """Write ``model`` as ``export_root/model_name/version`` with its warmup requests,
    then rewrite ``export_root/models.config``; returns the version path.

    ``base_path_prefix``: where TF Serving sees the export root (default
    ``/models``, the ``tensorflow/serving`` container's mount point); None
    writes absolute local paths into ``models.config``.
    """
    import keras
    import tensorflow as tf

    from aigc_tf.tasks import task_for_model

    if not re.fullmatch(NAME_PATTERN, model_name) or model_name.startswith("."):
        raise RunDirError(f"model name {model_name!r} is not a plain directory name; pass --name with letters, digits, _ . -")
    root = Path(export_root)
    base = root / model_name
    version = next_version(base) if version is None else version
    if version < 1:
        raise RunDirError(f"--version must be a positive integer, got {version}")
    target = base / str(version)
    if target.exists():
        raise RunDirError(
            f"{target} already exists; TF Serving versions are never overwritten: omit --version to use {next_version(base)}"
        )
    read_models_config(root / MODELS_CONFIG)  # a broken file fails now, before anything is written
    base.mkdir(parents=True, exist_ok=True)
    tmp = base / f".tmp-{version}"
    if tmp.exists():
        shutil.rmtree(tmp)
    archive = keras.export.ExportArchive()
    archive.track(model)
    specs = {}
    for name, (fn, input_specs) in endpoints(model).items():
        if isinstance(fn, tf.types.experimental.PolymorphicFunction):
            fn = fn.python_function  # the archive wraps it in its own tf.function
        archive.add_endpoint(name, fn, input_signature=input_specs)
        specs[name] = input_specs
    archive.write_out(str(tmp), verbose=False)
    hook = getattr(task_for_model(model), "warmup_inputs", None)
    overrides = hook(model, WARMUP_BATCH) if hook is not None else {}
    try:
        requests = {name: {**warmup_inputs(s, WARMUP_BATCH), **overrides.get(name, {})} for name, s in specs.items()}
        write_warmup_requests(tmp, model_name, requests, specs)
        replay_warmup(tmp)
    except Exception as err:
        shutil.rmtree(tmp, ignore_errors=True)
        detail = " ".join(str(err).split())  # one line: the CLI prints errors as one line
        raise RunDirError(
            f"the warmup requests of {model_name} fail on the exported signatures ({type(err).__name__}: {detail}); "
            "TF Serving would refuse to load this version. The family's task can give valid inputs with "
            "warmup_inputs(model, batch)"
        ) from err
    tmp.rename(target)
    write_models_config(root, base_path_prefix)
    return target


# ------------------------------------------------------------------ warmup
def warmup_value(spec, batch: int = WARMUP_BATCH):
    """A small valid value for one signature input, from its ``TensorSpec`` alone.

    Shape: an unknown first dimension is ``batch``, any other unknown one 1, a
    scalar stays a scalar. Value, by the first rule that applies:

    * a control named in :data:`WARMUP_CONTROLS` (``max_new_tokens`` 1,
      ``temperature`` and ``top_p`` 1.0);
    * ``rows`` (a scalar row count): ``batch``;
    * strings: :data:`WARMUP_PROMPT` (a one-character prompt or text);
    * anything else: zeros of the dtype (zero noise, black images, silence,
      class 0, seed 0, ``top_k`` 0 = off).
    """
    import numpy as np

    shape = [batch if (i == 0 and d is None) else (1 if d is None else d) for i, d in enumerate(spec.shape.as_list())]
    if spec.dtype.name == "string":
        return np.full(shape, WARMUP_PROMPT, dtype=object)
    dtype = spec.dtype.as_numpy_dtype
    if spec.name in WARMUP_CONTROLS:
        return np.full(shape, WARMUP_CONTROLS[spec.name], dtype=dtype)
    if spec.name == "rows" and not shape:
        return np.asarray(batch, dtype=dtype)
    return np.zeros(shape, dtype=dtype)


def warmup_inputs(specs, batch: int = WARMUP_BATCH) -> dict:
    """``{input name: array}`` for a signature's input ``TensorSpec``s (see :func:`warmup_value`)."""
    return {spec.name: warmup_value(spec, batch) for spec in specs}


def write_warmup_requests(version_dir: str | Path, model_name: str, requests: dict, specs: dict) -> Path:
    """Write ``{signature: {input: array}}`` as ``assets.extra/tf_serving_warmup_requests``
    (``PredictionLog`` records, one ``PredictRequest`` per signature, in signature order)."""
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

    path = Path(version_dir) / WARMUP_DIR / WARMUP_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(path)) as writer:
        for signature, inputs in requests.items():
            dtypes = {spec.name: spec.dtype for spec in specs[signature]}
            request = predict_pb2.PredictRequest()
            request.model_spec.name = model_name
            request.model_spec.signature_name = signature
            for name, value in inputs.items():
                request.inputs[name].CopyFrom(tf.make_tensor_proto(value, dtype=dtypes[name]))
            log = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))
            writer.write(log.SerializeToString())
    return path


def read_warmup_requests(version_dir: str | Path) -> list:
    """The ``PredictRequest``s of a version's warmup file, in order."""
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    out = []
    for record in tf.data.TFRecordDataset(str(Path(version_dir) / WARMUP_DIR / WARMUP_FILE)):
        log = prediction_log_pb2.PredictionLog.FromString(record.numpy())
        out.append(log.predict_log.request)
    return out


def replay_warmup(version_dir: str | Path, loaded=None) -> dict:
    """Run each warmup request through the SavedModel's signature, as TF Serving does on load;
    returns ``{signature: {output: array}}``."""
    import tensorflow as tf

    loaded = tf.saved_model.load(str(version_dir)) if loaded is None else loaded
    out = {}
    for request in read_warmup_requests(version_dir):
        fn = loaded.signatures[request.model_spec.signature_name]
        result = fn(**{k: tf.constant(tf.make_ndarray(v)) for k, v in request.inputs.items()})
        out[request.model_spec.signature_name] = {k: v.numpy() for k, v in result.items()}
    return out


# ----------------------------------------------------------- models.config
def served_models(export_root: str | Path) -> list[str]:
    """Names of the model directories under ``export_root``: those holding at least
    one integer version directory with a ``saved_model.pb``."""
    root = Path(export_root)
    if not root.is_dir():
        return []
    return sorted(
        p.name for p in root.iterdir()
        if p.is_dir() and re.fullmatch(NAME_PATTERN, p.name) and not p.name.startswith(".")
        and any(v.is_dir() and v.name.isdigit() and (v / "saved_model.pb").is_file() for v in p.iterdir())
    )


def read_models_config(path: str | Path):
    """Parse a ``models.config`` (a ``ModelServerConfig`` text proto); an empty config if the file is missing."""
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    config = model_server_config_pb2.ModelServerConfig()
    path = Path(path)
    if not path.is_file():
        return config
    try:
        text_format.Parse(path.read_text(), config)
    except text_format.ParseError as err:
        raise RunDirError(f"{path} is not a TF Serving ModelServerConfig text proto ({err}); fix or delete it, "
                          "then export again (it is rewritten from the model directories)") from err
    if config.WhichOneof("config") not in (None, "model_config_list"):
        raise RunDirError(f"{path} holds a {config.WhichOneof('config')}, not a model_config_list; "
                          "delete it, then export again")
    return config


def write_models_config(export_root: str | Path, base_path_prefix: str | None = DEFAULT_BASE_PATH_PREFIX) -> Path:
    """Rewrite ``export_root/models.config`` to list every model under the root (see the module docstring)."""
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    root = Path(export_root)
    path = root / MODELS_CONFIG
    with _locked(root):
        old = {c.name: c for c in read_models_config(path).model_config_list.config}
        config = model_server_config_pb2.ModelServerConfig()
        entries = config.model_config_list.config
        for name in served_models(root):
            entry = entries.add()
            if name in old:
                entry.CopyFrom(old[name])
            else:
                entry.name = name
                entry.model_platform = "tensorflow"
                entry.model_version_policy.all.SetInParent()
            entry.base_path = (str((root / name).resolve()) if base_path_prefix is None
                               else f"{base_path_prefix.rstrip('/')}/{name}")
        tmp = root / f".{MODELS_CONFIG}.tmp-{os.getpid()}"
        tmp.write_text(text_format.MessageToString(config))
        os.replace(tmp, path)
    return path


@contextlib.contextmanager
def _locked(directory: Path):
    """An exclusive lock on ``directory`` (POSIX ``flock``), so concurrent exports
    into one root do not lose each other's entries."""
    try:
        import fcntl
    except ImportError:  # Windows: no lock
        yield
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
