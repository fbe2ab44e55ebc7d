"""Marginals of real and synthetic tables side by side, one panel per column (a PNG)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from aigc_tf.tabular.transforms import category_values, is_discrete, to_numbers


def plot_marginals(real: pa.Table, synthetic: dict, path: str | Path, discrete: list[str] | None = None,
                   columns_per_row: int = 3) -> Path:
    """Histograms (numeric columns, shared bins from the real values) or bar charts of category shares
    (discrete columns) of ``real`` and each ``{name: table}`` in ``synthetic``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fields = list(real.schema)
    rows = -(-len(fields) // columns_per_row)
    fig, axes = plt.subplots(rows, columns_per_row, figsize=(4 * columns_per_row, 2.8 * rows), squeeze=False)
    tables = {"real (hold-out)": real, **synthetic}
    for ax, field in zip(axes.flat, fields, strict=False):
        if is_discrete(field, discrete or []):
            shares = {}
            for name, table in tables.items():
                values = [str(v) for v in category_values(table.column(field.name))]
                keys, counts = np.unique(values, return_counts=True)
                shares[name] = dict(zip(keys, counts / max(len(values), 1), strict=True))
            keys = sorted(set().union(*shares.values()))[:30]
            width = 0.8 / len(tables)
            for i, (name, share) in enumerate(shares.items()):
                ax.bar(np.arange(len(keys)) + i * width, [share.get(k, 0.0) for k in keys], width, label=name)
            ax.set_xticks(np.arange(len(keys)) + 0.4 - width / 2, keys, rotation=90 if len(keys) > 8 else 0,
                          fontsize=7)
        else:
            values, null = to_numbers(real.column(field.name), field.name)
            bins = np.histogram_bin_edges(values[~null], bins=30)
            for name, table in tables.items():
                v, n = to_numbers(table.column(field.name), field.name)
                ax.hist(v[~n], bins=bins, density=True, histtype="step", label=name)
        ax.set_title(field.name, fontsize=9)
    for ax in list(axes.flat)[len(fields):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path
