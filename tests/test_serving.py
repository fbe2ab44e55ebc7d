"""TF Serving: warmup records, models.config, and the client's requests.

There is no ``tensorflow_model_server`` here (and no network), so the REST and
gRPC transports are tested against local stand-ins that decode requests by TF
Serving's documented rules, independently of :mod:`aigc_tf.serving`, refuse
what the server refuses (a missing or unknown input, a wrong dtype or shape),
and answer by calling the exported SavedModel's signature.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from google.protobuf import json_format, text_format
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow_serving.apis import predict_pb2, prediction_log_pb2, prediction_service_pb2_grpc
from tensorflow_serving.config import model_server_config_pb2

from aigc_tf import export, registry, serving
from aigc_tf.errors import RunDirError
from tests.helpers import tiny_model_config

PREDICT = "tensorflow/serving/predict"
# Per-row seeds make sampling rows reproducible; row 0 is greedy.
TEXT_INPUTS = {"prompts": ["The ", "a é"], "max_new_tokens": [3, 2], "temperature": [0.0, 0.8],
               "top_k": [0, 5], "top_p": [1.0, 0.9], "seed": [1, 2]}


def _build(name):
    cfg = tiny_model_config(name)
    task = registry.task_for(name)
    return task.build_model(cfg, task.load_data(cfg))


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """``exported(name) -> (version dir, loaded SavedModel)``: one untrained tiny export per model, shared."""
    root = tmp_path_factory.mktemp("exports")
    cache = {}

    def get(name):
        if name not in cache:
            path = export.export_model(_build(name), root, name)
            cache[name] = (path, tf.saved_model.load(str(path)))
        return cache[name]

    return get


def _inputs(fn):
    return fn.structured_input_signature[1]


def _check_warmup(path, loaded, model_name):
    """Replay the warmup file through the loaded signatures; return the signatures it covered."""
    records = list(tf.data.TFRecordDataset(str(path / "assets.extra" / "tf_serving_warmup_requests")))
    seen = []
    for record in records:
        log = prediction_log_pb2.PredictionLog.FromString(record.numpy())
        assert log.WhichOneof("log_type") == "predict_log"
        request = log.predict_log.request
        assert request.model_spec.name == model_name
        fn = loaded.signatures[request.model_spec.signature_name]
        specs = _inputs(fn)
        inputs = {k: tf.make_ndarray(v) for k, v in request.inputs.items()}
        assert set(inputs) == set(specs)
        for name, value in inputs.items():
            assert tf.as_dtype(request.inputs[name].dtype) == specs[name].dtype, name
            assert specs[name].shape.is_compatible_with(value.shape), (name, value.shape)
            if specs[name].shape.rank:
                assert value.shape[0] == export.WARMUP_BATCH
        out = fn(**{k: tf.constant(v, dtype=specs[k].dtype) for k, v in inputs.items()})
        assert set(out) == set(fn.structured_outputs)
        for name, value in out.items():
            spec = fn.structured_outputs[name]
            assert value.dtype == spec.dtype and spec.shape.is_compatible_with(value.shape), name
            assert value.shape[0] == export.WARMUP_BATCH, name  # a table's `rows` is the batch too
        seen.append(request.model_spec.signature_name)
    return seen


def test_warmup_records_replay_through_the_loaded_signature(exported):
    path, loaded = exported("cvae")  # four signatures, images and labels in
    seen = _check_warmup(path, loaded, "cvae")
    assert sorted(seen) == sorted(loaded.signatures) == ["decode", "encode", "reconstruct", "serving_default"]


def test_warmup_values_follow_the_spec_rules():
    spec = tf.TensorSpec
    text = export.warmup_inputs([spec([None], tf.string, name="prompts"), spec([None], tf.int32, name="max_new_tokens"),
                                 spec([None], tf.float32, name="temperature"), spec([None], tf.int32, name="top_k"),
                                 spec([None], tf.float32, name="top_p"), spec([None], tf.int32, name="seed")])
    assert text["prompts"].tolist() == [b"a", b"a"]
    assert text["max_new_tokens"].tolist() == [1, 1] and text["max_new_tokens"].dtype == np.int32
    assert text["temperature"].tolist() == text["top_p"].tolist() == [1.0, 1.0]
    assert text["top_k"].tolist() == text["seed"].tolist() == [0, 0]
    table = export.warmup_inputs([spec([], tf.int32, name="rows"), spec([], tf.int64, name="seed")], batch=3)
    assert table["rows"].shape == () and int(table["rows"]) == 3 and table["seed"].dtype == np.int64
    image = export.warmup_value(spec([None, 8, 8, 3], tf.float32, name="images"))
    assert image.shape == (2, 8, 8, 3) and not image.any()
    assert export.warmup_value(spec([None, None], tf.int32, name="ids")).shape == (2, 1)


def test_a_task_hook_gives_warmup_values_and_a_failing_warmup_publishes_nothing(tmp_path, monkeypatch):
    from aigc_tf.tasks.image import GANTask

    gan = _build("dcgan")
    ones = {"serving_default": {"z": np.ones((2, gan.latent_dim), np.float32)}}
    monkeypatch.setattr(GANTask, "warmup_inputs", lambda self, model, batch: ones, raising=False)
    path = export.export_model(gan, tmp_path, "gan")
    (request,) = export.read_warmup_requests(path)
    np.testing.assert_array_equal(tf.make_ndarray(request.inputs["z"]), ones["serving_default"]["z"])

    wrong = {"serving_default": {"z": np.ones((2, gan.latent_dim + 1), np.float32)}}  # TF Serving would refuse it
    monkeypatch.setattr(GANTask, "warmup_inputs", lambda self, model, batch: wrong, raising=False)
    with pytest.raises(RunDirError, match="warmup requests of gan fail.*TF Serving would refuse to load"):
        export.export_model(gan, tmp_path, "gan")
    assert sorted(p.name for p in (tmp_path / "gan").iterdir()) == ["1"]  # no version 2, no temporary directory
    assert [c.name for c in _models_config(tmp_path).values()] == ["gan"]


def _models_config(root):
    config = model_server_config_pb2.ModelServerConfig()
    text_format.Parse((root / "models.config").read_text(), config)
    return {c.name: c for c in config.model_config_list.config}


def test_models_config_lists_every_model_once(tmp_path):
    root = tmp_path / "exports"
    gan, vae = _build("dcgan"), _build("mlp_vae")
    export.export_model(gan, root, "gan")
    export.export_model(vae, root, "vae")
    (root / "notes").mkdir()  # not a model directory: no version with a saved_model.pb
    entries = _models_config(root)
    assert sorted(entries) == ["gan", "vae"]
    for name, entry in entries.items():
        assert entry.base_path == f"/models/{name}" and entry.model_platform == "tensorflow"
        assert entry.model_version_policy.WhichOneof("policy_choice") == "all"

    # A hand-edited policy survives a re-export; the new version is one more version, not a new entry.
    edited = (root / "models.config").read_text().replace("all {\n      }", "latest {\n        num_versions: 2\n      }", 1)
    (root / "models.config").write_text(edited)
    assert export.export_model(gan, root, "gan").name == "2"
    entries = _models_config(root)
    assert sorted(entries) == ["gan", "vae"]
    assert entries["gan"].model_version_policy.latest.num_versions == 2
    assert entries["vae"].model_version_policy.WhichOneof("policy_choice") == "all"
    assert not list(root.glob(".models.config*")), "the temporary file is renamed into place"

    # Local paths for a server on this machine; a model directory that is gone is dropped.
    shutil.rmtree(root / "vae")
    export.write_models_config(root, base_path_prefix=None)
    assert {n: e.base_path for n, e in _models_config(root).items()} == {"gan": str((root / "gan").resolve())}


def test_a_broken_models_config_stops_the_export_before_it_writes(tmp_path):
    (tmp_path / "models.config").write_text("model_config_list { config { nme: 'x' } }")
    with pytest.raises(RunDirError, match="not a TF Serving ModelServerConfig.*fix or delete it"):
        export.export_model(_build("dcgan"), tmp_path, "gan")
    assert not (tmp_path / "gan").exists()


# --------------------------------------------------------- TF Serving's rules
def _from_json(value):
    if isinstance(value, dict):
        assert set(value) == {"b64"}, value
        return base64.b64decode(value["b64"])
    return [_from_json(v) for v in value] if isinstance(value, list) else value


def rest_tensors(body, specs):
    """Decode a REST predict body the way TF Serving does; raise ValueError where it answers 400."""
    if "instances" in body:
        rows = body["instances"]
        for i, row in enumerate(rows):
            if not isinstance(row, dict) or set(row) != set(specs):
                raise ValueError(f"instances[{i}] must be an object with exactly the inputs {sorted(specs)}")
        columns = {k: [_from_json(r[k]) for r in rows] for k in specs}
    elif "inputs" in body:
        if set(body["inputs"]) != set(specs):
            raise ValueError(f"inputs must name exactly {sorted(specs)}")
        columns = {k: _from_json(v) for k, v in body["inputs"].items()}
    else:
        raise ValueError("missing 'instances' or 'inputs'")
    tensors = {}
    for name, spec in specs.items():
        try:
            tensors[name] = tf.constant(columns[name], dtype=spec.dtype)
        except (TypeError, ValueError) as err:
            raise ValueError(f"{name}: {err}") from err
        if not spec.shape.is_compatible_with(tensors[name].shape):
            raise ValueError(f"{name}: shape {tensors[name].shape} is not {spec.shape}")
    return tensors


def grpc_tensors(request, specs):
    """Decode a PredictRequest; raise ValueError where TF Serving answers INVALID_ARGUMENT."""
    if set(request.inputs) != set(specs):
        raise ValueError(f"inputs must name exactly {sorted(specs)}, got {sorted(request.inputs)}")
    tensors = {}
    for name, spec in specs.items():
        proto = request.inputs[name]
        if tf.as_dtype(proto.dtype) != spec.dtype:
            raise ValueError(f"expects {name} to be {spec.dtype.name} but {tf.as_dtype(proto.dtype).name} is provided")
        tensors[name] = tf.constant(tf.make_ndarray(proto))
        if not spec.shape.is_compatible_with(tensors[name].shape):
            raise ValueError(f"{name}: shape {tensors[name].shape} is not {spec.shape}")
    return tensors


def _assert_tensors(got: dict, specs, expected: dict):
    assert set(got) == set(specs)
    for name, value in got.items():
        assert value.dtype == specs[name].dtype, name
        assert specs[name].shape.is_compatible_with(value.shape), name
        want = np.asarray(expected[name], dtype=object if value.dtype == tf.string else value.dtype.as_numpy_dtype)
        if value.dtype == tf.string:
            want = np.vectorize(lambda s: s.encode(), otypes=[object])(want)
        np.testing.assert_array_equal(value.numpy(), want)


def test_client_payloads_decode_to_the_tensors_the_signature_expects(exported):
    path, loaded = exported("gpt")
    fn = loaded.signatures["serving_default"]
    inputs, outputs = serving.signature_specs(path)
    assert {k: (s.dtype, s.shape) for k, s in inputs.items()} == {k: (s.dtype, s.shape) for k, s in _inputs(fn).items()}
    assert {k: (s.dtype, s.shape.as_list()) for k, s in outputs.items()} == \
        {k: (s.dtype, s.shape.as_list()) for k, s in fn.structured_outputs.items()}

    row = json.loads(json.dumps(serving.row_request(TEXT_INPUTS, specs=inputs)))  # survives JSON
    assert row["signature_name"] == "serving_default" and len(row["instances"]) == 2
    assert row["instances"][1]["temperature"] == 0.8  # the float32 value, written short
    _assert_tensors(rest_tensors(row, _inputs(fn)), _inputs(fn), TEXT_INPUTS)
    columns = json.loads(json.dumps(serving.columnar_request(TEXT_INPUTS, specs=inputs)))
    _assert_tensors(rest_tensors(columns, _inputs(fn)), _inputs(fn), TEXT_INPUTS)
    request = predict_pb2.PredictRequest.FromString(
        serving.grpc_request("gpt", TEXT_INPUTS, specs=inputs, version=1).SerializeToString())
    assert (request.model_spec.name, request.model_spec.signature_name, request.model_spec.version.value) == \
        ("gpt", "serving_default", 1)
    _assert_tensors(grpc_tensors(request, _inputs(fn)), _inputs(fn), TEXT_INPUTS)
    for built in (row, columns, request):  # the client's own decoder agrees
        got = serving.request_tensors(built, inputs)
        _assert_tensors({k: tf.constant(v) for k, v in got.items()}, _inputs(fn), TEXT_INPUTS)

    with pytest.raises(serving.ServingError, match="missing seed; unknown sed"):
        serving.row_request({**{k: v for k, v in TEXT_INPUTS.items() if k != "seed"}, "sed": [1, 2]}, specs=inputs)
    with pytest.raises(serving.ServingError, match="'top_k' is int32; got fractional"):
        serving.grpc_request("gpt", {**TEXT_INPUTS, "top_k": [0.5, 1]}, specs=inputs)
    with pytest.raises(serving.ServingError, match=r"'prompts' has shape \[2, 1\]"):
        serving.columnar_request({**TEXT_INPUTS, "prompts": [["a"], ["b"]]}, specs=inputs)


def test_table_requests_need_the_columnar_format_and_exact_dtypes(exported):
    path, loaded = exported("tvae")
    fn = loaded.signatures["serving_default"]
    inputs, _ = serving.signature_specs(path)
    values = {"rows": 3, "seed": 7}
    with pytest.raises(serving.ServingError, match="rows, seed are scalars: use columnar_request"):
        serving.row_request(values, specs=inputs)
    _assert_tensors(rest_tensors(serving.columnar_request(values, specs=inputs), _inputs(fn)), _inputs(fn), values)
    _assert_tensors(grpc_tensors(serving.grpc_request("tvae", values, specs=inputs), _inputs(fn)), _inputs(fn), values)
    # Without the specs, numpy's default int64 `rows` is what the server refuses.
    with pytest.raises(ValueError, match="expects rows to be int32 but int64"):
        grpc_tensors(serving.grpc_request("tvae", values), _inputs(fn))


# ------------------------------------------------------------ stand-in servers
def _json_out(value):
    value = np.asarray(value.numpy(), dtype=object if value.dtype == tf.string else None)
    if value.dtype == object:
        return np.vectorize(lambda b: b.decode("utf-8"), otypes=[object])(value).tolist()
    return value.tolist()


class StandInREST(BaseHTTPRequestHandler):
    """TF Serving's REST predict and metadata endpoints over SavedModels loaded here."""

    models: dict = {}

    def do_POST(self):
        m = re.fullmatch(r"/v1/models/([^/:]+)(?:/versions/(\d+))?:predict", self.path)
        if not m or m[1] not in self.models:
            return self._send(404, {"error": f"Servable not found for request: {self.path}"})
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        loaded = self.models[m[1]][1]
        fn = loaded.signatures[body.get("signature_name", "serving_default")]
        try:
            tensors = rest_tensors(body, _inputs(fn))
        except ValueError as err:
            return self._send(400, {"error": str(err)})
        out = fn(**tensors)
        if "instances" in body:
            n = len(body["instances"])
            return self._send(200, {"predictions": [{k: _json_out(v[i]) for k, v in out.items()} for i in range(n)]})
        return self._send(200, {"outputs": {k: _json_out(v) for k, v in out.items()}})

    def do_GET(self):
        m = re.fullmatch(r"/v1/models/([^/:]+)/metadata", self.path)
        path = self.models[m[1]][0]
        model = saved_model_pb2.SavedModel.FromString((path / "saved_model.pb").read_bytes())
        defs = {k: json_format.MessageToDict(v, preserving_proto_field_name=True)
                for k, v in model.meta_graphs[0].signature_def.items() if not k.startswith("__")}
        self._send(200, {"model_spec": {"name": m[1], "version": path.name},
                         "metadata": {"signature_def": {"signature_def": defs}}})

    def _send(self, code, payload):
        data = json.dumps(payload).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


class StandInPredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, models):
        self.models = models

    def Predict(self, request, context):
        import grpc

        if request.model_spec.name not in self.models:
            context.abort(grpc.StatusCode.NOT_FOUND, f"Servable not found: {request.model_spec.name}")
        fn = self.models[request.model_spec.name][1].signatures[request.model_spec.signature_name or "serving_default"]
        try:
            tensors = grpc_tensors(request, _inputs(fn))
        except ValueError as err:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(err))
        response = predict_pb2.PredictResponse()
        response.model_spec.CopyFrom(request.model_spec)
        for name, value in fn(**tensors).items():
            response.outputs[name].CopyFrom(tf.make_tensor_proto(value.numpy()))
        return response


@pytest.fixture(scope="module")
def servers(exported):
    import grpc

    models = {name: exported(name) for name in ("gpt", "tvae")}
    handler = type("Handler", (StandInREST,), {"models": models})
    http = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    rpc = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(StandInPredictionService(models), rpc)
    port = rpc.add_insecure_port("127.0.0.1:0")
    rpc.start()
    yield {"rest": http.server_address[1], "grpc": f"127.0.0.1:{port}", "models": models}
    rpc.stop(None)
    http.shutdown()


def _direct(fn, values):
    specs = _inputs(fn)
    return {k: v.numpy() for k, v in fn(**{k: tf.constant(values[k], dtype=s.dtype) for k, s in specs.items()}).items()}


