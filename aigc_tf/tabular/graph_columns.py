"""The inverse column transform in TensorFlow ops: a generated matrix -> one named tensor per column.

What the SavedModel returns, so a client gets table values, not the
model's internal encoding. Per column (``<name>``, with characters other
than letters, digits and ``_`` replaced by ``_``):

* strings and dates as ``tf.string`` (dates ``YYYY-MM-DD``), booleans as
  ``tf.bool``, integers and timestamps (in their unit since 1970) as
  ``tf.int64``, floats as ``tf.float64`` rounded to the column's decimals;
  a discrete numeric column returns its categories' numbers;
* a column that had nulls in training also gets ``<name>_is_null``
  (``tf.bool``); its value there is ``""``, ``false`` or 0.

The numbers are those :meth:`TableTransformer.inverse` computes in numpy
(the same float64 operations in the same order), so the SavedModel and
``aigc-tf sample`` agree exactly.
"""

from __future__ import annotations

import re

import pyarrow as pa
import tensorflow as tf


def output_name(column: str) -> str:
    return re.sub(r"\W", "_", column)


def _round(values, decimals):
    if decimals is None:
        return values
    if decimals == 0:
        return tf.round(values)
    # k / 10**d through a decimal string: the nearest double to k * 10**-d, which is what numpy's
    # rint(x * 10**d) / 10**d gives; a graph optimiser may turn a division by a constant into a
    # multiplication by its (inexact) reciprocal, which is off by one unit in the last place.
    whole = tf.cast(tf.round(values * tf.constant(10.0 ** decimals, tf.float64)), tf.int64)
    return tf.strings.to_number(tf.strings.join([tf.strings.as_string(whole), f"e-{decimals}"]), tf.float64)


def iso_dates(days):
    """Days since 1970-01-01 (int64) -> ``YYYY-MM-DD`` strings (H. Hinnant's civil-from-days, in integer ops)."""
    z = days + 719468
    era = tf.math.floordiv(z, 146097)
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = tf.where(mp < 10, mp + 3, mp - 9)
    year = yoe + era * 400 + tf.cast(month <= 2, tf.int64)
    text = lambda x, w: tf.strings.as_string(x, width=w, fill="0")  # noqa: E731
    return tf.strings.join([text(year, 4), text(month, 2), text(day, 2)], separator="-")


def _typed(values, arrow_type):
    """float64 values (already rounded) as the column's output tensor."""
    if pa.types.is_floating(arrow_type):
        return values
    whole = tf.cast(values, tf.int64)
    if pa.types.is_date32(arrow_type):
        return iso_dates(whole)
    if pa.types.is_boolean(arrow_type):
        return whole != 0
    return whole


def _constant_categories(categories: list, arrow_type):
    present = [c for c in categories if c is not None]
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type) or pa.types.is_dictionary(arrow_type):
        return tf.constant([("" if c is None else str(c)) for c in categories], tf.string)
    if pa.types.is_boolean(arrow_type):
        return tf.constant([bool(c) if c is not None else False for c in categories], tf.bool)
    if pa.types.is_date32(arrow_type):
        import datetime

        epoch = datetime.date(1970, 1, 1)
        days = [0 if c is None else (c - epoch).days for c in categories]
        return iso_dates(tf.constant(days, tf.int64))
    dtype = tf.float64 if pa.types.is_floating(arrow_type) or any(isinstance(c, float) for c in present) \
        else tf.int64
    return tf.constant([0 if c is None else c for c in categories], dtype)


def nearest(grid, values):
    """:func:`aigc_tf.tabular.transforms.nearest` in TensorFlow ops."""
    n = int(grid.shape[0])
    if n == 1:
        return tf.fill(tf.shape(values), grid[0])
    upper = tf.clip_by_value(tf.searchsorted(grid, values, side="left", out_type=tf.int64), 1, n - 1)
    low, high = tf.gather(grid, upper - 1), tf.gather(grid, upper)
    return tf.where(tf.abs(values - low) <= tf.abs(high - values), low, high)


def output_columns(transformer, matrix) -> dict:
    """``{name: tensor}`` for every column of ``transformer`` from a generated ``(rows, width)`` matrix."""
    out = {}
    start = 0
    matrix = tf.convert_to_tensor(matrix)
    for column in transformer.columns:
        block = matrix[:, start:start + column.width]
        start += column.width
        name = output_name(column.name)
        if hasattr(column, "categories"):
            index = tf.argmax(block, axis=1)
            out[name] = tf.gather(_constant_categories(column.categories, column.arrow_type), index)
            if None in column.categories:
                out[f"{name}_is_null"] = tf.equal(index, column.categories.index(None))
            continue
        mode = tf.argmax(block[:, 1:1 + column.modes], axis=1)
        alpha = tf.clip_by_value(tf.cast(block[:, 0], tf.float64), -1.0, 1.0)
        stds = tf.constant(column.stds, tf.float64)
        means = tf.constant(column.means, tf.float64)
        values = tf.clip_by_value(alpha * 4 * tf.gather(stds, mode) + tf.gather(means, mode),
                                  tf.constant(column.minimum, tf.float64), tf.constant(column.maximum, tf.float64))
        if column.snap is not None:
            values = nearest(tf.constant(column.snap, tf.float64), values)
        values = _round(values, column.decimals)
        typed = _typed(values, column.arrow_type)
        if column.nullable:
            null = tf.equal(tf.argmax(block[:, 1 + column.modes:], axis=1), 1)
            out[f"{name}_is_null"] = null
            typed = tf.where(null, tf.zeros_like(typed), typed)
        out[name] = typed
    return out
