"""GPT-2 through KerasHub: a tiny GPT-2 with random weights and a vocabulary and merges
file written here, saved as a local KerasHub preset and as a Hugging Face checkpoint
folder; loading through the config, fit, cached decoding, prefill, end of text, LoRA,
save/load, export in a fresh process, and the offline-preset error. No network."""

from __future__ import annotations

import json
import time

import keras
import numpy as np
import pytest
import tensorflow as tf

from aigc_tf import cli, registry
from aigc_tf.config import from_dict
from aigc_tf.errors import ConfigError
from tests.helpers import CONFIGS, run_python

keras_hub = pytest.importorskip("keras_hub")
pytest.importorskip("tensorflow_text")

# A few merges of common English pairs (GPT-2's own spelling: "Ġ" is the byte of a space).
MERGES = ["Ġ t", "h e", "Ġt he", "Ġ a", "i n", "e r", "o n", "Ġ c", "l a", "s s", "Ġc la", "Ġcla ss", "Ġ o", "Ġ i",
          "Ġ s", "r e", "a t", "e n", "Ġ f", "o r"]
SIZES = {"num_layers": 2, "num_heads": 2, "hidden_dim": 16, "intermediate_dim": 32, "max_sequence_length": 64}
PROMPTS = ["The class", "a", "The object is in the list"]