def _assert_outputs(got, expected, specs):
    assert set(got) == set(expected) == set(specs)
    for name, value in got.items():
        assert value.dtype == expected[name].dtype, name
        np.testing.assert_array_equal(value, expected[name], err_msg=name)


def test_rest_round_trip_through_a_stand_in_server(servers):
    port, (path, loaded) = servers["rest"], servers["models"]["gpt"]
    metadata = serving.metadata_rest(serving.rest_url("127.0.0.1", port, "gpt", verb="metadata"))
    specs = serving.signature_specs(metadata)
    assert {k: (s.dtype, s.shape.as_list()) for k, s in specs[0].items()} == \
        {k: (s.dtype, s.shape.as_list()) for k, s in serving.signature_specs(path)[0].items()}
    expected = _direct(loaded.signatures["serving_default"], TEXT_INPUTS)
    url = serving.rest_url("127.0.0.1", port, "gpt", version=1)
    for payload in (serving.row_request(TEXT_INPUTS, specs=specs[0]), serving.columnar_request(TEXT_INPUTS, specs=specs[0])):
        _assert_outputs(serving.decode_rest(serving.predict_rest(url, payload), specs), expected, specs[1])

    table_path, table = servers["models"]["tvae"]
    table_specs = serving.signature_specs(table_path)
    values = {"rows": 4, "seed": 3}
    got = serving.decode_rest(serving.predict_rest(serving.rest_url("127.0.0.1", port, "tvae"),
                                                   serving.columnar_request(values, specs=table_specs[0])), table_specs)
    _assert_outputs(got, _direct(table.signatures["serving_default"], values), table_specs[1])
    with pytest.raises(serving.ServingError, match="HTTP 400: .*exactly the inputs"):
        serving.predict_rest(url, {"instances": [{"prompts": "a"}]})


