"""Python inputs -> the three record shapes the native module takes.

The rules, stated once:

- A **NumPy 2-D array** of numbers is a matrix in signature order (a categorical cell holds
  the index of its level). An object array is read column by column, in signature order.
- A **pandas DataFrame**, **pyarrow Table/RecordBatch** or **dict of columns** is matched by
  column name and encoded as that same matrix (levels looked up here, at C speed, so the
  native side does no string work). Every feature must be present and no other column may be (a misspelt name
  would otherwise pass unnoticed); the error names the column and suggests the close match.
  A numeric feature takes an integer or float column (nullable ints become floats, a
  missing value is NaN and is imputed by the model); a categorical feature takes strings
  (``object``, ``string``, ``category`` or an Arrow string/dictionary column) or integers
  (written as their decimal text). A missing value in a categorical column is refused: the
  error names the column and row.
- A **list of dicts** goes to Wharf's own row check unchanged (JSON ``null`` is a missing
  value there, as in a JSON-lines file).
"""

from __future__ import annotations

import difflib
import functools
import json
import math
from collections.abc import Mapping

import numpy as np

from ._wharf import SignatureError


def _error(message: str, column=None, row=None) -> SignatureError:
    err = SignatureError(message)
    err.column = column
    err.row = row
    err.path = None if column is None else (f"columns.{column}" if row is None else f"columns.{column}[{row}]")
    return err


def _features(signature):
    """(name, levels or None) per feature, in signature order."""
    out = []
    for f in signature["features"]:
        kind = f["kind"]
        levels = kind["categorical"]["levels"] if isinstance(kind, dict) and "categorical" in kind else None
        out.append((f["name"], levels))
    return out


def prepare(X, signature):
    """``(kind, args)`` for ``Model.score_<kind>(*args)``."""
    return prepare_features(X, _features(signature))


def prepare_features(X, features):
    """:func:`prepare`, with the signature already read by :func:`_features`."""
    module = type(X).__module__.split(".")[0]
    if isinstance(X, np.ndarray):
        return _from_numpy(X, features)
    if module == "pandas" and hasattr(X, "columns") and hasattr(X, "iloc"):
        names = list(map(str, X.columns))
        fast = _pandas_numeric(X, names, features)
        if fast is not None:
            return "matrix", (fast,)
        return _from_columns(names, lambda name: X[name], len(X), features, pandas=True)
    if module == "pyarrow" and hasattr(X, "schema") and hasattr(X, "column"):
        return _from_columns(list(X.schema.names), lambda name: X.column(name), X.num_rows, features, arrow=True)
    if isinstance(X, Mapping):
        names = list(map(str, X.keys()))
        lengths = {len(v) for v in X.values()}
        if len(lengths) > 1:
            raise _error(f"the columns have different lengths: {sorted(lengths)}")
        n = lengths.pop() if lengths else 0
        return _from_columns(names, lambda name: X[name], n, features)
    if isinstance(X, (list, tuple)) and all(isinstance(r, Mapping) for r in X):
        return "rows", (_rows_json(X),)
    raise TypeError(
        f"cannot score a {type(X).__module__}.{type(X).__qualname__}: pass a pandas DataFrame, a NumPy 2-D "
        "array, a pyarrow Table or RecordBatch, a dict of columns or a list of dicts"
    )


def _from_numpy(X, features):
    if X.ndim != 2:
        raise _error(f"a NumPy input must be 2-D (rows x {len(features)} features), got {X.ndim}-D")
    if X.shape[1] != len(features):
        names = ", ".join(n for n, _ in features)
        raise _error(f"the array has {X.shape[1]} columns; the model takes {len(features)} ({names})")
    if X.dtype.kind in "fiu":
        return "matrix", (_float64(X),)
    if X.dtype.kind == "b":
        raise _error("a boolean array cannot be scored: the model takes numbers")
    columns = {name: X[:, i] for i, (name, _) in enumerate(features)}
    return _from_columns(list(columns), columns.__getitem__, X.shape[0], features)


def _float64(X):
    """``X`` as native float64, not copied when it already is (whatever its strides: the
    native side reads C-order, Fortran-order and sliced arrays where they lie)."""
    return X if X.dtype == np.float64 else X.astype(np.float64)


