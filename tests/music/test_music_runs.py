"""Music runs end to end on a few bundled chorales: per-epoch MIDI / WAV / piano rolls, `aigc-tf sample`
(same seed, same bytes; --primer, --steps, --bars; the errors), evaluate beside the baselines, and a
SavedModel that returns in a fresh TensorFlow-only process exactly what `aigc-tf sample` writes."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest

from aigc_tf import cli
from aigc_tf.config import from_dict
from aigc_tf.errors import UserError
from aigc_tf.music import midi
from aigc_tf.music.notes import make_notes
from tests.helpers import TINY_MODEL, TINY_MUSIC_DATA, run_python

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """``trained(name)``: a one-epoch run of a tiny ``name`` on 8 chorales, made once."""
    from aigc_tf import training

    runs = {}

    def get(name):
        if name not in runs:
            cfg = from_dict({
                "seed": 3,
                "model": {"name": name, **TINY_MODEL[name]},
                "data": dict(TINY_MUSIC_DATA),
                "train": {"epochs": 1, "verbose": 0, "num_samples": 2, "quality_every": 1, "quality_samples": 4,
                          "learning_rate": 2e-3, "beta_1": 0.9},
            }, "test")
            runs[name] = tmp_path_factory.mktemp(name) / "run"
            training.train(cfg, runs[name])
        return runs[name]

    return get


@pytest.fixture(scope="module")
def primer(tmp_path_factory):
    path = tmp_path_factory.mktemp("primer") / "primer.mid"
    midi.write_midi(make_notes([60, 64, 67, 72], [0.0, 0.5, 1.0, 1.5], [0.5, 1.0, 1.5, 2.0]), path)
    return path


@pytest.mark.parametrize("name, metric", [("music_transformer", "overlap"), ("chorale_nade", "test_nll")])
def test_a_run_writes_midi_wav_piano_rolls_and_its_quality_metric(trained, name, metric):
    run = trained(name)
    history = json.loads((run / "history.json").read_text())
    assert np.isfinite(history[metric][-1]) and history[f"{metric}_epochs"] == [1]
    folder = run / "samples" / "epoch_0001"
    assert sorted(p.name for p in folder.iterdir()) == ["000.mid", "000.wav", "001.mid", "001.wav"]
    assert (run / "samples" / "epoch_0001.png").stat().st_size > 1000
    assert (folder / "000.wav").read_bytes()[:4] == b"RIFF"
    midi.read_midi(folder / "000.mid")  # a readable MIDI file with notes


def test_sample_is_seeded_continues_the_primer_and_refuses_bad_requests(trained, primer, tmp_path, capsys):
    run = trained("music_transformer")
    for out, wav in (("a", []), ("b", ["--no-wav"])):
        assert cli.main(["sample", str(run), "-n", "2", "--seed", "5", "--primer", str(primer), "--steps", "30",
                         *wav, "--out", str(tmp_path / out)]) == 0
    a = sorted((tmp_path / "a").glob("*.mid"))
    assert [p.name for p in a] == ["000.mid", "001.mid"] and (tmp_path / "a" / "piano_rolls.png").exists()
    assert [p.name for p in sorted((tmp_path / "a").glob("*.wav"))] == ["000.wav", "001.wav"]
    assert [p.read_bytes() for p in a] == [(tmp_path / "b" / p.name).read_bytes() for p in a]
    from aigc_tf import training
    from aigc_tf.music.task import MusicLMTask

    model = training.load_model(run / "model.keras")
    tokens = MusicLMTask().generate_raw(model, None, 2, 30, seed=5)["tokens"]
    assert (tokens[0] != tokens[1]).any()  # sample i uses seed + i
    notes = midi.read_midi(a[0])[0].notes
    assert notes["pitch"][:4].tolist() == [60, 64, 67, 72] and notes["start"][:4].tolist() == [0, 0.5, 1.0, 1.5]
    # --bars cuts at the last bar line (8 beats of 4/4 after the primer's end).
    assert cli.main(["sample", str(run), "--bars", "2", "--primer", str(primer), "--no-wav",
                     "--out", str(tmp_path / "c")]) == 0
    cut = midi.read_midi(tmp_path / "c" / "000.mid")[0].notes
    assert cut["end"].max() <= 2.0 + 8 * 0.5 and not list((tmp_path / "c").glob("*.wav"))
    capsys.readouterr()
    # A primer plus steps beyond the context (64 tokens) is refused naming what fits, as for text prompts.
    assert cli.main(["sample", str(run), "--primer", str(primer), "--steps", "64", "--out", str(tmp_path / "d")]) == 2
    assert "does not fit: the context of 64 tokens" in capsys.readouterr().err
    assert cli.main(["sample", str(run), "-n", "2", "--out", str(tmp_path / "a")]) == 2  # nothing overwritten
    assert cli.main(["sample", str(run), "--out", str(tmp_path / "x.mid")]) == 2
    (tmp_path / "bad.mid").write_bytes(b"not midi")
    assert cli.main(["sample", str(run), "--primer", str(tmp_path / "bad.mid"), "--out", str(tmp_path / "e")]) == 2
    assert "bad.mid is not a readable MIDI file" in capsys.readouterr().err
    assert cli.main(["sample", str(run), "--prompt", "The", "--out", str(tmp_path / "f")]) == 2
    assert "--prompt is for text runs" in capsys.readouterr().err


def test_a_gan_refuses_a_primer():
    from aigc_tf.music.task import MusicGANTask

    args = argparse.Namespace(primer="x.mid", temperature=1.0, top_k=0, top_p=1.0, seed=None, n=1, out=None)
    with pytest.raises(UserError, match="--primer needs a sequence model"):
        MusicGANTask().check_sample_arguments(args, from_dict({"model": {"name": "musegan"},
                                                               "data": {"name": "chorales"}}, "t"), None)


def test_evaluate_reports_the_nll_beside_its_baseline_and_the_statistics(trained, tmp_path):
    out = tmp_path / "m.json"
    assert cli.main(["evaluate", str(trained("chorale_nade")), "--out", str(out)]) == 0
    m = json.loads(out.read_text())
    assert m["nll_unit"].startswith("nats per frame") and m["test_split"] == "test" and m["test_pieces"] == 4
    assert np.isfinite(m["test_nll"]) and np.isfinite(m["baseline_test_nll"])
    assert m["beats_baseline"] == (m["test_nll"] < m["baseline_test_nll"])
    assert 0 <= m["mean_oa"] <= 1 and 0 <= m["mean_oa_real"] <= 1 and m["statistics_reference"] == 2


def test_exports_return_what_sample_writes_in_a_fresh_process(trained, primer, tmp_path):
    """The Transformer's and the chorale model's SavedModels give, in one fresh TensorFlow-only process,
    exactly the notes `aigc-tf sample` writes for the same primer and seeds; the GAN's maps z to the
    piano rolls of `generate`."""
    from aigc_tf import export, registry

    names = ["music_transformer", "chorale_nade"]
    written = {}
    for name in names:
        run, out = trained(name), tmp_path / name
        assert cli.main(["sample", str(run), "-n", "2", "--seed", "9", "--primer", str(primer), "--steps", "12",
                         "--no-wav", "--out", str(out)]) == 0
        assert cli.main(["export", str(run), "--out", str(tmp_path / "export"), "--name", name]) == 0
        written[name] = [midi.read_midi(path)[0].notes for path in sorted(out.glob("*.mid"))]
    gan = registry.build_model({"name": "musegan", **TINY_MODEL["musegan"]}, 0)
    gan.compile()
    export.export_model(gan, tmp_path / "export", "gan")
    z = np.asarray(gan.sample_latent(3, seed=4))
    np.save(tmp_path / "z.npy", z)
    code = f"""
