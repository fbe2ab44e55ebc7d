"""Audio runs end to end on the embedded spoken_digits (40 voices, 4 kHz, 1,024 samples): train, WAV and
spectrogram samples, `aigc-tf sample` (same seed, same bytes; --label), evaluate with its baselines, and a
SavedModel that returns in a fresh process exactly what `aigc-tf sample` writes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from aigc_tf import cli
from aigc_tf.audio.outputs import read_wav
from aigc_tf.config import from_dict
from tests.helpers import TINY_AUDIO_DATA, TINY_MODEL, run_python


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """``trained(name)``: a 2-epoch run of a tiny ``name``, made once (the audio classifier is cached)."""
    from aigc_tf import training

    runs = {}

    def get(name):
        if name not in runs:
            cfg = from_dict({
                "seed": 3,
                "model": {"name": name, **TINY_MODEL[name]},
                "data": dict(TINY_AUDIO_DATA),
                "train": {"epochs": 2, "verbose": 0, "num_samples": 4, "quality_every": 2, "quality_samples": 40,
                          "learning_rate": 1e-3, "beta_2": 0.9},
            }, "test")
            runs[name] = tmp_path_factory.mktemp(name) / "run"
            training.train(cfg, runs[name])
        return runs[name]

    return get


@pytest.mark.parametrize("name, metric", [("cwavegan", "fd"), ("wave_vae", "test_elbo")])
def test_a_run_writes_wavs_spectrograms_and_its_quality_metric(trained, name, metric):
    run = trained(name)
    history = json.loads((run / "history.json").read_text())
    assert np.isfinite(history[metric][-1]) and history[f"{metric}_epochs"] == [2]
    wavs = sorted((run / "samples" / "epoch_0002").glob("*.wav"))
    assert len(wavs) == 4 and (run / "samples" / "epoch_0002.png").stat().st_size > 1000
    samples, rate = read_wav(wavs[0])
    assert rate == 4000 and samples.shape == (1024,) and samples.dtype == np.int16
    if name == "cwavegan":
        assert [w.name for w in wavs] == ["000_zero.wav", "001_one.wav", "002_two.wav", "003_three.wav"]
    assert list((run / "logs" / "audio").glob("events.out.tfevents.*"))


def test_sample_same_seed_same_bytes_and_label(trained, tmp_path):
    run = trained("cwavegan")
    for out in ("a", "b"):
        assert cli.main(["sample", str(run), "-n", "3", "--seed", "5", "--label", "seven", "--out",
                         str(tmp_path / out)]) == 0
    a, b = sorted((tmp_path / "a").glob("*.wav")), sorted((tmp_path / "b").glob("*.wav"))
    assert [p.name for p in a] == ["000_seven.wav", "001_seven.wav", "002_seven.wav"]
    assert [p.read_bytes() for p in a] == [p.read_bytes() for p in b]
    assert (tmp_path / "a" / "spectrograms.png").exists()
    # Nothing is overwritten; a bad label names the classes.
    assert cli.main(["sample", str(run), "-n", "3", "--out", str(tmp_path / "a")]) == 2
    assert cli.main(["sample", str(run), "--label", "eleven", "--out", str(tmp_path / "c")]) == 2
    assert cli.main(["sample", str(run), "--out", str(tmp_path / "x.wav")]) == 2


def test_label_on_an_unconditional_run_is_refused(trained, tmp_path, capsys):
    assert cli.main(["sample", str(trained("wave_vae")), "--label", "3", "--out", str(tmp_path / "o")]) == 2
    assert "needs a conditional model" in capsys.readouterr().err


def test_evaluate_reports_metrics_beside_real_and_noise_baselines(trained, tmp_path):
    out = tmp_path / "m.json"
    assert cli.main(["evaluate", str(trained("wave_vae")), "--out", str(out)]) == 0
    m = json.loads(out.read_text())
    assert m["classifier_accuracy"] > 0.3  # 10 classes: chance is 0.1
    # Real against real is far nearer than noise against real on the classifier's features.
    assert m["fd_real_vs_real"] < 0.5 * m["fd_noise"]
    assert m["kid_real_vs_real"] < m["kid_noise"]
    assert m["inception_score_real"] > m["inception_score_noise"]
    assert m["test_elbo"] == pytest.approx(-(m["test_reconstruction"] + m["test_kl"]))
    assert m["test_clips"] == 80 and "Gaussian" in m["likelihood"]


@pytest.mark.parametrize("name", ["cwavegan", "cwave_vae"])
def test_export_returns_what_sample_writes(trained, name, tmp_path):
    run = trained(name)
    out = tmp_path / "wavs"
    assert cli.main(["sample", str(run), "-n", "4", "--seed", "9", "--out", str(out)]) == 0
    assert cli.main(["export", str(run), "--out", str(tmp_path / "export")]) == 0
    import keras

    import aigc_tf

    model = aigc_tf.load_model(run / "model.keras")
    np.save(tmp_path / "z.npy", keras.ops.convert_to_numpy(model.sample_latent(4, seed=9)))
    code = f"""
import json, numpy as np, tensorflow as tf
serve = tf.saved_model.load({str(tmp_path / "export" / "run" / "1")!r})
sig = serve.signatures["serving_default"]
out = sig(z=tf.constant(np.load({str(tmp_path / "z.npy")!r})), labels=tf.constant([0, 1, 2, 3], tf.int32))
np.save({str(tmp_path / "pcm.npy")!r}, out["pcm16"].numpy())
print(json.dumps({{"signatures": sorted(serve.signatures), "rate": out["sample_rate"].numpy().tolist(),
                  "dtype": str(out["pcm16"].dtype.name), "max": float(np.abs(out["waveforms"].numpy()).max())}}))
"""
    result = run_python(code)
    assert result.returncode == 0, result.stderr[-2000:]
    info = json.loads(result.stdout.strip().splitlines()[-1])
    assert info["rate"] == [4000] * 4 and info["dtype"] == "int16" and info["max"] <= 1.0
    expected = ["decode", "encode", "reconstruct", "serving_default"] if name == "cwave_vae" else ["serving_default"]
    assert info["signatures"] == expected
    pcm = np.load(tmp_path / "pcm.npy")
    for i, path in enumerate(sorted(out.glob("*.wav"))):
        np.testing.assert_array_equal(read_wav(path)[0], pcm[i])