def _check_names(names, features):
    wanted = [n for n, _ in features]
    have = set(names)
    missing = [n for n in wanted if n not in have]
    extra = [n for n in names if n not in set(wanted)]
    if missing:
        name = missing[0]
        hint = difflib.get_close_matches(name, extra, n=1)
        detail = f" (the input has '{hint[0]}': misspelt?)" if hint else ""
        raise _error(f"missing column '{name}'{detail}; the model takes {', '.join(wanted)}", column=name)
    if extra:
        raise _error(
            f"unexpected column '{extra[0]}': the model takes only {', '.join(wanted)} (drop the others first)",
            column=extra[0],
        )


def _from_columns(names, get, n_rows, features, pandas=False, arrow=False):
    """Matched by name, then encoded as the float64 matrix Wharf scores fastest: numbers as
    they are, a categorical cell as the index of its level (the model's own matrix form)."""
    _check_names(names, features)
    columns = []
    for name, levels in features:
        col = get(name)
        if arrow:
            columns.append(_arrow_column(col, name, levels))
            continue
        values = _pandas_values(col, name, levels) if pandas else (col if isinstance(col, np.ndarray) else np.asarray(col))
        columns.append(_numeric(values, name) if levels is None else _codes(values, name, levels))
    if not columns:
        return "matrix", (np.empty((n_rows, 0)),)
    return "matrix", (np.column_stack(columns) if n_rows else np.empty((0, len(columns))),)


def _pandas_numeric(frame, names, features):
    """The whole frame as one float64 matrix in signature order, when every feature is
    numeric and every column a plain float or integer dtype with unique names. A frame whose
    features are one float64 block already in signature order gives a view of that block
    (column-major, no copy), which the native side scores where it lies; otherwise pandas
    copies its blocks out in one pass, where a column at a time costs a copy per column and
    another to stack them. ``None`` for anything else, which the column-by-column path
    checks and explains."""
    if any(levels is not None for _, levels in features) or len(set(names)) != len(names):
        return None
    if not all(isinstance(c, str) for c in frame.columns):
        return None
    if sorted(names) != sorted(n for n, _ in features):
        return None
    wanted = [n for n, _ in features]
    dtypes = frame.dtypes
    for name in wanted:
        dtype = dtypes[name]
        if getattr(dtype, "kind", "O") not in "fiu" or type(dtype).__module__.split(".")[0] != "numpy":
            return None
    columns = frame if names == wanted else frame[wanted]
    return columns.to_numpy(dtype=np.float64, copy=False)


def _pandas_values(series, name, levels):
    import pandas as pd

    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        raise _error(f"column '{name}' is boolean; the model takes {_kind(levels)}", column=name)
    if pd.api.types.is_numeric_dtype(dtype) and not isinstance(dtype, pd.CategoricalDtype):
        if levels is None or pd.api.types.is_float_dtype(dtype):
            # Nullable integers/floats: NA becomes NaN, which the model imputes.
            return series.to_numpy(dtype=np.float64, na_value=np.nan)
        missing = np.flatnonzero(series.isna().to_numpy())
        if missing.size:
            _refuse_level(None, name, int(missing[0]), levels)
        return series.to_numpy(dtype=np.int64)
    if levels is None:
        return series.to_numpy(dtype=object)
    # Text and category columns stay a Series: factorizing one is fast (no Python objects
    # for pyarrow-backed strings).
    return series


def _arrow_column(col, name, levels):
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    typ = col.type.value_type if pa.types.is_dictionary(col.type) else col.type
    if pa.types.is_boolean(typ):
        raise _error(f"column '{name}' is boolean; the model takes {_kind(levels)}", column=name)
    numeric = pa.types.is_integer(typ) or pa.types.is_floating(typ)
    if levels is None:
        if not numeric:
            return _numeric(np.asarray(col.to_pylist(), dtype=object), name)
        # Zero-copy for a float64 column without nulls; a copy otherwise.
        if col.null_count == 0 and pa.types.is_float64(typ):
            return col.to_numpy(zero_copy_only=False)
        return col.cast(pa.float64()).to_numpy(zero_copy_only=False)
    if numeric:
        return _codes(col.to_numpy(zero_copy_only=False), name, levels)
    if pa.types.is_dictionary(col.type):
        col = col.dictionary_decode()
    codes = pc.index_in(col, value_set=pa.array(levels, type=col.type))
    codes = codes.to_numpy(zero_copy_only=False)  # nulls (missing or unknown) become NaN
    bad = np.flatnonzero(np.isnan(codes))
    if bad.size:
        _refuse_level(col[int(bad[0])].as_py(), name, int(bad[0]), levels)
    return codes.astype(np.float64)


