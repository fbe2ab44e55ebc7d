"""Tables out: columns as Arrow arrays, written to CSV or Parquet in chunks.

Arrow's CSV and Parquet writers (C++) format the values; a file is written
under ``<name>.partial`` and renamed when complete, so an interrupted run never
leaves a truncated file under the name asked for, and an existing file is
never replaced unless asked.
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute  # noqa: F401  (Array.take needs it; importing it on first use costs 60 ms inside a run)
import pyarrow.csv as pcsv

from aigc_tf.errors import UserError
from aigc_tf.tabular.expressions import Value

FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
PARQUET_ROW_GROUP = 1 << 20  # fixed, so a Parquet file's bytes do not depend on the chunk size
_CSV_SPECIAL = (",", '"', "\n", "\r")


_STORAGE = {"integer": (np.int64, None), "float": (np.float64, None), "date": (np.int32, None),
            "datetime": (np.int64, None)}


def _validity(mask: np.ndarray | None):
    if mask is None or not mask.any():
        return None, 0
    return pa.py_buffer(np.packbits(~mask, bitorder="little")), int(mask.sum())


def _strings(offsets: np.ndarray, data: bytes | np.ndarray, mask: np.ndarray | None = None) -> pa.Array:
    validity, nulls = _validity(mask)
    return pa.Array.from_buffers(pa.string(), len(offsets) - 1,
                                 [validity, pa.py_buffer(offsets.astype(np.int32)), pa.py_buffer(data)], nulls)


def arrow_array(value: Value, column_type: str):
    """One column as an Arrow array (nulls from ``value.null``).

    Built from buffers rather than with ``pa.array``, whose first call
    imports pandas when it is installed (0.4 s of every ``aigc-tf generate``).
    """
    mask = value.null
    validity, nulls = _validity(mask)
    if value.kind == "categorical":
        encoded = [str(c).encode() for c in value.categories]
        dictionary = _strings(np.cumsum([0] + [len(e) for e in encoded]), b"".join(encoded) or b"\0")
        codes = pa.Array.from_buffers(pa.int32(), len(value.values),
                                      [validity, pa.py_buffer(np.ascontiguousarray(value.values, np.int32))], nulls)
        return dictionary.take(codes)
    if value.kind == "string":  # fixed-width ASCII from a pattern
        strings = np.ascontiguousarray(value.values)
        width = strings.dtype.itemsize
        return _strings(np.arange(0, (len(strings) + 1) * width, width), strings.view(np.uint8), mask)
    if column_type == "boolean":
        data = pa.py_buffer(np.packbits(np.asarray(value.values, dtype=bool), bitorder="little"))
        return pa.Array.from_buffers(pa.bool_(), len(value.values), [validity, data], nulls)
    arrow_type = {"integer": pa.int64(), "float": pa.float64(), "date": pa.date32(),
                  "datetime": pa.timestamp("s")}[column_type]
    values = np.ascontiguousarray(value.values, dtype=_STORAGE[column_type][0])
    return pa.Array.from_buffers(arrow_type, len(values), [validity, pa.py_buffer(values)], nulls)


def arrow_table(columns: dict[str, Value], types: dict[str, str]):
    arrays = [arrow_array(value, types[name]) for name, value in columns.items()]
    return pa.Table.from_arrays(arrays, names=list(columns))


def output_format(path: str | Path) -> str:
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise UserError(f"--out {path}: unknown format {suffix or '(no suffix)'!r}; "
                        f"end the file name in .csv or .parquet")
    return FORMATS[suffix]


def csv_needs_quotes(strings) -> bool:
    """Whether any of these strings would need quoting in CSV (Arrow's unquoted style refuses them)."""
    return any(any(ch in s for ch in _CSV_SPECIAL) for s in strings)


class TableWriter:
    """Writes Arrow tables chunk by chunk to ``path`` (CSV or Parquet), atomically.

    Use as a context manager; leaving it with an exception removes the
    partial file. :meth:`encode` turns a table into what :meth:`write` takes
    (CSV bytes without the header, or the table for Parquet) and may run in
    another thread. ``quote``: quote string fields (needed when a value may
    hold a comma, quote or newline); otherwise nothing is quoted.
    """

    def __init__(self, path: str | Path, overwrite: bool = False, quote: bool = False):
        self.path = Path(path)
        self.format = output_format(self.path)
        if self.path.exists() and not overwrite:
            raise UserError(f"--out {self.path} exists and is kept; pass --overwrite to replace it or choose "
                            f"another file name")
        if not self.path.parent.is_dir():
            raise UserError(f"--out {self.path}: folder {self.path.parent} does not exist; create it first")
        self.partial = self.path.with_name(self.path.name + ".partial")
        self.quote = quote
        self.rows = 0
        self._file = None
        self._writer = None
        self._pending = []  # Parquet: tables waiting to fill a row group

    def __enter__(self) -> TableWriter:
        return self

    def _csv(self, table, header: bool):
        """The table as CSV text in an Arrow buffer (written to the file without a copy)."""
        sink = pa.BufferOutputStream()
        # One batch per chunk: Arrow's default of 1,024 rows per batch costs about 30% more time per row.
        options = pcsv.WriteOptions(include_header=header, quoting_style="needed" if self.quote else "none",
                                    batch_size=max(1024, table.num_rows))
        pcsv.write_csv(table, sink, options)
        return sink.getvalue()

    def encode(self, table):
        """``(rows, payload)`` for :meth:`write`."""
        if self.format == "csv":
            return table.num_rows, table.schema, self._csv(table, header=False)
        return table.num_rows, table.schema, table

    def write(self, encoded) -> None:
        rows, schema, payload = encoded
        if self._file is None and self._writer is None:
            self._open(schema)
        self.rows += rows
        if self.format == "csv":
            self._file.write(payload)
            return
        self._pending.append(payload)
        pending = sum(t.num_rows for t in self._pending)
        if pending >= PARQUET_ROW_GROUP:
            # One contiguous table: Arrow lays out pages along chunk boundaries, which would follow the chunk size.
            joined = pa.concat_tables(self._pending).combine_chunks()
            full = pending // PARQUET_ROW_GROUP * PARQUET_ROW_GROUP
            self._writer.write_table(joined.slice(0, full), row_group_size=PARQUET_ROW_GROUP)
            self._pending = [joined.slice(full)] if full < pending else []

    def _open(self, schema) -> None:
        if self.format == "csv":
            self._file = open(self.partial, "wb")  # noqa: SIM115 (closed in __exit__)
            # the header from an empty table (Schema.empty_table would import pandas, 0.4 s)
            self._file.write(self._csv(pa.Table.from_batches([], schema), header=True))
        else:
            import pyarrow.parquet as pq

            self._writer = pq.ParquetWriter(str(self.partial), schema)

    def __exit__(self, exc_type, exc, tb) -> None:
        if self._writer is not None:
            if exc_type is None and self._pending:

                self._writer.write_table(pa.concat_tables(self._pending).combine_chunks(),
                                         row_group_size=PARQUET_ROW_GROUP)
            self._writer.close()
        if self._file is not None:
            self._file.close()
        if exc_type is not None:
            with contextlib.suppress(FileNotFoundError):
                self.partial.unlink()
            return
        os.replace(self.partial, self.path)


@contextlib.contextmanager
def progress_bar(total: int, enabled: bool = True, unit: str = "rows") -> Iterator:
    """A tqdm bar on stderr (``update(n)``); a no-op when disabled."""
    if not enabled:
        class _Silent:
            def update(self, n):
                pass

        yield _Silent()
        return
    from tqdm import tqdm

    bar = tqdm(total=total, unit=unit, unit_scale=True, file=sys.stderr, dynamic_ncols=True, mininterval=0.5)
    try:
        yield bar
    finally:
        bar.close()


def default_workers() -> int:
    """Threads that make chunks: the CPUs this process may use, at most 4."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:
        cpus = os.cpu_count() or 1
    return max(1, min(4, cpus))


def write_chunks(make_table, starts: list[int], path: str | Path, total: int, overwrite: bool = False,
                 quote: bool = False, progress: bool = True, workers: int | None = None) -> dict:
    """Write ``make_table(start)`` for each start, in order, to ``path``; returns rows, bytes, seconds.

    Chunks are made and encoded by ``workers`` threads (default: the CPU
    count, at most 4) a few chunks ahead of the writer, so memory holds at
    most ``2 * workers`` chunks; numpy and Arrow release the GIL for the
    heavy parts. The order of the output does not depend on the threads.
    """
    began = time.perf_counter()
    workers = workers or default_workers()
    with TableWriter(path, overwrite, quote) as writer, progress_bar(total, progress) as bar, \
            concurrent.futures.ThreadPoolExecutor(workers) as pool:
        ahead = collections.deque()
        for start in starts:
            ahead.append(pool.submit(lambda s: writer.encode(make_table(s)), start))
            if len(ahead) >= 2 * workers:
                _write_next(writer, ahead, bar)
        while ahead:
            _write_next(writer, ahead, bar)
    seconds = time.perf_counter() - began
    return {"rows": writer.rows, "bytes": Path(path).stat().st_size, "seconds": seconds}


def _write_next(writer: TableWriter, ahead, bar) -> None:
    encoded = ahead.popleft().result()
    writer.write(encoded)
    bar.update(encoded[0])