def test_grpc_round_trip_through_a_stand_in_server(servers):
    target, (path, loaded) = servers["grpc"], servers["models"]["gpt"]
    inputs, _ = serving.signature_specs(path)
    response = serving.predict_grpc(target, serving.grpc_request("gpt", TEXT_INPUTS, specs=inputs))
    got = serving.decode_grpc(response)
    _assert_outputs(got, _direct(loaded.signatures["serving_default"], TEXT_INPUTS), loaded.signatures["serving_default"].structured_outputs)
    assert got["texts"].dtype == object and isinstance(got["texts"][0], bytes)

    table_path, _ = servers["models"]["tvae"]
    with pytest.raises(serving.ServingError, match="INVALID_ARGUMENT: expects rows to be int32"):
        serving.predict_grpc(target, serving.grpc_request("tvae", {"rows": 4, "seed": 3}))  # no specs: int64 rows
    table_inputs, _ = serving.signature_specs(table_path)
    out = serving.decode_grpc(serving.predict_grpc(target, serving.grpc_request("tvae", {"rows": 4, "seed": 3},
                                                                                 specs=table_inputs)))
    assert all(v.shape == (4,) for v in out.values())


# ------------------------------------------------------- every family, the CLI's view
def _one_model_per_family():
    """The first registered model of each family, preferring a conditional one (it has more inputs)."""
    chosen = {}
    for name, spec in registry.MODELS.items():
        family = spec.family
        conditional = spec.preset.get("conditional", False)
        if family not in chosen or (conditional and not registry.MODELS[chosen[family]].preset.get("conditional")):
            chosen[family] = name
    return sorted(chosen.values())