def byte_symbols() -> list[str]:
    """GPT-2's byte -> printable character table (Radford et al.'s encoder.py), written out here."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    table, extra = {}, 0
    for b in range(256):
        if b in printable:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return [table[b] for b in range(256)]


def write_vocabulary(folder) -> dict:
    """``vocab.json`` (256 byte symbols, the merged tokens, ``<|endoftext|>`` last, as GPT-2) and ``merges.txt``."""
    vocab = {s: i for i, s in enumerate(byte_symbols())}
    for merge in MERGES:
        vocab["".join(merge.split())] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(MERGES) + "\n")
    return vocab


@pytest.fixture(scope="module")
def preset(tmp_path_factory):
    """A tiny KerasHub preset folder: random weights, the vocabulary and merges above."""
    root = tmp_path_factory.mktemp("gpt2")
    vocab = write_vocabulary(root / "files")
    tokenizer = keras_hub.models.GPT2Tokenizer(vocabulary=str(root / "files" / "vocab.json"),
                                               merges=str(root / "files" / "merges.txt"))
    keras.utils.set_random_seed(7)
    backbone = keras_hub.models.GPT2Backbone(vocabulary_size=len(vocab), dropout=0.0, **SIZES)
    backbone.save_to_preset(str(root / "preset"))
    tokenizer.save_to_preset(str(root / "preset"))
    return root / "preset"


def gpt2_config(preset, **model):
    raw = {
        "seed": 3,
        "model": {"name": "gpt2", "preset": str(preset), "dropout": 0.0, **model},
        "data": {"name": "embedded", "seq_len": 32, "batch_size": 8, "max_examples": 40},
        "train": {"epochs": 1, "verbose": 0, "num_samples": 1, "sample_max_new_tokens": 8, "learning_rate": 1e-2,
                  "beta_1": 0.9, "steps_per_epoch": 2},
    }
    return from_dict(raw, "test")


def build(preset, data=None, **model):
    """A GPT-2 from ``preset`` through the config; ``data``: reuse loaded data (and its tokenizer:
    tracing KerasHub's BPE graph takes seconds)."""
    cfg = gpt2_config(preset, **model)
    task = registry.task_for("gpt2")
    data = task.load_data(cfg) if data is None else data
    return task.build_model(cfg, data), data


@pytest.fixture(scope="module")
def built(preset):
    return build(preset)


def controls(n, temperature=0.0, max_new=6, seed0=5):
    return (tf.fill([n], max_new), tf.fill([n], float(temperature)), tf.zeros([n], tf.int32), tf.ones([n]),
            tf.range(seed0, seed0 + n, dtype=tf.int32))


def test_a_local_preset_loads_through_the_config_and_fit_lowers_the_loss(preset, built):
    model, data = built
    reference = keras_hub.models.GPT2Backbone.from_preset(str(preset))
    for ours, theirs in zip(model.backbone.weights, reference.weights, strict=True):
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    # Token ids are the preset's BPE ids + 2, checked against Hugging Face `tokenizers` (another BPE
    # implementation) on a text the merges apply to; documents are joined by <|endoftext|>.
    import tokenizers

    files = preset.parent / "files"
    hf = tokenizers.ByteLevelBPETokenizer(str(files / "vocab.json"), str(files / "merges.txt"))
    text = "The class of an object is in the list; 1234 (really) the end."
    ids, lengths = model.tokenize([text])
    assert ids.numpy()[0, : lengths.numpy()[0]].tolist() == [i + 2 for i in hf.encode(text).ids]
    assert model.end_token_id == len(byte_symbols()) + len(MERGES) + 2
    assert (data.train_ids == model.end_token_id).sum() > 0 and data.train_ids.min() >= 2
    batch = tf.data.Dataset.from_tensors(next(iter(data.train)))
    before = model.evaluate(batch, verbose=0, return_dict=True)["loss"]
    # A fresh model predicts ~uniformly over GPT-2's vocabulary (ids 0 and 1 never).
    assert abs(before - np.log(model.vocab_size - 2)) < 0.1
    trained, _ = build(preset, data)  # the fixture's model stays untrained
    trained.fit(batch.repeat(5), verbose=0)
    assert trained.evaluate(batch, verbose=0, return_dict=True)["loss"] < before - 0.1


def test_prefill_gives_the_caches_and_logits_of_token_by_token_decoding(built):
    model, _ = built
    tokens = tf.constant(np.random.default_rng(0).integers(2, model.vocab_size, (2, 12)), tf.int32)
    step, state, _, _ = model.decoder(tokens, tf.fill([2], 12), tf.fill([2], 1))
    stepped = state
    for t in range(11):
        _, stepped = step(tokens[:, t], stepped)
    prefilled = model.prefill(state, tokens[:, :11])
    assert int(prefilled[1]) == int(stepped[1]) == 11
    # float32 sums in another order (one 11-row matmul vs 11 one-row ones): a few ulps of values
    # of order 1; 1e-5 is ~100 ulps, while a wrong position or mask moves them by ~0.1.
    for a, b in zip(prefilled[0], stepped[0], strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-5)
    full = model(tokens).numpy()[:, 11]
    for s in (prefilled, stepped):
        logits, _ = step(tokens[:, 11], s)
        np.testing.assert_allclose(logits.numpy(), full, rtol=1e-5, atol=1e-5)


def test_cached_prefilled_and_uncached_decoding_give_identical_tokens(built):
    model, _ = built
    prompts = tf.constant(PROMPTS)
    ids, lengths = model.tokenize(prompts)
    assert len(set(lengths.numpy().tolist())) == 3  # ragged prompts: prefill reads the shortest, then steps
    for temperature in (0.0, 1.0):
        args = (ids, lengths, *controls(3, temperature))
        cached = model.generate_ids(*args).numpy()
        np.testing.assert_array_equal(cached, model.generate_ids(*args, prefill=False).numpy())
        np.testing.assert_array_equal(cached, model.generate_ids(*args, use_cache=False).numpy())
        assert cached.shape == (3, 6) and (cached >= 2).all()


def _eos_likely(model, boost):
    """Raise every position's <|endoftext|> logit (final LayerNorm's beta += boost * its embedding row)."""
    row = model.backbone.token_embedding.embeddings.numpy()[model.end_token_id - 2]
    beta = model.backbone.layer_norm.beta
    beta.assign(beta.numpy() + boost * row / np.dot(row, row))


def test_end_of_text_stops_a_row_and_is_not_part_of_the_text(preset, built):
    model, _ = build(preset, built[1])
    _eos_likely(model, 2.5)  # about one draw in ten is <|endoftext|>
    n, max_new = 8, 24
    ids, lengths = model.tokenize(tf.constant(["The class"] * n))
    args = (ids, lengths, *controls(n, temperature=1.0, max_new=max_new))
    stopped = model.generate_ids(*args).numpy()
    # The reference: the same draws without stopping (id 0 is never generated, so it never stops).
    free = model.generate_ids(*args, stop_ids=tf.constant([0])).numpy()
    eos = model.end_token_id
    ended = 0
    for row, ref in zip(stopped, free, strict=True):
        cut = int(np.argmax(ref == eos)) if (ref == eos).any() else max_new
        ended += cut < max_new
        np.testing.assert_array_equal(row[:cut], ref[:cut])
        assert (row[cut:] == 0).all()
    assert 0 < ended < n  # some rows ended early, others ran to max_new_tokens
    texts = model.generate_text(tf.constant(["The class"] * n), *controls(n, 1.0, max_new))["texts"].numpy()
    assert not any(b"<|endoftext|>" in t for t in texts)
    # Beam search finishes a beam at <|endoftext|> too: 0 from there.
    tokens, _ = model.beam_search_ids(ids[:1], lengths[:1], max_new, beam_width=3)
    tokens = tokens.numpy()[0]
    assert eos not in tokens and ((tokens == 0).cumsum() > 0).sum() == (tokens == 0).sum()


def test_lora_trains_only_the_adapters_and_a_loaded_model_trains_on_exactly(preset, built, tmp_path):
    model, data = build(preset, built[1], lora_rank=2)
    trainable = {v.path for v in model.trainable_variables}
    assert trainable and all("lora_kernel" in p for p in trainable)
    assert len(trainable) == 2 * 2 * SIZES["num_layers"]  # A and B of query and value, per block
    batch = tf.data.Dataset.from_tensors(next(iter(data.train)))
    before = {v.path: v.numpy().copy() for v in model.weights}
    model.fit(batch, verbose=0)
    changed = {v.path for v in model.weights if not np.array_equal(v.numpy(), before[v.path])}
    assert changed <= trainable
    # B starts at zero, so the first step moves every B (A's gradient is A-side @ B = 0 then).
    assert {p for p in trainable if p.endswith("lora_kernel_b")} <= changed
    model.fit(batch.repeat(2), verbose=0)  # now A and B are both non-zero
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    # Keras alone would load W + A @ B as the kernel and zero A and B (so LoRA could never train again).
    for a, b in zip(model.weights, loaded.weights, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)
    assert all(np.abs(v.numpy()).max() > 0 for v in loaded.trainable_variables)
    model.fit(batch, verbose=0)
    loaded.fit(batch, verbose=0)
    for a, b in zip(model.weights, loaded.weights, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)
    assert int(loaded.optimizer.iterations.numpy()) == 4


def _gpt2_forward(weights: dict, config: dict, ids: np.ndarray) -> np.ndarray:
    """GPT-2's logits in float64 numpy from a Hugging Face state dict (the reference)."""
    e, heads = config["n_embd"], config["n_head"]

    def norm(x, name):
        mean, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
        return (x - mean) / np.sqrt(var + 1e-5) * weights[f"{name}.weight"] + weights[f"{name}.bias"]

    def gelu(x):  # GPT-2's tanh approximation
        return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3)))

    t = len(ids)
    x = weights["wte.weight"][ids] + weights["wpe.weight"][:t]
    for i in range(config["n_layer"]):
        p = f"h.{i}"
        qkv = norm(x, f"{p}.ln_1") @ weights[f"{p}.attn.c_attn.weight"] + weights[f"{p}.attn.c_attn.bias"]
        q, k, v = (m.reshape(t, heads, -1).transpose(1, 0, 2) for m in np.split(qkv, 3, axis=-1))
        scores = q @ k.transpose(0, 2, 1) / np.sqrt(e // heads)
        scores = np.where(np.tril(np.ones((t, t), bool)), scores, -np.inf)
        attn = np.exp(scores - scores.max(-1, keepdims=True))
        attn /= attn.sum(-1, keepdims=True)
        y = (attn @ v).transpose(1, 0, 2).reshape(t, e)
        x = x + y @ weights[f"{p}.attn.c_proj.weight"] + weights[f"{p}.attn.c_proj.bias"]
        h = gelu(norm(x, f"{p}.ln_2") @ weights[f"{p}.mlp.c_fc.weight"] + weights[f"{p}.mlp.c_fc.bias"])
        x = x + h @ weights[f"{p}.mlp.c_proj.weight"] + weights[f"{p}.mlp.c_proj.bias"]
    return norm(x, "ln_f") @ weights["wte.weight"].T


def test_a_hugging_face_checkpoint_folder_converts_to_the_same_network(tmp_path):
    from safetensors.numpy import save_file

    folder = tmp_path / "hf_gpt2"
    vocab = write_vocabulary(folder)
    config = {"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"], "vocab_size": len(vocab), "n_layer": 2,
              "n_head": 2, "n_embd": 16, "n_positions": 64, "resid_pdrop": 0.0, "embd_pdrop": 0.0,
              "attn_pdrop": 0.0, "layer_norm_epsilon": 1e-5, "bos_token_id": len(vocab) - 1,
              "eos_token_id": len(vocab) - 1}
    (folder / "config.json").write_text(json.dumps(config))
    rng = np.random.default_rng(1)
    e = config["n_embd"]
    shapes = {"wte.weight": (len(vocab), e), "wpe.weight": (64, e), "ln_f.weight": (e,), "ln_f.bias": (e,)}
    for i in range(config["n_layer"]):
        shapes.update({f"h.{i}.ln_1.weight": (e,), f"h.{i}.ln_1.bias": (e,), f"h.{i}.ln_2.weight": (e,),
                       f"h.{i}.ln_2.bias": (e,), f"h.{i}.attn.c_attn.weight": (e, 3 * e),
                       f"h.{i}.attn.c_attn.bias": (3 * e,), f"h.{i}.attn.c_proj.weight": (e, e),
                       f"h.{i}.attn.c_proj.bias": (e,), f"h.{i}.mlp.c_fc.weight": (e, 4 * e),
                       f"h.{i}.mlp.c_fc.bias": (4 * e,), f"h.{i}.mlp.c_proj.weight": (4 * e, e),
                       f"h.{i}.mlp.c_proj.bias": (e,)})
    weights = {k: (rng.standard_normal(s) * (0.3 if len(s) == 2 else 0.1) + (1.0 if k.endswith("ln_1.weight")
               or k.endswith("ln_2.weight") or k == "ln_f.weight" else 0.0)).astype("float32")
               for k, s in shapes.items()}
    save_file(weights, str(folder / "model.safetensors"))
    model, _ = build(folder)
    assert model.backbone.num_layers == 2 and model.context_length == 64
    ids, lengths = model.tokenize(["The class of a list"])
    ours = model(ids[:, : lengths[0]]).numpy()[0, :, 2:]
    reference = _gpt2_forward({k: v.astype(np.float64) for k, v in weights.items()}, config,
                              ids.numpy()[0, : lengths.numpy()[0]] - 2)
    np.testing.assert_allclose(ours, reference, rtol=1e-4, atol=1e-4 * np.abs(reference).max())


