"""How good a synthetic table is, on SDMetrics' 0..1 scales (1: indistinguishable from the real table).

* Column shapes: ``KSComplement`` (1 - the two-sample Kolmogorov-Smirnov
  statistic; numbers and dates) and ``TVComplement`` (1 - the total
  variation distance of the category frequencies), nulls left out of both.
* Column-pair trends: ``CorrelationSimilarity`` (1 - |r_real - r_synthetic| / 2,
  Pearson's r, for two numeric columns) and ``ContingencySimilarity``
  (1 - the total variation distance of the two columns' joint frequencies,
  a null being one more value, for pairs with a categorical column; the numeric side is cut into 10
  equal-width bins over the real column's range).
* ``overall``: the mean of the column-shape score and the pair-trend score,
  as SDMetrics' ``QualityReport`` reports it. As there (SDMetrics 0.32), the
  pair-trend score averages only the pairs with a real relation to keep:
  |r| > 0.5 in the real table for two numeric columns, Cramer's V > 0.3 for
  the others (``column_pair_trends_all`` averages every pair). For a numeric
  column paired with a categorical one we bin both tables on the real
  column's edges, as ``ContingencySimilarity.compute(continuous_column_names=...)``
  does (the report itself bins each table on its own edges).
* Privacy: the distance from each row to the closest training row (DCR),
  in a space where numbers are scaled by the training range and categories
  count 0 (same) or 1 (different), averaged over the columns.
* Machine-learning efficacy: a scikit-learn gradient-boosting model trained
  on one table and tested on the real hold-out rows.
"""

from __future__ import annotations

import itertools

import numpy as np
import pyarrow as pa
from scipy import stats

from aigc_tf.tabular.transforms import category_values, is_discrete, to_numbers

BINS = 10
CORRELATION_THRESHOLD = 0.5  # SDMetrics' DEFAULT_REAL_CORRELATION_THRESHOLD
ASSOCIATION_THRESHOLD = 0.3  # and DEFAULT_REAL_ASSOCIATION_THRESHOLD


_NULL = "\x00null"


def _categories(column: pa.ChunkedArray) -> np.ndarray:
    return np.array([(_NULL if v is None else repr(v)) for v in category_values(column)], dtype=object)


def _frequencies(keys: np.ndarray) -> dict:
    values, counts = np.unique(keys, return_counts=True)
    return dict(zip(values.tolist(), (counts / counts.sum()).tolist(), strict=True))


def total_variation(real_keys: np.ndarray, synthetic_keys: np.ndarray) -> float:
    """Half the L1 distance between two empirical distributions of hashable keys."""
    p, q = _frequencies(real_keys), _frequencies(synthetic_keys)
    return 0.5 * sum(abs(p.get(k, 0.0) - q.get(k, 0.0)) for k in set(p) | set(q))


def ks_complement(real: np.ndarray, synthetic: np.ndarray) -> float:
    if len(real) == 0 or len(synthetic) == 0:
        return float("nan")
    return 1.0 - float(stats.ks_2samp(real, synthetic).statistic)


def correlation_similarity(real_a, real_b, synthetic_a, synthetic_b) -> float:
    return 1.0 - abs(_pearson(real_a, real_b) - _pearson(synthetic_a, synthetic_b)) / 2


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    if len(a) < 2 or np.std(a) == 0 or np.std(b) == 0:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])


def cramers_v(keys_a: np.ndarray, keys_b: np.ndarray) -> float:
    """Cramer's V of two columns of category keys (0: independent, 1: one determines the other)."""
    from scipy.stats.contingency import association, crosstab

    table = crosstab(keys_a.astype(str), keys_b.astype(str)).count
    if min(table.shape) < 2:
        return 0.0
    return float(association(table, method="cramer"))


def _bin(values: np.ndarray, null: np.ndarray, reference: np.ndarray) -> np.ndarray:
    low, high = (reference.min(), reference.max()) if len(reference) else (0.0, 1.0)
    edges = np.linspace(low, high, BINS + 1)[1:-1]
    keys = np.digitize(values, edges).astype(object)
    keys[null] = "null"
    return keys


class _Columns:
    """A table's columns as category keys or (numbers, null mask)."""

    def __init__(self, table: pa.Table, discrete: list[str]):
        self.discrete = {f.name for f in table.schema if is_discrete(f, discrete)}
        self.names = table.column_names
        self.keys = {n: _categories(table.column(n)) for n in self.names if n in self.discrete}
        self.numbers = {n: to_numbers(table.column(n), n) for n in self.names if n not in self.discrete}


