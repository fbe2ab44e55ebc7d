"""Text runs end to end: train -> sample -> export -> evaluate, through the CLI and library."""

import json

import numpy as np
import pytest

from aigc_tf import cli, training
from aigc_tf.config import from_dict
from tests.helpers import CONFIGS, run_python

TINY = {
    "lstm_lm": {"units": 32, "embed_dim": 16},
    "gpt": {"context_length": 32, "num_layers": 1, "num_heads": 2, "embed_dim": 16},
    "seq2seq": {"units": 32, "embed_dim": 16},
    "text_vae": {"units": 32, "embed_dim": 16, "latent_dim": 4, "kl_anneal_steps": 10},
}


def text_config(name, **data):
    raw = {
        "seed": 2,
        "model": {"name": name, **TINY[name]},
        "data": {"name": "embedded", "tokenizer": "char", "seq_len": 32, "batch_size": 16, "max_examples": 40, **data},
        "train": {"epochs": 1, "verbose": 0, "num_samples": 2, "sample_max_new_tokens": 20},
    }
    return from_dict(raw, "test")


@pytest.fixture(scope="module")
def gpt_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("runs") / "gpt"
    training.train(text_config("gpt"), run_dir)
    return run_dir


def _sample(run_dir, capsys, *extra):
    code = cli.main(["sample", str(run_dir), "--prompt", "The object", "--max-new-tokens", "16", *extra])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize("name", ["lstm_lm", "seq2seq", "text_vae"])
def test_every_text_model_trains_and_samples_into_a_run_dir(name, tmp_path, capsys):
    run_dir = tmp_path / name
    data = {"tokenizer": "word", "vocab_size": 500} if name == "text_vae" else {}
    training.train(text_config(name, **data), run_dir)
    history = json.loads((run_dir / "history.json").read_text())
    assert np.isfinite(history["loss"][0]) and "val_perplexity" in history
    assert (run_dir / "samples" / "epoch_0001.txt").read_text().count("--- sample") == 2
    code, out, _ = _sample(run_dir, capsys, "-n", "2", "--seed", "4")
    assert code == 0 and out.count("--- sample") == 2 and "(seed 5)" in out
    if name == "seq2seq":
        from aigc_tf.evaluate import evaluate_run

        result = evaluate_run(run_dir, n_samples=2)
        assert result["ngram_order"] == 5 and np.isfinite(result["ngram_val_perplexity"])
        assert result["beats_ngram"] == (result["val_perplexity"] < result["ngram_val_perplexity"])
        _check_tuned_baseline(result, result["val_perplexity"])


