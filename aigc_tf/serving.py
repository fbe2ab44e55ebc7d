"""A small client for models exported by :mod:`aigc_tf.export` and served by TF Serving.

Request builders, for a signature's inputs given as ``{name: array-like}``:

* :func:`row_request`: REST row format ``{"signature_name", "instances":
  [{name: value}, ...]}`` (every input shares the batch dimension; a scalar
  input such as a table model's ``rows`` needs the columnar format);
* :func:`columnar_request`: REST columnar format ``{"signature_name",
  "inputs": {name: value}}``;
* :func:`grpc_request`: a ``tensorflow_serving.apis.predict_pb2.PredictRequest``.

The REST payloads are plain JSON-serialisable dicts (strings as UTF-8 JSON
strings, bytes that are not UTF-8 as ``{"b64": ...}``, TF Serving's rule).
JSON carries no dtypes, and gRPC's ``TensorProto`` must carry the right one
(a table model's ``seed`` is int64, not Python's default int32), so every
builder takes the signature's specs: ``specs`` from :func:`signature_specs`
(read from a SavedModel directory, or from the server's REST metadata). With
specs, missing or unknown input names and shapes the signature cannot take
fail here, with the signature's inputs in the message, instead of at the
server.

Transport: :func:`rest_url` + :func:`predict_rest` (``urllib``, no extra
dependency) and :func:`predict_grpc` (``grpc`` +
``prediction_service_pb2_grpc``); :func:`decode_rest` and :func:`decode_grpc`
turn a response back into ``{output name: numpy array}`` (strings as
``bytes``, as TensorFlow returns them). :func:`request_tensors` decodes a
request the way the server does, to replay it through a SavedModel loaded
here.

Example::

    from aigc_tf import serving

    specs = serving.signature_specs("exports/gpt_embedded/1")
    inputs = {"prompts": ["The "], "max_new_tokens": [40], "temperature": [0.8], "top_k": [0],
              "top_p": [0.95], "seed": [1]}
    url = serving.rest_url("localhost", 8501, "gpt_embedded")
    out = serving.decode_rest(serving.predict_rest(url, serving.row_request(inputs, specs=specs)), specs)
    out["texts"][0].decode()
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

DEFAULT_SIGNATURE = "serving_default"
REST_PORT = 8501
GRPC_PORT = 8500
PREDICT_METHOD = "tensorflow/serving/predict"


class ServingError(RuntimeError):
    """A request TF Serving (or the client, before sending) refused, with the server's message."""


# ------------------------------------------------------------------ specs
def signature_specs(source, signature_name: str = DEFAULT_SIGNATURE) -> tuple[dict, dict]:
    """``(inputs, outputs)``, each ``{name: tf.TensorSpec}``, of one signature.

    ``source``: a SavedModel (version) directory (its ``saved_model.pb`` is
    read as a proto, nothing is loaded or run), the JSON of TF Serving's REST
    ``GET /v1/models/NAME/metadata`` (see :func:`metadata_rest`), or a
    ``SignatureDef`` proto.
    """
    from google.protobuf import json_format
    from tensorflow.core.protobuf import meta_graph_pb2, saved_model_pb2

    if isinstance(source, meta_graph_pb2.SignatureDef):
        signature = source
    elif isinstance(source, dict):
        defs = source.get("metadata", {}).get("signature_def", {}).get("signature_def")
        if defs is None:
            raise ServingError("not a TF Serving model metadata response: no metadata.signature_def.signature_def")
        available = sorted(defs)
        if signature_name not in defs:
            raise ServingError(f"no signature {signature_name!r}; the model has {', '.join(available)}")
        signature = json_format.ParseDict(defs[signature_name], meta_graph_pb2.SignatureDef())
    else:
        model = saved_model_pb2.SavedModel.FromString((Path(source) / "saved_model.pb").read_bytes())
        defs = model.meta_graphs[0].signature_def
        if signature_name not in defs:
            names = sorted(k for k in defs if not k.startswith("__"))
            raise ServingError(f"{source} has no signature {signature_name!r}; it has {', '.join(names)}")
        signature = defs[signature_name]
    return _specs(signature.inputs), _specs(signature.outputs)


def _specs(tensor_infos) -> dict:
    import tensorflow as tf

    return {name: tf.TensorSpec(tf.TensorShape(info.tensor_shape), tf.dtypes.as_dtype(info.dtype), name=name)
            for name, info in sorted(tensor_infos.items())}