def quality_report(real: pa.Table, synthetic: pa.Table, discrete: list[str] | None = None) -> dict:
    """Column shapes, column-pair trends and their mean (``overall``), with every column's and pair's score."""
    if real.column_names != synthetic.column_names:
        raise ValueError(f"the tables have different columns: {real.column_names} vs {synthetic.column_names}")
    r, s = _Columns(real, discrete or []), _Columns(synthetic, discrete or [])
    shapes = {}
    for name in r.names:
        if name in r.discrete:  # nulls left out, as SDMetrics' TVComplement does (pairs keep them)
            rk, sk = r.keys[name], s.keys[name]
            shapes[name] = 1.0 - total_variation(rk[rk != _NULL], sk[sk != _NULL]) if (
                (rk != _NULL).any() and (sk != _NULL).any()) else float("nan")
        else:
            (rv, rn), (sv, sn) = r.numbers[name], s.numbers[name]
            shapes[name] = ks_complement(rv[~rn], sv[~sn])
    pairs, kept = {}, []
    for a, b in itertools.combinations(r.names, 2):
        key = f"{a} | {b}"
        if a not in r.discrete and b not in r.discrete:
            (ra, ran), (rb, rbn) = r.numbers[a], r.numbers[b]
            (sa, san), (sb, sbn) = s.numbers[a], s.numbers[b]
            keep_r, keep_s = ~(ran | rbn), ~(san | sbn)
            pairs[key] = correlation_similarity(ra[keep_r], rb[keep_r], sa[keep_s], sb[keep_s])
            if abs(_pearson(ra[keep_r], rb[keep_r])) > CORRELATION_THRESHOLD:
                kept.append(key)
            continue
        keys_r, keys_s = [], []
        for name in (a, b):
            if name in r.discrete:
                keys_r.append(r.keys[name])
                keys_s.append(s.keys[name])
            else:
                (rv, rn), (sv, sn) = r.numbers[name], s.numbers[name]
                keys_r.append(_bin(rv, rn, rv[~rn]))
                keys_s.append(_bin(sv, sn, rv[~rn]))
        joint_r = np.array([f"{x}\x01{y}" for x, y in zip(*keys_r, strict=True)], dtype=object)
        joint_s = np.array([f"{x}\x01{y}" for x, y in zip(*keys_s, strict=True)], dtype=object)
        pairs[key] = 1.0 - total_variation(joint_r, joint_s)
        if cramers_v(*keys_r) > ASSOCIATION_THRESHOLD:
            kept.append(key)
    column_shapes = float(np.nanmean(list(shapes.values())))
    pair_trends = float(np.nanmean([pairs[k] for k in kept])) if kept else float("nan")
    overall = float(np.nanmean([column_shapes, pair_trends]))
    return {"overall": overall, "column_shapes": column_shapes, "column_pair_trends": pair_trends,
            "column_pair_trends_all": float(np.nanmean(list(pairs.values()))) if pairs else float("nan"),
            "columns": shapes, "pairs": pairs, "pairs_scored": kept}


def _features(table: pa.Table, reference: pa.Table, discrete: list[str], exclude: tuple = ()) -> np.ndarray:
    """Rows as vectors: numbers scaled by the reference's range (nulls at -1), categories one-hot."""
    blocks = []
    for field in reference.schema:
        if field.name in exclude:
            continue
        if is_discrete(field, discrete):
            categories = sorted(set(_categories(reference.column(field.name)).tolist()))
            keys = _categories(table.column(field.name))
            blocks.append((keys[:, None] == np.array(categories, dtype=object)[None, :]).astype(np.float32) / 2)
        else:
            values, null = to_numbers(table.column(field.name), field.name)
            ref, ref_null = to_numbers(reference.column(field.name), field.name)
            low, high = (ref[~ref_null].min(), ref[~ref_null].max()) if (~ref_null).any() else (0.0, 1.0)
            scaled = (values - low) / (high - low if high > low else 1.0)
            blocks.append(np.where(null, -1.0, scaled)[:, None].astype(np.float32))
    return np.concatenate(blocks, axis=1)


def distance_to_closest_record(train: pa.Table, rows: pa.Table, discrete: list[str] | None = None) -> np.ndarray:
    """Each row's distance to its nearest training row, averaged per column (0: a copy of a training row).

    Numbers count ``|a - b|`` scaled by the training range; a category counts
    1 when it differs (one-hot halves, so the L1 distance of two different
    one-hots is 1); the sum is divided by the number of columns.
    """
    from sklearn.neighbors import NearestNeighbors

    discrete = discrete or []
    reference = _features(train, train, discrete)
    query = _features(rows, train, discrete)
    # scikit-learn computes the L1 distances in blocks of bounded memory
    distances, _ = NearestNeighbors(n_neighbors=1, metric="manhattan").fit(reference).kneighbors(query)
    return distances[:, 0] / len(train.column_names)