def test_gpt_run_cli_sample_is_reproducible_and_seeded(gpt_run, capsys):
    code, first, _ = _sample(gpt_run, capsys, "-n", "2", "--seed", "3", "--temperature", "0.9", "--top-p", "0.9")
    assert code == 0 and first.startswith("--- sample 1 (seed 3)\nThe object")
    assert _sample(gpt_run, capsys, "-n", "2", "--seed", "3", "--temperature", "0.9", "--top-p", "0.9")[1] == first
    assert _sample(gpt_run, capsys, "-n", "2", "--seed", "9", "--temperature", "0.9", "--top-p", "0.9")[1] != first
    # Sample i uses seed + i: the second sample of seed 3 is the first of seed 4.
    single = _sample(gpt_run, capsys, "-n", "1", "--seed", "4", "--temperature", "0.9", "--top-p", "0.9")[1]
    assert first.split("\n")[3] == single.split("\n")[1]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--prompt", "x" * 60, "--max-new-tokens", "10"], "the prompt has 60 tokens"),
        (["--prompt", "The ", "--max-new-tokens", "29"],
         "--max-new-tokens 29 does not fit: the context of 32 tokens leaves room for 28 new tokens after the "
         "4-token prompt; pass --max-new-tokens 28 or less"),
        (["--prompt", "The ", "--beam", "2", "--max-new-tokens", "40"], "leaves room for 28 new tokens"),
        (["--prompt", "   "], "--prompt is empty"),
        (["--prompt", "a", "--temperature", "-1"], "--temperature must be >= 0"),
        (["--prompt", "a", "--top-p", "1.5"], "--top-p must be in (0, 1]"),
        (["--prompt", "a", "--interpolate", "b"], "--interpolate needs a text_vae run"),
        (["--prompt", "a", "--stop", "é"], "outside the model's vocabulary, so it can never be generated"),
        (["--prompt", "a", "--stop", ""], "--stop is empty"),
    ],
)
def test_sample_errors_are_one_line_and_exit_2(gpt_run, capsys, args, message):
    assert cli.main(["sample", str(gpt_run), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_sample_stop_ends_each_sample_where_it_spells_the_stop_text(gpt_run, capsys):
    def continuations(out):
        return [block.split("\n", 1)[1].rstrip("\n")[len("The object"):] for block in out.split("--- sample ")[1:]]

    free = continuations(_sample(gpt_run, capsys, "-n", "4", "--seed", "1")[1])
    code, out, _ = _sample(gpt_run, capsys, "-n", "4", "--seed", "1", "--stop", "e")
    stopped = continuations(out)
    assert code == 0 and len(stopped) == 4
    assert stopped == [text.split("e")[0] for text in free]
    assert any("e" in text for text in free)
    code, out, _ = _sample(gpt_run, capsys, "--beam", "2", "--stop", "e")
    assert code == 0 and "e" not in out.splitlines()[1][len("The object"):]


def test_sample_without_max_new_tokens_fills_what_the_context_leaves(gpt_run, capsys):
    assert cli.main(["sample", str(gpt_run), "--prompt", "The ", "--temperature", "0"]) == 0
    text = capsys.readouterr().out.splitlines()[1]
    assert text.startswith("The ") and len(text) == 4 + 28  # context 32, char tokens
    assert cli.main(["sample", str(gpt_run), "--prompt", "The ", "--temperature", "0", "--max-new-tokens", "28"]) == 0
    assert capsys.readouterr().out.splitlines()[1] == text
    assert cli.main(["sample", str(gpt_run)]) == 0  # the run's own prompt, the default length


def test_sample_max_new_tokens_that_does_not_fit_is_refused_before_training(tmp_path):
    from aigc_tf.errors import ConfigError

    cfg = text_config("gpt")
    cfg.train.sample_max_new_tokens = 200
    with pytest.raises(ConfigError, match=r"train.sample_max_new_tokens=200 does not fit: the context of 32 tokens "
                                          r"leaves room for 28 .* pass train.sample_max_new_tokens=28 or less"):
        training.train(cfg, tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_export_serves_strings_and_matches_cli_sample(gpt_run, tmp_path, capsys):
    assert cli.main(["export", str(gpt_run), "--out", str(tmp_path / "serving")]) == 0
    capsys.readouterr()
    code, out, _ = _sample(gpt_run, capsys, "-n", "3", "--seed", "11", "--temperature", "0.8", "--top-k", "5")
    expected = [block.split("\n", 1)[1][len("The object") :] for block in out.strip().split("--- sample ")[1:]]
    expected = [e.rstrip("\n") for e in expected]
    code = f"""
import json, sys, tensorflow as tf
m = tf.saved_model.load({str(tmp_path / "serving" / "gpt" / "1")!r})
f = m.signatures["serving_default"]
out = f(prompts=tf.constant(["The object"] * 3), max_new_tokens=tf.constant([16] * 3),
        temperature=tf.constant([0.8] * 3), top_k=tf.constant([5] * 3), top_p=tf.constant([1.0] * 3),
        seed=tf.constant([11, 12, 13]))
print(json.dumps({{"texts": [t.decode() for t in out["texts"].numpy()], "aigc": "aigc_tf" in sys.modules,
                  "outputs": sorted(out)}}))
"""
    result = run_python(code)
    assert result.returncode == 0, result.stderr[-2000:]
    served = json.loads(result.stdout.strip().splitlines()[-1])
    assert served["texts"] == expected
    assert not served["aigc"] and served["outputs"] == ["texts", "token_ids"]


def test_text_vae_exports_encode_and_decode(tmp_path):
    run_dir = tmp_path / "vae"
    training.train(text_config("text_vae", tokenizer="word", vocab_size=300), run_dir)
    from aigc_tf import export

    model = training.load_model(training.final_model_path(run_dir))
    path = export.export_model(model, tmp_path / "serving", "vae")
    code = f"""
import json, tensorflow as tf
m = tf.saved_model.load({str(path)!r})
enc = m.signatures["encode"](texts=tf.constant(["the object is", ""]))
n = lambda v, d: tf.constant([v] * 2, d)
dec = m.signatures["decode"](z=enc["mean"], max_new_tokens=n(5, tf.int32), temperature=n(0.0, tf.float32),
                             top_k=n(0, tf.int32), top_p=n(1.0, tf.float32), seed=n(0, tf.int32))
print(json.dumps({{"mean": enc["mean"].numpy().tolist(), "texts": [t.decode() for t in dec["texts"].numpy()],
                  "sigs": sorted(m.signatures)}}))
"""
    result = run_python(code)
    assert result.returncode == 0, result.stderr[-2000:]
    served = json.loads(result.stdout.strip().splitlines()[-1])
    assert served["sigs"] == ["decode", "encode", "serving_default"]
    mean = model.encode_text(["the object is", ""])["mean"].numpy()
    np.testing.assert_allclose(served["mean"], mean, atol=1e-5)
    ones = np.ones(2)
    local = model.decode_text(mean, (5 * ones).astype("int32"), 0 * ones.astype("float32"),
                              (0 * ones).astype("int32"), ones.astype("float32"), (0 * ones).astype("int32"))
    assert served["texts"] == [t.decode() for t in local["texts"].numpy()]


def _check_tuned_baseline(result, ours):
    """The tuned modified Kneser-Ney row: the best of orders 1..10, and a verdict that matches the numbers."""
    by_order = {int(k): v for k, v in result["tuned_ngram_perplexity_by_order"].items()}
    assert sorted(by_order) == list(range(1, 11))
    assert result["tuned_ngram_order"] == min(by_order, key=by_order.get)
    assert result["tuned_ngram_val_perplexity"] == min(by_order.values())
    assert result["beats_tuned_ngram"] == (ours < result["tuned_ngram_val_perplexity"])
    assert result["vs_tuned_ngram"] == pytest.approx(ours / result["tuned_ngram_val_perplexity"] - 1)
    verdict = "beats" if result["beats_tuned_ngram"] else "loses to"
    assert result["baselines"].startswith(f"{verdict} the tuned {result['tuned_ngram_order']}-gram modified Kneser-Ney")
    assert f"{abs(result['vs_tuned_ngram']):.1%}" in result["baselines"]


def test_evaluate_reports_perplexities_ngram_baseline_and_distinct(gpt_run):
    from aigc_tf.evaluate import evaluate_run
    from aigc_tf.tasks.text import lm_perplexity

    result = evaluate_run(gpt_run, n_samples=4, seed=0)
    for key in ("val_perplexity", "val_perplexity_sliding", "ngram_val_perplexity", "distinct_1", "distinct_2"):
        assert np.isfinite(result[key]), key
    assert 0 < result["distinct_1"] <= 1 and 0 <= result["distinct_2"] <= 1
    assert result["ngram_order"] == 5 and isinstance(result["beats_ngram"], bool)
    _check_tuned_baseline(result, result["val_perplexity_sliding"])
    assert evaluate_run(gpt_run, n_samples=4, seed=0) == result
    # Sliding windows with stride == window are the disjoint training windows.
    model = training.load_model(training.final_model_path(gpt_run))
    data = training.load_data(training.load_run_config(gpt_run), vocabulary=model.vocabulary)
    n = (len(data.test_ids) - 1) // 32 * 32 + 1
    disjoint = lm_perplexity(model, data.test_ids[:n], 32, stride=32)
    keras_windows = model.evaluate(data.test, verbose=0, return_dict=True)["perplexity"]
    assert np.isclose(disjoint, keras_windows, rtol=1e-4)


def test_evaluate_says_when_it_scored_a_checkpoint_of_an_unfinished_run(gpt_run, tmp_path, capsys):
    import shutil

    capsys.readouterr()
    assert cli.main(["evaluate", str(gpt_run), "-n", "2", "--out", str(tmp_path / "done.json")]) == 0
    assert "no model.keras" not in capsys.readouterr().err
    assert json.loads((tmp_path / "done.json").read_text())["scored_model"] == "model.keras"

    unfinished = tmp_path / "unfinished"
    shutil.copytree(gpt_run, unfinished)
    (unfinished / "model.keras").unlink()  # as while `aigc-tf train` is still running
    assert cli.main(["evaluate", str(unfinished), "-n", "2"]) == 0
    err = capsys.readouterr().err
    assert "no model.keras" in err and "checkpoints/last.keras" in err
    assert json.loads((unfinished / "metrics.json").read_text())["scored_model"] == "checkpoints/last.keras"


def test_text_vae_evaluate_reports_elbo_and_active_units(tmp_path):
    from aigc_tf.evaluate import evaluate_run

    run_dir = tmp_path / "vae"
    training.train(text_config("text_vae", tokenizer="word", vocab_size=300), run_dir)
    result = evaluate_run(run_dir, n_samples=3)
    assert result["val_elbo"] == -result["val_loss"] and result["val_kl"] >= 0
    assert 0 <= result["active_units"] <= result["latent_dim"] == 4


def test_text_config_errors(tmp_path, capsys):
    bad = [
        ("data.tokenizer=bpe", "data.tokenizer must be one of char, word"),
        ("data.name=digits", "is a text model but data.name='digits'"),
        ("model.context_length=16", "data.seq_len=64 is longer than model.context_length=16"),
    ]
    for override, message in bad:
        code = cli.main(["train", str(CONFIGS / "gpt_embedded.yaml"), "--set", override, "--run-dir", str(tmp_path / "r")])
        assert code == 2
        assert message in capsys.readouterr().err
    code = cli.main(["train", str(CONFIGS / "text_vae_embedded.yaml"), "--set", "data.random_windows=true",
                     "--run-dir", str(tmp_path / "r")])
    assert code == 2 and "data.random_windows applies to language models and seq2seq" in capsys.readouterr().err
    empty = tmp_path / "empty.txt"
    empty.write_text("  \n\n ")
    code = cli.main(["train", str(CONFIGS / "lstm_lm_embedded.yaml"), "--set", "data.name=text",
                     "--set", f"data.path={empty}", "--run-dir", str(tmp_path / "r2")])
    assert code == 2 and "empty" in capsys.readouterr().err
    # A run directory created by the failed command is removed again, so the fixed command can use it.
    assert not (tmp_path / "r").exists() and not (tmp_path / "r2").exists()


def test_shipped_text_configs_validate():
    from aigc_tf.config import load_config

    for path in sorted(CONFIGS.glob("*_embedded.yaml")) + sorted(CONFIGS.glob("*_imdb.yaml")):
        cfg = load_config(path)
        assert cfg.data.name in ("embedded", "imdb_reviews")


def test_imdb_config_trains_under_tfds_mock_data(tmp_path):
    """The shipped IMDb config, shrunk, runs end to end on tfds's offline mock of imdb_reviews."""
    import tensorflow_datasets as tfds

    from aigc_tf.config import load_config

    cfg = load_config(
        CONFIGS / "seq2seq_imdb.yaml",
        ["model.units=16", "model.embed_dim=8", "data.seq_len=8", "train.epochs=1", "train.verbose=0",
         "train.num_samples=1", "train.sample_max_new_tokens=5", "data.max_examples=16"],
    )
    with tfds.testing.mock_data(num_examples=16):
        training.train(cfg, tmp_path / "run")
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert np.isfinite(history["loss"][0]) and np.isfinite(history["val_loss"][0])


def test_cosine_runs_refuse_a_longer_resume_and_bad_sample_prompts(tmp_path):
    from aigc_tf.errors import ConfigError, RunDirError

    cfg = text_config("lstm_lm")
    cfg.train.lr_schedule, cfg.train.warmup_steps = "cosine", 2
    training.train(cfg, tmp_path / "run")
    cfg.train.epochs = 2
    with pytest.raises(RunDirError, match="cosine learning rate laid out over train.epochs=1"):
        training.train(cfg, tmp_path / "run", resume=True)
    gpt = text_config("gpt")
    gpt.train.sample_prompt = "x" * 32  # fills the 32-token context
    with pytest.raises(ConfigError, match="train.sample_prompt has 32 tokens and fills the context"):
        training.train(gpt, tmp_path / "gpt")
    learned = text_config("gpt")
    learned.model["context_length"] = 128
    with pytest.raises(ConfigError, match="learned positions"):
        training.train(learned, tmp_path / "gpt2")