# --------------------------------------------------------------- requests
def _arrays(inputs: dict, specs: dict | None) -> dict[str, np.ndarray]:
    """Inputs as numpy arrays of the signature's dtypes (strings: object arrays of bytes), checked against ``specs``."""
    if specs is not None:
        missing, unknown = sorted(set(specs) - set(inputs)), sorted(set(inputs) - set(specs))
        if missing or unknown:
            raise ServingError(f"the signature's inputs are {', '.join(specs)}; "
                               + "; ".join(s for s in (f"missing {', '.join(missing)}" if missing else "",
                                                       f"unknown {', '.join(unknown)}" if unknown else "") if s))
    out = {}
    for name, value in inputs.items():
        spec = specs[name] if specs is not None else None
        if (spec is not None and spec.dtype.name == "string") or _holds_strings(value):
            array = _bytes_array(value)
        else:
            array = np.asarray(value)
            if spec is not None:
                target = np.dtype(spec.dtype.as_numpy_dtype)
                if target.kind in "iu" and array.dtype.kind == "f" and not np.all(array == np.round(array)):
                    raise ServingError(f"input {name!r} is {spec.dtype.name}; got fractional values {array.tolist()}")
                array = array.astype(target)
        if spec is not None and not spec.shape.is_compatible_with(array.shape):
            raise ServingError(f"input {name!r} has shape {list(array.shape)}; the signature takes "
                               f"{spec.shape.as_list()} ({spec.dtype.name}; None = any size)")
        out[name] = array
    return out


def _holds_strings(value) -> bool:
    array = np.asarray(value, dtype=object)
    return array.size > 0 and isinstance(array.flat[0], str | bytes)


def _to_bytes(x) -> bytes:
    return x.encode("utf-8") if isinstance(x, str) else bytes(x)


def _bytes_array(value) -> np.ndarray:
    """Strings (str or bytes, nested lists) -> an object array of bytes, as TensorFlow holds them."""
    return np.vectorize(_to_bytes, otypes=[object])(np.asarray(value, dtype=object))


def _json_value(value):
    """A numpy value as TF Serving's JSON: nested lists; bytes as UTF-8 strings, else ``{"b64": ...}``."""
    if isinstance(value, np.ndarray) and value.dtype == object:
        return [_json_value(v) for v in value] if value.ndim else _json_value(value.item())
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return {"b64": base64.b64encode(value).decode("ascii")}
    value = np.asarray(value)
    if value.dtype in (np.float32, np.float16):
        # The shortest decimal that reads back as the same float32 (0.8, not 0.800000011920929).
        shortest = np.array([float(str(x)) for x in value.ravel()], dtype=object)
        return shortest.reshape(value.shape).tolist()
    return value.tolist()


def row_request(inputs: dict, signature_name: str = DEFAULT_SIGNATURE, specs: dict | None = None) -> dict:
    """REST row format: one ``{input: value}`` object per example.

    Every input must have the same first (batch) dimension; a scalar input
    (a table model's ``rows`` and ``seed``) is refused: use :func:`columnar_request`.
    """
    arrays = _arrays(inputs, specs)
    scalars = [k for k, a in arrays.items() if a.ndim == 0]
    if scalars:
        are = "is a scalar" if len(scalars) == 1 else "are scalars"
        raise ServingError(f"the row format needs every input to share the batch dimension; {', '.join(scalars)} "
                           f"{are}: use columnar_request (TF Serving's \"inputs\" format)")
    sizes = {k: a.shape[0] for k, a in arrays.items()}
    if len(set(sizes.values())) > 1:
        raise ServingError(f"the row format needs every input to share the batch dimension; got {sizes}")
    n = next(iter(sizes.values()), 0)
    return {"signature_name": signature_name,
            "instances": [{k: _json_value(a[i]) for k, a in arrays.items()} for i in range(n)]}


def columnar_request(inputs: dict, signature_name: str = DEFAULT_SIGNATURE, specs: dict | None = None) -> dict:
    """REST columnar format: ``{"inputs": {input: whole tensor}}`` (scalars allowed)."""
    return {"signature_name": signature_name,
            "inputs": {k: _json_value(a) for k, a in _arrays(inputs, specs).items()}}


def grpc_request(model: str, inputs: dict, signature_name: str = DEFAULT_SIGNATURE, specs: dict | None = None,
                 version: int | None = None):
    """A ``PredictRequest`` for ``model`` (optionally one ``version``) with each input as a ``TensorProto``."""
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2

    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    request.model_spec.signature_name = signature_name
    if version is not None:
        request.model_spec.version.value = int(version)
    for name, array in _arrays(inputs, specs).items():
        dtype = specs[name].dtype if specs is not None else None
        request.inputs[name].CopyFrom(tf.make_tensor_proto(array, dtype=dtype))
    return request