@pytest.mark.slow
@pytest.mark.parametrize("name", _one_model_per_family())
def test_every_family_exports_named_predict_signatures_with_a_valid_warmup(name, exported):
    path, loaded = exported(name)
    model = saved_model_pb2.SavedModel.FromString((path / "saved_model.pb").read_bytes())
    defs = {k: v for k, v in model.meta_graphs[0].signature_def.items() if not k.startswith("__")}
    assert "serving_default" in defs and set(defs) == set(loaded.signatures)
    for signature, sig_def in defs.items():
        assert sig_def.method_name == PREDICT, signature
        assert sig_def.inputs and sig_def.outputs, signature
        generic = re.compile(r"(args|output)_\d+")
        assert not any(generic.fullmatch(k) for k in [*sig_def.inputs, *sig_def.outputs]), (signature, list(sig_def.inputs))
    assert sorted(_check_warmup(path, loaded, name)) == sorted(defs)


def _saved_model_cli(path):
    return subprocess.Popen([str(Path(sys.executable).parent / "saved_model_cli"), "show", "--all", "--dir", str(path)], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})


def _parse_cli(text):
    """``saved_model_cli show --all`` -> ``{signature: {"inputs"|"outputs": {name: (DT_, shape)}, "method": str}}``."""
    out = {}
    for block in re.split(r"\n(?=signature_def\[)", text)[1:]:
        name = re.match(r"signature_def\['([^']+)'\]", block)[1]
        parsed = {"inputs": {}, "outputs": {}, "method": re.search(r"Method name is: (\S*)", block)[1]}
        for kind, key, dtype, shape in re.findall(r"(inputs|outputs)\['([^']+)'\] tensor_info:\s+dtype: (\S+)\s+shape: (.+)", block):
            parsed[kind][key] = (dtype, shape.strip())
        out[name] = parsed
    return out


