"""SavedModel export: TF Serving layout, named signatures, and the same
images as the Keras model when loaded in a process that imports only TensorFlow."""

import json

import numpy as np
import pytest

from aigc_tf import export, training
from aigc_tf.errors import RunDirError
from tests.helpers import run_python, tiny_config

# Runs in a fresh interpreter: loads the SavedModel with TensorFlow alone and
# calls each named signature with the inputs saved by the test.
SERVE = r"""
import json, sys
import numpy as np
import tensorflow as tf
path, inputs_file, out_file = sys.argv[1:]
loaded = tf.saved_model.load(path)
calls = json.load(open(inputs_file))
out = {}
for sig, feeds in calls.items():
    fn = loaded.signatures[sig]
    result = fn(**{k: tf.constant(np.array(v["data"], dtype=v["dtype"])) for k, v in feeds.items()})
    out[sig] = {k: v.numpy().tolist() for k, v in result.items()}
out["_modules"] = sorted(m for m in sys.modules if m.split(".")[0] == "aigc_tf")
out["_signatures"] = sorted(loaded.signatures.keys())
json.dump(out, open(out_file, "w"))
"""


def _feed(x, dtype):
    return {"data": np.asarray(x).tolist(), "dtype": dtype}


@pytest.mark.slow
@pytest.mark.parametrize("name", ["dcgan", "cgan", "conv_vae", "cvae"])
def test_export_round_trip_in_fresh_process(name, tmp_path):
    # The cGAN averages its generator: the export must serve the average.
    # No ramp, a long half-life: after one step the average is still near the
    # initial weights while the live generator has moved.
    ema = {"ema_kimg": 10.0, "ema_rampup": 0.0}
    cfg = tiny_config(name, model=ema) if name == "cgan" else tiny_config(name)
    data = training.load_data(cfg)
    model = training.build_model(cfg, data)
    model.fit(data.train, epochs=1, steps_per_epoch=1, verbose=0)
    path = export.export_model(model, tmp_path / "exports", name)
    assert path == tmp_path / "exports" / name / "1"
    assert (path / "saved_model.pb").is_file() and (path / "variables").is_dir()

    z = model.sample_latent(3, seed=0).numpy()
    labels = np.array([1, 4, 7], np.int32)
    images = next(iter(data.test))["images"].numpy()[:3]
    cond = {"labels": _feed(labels, "int32")} if model.conditional else {}
    calls = {"serving_default": {"z": _feed(z, "float32"), **cond}}
    if name.endswith("vae"):
        calls["encode"] = {"images": _feed(images, "float32"), **cond}
        calls["reconstruct"] = {"images": _feed(images, "float32"), **cond}
        calls["decode"] = calls["serving_default"]
    (tmp_path / "in.json").write_text(json.dumps(calls))
    result = run_python(SERVE, str(path), str(tmp_path / "in.json"), str(tmp_path / "out.json"))
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads((tmp_path / "out.json").read_text())

    # (`import tensorflow` itself imports keras in TF 2.21; our code is not needed.)
    assert out["_modules"] == [], "serving must not need aigc_tf"
    y = labels if model.conditional else None
    expected = model.generate(z=z, labels=y).numpy()
    got = np.array(out["serving_default"]["images"], np.float32)
    np.testing.assert_allclose(got, expected, atol=1e-6)
    if name == "cgan":
        live = model.generator([z, labels], training=False).numpy()
        assert np.abs(live - expected).max() > 1e-5, "the export serves the live generator, not the average"
    pixels = np.array(out["serving_default"]["pixels"])
    unit = (expected + 1) / 2 if model.value_range == "tanh" else expected
    np.testing.assert_array_equal(pixels, np.round(np.clip(unit, 0, 1) * 255).astype(np.uint8))
    if name.endswith("vae"):
        assert out["_signatures"] == ["decode", "encode", "reconstruct", "serving_default"]
        mean, log_var = model.encode(images, y)
        np.testing.assert_allclose(np.array(out["encode"]["mean"]), mean.numpy(), atol=1e-5)
        np.testing.assert_allclose(np.array(out["encode"]["log_var"]), log_var.numpy(), atol=1e-5)
        np.testing.assert_allclose(np.array(out["reconstruct"]["images"]), model.reconstruct(images, y).numpy(), atol=1e-5)
    else:
        assert out["_signatures"] == ["serving_default"]


def test_signatures_have_named_inputs_and_predict_method(tmp_path):
    cfg = tiny_config("cgan")
    data = training.load_data(cfg)
    model = training.build_model(cfg, data)
    path = export.export_model(model, tmp_path, "cgan", version=7)
    result = run_python(
        "import sys; from tensorflow.python.tools import saved_model_cli as c; "
        "sys.argv = ['saved_model_cli', 'show', '--all', '--dir', sys.argv[1]]; c.main()",
        str(path),
    )
    text = result.stdout
    assert "signature_def['serving_default']" in text
    assert "inputs['z']" in text and "inputs['labels']" in text
    assert "outputs['images']" in text and "outputs['pixels']" in text
    assert "Method name is: tensorflow/serving/predict" in text
    assert "args_0" not in text


def test_existing_version_is_never_overwritten(tmp_path):
    cfg = tiny_config("conv_vae")
    data = training.load_data(cfg)
    model = training.build_model(cfg, data)
    first = export.export_model(model, tmp_path, "vae")
    stamp = (first / "saved_model.pb").stat().st_mtime_ns
    with pytest.raises(RunDirError, match="already exists.*omit --version to use 2"):
        export.export_model(model, tmp_path, "vae", version=1)
    assert (first / "saved_model.pb").stat().st_mtime_ns == stamp
    assert export.export_model(model, tmp_path, "vae").name == "2"
    assert not list((tmp_path / "vae").glob(".tmp-*"))