def request_tensors(request, specs: dict | None = None) -> dict[str, np.ndarray]:
    """The input arrays a request carries, decoded as TF Serving decodes it (a REST row or
    columnar dict, or a ``PredictRequest``); with ``specs``, cast to the signature's dtypes."""
    import tensorflow as tf

    if isinstance(request, dict):
        if "instances" in request:
            rows = request["instances"]
            if not all(isinstance(r, dict) for r in rows):
                raise ServingError("each row of \"instances\" must be an {input: value} object")
            columns = {k: [_from_json(r[k]) for r in rows] for k in (rows[0] if rows else {})}
        elif "inputs" in request:
            columns = {k: _from_json(v) for k, v in request["inputs"].items()}
        else:
            raise ServingError("a REST predict request needs \"instances\" (rows) or \"inputs\" (columns)")
        return _arrays(columns, specs)
    arrays = {k: tf.make_ndarray(v) for k, v in request.inputs.items()}
    return _arrays(arrays, specs) if specs is not None else arrays


def _from_json(value):
    if isinstance(value, dict) and set(value) == {"b64"}:
        return base64.b64decode(value["b64"])
    if isinstance(value, list):
        return [_from_json(v) for v in value]
    return value


# ---------------------------------------------------------------- transport
def rest_url(host: str, port: int, model: str, version: int | None = None, verb: str = "predict") -> str:
    """``http://HOST:PORT/v1/models/MODEL[/versions/N]:predict`` (``verb="metadata"``: ``.../metadata``);
    TF Serving's REST port is 8501 by default (:data:`REST_PORT`)."""
    url = f"http://{host}:{port}/v1/models/{model}" + (f"/versions/{int(version)}" if version is not None else "")
    return f"{url}/metadata" if verb == "metadata" else f"{url}:{verb}"


def predict_rest(url: str, payload: dict, timeout: float = 60.0) -> dict:
    """POST a REST payload; returns the decoded JSON response (``predictions`` or ``outputs``)."""
    request = urllib.request.Request(url, data=json.dumps(payload).encode("utf-8"),
                                     headers={"Content-Type": "application/json"}, method="POST")
    return _open(request, timeout)


def metadata_rest(url: str, timeout: float = 60.0) -> dict:
    """GET a model's metadata (``rest_url(..., verb="metadata")``): its signature defs, for :func:`signature_specs`."""
    return _open(urllib.request.Request(url, method="GET"), timeout)


def _open(request, timeout: float) -> dict:
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read().decode("utf-8"))
    except urllib.error.HTTPError as err:
        body = err.read().decode("utf-8", errors="replace")
        try:
            message = json.loads(body).get("error", body)
        except (ValueError, AttributeError):
            message = body
        raise ServingError(f"{request.full_url}: HTTP {err.code}: {message}") from err


def predict_grpc(target: str, request, timeout: float = 60.0):
    """Send a ``PredictRequest`` to ``target`` (``"HOST:8500"``); returns the ``PredictResponse``."""
    import grpc
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    # Responses of image or audio batches outgrow gRPC's 4 MiB default.
    with grpc.insecure_channel(target, options=[("grpc.max_receive_message_length", -1)]) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        try:
            return stub.Predict(request, timeout=timeout)
        except grpc.RpcError as err:
            raise ServingError(f"{target}: {err.code().name}: {err.details()}") from err


# ---------------------------------------------------------------- responses
def decode_rest(response: dict, specs: Any = None) -> dict[str, np.ndarray]:
    """A REST response -> ``{output: array}``. ``specs``: the signature's output specs (the
    second item of :func:`signature_specs`, or both) to restore dtypes and to name the
    output of a one-output signature, whose response carries no name."""
    if isinstance(specs, tuple):
        specs = specs[1]
    if "error" in response:
        raise ServingError(response["error"])
    if "predictions" in response:
        rows = response["predictions"]
        if rows and isinstance(rows[0], dict) and not set(rows[0]) == {"b64"}:
            columns = {k: [r[k] for r in rows] for k in rows[0]}
        else:
            columns = {_only_output(specs): rows}
    elif "outputs" in response:
        outputs = response["outputs"]
        named = isinstance(outputs, dict) and not set(outputs) == {"b64"}
        columns = outputs if named else {_only_output(specs): outputs}
    else:
        raise ServingError("a REST predict response has \"predictions\" or \"outputs\"; got "
                           f"{', '.join(response) or 'nothing'}")
    out = {}
    for name, value in columns.items():
        value = _from_json(value)
        spec = specs.get(name) if specs else None
        if (spec is not None and spec.dtype.name == "string") or _holds_strings(value):
            out[name] = _bytes_array(value)
        else:
            out[name] = np.asarray(value, dtype=spec.dtype.as_numpy_dtype if spec is not None else None)
    return out


def _only_output(specs) -> str:
    if specs and len(specs) == 1:
        return next(iter(specs))
    return "output"


def decode_grpc(response) -> dict[str, np.ndarray]:
    """A ``PredictResponse`` -> ``{output: array}`` (exact dtypes: the protos carry them)."""
    import tensorflow as tf

    return {name: tf.make_ndarray(proto) for name, proto in response.outputs.items()}
