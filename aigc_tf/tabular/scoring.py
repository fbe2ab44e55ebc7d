"""One synthesizer's rows scored the way ``aigc-tf evaluate`` and ``benchmarks/`` report them.

Against the real hold-out rows: SDMetrics-scale quality (overall, column
shapes, column-pair trends), machine-learning efficacy (gradient boosting
trained on the rows, tested on the hold-out rows), privacy (distance to the
closest training row beside the hold-out rows' own) and constraint validity
(the share of rows meeting every constraint). The comparison rows are the
train rows themselves ("real": what a perfect synthesizer reaches on
fidelity and efficacy, and what a copier gets on privacy) and the two
baselines fitted on the train rows.
"""

from __future__ import annotations

import time

import numpy as np
import pyarrow as pa

from aigc_tf.tabular import quality
from aigc_tf.tabular.data import TableInfo


def constraint_validity(table: pa.Table, constraints: list[str] | tuple, discrete: list[str] | None = None) -> dict:
    """``{expression: share of rows meeting it}`` and ``"all"`` (meeting every one); a null meets a constraint."""
    from aigc_tf.tabular.expressions import Expression

    if not constraints:
        return {}
    values = quality.expression_values(table, discrete)
    every = np.ones(table.num_rows, bool)
    out = {}
    for text in constraints:
        answer = Expression(text).evaluate(values)
        ok = np.asarray(answer.values, dtype=bool)
        if answer.null is not None:
            ok = ok | np.asarray(answer.null)
        ok = np.broadcast_to(ok, (table.num_rows,))
        out[text] = float(ok.mean()) if table.num_rows else float("nan")
        every &= ok
    out["all"] = float(every.mean()) if table.num_rows else float("nan")
    return out


def score(name: str, rows: pa.Table, train: pa.Table, holdout: pa.Table, info: TableInfo,
          constraints: list[str] | tuple = (), seed: int = 0, seconds: float | None = None) -> dict:
    """Every score of one set of rows (see the module docstring)."""
    discrete = list(info.discrete)
    report = quality.quality_report(holdout, rows, discrete)
    out = {"synthesizer": name, "rows": rows.num_rows,
           **{k: report[k] for k in ("overall", "column_shapes", "column_pair_trends")},
           "privacy": quality.privacy_report(train, holdout, rows, discrete, seed=seed)}
    if info.target:
        out["efficacy"] = quality.efficacy(rows, holdout, info.target, discrete, seed=seed)
    if constraints:
        out["validity"] = constraint_validity(rows, constraints, discrete)
    if seconds is not None:
        out["seconds"] = seconds
    return out


def reference_rows(train: pa.Table, info: TableInfo, n: int, seed: int = 0) -> dict:
    """``{name: (rows, seconds)}``: the train rows and the two baselines' samples of ``n`` rows."""
    from aigc_tf.tabular.baselines import GaussianCopula, IndependentMarginals

    out = {"real (train rows)": (train, 0.0)}
    for name, make in (("independent marginals", IndependentMarginals), ("Gaussian copula", GaussianCopula)):
        began = time.perf_counter()
        rows = make(list(info.discrete)).fit(train).sample(n, seed=seed)
        out[name] = (rows, time.perf_counter() - began)
    return out


def format_rows(results: list[dict]) -> str:
    """A fixed-width table of :func:`score` results."""
    header = (f"{'synthesizer':24} | {'overall':>7} | {'shapes':>6} | {'pairs':>6} | {'accuracy':>8} | "
              f"{'macro F1':>8} | {'DCR ratio':>9} | {'copies':>6} | {'valid':>6} | {'seconds':>7}")
    lines = [header, "-" * len(header)]
    nan = float("nan")
    for row in results:
        e, p = row.get("efficacy", {}), row["privacy"]
        valid = row.get("validity", {}).get("all", nan)
        lines.append(f"{row['synthesizer']:24} | {row['overall']:7.4f} | {row['column_shapes']:6.4f} | "
                     f"{row['column_pair_trends']:6.4f} | {e.get('accuracy', nan):8.4f} | "
                     f"{e.get('macro_f1', nan):8.4f} | {p['dcr_ratio']:9.3f} | {p['copies']:6.3f} | "
                     f"{valid:6.3f} | {row.get('seconds', nan):7.2f}")
    return "\n".join(lines)