def _cli_shape(spec):
    dims = spec.shape.as_list()
    return "(" + ", ".join("-1" if d is None else str(d) for d in dims) + ")"


@pytest.mark.slow
def test_saved_model_cli_agrees_with_the_client_specs(exported):
    paths = {name: exported(name)[0] for name in ("text_vae", "tvae")}
    procs = {name: _saved_model_cli(path) for name, path in paths.items()}  # one TF start each, side by side
    for name, proc in procs.items():
        text, _ = proc.communicate(timeout=300)
        assert proc.returncode == 0
        shown = {k: v for k, v in _parse_cli(text).items() if not k.startswith("__")}
        loaded = exported(name)[1]
        assert set(shown) == set(loaded.signatures)
        for signature, cli in shown.items():
            assert cli["method"] == PREDICT
            inputs, outputs = serving.signature_specs(paths[name], signature)
            for kind, specs in (("inputs", inputs), ("outputs", outputs)):
                assert {k: (_cli_dtype(d), shape) for k, (d, shape) in cli[kind].items()} == \
                    {k: (s.dtype, _cli_shape(s)) for k, s in specs.items()}, (name, signature, kind)
            fn = loaded.signatures[signature]
            assert set(cli["inputs"]) == set(_inputs(fn)) and set(cli["outputs"]) == set(fn.structured_outputs)


def _cli_dtype(name):
    from tensorflow.core.framework import types_pb2

    return tf.dtypes.as_dtype(types_pb2.DataType.Value(name))