def privacy_report(train: pa.Table, holdout: pa.Table, synthetic: pa.Table, discrete: list[str] | None = None,
                   max_rows: int = 2000, seed: int = 0) -> dict:
    """Median DCR of synthetic rows and of real hold-out rows, and their ratio (near 1: no closer than new real rows).

    A synthesizer that copies training rows has a synthetic median of 0 and
    a ratio of 0; ``copies`` is the share of synthetic rows at distance 0.
    """
    rng = np.random.default_rng(seed)

    def some(table):
        return table.take(np.sort(rng.permutation(table.num_rows)[:max_rows])) if table.num_rows > max_rows else table

    synthetic_dcr = distance_to_closest_record(train, some(synthetic), discrete)
    holdout_dcr = distance_to_closest_record(train, some(holdout), discrete)
    median_h = float(np.median(holdout_dcr))
    return {"dcr_synthetic_median": float(np.median(synthetic_dcr)), "dcr_holdout_median": median_h,
            "dcr_ratio": float(np.median(synthetic_dcr)) / median_h if median_h > 0 else float("nan"),
            "copies": float(np.mean(synthetic_dcr == 0)), "holdout_copies": float(np.mean(holdout_dcr == 0))}


def expression_values(table: pa.Table, discrete: list[str] | None = None) -> dict:
    """A table's columns as expression values (:class:`aigc_tf.tabular.expressions.Value`)."""
    from aigc_tf.tabular.expressions import Value

    out = {}
    for field in table.schema:
        column = table.column(field.name)
        if is_discrete(field, discrete or []) and not pa.types.is_boolean(field.type):
            values = category_values(column)
            categories = tuple(sorted({str(v) for v in values if v is not None}))
            index = {c: i for i, c in enumerate(categories)}
            codes = np.array([index.get(str(v), -1) for v in values])
            out[field.name] = Value(codes, codes < 0, "categorical", categories)
        elif pa.types.is_boolean(field.type):
            out[field.name] = Value(np.asarray(column.fill_null(False).to_numpy(zero_copy_only=False)),
                                    np.asarray(column.is_null().to_numpy(zero_copy_only=False)), "bool")
        else:
            values, null = to_numbers(column)
            kind = "date" if pa.types.is_date(field.type) else "datetime" if pa.types.is_timestamp(field.type) \
                else "number"
            out[field.name] = Value(values, null, kind)
    return out


def efficacy(train: pa.Table, test: pa.Table, target: str, discrete: list[str] | None = None, seed: int = 0) -> dict:
    """A gradient-boosting model trained on ``train`` predicting ``target``, scored on the real ``test`` rows.

    ``target``: a column (categorical: classification, with accuracy and
    macro F1; numeric: regression, with R^2) or a row expression such as
    ``"affairs > 0"`` (a yes / no classification; the columns it names are
    left out of the features). Rows whose target is null are left out.
    """
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.metrics import accuracy_score, f1_score, r2_score

    from aigc_tf.tabular.expressions import Expression

    discrete = discrete or []
    if target in train.column_names:
        field, exclude = train.schema.field(target), (target,)
    else:
        expression = Expression(target)
        field, exclude = pa.field(target, pa.bool_()), tuple(expression.names)
    x_train = _features(train, train, discrete, exclude=exclude)
    x_test = _features(test, train, discrete, exclude=exclude)
    if target not in train.column_names:
        def labels(table):  # a null answer (a null in a column it reads) is left out, not taken as "no"
            answer = expression.evaluate(expression_values(table, discrete))
            null = np.zeros(table.num_rows, bool) if answer.null is None else np.asarray(answer.null)
            return np.asarray(answer.values, dtype=bool).astype(str).astype(object), ~null

        (y_train, keep_train), (y_test, keep_test) = labels(train), labels(test)
    if target not in train.column_names or is_discrete(field, discrete):
        if target in train.column_names:
            y_train, y_test = _categories(train.column(target)), _categories(test.column(target))
            keep_train, keep_test = y_train != _NULL, y_test != _NULL
        if len(set(y_train[keep_train])) < 2:
            return {"task": "classification", "accuracy": float("nan"), "macro_f1": float("nan")}
        model = HistGradientBoostingClassifier(random_state=seed).fit(x_train[keep_train], y_train[keep_train])
        predicted = model.predict(x_test[keep_test])
        return {"task": "classification", "accuracy": float(accuracy_score(y_test[keep_test], predicted)),
                "macro_f1": float(f1_score(y_test[keep_test], predicted, average="macro"))}
    (y_train, n_train), (y_test, n_test) = to_numbers(train.column(target), target), to_numbers(test.column(target), target)
    model = HistGradientBoostingRegressor(random_state=seed).fit(x_train[~n_train], y_train[~n_train])
    return {"task": "regression", "r2": float(r2_score(y_test[~n_test], model.predict(x_test[~n_test])))}