def test_an_unavailable_preset_fails_within_seconds_with_how_to_get_it(tmp_path, monkeypatch, capsys):
    # No download can happen here: the HTTPS proxy is a closed local port and kagglehub's cache is empty.
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("KAGGLEHUB_CACHE", str(tmp_path / "kagglehub"))
    config = tmp_path / "gpt2.yaml"
    config.write_text("model: {name: gpt2, preset: gpt2_base_en, lora_rank: 4}\ndata: {name: embedded}\n")
    start = time.monotonic()
    code = cli.main(["train", str(config), "--run-dir", str(tmp_path / "run")])
    elapsed = time.monotonic() - start
    err = capsys.readouterr().err
    assert code == 2 and elapsed < 20, (code, elapsed)
    assert len(err.strip().splitlines()) == 1
    assert "'gpt2_base_en' is not on this machine and cannot be downloaded" in err
    assert "save_to_preset('gpt2_base_en')" in err and "model.preset" in err
    assert not (tmp_path / "run").exists()


def test_gpt2_config_errors_name_the_key_and_the_fix(preset, tmp_path, monkeypatch):
    def check(message, **sections):
        raw = {"model": {"name": "gpt2", "preset": str(preset)}, "data": {"name": "embedded"}}
        for key, value in sections.items():
            raw[key] = {**raw[key], **value}
        with pytest.raises(ConfigError, match=message):
            from_dict(raw, "test")

    check("data.vocab_size applies to a GPT-2 trained from scratch", data={"vocab_size": 500})
    check(r"data.tokenizer must be one of bpe", data={"tokenizer": "char"})
    check("model.backbone is set when a saved GPT-2 loads", model={"backbone": {}})
    check("no such folder", model={"preset": str(tmp_path / "nowhere")})
    check("has no config.json", model={"preset": str(tmp_path)})
    from aigc_tf.models import gpt2_presets

    monkeypatch.setattr(gpt2_presets, "missing_extra", lambda: "keras-hub")
    check(r'needs keras-hub, which is not installed: pip install -e "\.\[gpt2\]"')


