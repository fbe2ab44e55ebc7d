"""Text models: loss at initialisation, masking, cached decoding, save/load, errors."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from aigc_tf import registry
from aigc_tf.models.text_base import masked_token_loss, text_generation_function

VOCAB = [chr(c) for c in range(ord("a"), ord("z") + 1)] + [" ", ".", ","]
V = len(VOCAB) + 2
TINY = {
    "lstm_lm": {"units": 32, "embed_dim": 16},
    "gpt": {"context_length": 48, "num_layers": 2, "num_heads": 2, "embed_dim": 32, "dropout": 0.0},
    "seq2seq": {"units": 32, "embed_dim": 16},
    "text_vae": {"units": 32, "embed_dim": 16, "latent_dim": 4},
}
NAMES = list(TINY)


def build(name, **overrides):
    model = registry.build_model({"name": name, **TINY[name], **overrides}, 3, vocabulary=VOCAB, tokenizer="char")
    model.compile()
    return model


def batch(name, rng, rows=8, length=16):
    tokens = rng.integers(2, V, (rows, length)).astype("int32")
    if name == "seq2seq":
        return {"prefix": tokens, "decoder_inputs": np.pad(tokens[:, :-1], [[0, 0], [1, 0]])}, tokens
    if name == "text_vae":
        return tokens, tokens
    return tokens[:, :-1], tokens[:, 1:]


def controls(n, temperature=0.8, top_k=0, top_p=0.95, max_new=12, seed0=5):
    return (
        tf.fill([n], max_new),
        tf.fill([n], float(temperature)),
        tf.fill([n], top_k),
        tf.fill([n], float(top_p)),
        tf.range(seed0, seed0 + n, dtype=tf.int32),
    )


PROMPTS = tf.constant(["the cat", "a", "sat on the mat, the end."])


@pytest.mark.parametrize("name", NAMES)
def test_fresh_model_loss_is_about_log_vocab(name):
    """Near-uniform predictions at initialisation: cross-entropy per token ~ ln V."""
    model = build(name)
    x, y = batch(name, np.random.default_rng(0), rows=32)
    scores = model.evaluate(x, y, verbose=0, return_dict=True, batch_size=32)
    per_token = np.log(scores["perplexity"])
    assert abs(per_token - np.log(V)) < 0.05 * np.log(V), (name, per_token, np.log(V))
    if name != "text_vae":
        assert np.isclose(scores["loss"], per_token, rtol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_one_fit_step_lowers_the_loss_on_that_batch(name):
    # Text VAE: full KL weight and no word dropout, so the trained objective is the evaluated one.
    model = build(name, **({"kl_anneal_steps": 0, "word_dropout": 0.0} if name == "text_vae" else {}))
    x, y = batch(name, np.random.default_rng(1))

    def loss():
        if name == "text_vae":
            # The same posterior noise both times: a one-sample ELBO is otherwise too noisy to compare.
            eps = np.random.default_rng(2).standard_normal((len(x), model.latent_dim)).astype("float32")
            return model.evaluate({"tokens": x, "noise": eps}, verbose=0, return_dict=True, batch_size=8)["loss"]
        return model.evaluate(x, y, verbose=0, return_dict=True)["loss"]

    before = loss()
    model.fit(x, y, epochs=5, verbose=0, batch_size=8)
    after = loss()
    assert after < before - 1e-3, (name, before, after)


def test_masked_loss_ignores_padding_against_float64_reference():
    rng = np.random.default_rng(2)
    logits = rng.standard_normal((3, 5, V)).astype("float32")
    targets = rng.integers(2, V, (3, 5)).astype("int32")
    targets[0, 3:] = 0
    targets[2, 1:] = 0
    total, count = masked_token_loss(targets, logits)
    lg = logits.astype(np.float64)
    log_probs = lg - np.log(np.exp(lg).sum(-1, keepdims=True))
    mask = targets != 0
    reference = -np.take_along_axis(log_probs, targets[..., None], -1)[..., 0][mask].sum()
    assert count.numpy() == mask.sum() == 9
    assert np.isclose(total.numpy(), reference, rtol=1e-6)
    # Changing the logits of padded positions changes nothing.
    logits[0, 4] += 100.0
    assert np.isclose(masked_token_loss(targets, logits)[0].numpy(), total.numpy())


def test_model_perplexity_is_exp_of_token_weighted_mean_loss():
    """Two batches with different numbers of real tokens: the epoch value is the token-weighted mean."""
    model = build("lstm_lm")
    rng = np.random.default_rng(3)
    x = rng.integers(2, V, (4, 6)).astype("int32")
    y = x.copy()
    y[:2, 1:] = 0  # batch 1: 2 + 2 * 1 tokens... rows 0-1 keep one token each
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(2)
    scores = model.evaluate(ds, verbose=0, return_dict=True)
    logits = model(x).numpy().astype(np.float64)
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    mask = y != 0
    nll = -np.take_along_axis(log_probs, np.maximum(y, 0)[..., None], -1)[..., 0]
    reference = nll[mask].mean()
    assert np.isclose(scores["loss"], reference, rtol=1e-5)
    assert np.isclose(scores["perplexity"], np.exp(reference), rtol=1e-5)


def test_gpt_cached_step_logits_equal_the_full_forward_pass():
    model = build("gpt")
    tokens = np.random.default_rng(4).integers(2, V, (2, 20)).astype("int32")
    full = model(tokens).numpy()
    ids = tf.constant(tokens)
    step, state, _, _ = model.decoder(ids, tf.fill([2], 20), tf.fill([2], 1))
    for t in range(20):
        logits, state = step(ids[:, t], state)
        np.testing.assert_allclose(logits.numpy(), full[:, t], atol=2e-5)


@pytest.mark.parametrize("name", NAMES)
def test_cached_and_uncached_decoding_give_identical_tokens(name):
    model = build(name)
    for temperature in (0.0, 0.9):  # greedy and sampled
        cached = model.generate_text(PROMPTS, *controls(3, temperature=temperature), use_cache=True)
        uncached = model.generate_text(PROMPTS, *controls(3, temperature=temperature), use_cache=False)
        np.testing.assert_array_equal(cached["token_ids"].numpy(), uncached["token_ids"].numpy())
        assert cached["token_ids"].shape == (3, 12)


def test_a_row_does_not_depend_on_the_rest_of_the_batch():
    model = build("gpt")
    fn, _ = text_generation_function(model)
    together = fn(PROMPTS, *controls(3))["texts"].numpy()
    for i in range(3):
        max_new, temperature, top_k, top_p, seeds = controls(3)
        alone = fn(PROMPTS[i : i + 1], max_new[:1], temperature[:1], top_k[:1], top_p[:1], seeds[i : i + 1])
        assert alone["texts"].numpy()[0] == together[i]


def test_per_row_controls_and_lengths():
    model = build("lstm_lm")
    out = model.generate_text(
        tf.constant(["ab", "ab"]), tf.constant([3, 7]), tf.constant([0.0, 0.0]), tf.constant([0, 0]),
        tf.constant([1.0, 1.0]), tf.constant([1, 2]),
    )
    ids = out["token_ids"].numpy()
    assert ids.shape == (2, 7)
    # Greedy rows with the same prompt agree, and row 0 stops after its 3 tokens.
    np.testing.assert_array_equal(ids[0, :3], ids[1, :3])
    assert (ids[0, 3:] == 0).all() and (ids[1] >= 2).all()
    texts = [t.decode() for t in out["texts"].numpy()]
    assert len(texts[0]) == 3 and len(texts[1]) == 7 and texts[1].startswith(texts[0])


@pytest.mark.parametrize("name", NAMES)
def test_save_load_keeps_vocabulary_and_generation(name, tmp_path):
    model = build(name)
    model.fit(*batch(name, np.random.default_rng(5)), epochs=1, verbose=0)
    before = model.generate_text(PROMPTS, *controls(3))["texts"].numpy()
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert loaded.vectorizer.get_vocabulary() == model.vectorizer.get_vocabulary() == ["", "[UNK]", *VOCAB]
    np.testing.assert_array_equal(loaded.tokenize(PROMPTS)[0].numpy(), model.tokenize(PROMPTS)[0].numpy())
    np.testing.assert_array_equal(loaded.generate_text(PROMPTS, *controls(3))["texts"].numpy(), before)
    # Optimizer state travels too (resume).
    assert loaded.optimizer.iterations.numpy() == model.optimizer.iterations.numpy() == 1


def test_tokenize_detokenize_round_trip_char_and_word():
    char = build("lstm_lm")
    ids, lengths = char.tokenize(tf.constant(["the  cat<br />sat", "a"]))
    assert lengths.numpy().tolist() == [11, 1]  # markup and repeated spaces cleaned to one space
    assert char.detokenize(ids).numpy().tolist() == [b"the cat sat", b"a"]
    words = ["the", "cat", "sat", ".", ","]
    word = registry.build_model({"name": "lstm_lm", "units": 8}, 0, vocabulary=words, tokenizer="word")
    ids, lengths = word.tokenize(tf.constant(["The cat, sat.", "dog"]))
    assert lengths.numpy().tolist() == [5, 1]
    assert ids.numpy()[1, 0] == 1  # unknown word
    assert word.detokenize(ids[:1]).numpy().tolist() == [b"the cat, sat."]


def test_gpt_refuses_prompts_longer_than_its_context():
    model = build("gpt")  # context 48
    long_prompt = tf.constant(["abcdefghij" * 4])  # 40 tokens
    model.generate_text(long_prompt, *controls(1, max_new=8))  # 48: fits
    with pytest.raises(tf.errors.InvalidArgumentError, match="exceed the context of 48"):
        model.generate_text(long_prompt, *controls(1, max_new=9))
    assert model.context_room(40) == 8


def test_one_new_token_policy_for_every_command():
    """No request: the default, or what the context leaves; an explicit request
    beyond the context: one error naming the context and the largest value that fits."""
    from aigc_tf.errors import UserError
    from aigc_tf.models.text_base import DEFAULT_NEW_TOKENS

    gpt, lstm = build("gpt"), build("lstm_lm")  # context 48; no context
    assert gpt.new_token_budget(4) == 44
    assert gpt.new_token_budget(4, 44) == 44
    assert lstm.new_token_budget(4) == DEFAULT_NEW_TOKENS
    assert lstm.new_token_budget(4, 1000) == 1000
    with pytest.raises(UserError, match=r"--max-new-tokens 45 does not fit: the context of 48 tokens leaves room "
                                        r"for 44 new tokens after the 4-token prompt; pass --max-new-tokens 44 or less"):
        gpt.new_token_budget(4, 45)
    with pytest.raises(UserError, match=r"train.sample_max_new_tokens=200 does not fit.*train.sample_max_new_tokens=44"):
        gpt.new_token_budget(4, 200, "train.sample_max_new_tokens")
    with pytest.raises(UserError, match="fills the context of 48 tokens; shorten it to at most 47"):
        gpt.new_token_budget(48)
    # In the graph (the export): 0 asks for the default, per row.
    prompts = tf.constant(["abcd", "abcdefghij" * 4])  # 4 and 40 tokens
    n, temperature, top_k, top_p, seeds = controls(2, max_new=0)
    out = gpt.generate_text(prompts, n, temperature, top_k, top_p, seeds)
    assert out["token_ids"].shape[1] == 44
    assert (out["token_ids"].numpy()[1, 8:] == 0).all() and (out["token_ids"].numpy()[1, :8] != 0).all()
    with pytest.raises(tf.errors.InvalidArgumentError, match="largest max_new_tokens that fit"):
        gpt.generate_text(prompts, tf.constant([44, 9]), temperature, top_k, top_p, seeds)


def test_unknown_tokenizer_and_bad_gpt_sizes_raise():
    with pytest.raises(ValueError, match="unknown tokenizer 'bpe'"):
        registry.build_model({"name": "lstm_lm"}, 0, vocabulary=VOCAB, tokenizer="bpe")
    with pytest.raises(ValueError, match="not divisible"):
        registry.build_model({"name": "gpt", "embed_dim": 30, "num_heads": 4}, 0, vocabulary=VOCAB, tokenizer="char")
    with pytest.raises(ValueError, match="positions"):
        registry.build_model({"name": "gpt", "positions": "rotary"}, 0, vocabulary=VOCAB, tokenizer="char")


def test_gpt_options_sinusoidal_and_untied():
    for kwargs in ({"positions": "sinusoidal"}, {"tie_weights": False}):
        model = build("gpt", **kwargs)
        model.fit(*batch("gpt", np.random.default_rng(6)), epochs=1, verbose=0)
        cached = model.generate_text(PROMPTS, *controls(3, temperature=0.0))["token_ids"].numpy()
        uncached = model.generate_text(PROMPTS, *controls(3, temperature=0.0), use_cache=False)["token_ids"].numpy()
        np.testing.assert_array_equal(cached, uncached)
    tied = build("gpt")
    untied = build("gpt", tie_weights=False)
    assert untied.count_params() - tied.count_params() == 32 * V


def test_text_vae_kl_annealing_word_dropout_prior_and_interpolation():
    model = build("text_vae", kl_anneal_steps=4, word_dropout=0.5)
    x, _ = batch("text_vae", np.random.default_rng(7))
    weights = []
    for _ in range(6):
        logs = model.train_on_batch(x, x, return_dict=True)
        weights.append(logs["kl_weight"])
    # Linear warm-up over 4 steps, read before each step's update (train_on_batch resets the means).
    assert np.allclose(weights, [0.0, 0.25, 0.5, 0.75, 1.0, 1.0], atol=1e-6)
    assert abs(float(model.kl_weight()) - 1.0) < 1e-6
    # Prior draws: depend only on the row's seed, and are standard normal.
    z = model.prior_latents(tf.range(4000)).numpy()
    assert abs(z.mean()) < 0.03 and abs(z.std() - 1.0) < 0.03
    # (Equal up to float rounding: log/cos vectorise differently for another batch size.)
    np.testing.assert_allclose(model.prior_latents(tf.constant([7]))[0], z[7], rtol=1e-6, atol=1e-6)
    path = model.interpolate("the cat sat", "a dog ran", steps=4, max_new_tokens=10)
    assert len(path) == 4 and all(isinstance(t, str) for t in path)
    # The ends decode the two sentences' posterior means, greedily.
    means = model.encode_text(tf.constant(["the cat sat"]))["mean"]
    greedy = model.decode_text(means, *controls(1, temperature=0.0, max_new=10))["texts"].numpy()[0].decode()
    assert path[0] == greedy


def test_text_vae_word_dropout_rate():
    model = build("text_vae", word_dropout=0.3)
    tokens = np.random.default_rng(8).integers(2, V, (64, 32)).astype("int32")
    seen = []
    original = model.decode_logits

    def spy(z, inputs, training=False):
        seen.append(inputs)
        return original(z, inputs, training)

    model.decode_logits = spy
    model.elbo_terms(tf.constant(tokens), training=True, word_dropout=0.3)
    inputs = seen[0].numpy()
    assert (inputs[:, 0] == 0).all()  # the start token is never dropped
    dropped = (inputs[:, 1:] == 1).mean()
    assert abs(dropped - 0.3) < 0.03, dropped


@pytest.mark.parametrize("name", NAMES)
def test_beam_search_width_1_is_greedy_and_full_width_is_exhaustive(name):
    model = build(name)
    model.fit(*batch(name, np.random.default_rng(9)), epochs=2, verbose=0)
    ids, lengths = model.tokenize(tf.constant(["the cat"]))
    greedy = model.generate_ids(ids, lengths, *controls(1, temperature=0.0, max_new=8))
    beam1, score1 = model.beam_search_ids(ids, lengths, 8, beam_width=1)
    np.testing.assert_array_equal(beam1.numpy(), greedy.numpy())
    if name not in ("lstm_lm", "gpt"):
        return
    # Greedy's score is the sum of its tokens' log-probabilities (teacher-forced, uncached,
    # renormalised without padding and unknown, which are never proposed).
    def log_probs(tokens):
        logits = model(np.asarray(tokens, "int32")).numpy()[:, -1]
        logits[:, :2] = -1e9
        return tf.nn.log_softmax(logits).numpy()

    prompt = ids.numpy()[0, :7].tolist()
    seq = prompt + greedy.numpy()[0].tolist()
    expected = sum(log_probs([seq[: 7 + i]])[0, seq[7 + i]] for i in range(8))
    assert np.isclose(float(score1[0]), expected, atol=1e-3)
    # With a beam as wide as the vocabulary, two new tokens are searched exhaustively.
    best_tokens, best = model.beam_search_ids(ids, lengths, 2, beam_width=V)
    first = log_probs([prompt])[0]
    second = log_probs([prompt + [t] for t in range(V)])  # (V, V): row t = after token t
    brute = (first[:, None] + second)[2:, 2:]
    assert np.isclose(float(best[0]), brute.max(), atol=1e-3)
    assert (best_tokens.numpy()[0] - 2).tolist() == list(np.unravel_index(brute.argmax(), brute.shape))


def test_gradient_clipping_bounds_the_global_norm_of_the_step():
    model = build("lstm_lm")
    model.compile(keras.optimizers.SGD(1.0), clip_norm=0.01)
    before = [v.numpy() for v in model.trainable_variables]
    model.train_on_batch(*batch("lstm_lm", np.random.default_rng(10)))
    step = np.sqrt(sum(((v.numpy() - b) ** 2).sum() for v, b in zip(model.trainable_variables, before, strict=True)))
    assert np.isclose(step, 0.01, rtol=1e-4)  # the raw gradient is far larger, so it was clipped to 0.01
    assert model.get_compile_config()["clip_norm"] == 0.01


def test_word_level_join_and_punctuation():
    words = ["the", "film", "don", "t", "'", "well", "-", "made", ".", "(", ")"]
    model = registry.build_model({"name": "lstm_lm", "units": 8}, 0, vocabulary=words, tokenizer="word")
    ids, _ = model.tokenize(tf.constant(["The film (well-made). Don't"]))
    assert model.detokenize(ids).numpy()[0].decode() == "the film (well-made). don't"
    assert model.join("the film", "was good") == "the film was good"
    assert build("lstm_lm").join("The ", "cat") == "The cat"


@pytest.mark.parametrize("name", ["lstm_lm", "seq2seq"])
def test_dropout_acts_in_training_only_and_is_saved(name, tmp_path):
    model = build(name, dropout=0.5)
    x, _ = batch(name, np.random.default_rng(4), rows=4)
    inference = [model(x, training=False).numpy() for _ in range(2)]
    np.testing.assert_array_equal(*inference)
    assert not np.allclose(model(x, training=True).numpy(), inference[0])
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert loaded.get_config()["dropout"] == 0.5
    np.testing.assert_allclose(loaded(x, training=False).numpy(), inference[0], atol=1e-6)


def test_seq2seq_encoder_skips_prefix_padding():
    model = build("seq2seq")
    prefix = np.random.default_rng(5).integers(2, V, (2, 6)).astype("int32")
    padded = np.pad(prefix, [[0, 0], [0, 5]])
    for a, b in zip(model.encode(prefix), model.encode(padded), strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-6)
    assert not np.allclose(model.encode(prefix[:, :5])[0].numpy(), model.encode(prefix)[0].numpy())


def test_gpt_tables_start_from_different_random_values():
    """A seeded Keras initializer repeats its values on every call: each table needs its own seed."""
    model = build("gpt", tie_weights=False)
    tokens = model.token_embedding.embeddings.numpy()
    positions = model.position_embedding.embeddings.numpy()
    head = model.head.kernel.numpy()  # (E, V)
    rows = min(len(tokens), len(positions))
    assert not np.isclose(tokens[:rows], positions[:rows]).all(axis=1).any()
    assert not np.isclose(tokens.T, head).all(axis=0).any()
    assert 0.015 < tokens.std() < 0.025 and 0.015 < positions.std() < 0.025
    again = build("gpt", tie_weights=False)  # same seed, same start
    np.testing.assert_array_equal(again.token_embedding.embeddings.numpy(), tokens)


def test_gpt_prefill_writes_the_caches_of_token_by_token_steps():
    model = build("gpt")
    tokens = tf.constant(np.random.default_rng(4).integers(2, V, (2, 20)), tf.int32)
    step, state, _, _ = model.decoder(tokens, tf.fill([2], 20), tf.fill([2], 1))
    stepped = state
    for t in range(19):
        _, stepped = step(tokens[:, t], stepped)
    prefilled = model.prefill(state, tokens[:, :19])
    assert int(prefilled[1]) == int(stepped[1]) == 19
    # float32 sums in another order (one 19-row matmul vs 19 one-row ones) differ by a few ulps of
    # values of order 1; 1e-5 is ~100 ulps, while a wrong position or mask moves them by ~0.1.
    for (k1, v1), (k2, v2) in zip(prefilled[0], stepped[0], strict=True):
        np.testing.assert_allclose(k1.numpy(), k2.numpy(), rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(v1.numpy(), v2.numpy(), rtol=1e-5, atol=1e-5)
    full = model(tokens).numpy()[:, 19]
    for s in (prefilled, stepped):
        np.testing.assert_allclose(step(tokens[:, 19], s)[0].numpy(), full, rtol=1e-5, atol=1e-5)
    # Ragged prompts: the shortest is prefilled, the rest stepped; same tokens as all stepped.
    ids, lengths = model.tokenize(PROMPTS)
    for temperature in (0.0, 0.9):
        a = model.generate_ids(ids, lengths, *controls(3, temperature=temperature)).numpy()
        b = model.generate_ids(ids, lengths, *controls(3, temperature=temperature), prefill=False).numpy()
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", ["gpt", "lstm_lm"])
def test_a_stop_string_ends_a_sample_and_is_left_out(name):
    from aigc_tf.errors import UserError

    model = build(name)
    n, max_new = 8, 30
    stop = model.stop_ids("e")
    assert stop.tolist() == [VOCAB.index("e") + 2]
    fn_free, _ = text_generation_function(model)
    fn_stop, _ = text_generation_function(model, stop="e")
    prompts = tf.constant(["the cat"] * n)
    args = (prompts, *controls(n, temperature=1.0, max_new=max_new))
    free, stopped = fn_free(*args), fn_stop(*args)
    free_ids, stopped_ids = free["token_ids"].numpy(), stopped["token_ids"].numpy()
    ended = 0
    for row, ref, text in zip(stopped_ids, free_ids, stopped["texts"].numpy(), strict=True):
        cut = int(np.argmax(ref == stop[0])) if (ref == stop[0]).any() else max_new
        ended += cut < max_new
        np.testing.assert_array_equal(row[:cut], ref[:cut])
        assert (row[cut:] == 0).all() and b"e" not in text
    assert 0 < ended < n
    assert model.stop_ids("e, ").tolist() == [VOCAB.index(c) + 2 for c in "e, "]
    with pytest.raises(UserError, match="outside the model's vocabulary"):
        model.stop_ids("é")
    with pytest.raises(UserError, match="has no tokens"):
        model.stop_ids("  ")


def _np_cross_entropy(logits, targets):
    logits = np.asarray(logits, np.float64)
    z = logits - logits.max(-1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(-1, keepdims=True))
    return -np.take_along_axis(logp, targets[..., None], -1)[..., 0]


def test_seq2seq_shared_weights_with_prefix_loss_is_one_lstm_over_the_chunk():
    """share_weights + prefix_loss=1: the training loss is a language model's mean next-token loss over
    prefix, start token and continuation, computed here by one pass of the shared LSTM over the whole
    chunk (float64 cross-entropy), not by encode-then-decode; prefix_loss=0.5 weights the prefix terms."""
    model = build("seq2seq", share_weights=True, prefix_loss=1.0)
    assert not hasattr(model, "decoder_lstm") and not hasattr(model, "decoder_embedding")
    assert len(model.trainable_variables) == len(build("seq2seq").trainable_variables) - 4
    rng = np.random.default_rng(6)
    prefix, cont = rng.integers(2, V, (3, 5)).astype("int32"), rng.integers(2, V, (3, 4)).astype("int32")
    inputs = {"prefix": prefix, "decoder_inputs": np.pad(cont[:, :-1], [[0, 0], [1, 0]])}
    chunk = np.concatenate([prefix, inputs["decoder_inputs"]], axis=1)  # P, start (id 0), C[:-1]
    y, _, _ = model.encoder(tf.gather(model.encoder_embedding.embeddings, chunk))
    ce = _np_cross_entropy(model.head(y).numpy(), np.concatenate([prefix[:, 1:], prefix[:, :1], cont], 1))
    prefix_ce, cont_ce = ce[:, :4], ce[:, 5:]  # the last prefix position predicts nothing
    for w in (1.0, 0.5):
        model.prefix_loss = w
        loss, total, count = model.prefix_training_loss(inputs, cont, training=False)
        want = (cont_ce.sum() + w * prefix_ce.sum()) / (cont_ce.size + w * prefix_ce.size)
        np.testing.assert_allclose(float(loss), want, rtol=1e-5)
        np.testing.assert_allclose(float(total) / float(count), cont_ce.mean(), rtol=1e-5)
    # Decoding with the shared weights: cached and uncached agree.
    for temperature in (0.0, 0.9):
        a = model.generate_text(PROMPTS, *controls(3, temperature=temperature), use_cache=True)
        b = model.generate_text(PROMPTS, *controls(3, temperature=temperature), use_cache=False)
        np.testing.assert_array_equal(a["token_ids"].numpy(), b["token_ids"].numpy())


def test_seq2seq_prefix_loss_trains_and_reports_the_continuation_alone(tmp_path):
    model = build("seq2seq", share_weights=True, prefix_loss=1.0)
    x, y = batch("seq2seq", np.random.default_rng(7))
    before = model.evaluate(x, y, verbose=0, return_dict=True)
    logs = model.fit(x, y, epochs=3, verbose=0, batch_size=8).history
    after = model.evaluate(x, y, verbose=0, return_dict=True)
    assert after["loss"] < before["loss"] - 1e-3
    assert np.isclose(np.log(after["perplexity"]), after["loss"], rtol=1e-5)
    assert set(logs) == {"loss", "perplexity"}
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert loaded.share_weights and loaded.prefix_loss == 1.0
    np.testing.assert_allclose(loaded(x).numpy(), model(x).numpy(), atol=1e-6)
    with pytest.raises(ValueError, match="prefix_loss"):
        build("seq2seq", prefix_loss=-1.0)


@pytest.mark.parametrize("name", ["lstm_lm", "seq2seq"])
def test_recurrent_dropout_is_one_mask_per_sequence_in_training_only(name, tmp_path):
    """recurrent_dropout: inference equals the plain LSTM with the same weights; in training the
    outputs change; the mask on h is the same at every step (checked on the cell)."""
    from aigc_tf.models.lstm_lm import VariationalLSTMCell

    model, plain = build(name, recurrent_dropout=0.5), build(name)
    plain.set_weights(model.get_weights())
    x, _ = batch(name, np.random.default_rng(8), rows=4)
    np.testing.assert_allclose(model(x, training=False).numpy(), plain(x, training=False).numpy(), atol=1e-6)
    assert not np.allclose(model(x, training=True).numpy(), plain(x, training=False).numpy(), atol=1e-3)
    cell = VariationalLSTMCell(6, recurrent_dropout=0.5, seed=1)
    cell.build((None, 3))
    assert cell.implementation == 2
    h = tf.ones((2, 6))
    masks = [cell.get_recurrent_dropout_mask(h).numpy() for _ in range(3)]
    assert (masks[0] == 0).any() and all(np.array_equal(masks[0], m) for m in masks)
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert loaded.get_config()["recurrent_dropout"] == 0.5
    np.testing.assert_allclose(loaded(x).numpy(), model(x).numpy(), atol=1e-6)
