"""Tables in: CSV and Parquet files, the embedded default, and a fixed train / hold-out split.

The embedded default, ``fair``, is a real survey table that ships inside
statsmodels (``statsmodels/datasets/fair/fair.csv``, read as a file without
importing statsmodels): Fair's 1978 extramarital-affairs data from the 1974
*Redbook* survey of 6,366 married women, nine columns (ratings of the
marriage and of religiousness, age, years married, children, education,
her and her husband's occupation codes, and a continuous measure of time
spent in affairs). statsmodels includes it with the author's permission.
"""

from __future__ import annotations

import dataclasses
import importlib.util
from pathlib import Path

import numpy as np
import pyarrow as pa

from aigc_tf.errors import DataError


@dataclasses.dataclass(frozen=True)
class TableInfo:
    """What a dataset says about its columns: which numeric ones are categories, and the efficacy target
    (a column, or a row expression such as ``"affairs > 0"``)."""

    name: str
    discrete: tuple[str, ...] = ()
    target: str | None = None
    description: str = ""


EMBEDDED = {
    "fair": TableInfo(
        "fair",
        discrete=("rate_marriage", "religious", "occupation", "occupation_husb"),
        target="affairs > 0",  # Fair's question: did she have an affair? (32% yes)
        description="Fair (1978): 6,366 respondents of the 1974 Redbook survey, 9 columns (bundled with statsmodels)",
    ),
}


def embedded_path(name: str) -> Path:
    """The CSV file of an embedded table inside the installed statsmodels."""
    spec = importlib.util.find_spec("statsmodels")
    if spec is None or not spec.submodule_search_locations:
        raise DataError(f"the embedded table {name!r} ships inside statsmodels, which is not installed: "
                        f"pip install statsmodels (it is a dependency of aigc_tf; reinstall with pip install -e .)")
    path = Path(spec.submodule_search_locations[0]) / "datasets" / name / f"{name}.csv"
    if not path.is_file():
        raise DataError(f"{path} is missing from the installed statsmodels; reinstall it (pip install "
                        f"--force-reinstall statsmodels)")
    return path


def read_table(path: str | Path) -> pa.Table:
    """A CSV (empty fields: null) or Parquet file as an Arrow table; one clear error for a bad file."""
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file; point data.path at a .csv or .parquet table")
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            table = pcsv.read_csv(path, convert_options=pcsv.ConvertOptions(strings_can_be_null=True))
        elif suffix in (".parquet", ".pq"):
            table = pq.read_table(path)
        else:
            raise DataError(f"{path}: unknown table format {suffix or '(no suffix)'!r}; use a .csv or .parquet file")
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(f"{path}: cannot be read as {suffix[1:].upper()} ({str(exc).splitlines()[0]})") from None
    if table.num_rows == 0 or table.num_columns == 0:
        raise DataError(f"{path}: the table has no rows or no columns")
    return table.combine_chunks()


def load_table(name: str, path: str | None = None, discrete: list[str] | None = None,
               target: str | None = None) -> tuple[pa.Table, TableInfo]:
    """The table ``data.name`` names (an embedded one, or ``file`` with ``data.path``) and its info."""
    if name == "file":
        if not path:
            raise DataError("data.name=file needs data.path: a .csv or .parquet table")
        table = read_table(path)
        info = TableInfo(Path(path).stem, tuple(discrete or ()), target)
    elif name in EMBEDDED:
        table = read_table(embedded_path(name))
        base = EMBEDDED[name]
        info = dataclasses.replace(base, discrete=tuple(discrete) if discrete is not None else base.discrete,
                                   target=target or base.target)
    else:
        raise DataError(f"unknown table {name!r}; use one of: {', '.join([*EMBEDDED, 'file'])} (file: with "
                        f"data.path)")
    from aigc_tf.tabular.expressions import Expression

    target_columns = (Expression(info.target).names if info.target not in table.column_names else [info.target]) \
        if info.target else []
    for column in [*info.discrete, *target_columns]:
        if column not in table.column_names:
            raise DataError(f"{info.name}: column {column!r} is not in the table (columns: "
                            f"{', '.join(table.column_names)})")
    return table, info


def split_table(table: pa.Table, test_fraction: float = 0.2, seed: int = 0) -> tuple[pa.Table, pa.Table]:
    """A fixed random split into train and hold-out rows (the same for the same seed and table size)."""
    if not 0 < test_fraction < 1:
        raise DataError(f"the hold-out fraction must be in (0, 1), got {test_fraction}")
    n_test = max(1, int(round(table.num_rows * test_fraction)))
    if table.num_rows - n_test < 2:
        raise DataError(f"the table has {table.num_rows} rows: too few to hold out {test_fraction:.0%} of them")
    order = np.random.default_rng(seed).permutation(table.num_rows)
    return table.take(np.sort(order[n_test:])), table.take(np.sort(order[:n_test]))