def test_export_serves_strings_in_a_fresh_process_like_aigc_tf_sample(preset, built, tmp_path):
    from aigc_tf.export import export_model
    from aigc_tf.tasks.text import sample_texts

    model, data = build(preset, built[1], lora_rank=2)
    model.fit(tf.data.Dataset.from_tensors(next(iter(data.train))).repeat(2), verbose=0)  # non-zero adapters
    prompt = "The class"
    # What `aigc-tf sample --prompt PROMPT --seed 3 -n 2 --max-new-tokens 8` prints (its function).
    expected = [prompt + t for t in sample_texts(model, prompt, 2, 8, 1.0, 3)]
    path = export_model(model, tmp_path / "exports", "gpt2")  # replays its warmup requests, too
    code = f"""
import json, tensorflow as tf
path = {str(path)!r}
try:
    tf.saved_model.load(path)
    print("LOADED WITHOUT TF TEXT")
except Exception as err:
    print("WITHOUT TF TEXT:", type(err).__name__, str(err).split(" in binary")[0])
import tensorflow_text  # registers the ops of KerasHub's BPE (RegexSplitWithOffsets, ...)
fn = tf.saved_model.load(path).signatures["serving_default"]
out = fn(prompts=tf.constant([{prompt!r}] * 2), max_new_tokens=tf.constant([8, 8]), temperature=tf.constant([1.0, 1.0]),
         top_k=tf.constant([0, 0]), top_p=tf.constant([1.0, 1.0]), seed=tf.constant([3, 4]))
print(json.dumps([t.decode("utf-8", errors="replace") for t in out["texts"].numpy()]))
"""
    result = run_python(code, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.strip().splitlines()
    assert lines[0] == "WITHOUT TF TEXT: RuntimeError Op type not registered 'RegexSplitWithOffsets'"
    assert [prompt + t for t in json.loads(lines[-1])] == expected


def test_a_lora_run_resumes_with_its_adapters_and_optimizer(preset, tmp_path):
    """`aigc-tf train` of a LoRA GPT-2 run, then the same run resumed for a second epoch: the history
    holds both epochs once, the optimizer counts every step, the frozen kernels are still the preset's."""
    import dataclasses

    from aigc_tf import training

    cfg = gpt2_config(preset, lora_rank=2)
    run = tmp_path / "run"
    first = training.train(cfg, run)
    adapters = {v.path: v.numpy().copy() for v in first.trainable_variables}
    longer = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, epochs=2))
    resumed = training.train(longer, run, resume=True)
    history = json.loads((run / "history.json").read_text())
    assert len(history["loss"]) == 2 and int(resumed.optimizer.iterations.numpy()) == 4
    assert {v.path for v in resumed.trainable_variables} == set(adapters)
    assert any(not np.array_equal(v.numpy(), adapters[v.path]) for v in resumed.trainable_variables)
    reference = keras_hub.models.GPT2Backbone.from_preset(str(preset))
    frozen = {v.path: v.numpy() for v in reference.weights}
    for v in resumed.backbone.weights:
        if "lora" not in v.path and v.path in frozen:
            np.testing.assert_array_equal(v.numpy(), frozen[v.path], err_msg=v.path)