def _kind(levels):
    return "numbers" if levels is None else "text levels"


def _numeric(values, name):
    if values.dtype.kind in "fiu":
        return np.ascontiguousarray(values, dtype=np.float64)
    if values.dtype.kind == "b":
        raise _error(f"column '{name}' is boolean; the model takes numbers", column=name)
    out = np.empty(len(values), dtype=np.float64)
    for i, v in enumerate(values):
        if v is None:
            out[i] = math.nan
        elif isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_)):
            out[i] = v
        else:
            raise _error(
                f"column '{name}' row {i}: {v!r} ({type(v).__name__}) is not a number; the model takes numbers",
                column=name,
                row=i,
            )
    return out


def _codes(values, name, levels):
    """A categorical column as float64 level indices; the first bad cell is the error."""
    kind = getattr(values.dtype, "kind", "O")
    if kind in "iu":
        values = values.astype(str).astype(object)
    elif kind == "f":
        raise _error(
            f"column '{name}' holds floats; the model takes text levels (cast integer codes to int or str)",
            column=name,
        )
    elif kind == "b":
        raise _error(f"column '{name}' is boolean; the model takes text levels", column=name)
    try:
        import pandas as pd
    except ImportError:
        pd = None
    if pd is None or len(values) <= _SMALL:
        # A few rows: a dict lookup per cell beats pandas' per-call setup.
        index = _level_index(tuple(levels))
        cells = values.tolist() if hasattr(values, "tolist") else list(values)
        codes = np.array([index.get(v, -1) if isinstance(v, str) else -1 for v in cells], dtype=np.int64)
    else:
        # Hash each distinct value once, then look the few distinct ones up among the levels.
        found, distinct = pd.factorize(values, use_na_sentinel=True)
        lookup = np.append(pd.Index(levels, dtype=object).get_indexer(np.asarray(distinct, dtype=object)), -1)
        codes = lookup[found]  # a missing value's -1 picks the appended -1
    bad = np.flatnonzero(codes < 0)
    if bad.size:
        i = int(bad[0])
        _refuse_level(values.iloc[i] if hasattr(values, "iloc") else values[i], name, i, levels)
    return codes.astype(np.float64)


#: Up to this many rows, levels are looked up cell by cell in Python.
_SMALL = 64


@functools.lru_cache(maxsize=256)
def _level_index(levels):
    return {level: i for i, level in enumerate(levels)}


def _refuse_level(v, name, i, levels):
    if v is None or (isinstance(v, float) and math.isnan(v)) or type(v).__name__ in ("NAType", "NaTType"):
        raise _error(
            f"column '{name}' row {i}: missing value in a categorical column (fill it with a level first)",
            column=name,
            row=i,
        )
    if not isinstance(v, str):
        raise _error(
            f"column '{name}' row {i}: {v!r} ({type(v).__name__}) is not text; the column mixes types",
            column=name,
            row=i,
        )
    raise _error(
        f"column '{name}' row {i}: '{v}' is not a level the model knows ({', '.join(levels)})",
        column=name,
        row=i,
    )


def _rows_json(rows) -> str:
    try:
        return json.dumps(rows, allow_nan=False, default=_json_default)
    except TypeError as e:
        raise _error(f"records must hold JSON values: {e}") from None
    except ValueError:
        # NaN in a row: a missing value, as JSON null says it.
        clean = [
            {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()} for r in rows
        ]
        return json.dumps(clean, allow_nan=False, default=_json_default)


def _json_default(v):
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        return None if math.isnan(v) else float(v)
    raise TypeError(f"{v!r} ({type(v).__name__}) is not a JSON value")