import json, numpy as np, tensorflow as tf
root = {str(tmp_path / "export")!r}
inputs = dict(pitch=tf.constant([[60, 64, 67, 72]] * 2), start=tf.constant([[0.0, 0.5, 1.0, 1.5]] * 2),
              end=tf.constant([[0.5, 1.0, 1.5, 2.0]] * 2), velocity=tf.constant([[80] * 4] * 2),
              num_notes=tf.constant([4, 4]), steps=tf.constant([12, 12]), temperature=tf.constant([1.0, 1.0]),
              top_k=tf.constant([0, 0]), top_p=tf.constant([1.0, 1.0]), seed=tf.constant([9, 10]))
result = {{}}
for name in {names!r}:
    sig = tf.saved_model.load(root + "/" + name + "/1").signatures["serving_default"]
    keys = sorted(sig.structured_input_signature[1])
    out = sig(**{{k: v for k, v in inputs.items() if k in keys}})
    n = out["num_notes"].numpy()
    result[name] = {{"inputs": keys, "notes": [[out[k].numpy()[i, : n[i]].tolist() for k in ("pitch", "start", "end")]
                                            for i in range(2)]}}
gan = tf.saved_model.load(root + "/gan/1").signatures["serving_default"]
out = gan(z=tf.constant(np.load({str(tmp_path / "z.npy")!r})))
np.save({str(tmp_path / "rolls.npy")!r}, out["rolls"].numpy())
np.save({str(tmp_path / "notes_on.npy")!r}, out["notes_on"].numpy())
print(json.dumps(result))
"""
    result = run_python(code)
    assert result.returncode == 0, result.stderr[-2000:]
    served = json.loads(result.stdout.strip().splitlines()[-1])
    for name in names:
        controls = ["seed", "temperature"] + (["top_k", "top_p"] if name == "music_transformer" else [])
        assert served[name]["inputs"] == sorted(["pitch", "start", "end", "velocity", "num_notes", "steps", *controls])
        assert len(written[name]) == 2
        for notes, (pitch, start, end) in zip(written[name], served[name]["notes"], strict=True):
            assert [notes["pitch"].tolist(), notes["start"].tolist(), notes["end"].tolist()] == [pitch, start, end]
    rolls, expected = np.load(tmp_path / "rolls.npy"), gan.generate(z=z).numpy()
    assert rolls.shape == (3, *gan.roll_shape)
    np.testing.assert_allclose(rolls, expected, atol=1e-6)
    np.testing.assert_array_equal(np.load(tmp_path / "notes_on.npy"), expected > 0)


@pytest.mark.parametrize("name, vocab", [("music_transformer", [291]), ("melody_lstm", [132]),
                                         ("note_lstm", [128, 17, 16])])
def test_an_untrained_model_scores_near_a_uniform_guess_beside_its_baseline(name, vocab):
    """Small initial weights give near-uniform softmaxes: the held-out NLL is close to ln V
    (per token, step, or the three fields of a note), computed through each family's evaluate path."""
    from aigc_tf import registry
    from tests.helpers import tiny_model_config

    cfg = tiny_model_config(name)
    task = registry.task_for(name)
    data = task.load_data(cfg)
    model = task.build_model(cfg, data)
    result = task.likelihood(cfg, model, data)
    assert result["test_nll"] == pytest.approx(sum(np.log(vocab)), abs=0.15)
    assert result["baseline_test_nll"] < result["test_nll"] and result["beats_baseline"] is False
    assert result["baseline"].startswith("modified Kneser-Ney") and 1 <= result["baseline_order"] <= 10


def test_gan_evaluate_reports_musegan_metrics_for_samples_and_data(tmp_path):
    from aigc_tf import registry
    from tests.helpers import tiny_model_config

    cfg = tiny_model_config("musegan")
    task = registry.task_for("musegan")
    model = task.build_model(cfg, task.load_data(cfg))
    m = task.evaluate(tmp_path, cfg, model, 4, 0)
    for key in ("empty_bars", "used_pitch_classes", "qualified_notes"):
        assert len(m[f"{key}_generated"]) == len(m[f"{key}_real"]) == 4  # one value per voice
    assert all(0 <= v <= 1 for v in m["empty_bars_real"] + m["qualified_notes_generated"])
    assert m["musegan_real_phrases"] > 0 and 0 <= m["mean_oa"] <= 1