def test_the_shipped_imdb_fine_tune_config_runs_end_to_end_on_a_local_preset(preset, tmp_path, capsys):
    """configs/gpt2_finetune_imdb.yaml with every key it ships except the preset (the tiny one here:
    gpt2_base_en cannot be downloaded on this machine), a context that fits it, and tfds's offline
    mock of imdb_reviews: train, then the documents' sampling call (50 new tokens, 3 sequences)."""
    import tensorflow_datasets as tfds

    run = tmp_path / "run"
    overrides = [f"model.preset={preset}", "data.seq_len=32", "data.max_examples=16", "train.verbose=0",
                 f"data.data_dir={tmp_path}/tfds"]
    with tfds.testing.mock_data(num_examples=16):
        code = cli.main(["train", str(CONFIGS / "gpt2_finetune_imdb.yaml"), "--run-dir", str(run), "--set", *overrides])
    assert code == 0
    history = json.loads((run / "history.json").read_text())
    assert len(history["loss"]) == 1 and np.isfinite(history["loss"][0]) and np.isfinite(history["val_loss"][0])
    model = keras.models.load_model(run / "model.keras")
    # LoRA rank 8 from the config: only the adapters train (A and B of query and value, per block).
    assert len(model.trainable_variables) == 2 * 2 * SIZES["num_layers"]
    assert all("lora_kernel" in v.path for v in model.trainable_variables)
    capsys.readouterr()
    assert cli.main(["sample", str(run), "--prompt", "This movie", "--max-new-tokens", "50", "-n", "3",
                     "--seed", "0"]) == 0
    texts = [line for line in capsys.readouterr().out.splitlines() if line.startswith("This movie")]
    assert len(texts) == 3 and len(set(texts)) > 1, texts
