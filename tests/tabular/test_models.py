"""TVAE and CTGAN: losses against numpy, training-by-sampling, seeded generation, the in-graph inverse."""

from __future__ import annotations

import datetime

import numpy as np
import pyarrow as pa
import pytest
import tensorflow as tf

from aigc_tf.tabular.batches import conditional_batches
from aigc_tf.tabular.graph_columns import iso_dates, output_columns
from aigc_tf.tabular.models import BLOCK, CTGAN, TVAE
from aigc_tf.tabular.transforms import TableTransformer


@pytest.fixture(scope="module")
def mixed():
    """A table with every kind of column, nulls in three of them."""
    rng = np.random.default_rng(0)
    n = 400
    city = rng.choice(["Beijing", "Paris", "Lagos, NG", 'say "hi"'], n, p=[0.6, 0.3, 0.07, 0.03]).tolist()
    for i in range(0, n, 37):
        city[i] = None
    score = np.round(np.concatenate([rng.normal(10, 1, n // 2), rng.normal(50, 5, n - n // 2)]), 2)
    score_mask = rng.random(n) < 0.1
    table = pa.table({
        "city": pa.array(city, pa.string()),
        "signup": pa.array((rng.integers(-400, 20000, n)).astype(np.int32), pa.int32()).cast(pa.date32()),
        "score": pa.array(score, pa.float64(), mask=score_mask),
        "visits": pa.array(rng.poisson(3, n), pa.int64()),
        "member": pa.array(rng.random(n) < 0.3, pa.bool_()),
        "stars": pa.array(rng.integers(1, 6, n).astype(float), pa.float64()),
        "stamp": pa.array(rng.integers(0, 10**9, n), pa.timestamp("s")),
    })
    transformer = TableTransformer(discrete=["stars"], max_modes=4, snap_distinct=12).fit(table)
    assert [c.name for c in transformer.columns if getattr(c, "snap", None)] == ["visits"]
    return table, transformer


def test_transformer_state_round_trips_through_json(mixed):
    import json

    table, transformer = mixed
    clone = TableTransformer.from_config(json.loads(json.dumps(transformer.get_config())))
    assert clone.spans == transformer.spans and clone.width == transformer.width
    matrix = transformer.transform(table, seed=3)
    np.testing.assert_array_equal(clone.transform(table, seed=3), matrix)
    assert clone.inverse(matrix).equals(transformer.inverse(matrix))


def test_the_graph_inverse_matches_the_numpy_inverse_column_by_column(mixed):
    table, transformer = mixed
    rng = np.random.default_rng(1)
    # A generated-looking matrix: random scalars in [-1, 1] and random one-hots.
    matrix = np.zeros((300, transformer.width), np.float32)
    for span in transformer.spans:
        if span.activation == "tanh":
            matrix[:, span.start] = rng.uniform(-1, 1, 300)
        else:
            matrix[np.arange(300), span.start + rng.integers(0, span.width, 300)] = 1
    expected = transformer.inverse(matrix)
    visits = set(table.column("visits").to_pylist())
    assert set(expected.column("visits").to_pylist()) <= visits  # snapped to the values seen in training
    out = {k: v.numpy() for k, v in output_columns(transformer, tf.constant(matrix)).items()}
    assert set(out) == {"city", "city_is_null", "signup", "score", "score_is_null", "visits", "member", "stars",
                        "stamp"}
    for name in expected.column_names:
        column = expected.column(name)
        null = np.asarray(column.is_null())
        if f"{name}_is_null" in out:
            np.testing.assert_array_equal(out[f"{name}_is_null"], null)
        else:
            assert not null.any()
        got = out[name][~null]
        want = column.filter(pa.array(~null)).to_pylist()
        if name == "city":
            assert [g.decode() for g in got] == want
        elif name == "signup":
            assert [g.decode() for g in got] == [d.isoformat() for d in want]
        elif name == "stamp":
            assert got.tolist() == [int((d - datetime.datetime(1970, 1, 1)).total_seconds()) for d in want]
        else:
            assert got.tolist() == want, name


def test_iso_dates_match_python_over_four_centuries():
    days = np.concatenate([np.arange(-800, 800), np.arange(-146097 * 2, 146097 * 2, 997)]).astype(np.int64)
    got = [s.decode() for s in iso_dates(tf.constant(days)).numpy()]
    epoch = datetime.date(1970, 1, 1)
    assert got == [(epoch + datetime.timedelta(days=int(d))).isoformat() for d in days]


def test_training_by_sampling_conditions_rows_and_follows_log_frequencies(mixed):
    table, transformer = mixed
    matrix = transformer.transform(table, seed=0)
    ds = conditional_batches(matrix, transformer.spans, 500, seed=7, steps=40)
    categories = [s for s in transformer.spans if s.role == "category"]
    picked = np.zeros((len(categories), max(s.width for s in categories)))
    for batch in ds:
        rows, cond, mask = batch["rows"].numpy(), batch["cond"].numpy(), batch["mask"].numpy()
        assert cond.sum(axis=1).tolist() == [1.0] * 500 and mask.sum(axis=1).tolist() == [1.0] * 500
        offset = 0
        for j, span in enumerate(categories):
            chosen = mask[:, j] == 1
            want = cond[chosen, offset:offset + span.width].argmax(axis=1)
            # every row drawn for column j has the condition's category in column j
            np.testing.assert_array_equal(rows[chosen, span.start:span.start + span.width].argmax(axis=1), want)
            np.add.at(picked[j], want, 1)
            offset += span.width
    columns = picked.sum(axis=1)
    assert np.all(np.abs(columns / columns.sum() - 1 / len(categories)) < 0.02)  # columns uniformly
    for j, span in enumerate(categories):
        counts = matrix[:, span.start:span.start + span.width].sum(axis=0)
        expected = np.log1p(counts) / np.log1p(counts).sum()
        share = picked[j, :span.width] / columns[j]
        np.testing.assert_allclose(share, expected, atol=0.03)
    # seeded: the same epochs again for the same seed, a new draw each epoch
    first = [b["rows"].numpy() for b in conditional_batches(matrix, transformer.spans, 50, seed=7, steps=2)]
    again = conditional_batches(matrix, transformer.spans, 50, seed=7, steps=2)
    np.testing.assert_array_equal([b["rows"].numpy() for b in again], first)
    second_epoch = [b["rows"].numpy() for b in again]
    assert not np.array_equal(second_epoch, first)


@pytest.fixture(scope="module")
def models(mixed):
    _, transformer = mixed
    config = transformer.get_config()
    tvae = TVAE(table_transform=config, latent_dim=4, hidden=[8], seed=0)
    ctgan = CTGAN(table_transform=config, latent_dim=4, generator_dims=[8], discriminator_dims=[8], pac=2, seed=0)
    return tvae, ctgan


def test_tvae_reconstruction_matches_numpy(mixed, models):
    table, transformer = mixed
    tvae, _ = models
    rows = transformer.transform(table.slice(0, 20), seed=0)
    raw = np.random.default_rng(2).normal(size=rows.shape).astype(np.float32)
    sigma = tvae.sigma.numpy().astype(np.float64)
    expected = np.zeros(20)
    for span in transformer.spans:
        x, r = rows[:, span.start:span.start + span.width].astype(np.float64), raw[:, span.start:span.start + span.width]
        if span.activation == "tanh":
            s = sigma[span.start]
            expected += (x[:, 0] - np.tanh(r[:, 0])) ** 2 / (2 * s * s) + np.log(s)
        else:
            log_softmax = r - np.log(np.exp(r).sum(axis=1, keepdims=True))
            expected -= (x * log_softmax).sum(axis=1)
    np.testing.assert_allclose(tvae.reconstruction(tf.constant(rows), tf.constant(raw)).numpy(), expected, rtol=1e-5)


def test_ctgan_condition_loss_matches_numpy(mixed, models):
    _, transformer = mixed
    _, ctgan = models
    rng = np.random.default_rng(3)
    raw = rng.normal(size=(10, transformer.width)).astype(np.float32)
    k = len(ctgan.categories)
    column = rng.integers(0, k, 10)
    cond = np.zeros((10, ctgan.cond_width), np.float32)
    offsets = np.cumsum([0] + [s.width for s in ctgan.categories])
    chosen = []
    for i, j in enumerate(column):
        span = ctgan.categories[j]
        c = rng.integers(0, span.width)
        cond[i, offsets[j] + c] = 1
        logits = raw[i, span.start:span.start + span.width].astype(np.float64)
        chosen.append(np.log(np.exp(logits).sum()) - logits[c])
    mask = np.eye(k, dtype=np.float32)[column]
    got = ctgan.cond_loss(tf.constant(raw), tf.constant(cond), tf.constant(mask)).numpy()
    np.testing.assert_allclose(got, np.mean(chosen), rtol=1e-5)


@pytest.mark.parametrize("which", [0, 1])
def test_generation_is_seeded_per_block_and_any_split_gives_the_same_rows(models, which):
    model = models[which]
    whole = model.generate(2 * BLOCK + 5, seed=11).numpy()
    assert whole.shape == (2 * BLOCK + 5, model.data_width)
    np.testing.assert_array_equal(model.generate(7, seed=11).numpy(), whole[:7])
    pieces = np.concatenate([model.generate_blocks(11, 0, 1).numpy(), model.generate_blocks(11, 1, 2).numpy()])
    np.testing.assert_array_equal(pieces[: len(whole)], whole)
    assert not np.array_equal(model.generate(7, seed=12).numpy(), whole[:7])


def test_a_ctgan_condition_sets_the_condition_vector(models):
    _, ctgan = models
    span = ctgan.categories[0]
    seeds = tf.random.experimental.stateless_split(tf.constant([1, 0], tf.int64), 4)
    # The raw block with condition index 1 equals the generator run on that one-hot.
    raw = ctgan._raw_block(seeds, tf.constant(1)).numpy()
    z = tf.random.stateless_normal([BLOCK, ctgan.latent_dim], seeds[0])
    cond = tf.one_hot(tf.fill([BLOCK], 1), ctgan.cond_width)
    np.testing.assert_allclose(raw, ctgan.generator([z, cond], training=False).numpy(), rtol=1e-6)
    assert span.width >= 2


def test_ctgan_starts_from_pytorch_linear_init_and_tvae_from_glorot(mixed):
    """CTGAN's layers are drawn U(+-1/sqrt(fan_in)) as in the published PyTorch code; TVAE keeps Glorot."""
    import keras

    config = mixed[1].get_config()
    ctgan = CTGAN(table_transform=config, latent_dim=64, generator_dims=[64], discriminator_dims=[64], pac=10, seed=0)
    tvae = TVAE(table_transform=config, latent_dim=64, hidden=[64], seed=0)
    checked = 0
    for network in (ctgan.generator, ctgan.discriminator):
        for layer in network.layers:
            if isinstance(layer, keras.layers.Dense):
                kernel = layer.kernel.numpy()
                bound = 1 / np.sqrt(kernel.shape[0])
                assert np.abs(kernel).max() <= bound + 1e-7, layer.name
                if kernel.size >= 2000:  # enough draws to tell U(+-b) (std b/sqrt(3)) from Glorot's
                    assert kernel.std() == pytest.approx(bound / np.sqrt(3), rel=0.1), layer.name
                    checked += 1
    assert checked >= 3
    first = next(layer for layer in tvae.encoder.layers if isinstance(layer, keras.layers.Dense))
    fan_in, fan_out = first.kernel.shape
    assert first.kernel.numpy().std() == pytest.approx(np.sqrt(2 / (fan_in + fan_out)), rel=0.1)
