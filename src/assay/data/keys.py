"""Row keys for duplicate detection: exact and near-duplicate group ids.

Both functions return one int64 group id per row. Rows that share an id are
duplicates of each other; a row without any duplicate has an id of its own, so the
array can be passed directly as ``groups=`` to a group-aware splitter.

Near duplicates are found in time linear in the number of rows:

1. string columns are factorised and only their distinct values are normalised
   (Unicode NFKC, case folded, punctuation removed, whitespace collapsed);
2. float columns are quantised on a grid whose cell is the column's tolerance
   (``numeric_tolerance`` times the column's robust scale), under ``n_grids``
   randomly shifted grids: a locality-sensitive hash family for the max-norm;
3. rows sharing a full-row key under any grid become candidates; every candidate
   bucket is verified (same normalised strings, same other values, every float
   within tolerance), so no false positive survives a hash collision;
4. the verified buckets are merged into connected components (union-find via
   ``scipy.sparse.csgraph``); a component whose rows drift apart by more than the
   tolerance through a chain falls back to the buckets of the first grid, so every
   group stays within tolerance.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from assay.errors import ConfigError, DataError

__all__ = [
    "exact_duplicate_groups",
    "near_duplicate_groups",
    "normalize_text",
    "numeric_tolerances",
]

_MASK64 = (1 << 64) - 1
_C1 = np.uint64(0xFF51AFD7ED558CCD)
_C2 = np.uint64(0xC4CEB9FE1A85EC53)
_STEP = np.uint64(0x9E3779B97F4A7C15)
_NAN_BITS = np.float64(np.nan).view(np.int64)
# past 2**52 a float's grid cell cannot be computed exactly; such values match exactly
_GRID_LIMIT = float(2**52)
_PUNCT = re.compile(r"[^\w\s]|_")
_SPACE = re.compile(r"\s+")


def exact_duplicate_groups(frame: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """Group ids of rows that are equal on ``columns`` (a missing value equals a missing value).

    Args:
        frame: the rows.
        columns: the columns compared; at least one.

    Returns:
        An int64 array of ``len(frame)`` ids, dense from 0 in order of first appearance.
    """
    _check_columns(frame, columns)
    n = len(frame)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    h = _seed_hash(n)
    for name in columns:
        _mix_into(h, _exact_codes(frame[name]))
    labels = pd.factorize(h)[0].astype(np.int64)
    member = _in_shared_bucket(labels)
    if member.any():
        rows = np.flatnonzero(member)
        sub = frame.iloc[rows]
        codes = [_exact_codes(sub[name]) for name in columns]
        bad = _bad_rows(labels[rows], codes, [])
        if bad.any():
            labels = labels.copy()
            labels[rows[bad]] = _exact_split(labels[rows[bad]], codes, bad) + labels.max() + 1
    return _dense(labels)


def near_duplicate_groups(
    frame: pd.DataFrame,
    columns: list[str],
    *,
    numeric_tolerance: float = 1e-6,
    seed: int = 0,
    n_grids: int = 4,
) -> np.ndarray:
    """Group ids of rows equal up to case, whitespace, punctuation and tiny numeric noise.

    Strings compare after :func:`normalize_text`; float columns compare within
    ``numeric_tolerance`` times the column's robust scale (see
    :func:`numeric_tolerances`); every other column (integers, booleans, dates)
    compares exactly. A missing value only equals a missing value. Every pair of rows
    in a group is within tolerance on every float column (no false positive); a pair
    within tolerance is found with probability close to 1 when its difference is
    small against the tolerance (each of the ``n_grids`` shifted grids misses it with
    probability at most the sum over columns of difference / tolerance).

    Args:
        frame: the rows.
        columns: the columns compared; at least one.
        numeric_tolerance: the relative tolerance on float columns (0: exact).
        seed: seeds the grid shifts.
        n_grids: how many shifted grids; more finds pairs nearer the tolerance.

    Returns:
        An int64 array of ``len(frame)`` ids, dense from 0 in order of first appearance.
    """
    _check_columns(frame, columns)
    if not np.isfinite(numeric_tolerance) or numeric_tolerance < 0:
        raise ConfigError(
            "the near-duplicate tolerance must be a finite number >= 0",
            key="numeric_tolerance",
            expected="a relative tolerance such as 1e-6",
            received=numeric_tolerance,
            fix="Pass a small non-negative relative tolerance.",
        )
    if n_grids < 1:
        raise ConfigError(
            "near-duplicate detection needs at least one grid",
            key="n_grids",
            expected="an integer >= 1",
            received=n_grids,
            fix="Pass n_grids=4 (the default) or more.",
        )
    n = len(frame)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    tolerances = numeric_tolerances(frame, columns, numeric_tolerance=numeric_tolerance)
    gridded = [c for c in columns if tolerances.get(c, 0.0) > 0]
    keyed = [c for c in columns if c not in gridded]
    rng = np.random.default_rng(seed)
    shifts = rng.random((len(gridded), n_grids))

    base = _seed_hash(n)
    for name in keyed:
        _mix_into(base, _near_codes(frame[name]))
    hashes = [base.copy() for _ in range(n_grids)]
    del base
    for j, name in enumerate(gridded):
        values = _floats(frame[name])
        for g, grid_cells in enumerate(_cells(values, tolerances[name], shifts[j])):
            _mix_into(hashes[g], grid_cells)

    buckets = [pd.factorize(h)[0].astype(np.int64) for h in hashes]
    del hashes
    member = np.zeros(n, dtype=bool)
    for labels in buckets:
        member |= _in_shared_bucket(labels)
    rows = np.flatnonzero(member)
    result = np.arange(n, dtype=np.int64)
    if rows.size == 0:
        return result

    sub = frame.iloc[rows]
    codes = [_near_codes(sub[name]) for name in keyed]
    floats = []
    cells: list[list[np.ndarray]] = [[] for _ in range(n_grids)]
    bits = []
    for j, name in enumerate(gridded):
        values = _floats(sub[name])
        codes.append(_nonfinite_class(values))
        floats.append((np.where(np.isfinite(values), values, 0.0), tolerances[name]))
        bits.append(_float_bits(values))
        for g, grid_cells in enumerate(_cells(values, tolerances[name], shifts[j])):
            cells[g].append(grid_cells)

    local = [
        _verified(labels[rows], codes, floats, [codes + cells[g], codes + bits])
        for g, labels in enumerate(buckets)
    ]
    m = rows.size
    src = np.concatenate([np.arange(m) for _ in local])
    dst = np.concatenate([_anchors(labels) for labels in local])
    graph = coo_matrix((np.ones(src.size, dtype=np.int8), (src, dst)), shape=(m, m))
    _, component = connected_components(graph, directed=False)
    component = component.astype(np.int64)
    drifted = _bad_rows(component, [], floats)
    if drifted.any():
        # a chain a~b~c may put a and c further apart than the tolerance
        key = pd.MultiIndex.from_arrays([component[drifted], local[0][drifted]])
        pair = np.asarray(pd.factorize(key)[0], dtype=np.int64)
        component[drifted] = pair + component.max() + 1
    result[rows] = component + n
    return _dense(result)


def numeric_tolerances(
    frame: pd.DataFrame, columns: list[str], *, numeric_tolerance: float = 1e-6
) -> dict[str, float]:
    """The absolute tolerance of each float column among ``columns``.

    The tolerance is ``numeric_tolerance`` times the column's robust scale: the larger
    of its interquartile range and its median absolute value (so large values far
    from zero get room for their rounding noise); when both are 0, the median absolute
    non-zero value; when the column has no non-zero finite value, 1.
    """
    _check_columns(frame, columns)
    out: dict[str, float] = {}
    for name in columns:
        if not _is_float(frame[name]):
            continue
        values = _floats(frame[name])
        values = values[np.isfinite(values)]
        out[name] = float(numeric_tolerance * _robust_scale(values))
    return out


def normalize_text(values: Any) -> list[str]:
    """Normalise strings for near-duplicate comparison.

    NFKC Unicode form, case folded, punctuation (and ``_``) removed, runs of whitespace
    collapsed to one space, surrounding whitespace stripped: ``" Alice  SMITH."`` and
    ``"alice smith"`` both become ``"alice smith"``. Non-string values are first
    converted with ``str``.
    """
    out = []
    for value in values:
        text = unicodedata.normalize("NFKC", value if isinstance(value, str) else str(value))
        text = _PUNCT.sub("", text.casefold())
        out.append(_SPACE.sub(" ", text).strip())
    return out


def _check_columns(frame: pd.DataFrame, columns: list[str]) -> None:
    if not columns:
        raise DataError(
            "duplicate detection needs at least one column to compare",
            expected="a non-empty list of column names",
            received=list(columns),
            fix="Pass the feature columns (and the target) to compare rows on.",
        )
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        shown = ", ".join(map(str, list(frame.columns)[:20]))
        raise DataError(
            f"column '{missing[0]}' is not in the data",
            column=str(missing[0]),
            expected=f"one of: {shown}",
            received=missing,
            fix="Check the column names passed to duplicate detection.",
        )


def _is_float(series: pd.Series) -> bool:
    return bool(pd.api.types.is_float_dtype(series.dtype))


def _floats(series: pd.Series) -> np.ndarray:
    return np.asarray(series.to_numpy(dtype=np.float64, na_value=np.nan), dtype=np.float64)


def _float_bits(values: np.ndarray) -> np.ndarray:
    # + 0.0 turns -0.0 into 0.0; every NaN gets one bit pattern
    bits = (values + 0.0).view(np.int64).copy()
    bits[np.isnan(values)] = _NAN_BITS
    return bits


def _cells(values: np.ndarray, tolerance: float, shifts: np.ndarray) -> list[np.ndarray]:
    """The grid cell of each value under each shift; exact bits where no cell applies."""
    scaled = values / tolerance
    finite = np.isfinite(scaled) & (np.abs(scaled) < _GRID_LIMIT)
    fallback = _float_bits(values)
    safe = np.where(finite, scaled, 0.0)
    return [np.where(finite, np.floor(safe + shift).astype(np.int64), fallback) for shift in shifts]


def _nonfinite_class(values: np.ndarray) -> np.ndarray:
    out = np.zeros(values.size, dtype=np.int64)
    out[np.isnan(values)] = 1
    out[np.isposinf(values)] = 2
    out[np.isneginf(values)] = 3
    return out


def _robust_scale(values: np.ndarray) -> float:
    if values.size == 0:
        return 1.0
    q25, q75 = np.quantile(values, [0.25, 0.75])
    scale = max(float(q75 - q25), float(np.median(np.abs(values))))
    if not np.isfinite(scale):
        scale = float(np.median(np.abs(values)))
    if not scale > 0:
        nonzero = np.abs(values[values != 0])
        scale = float(np.median(nonzero)) if nonzero.size else 1.0
    return scale if np.isfinite(scale) and scale > 0 else 1.0


def _exact_codes(series: pd.Series) -> np.ndarray:
    """An int64 per row, equal exactly when the values are equal (missing equals missing)."""
    dtype = series.dtype
    if isinstance(dtype, np.dtype):
        values: np.ndarray = series.to_numpy()
        if dtype.kind == "f":
            return _float_bits(values.astype(np.float64, copy=False))
        if dtype.kind == "u" and dtype.itemsize == 8:
            return values.view(np.int64)
        if dtype.kind in "iub":
            return values.astype(np.int64)
        if dtype.kind in "mM":
            return values.view(np.int64)
    return _factorize(series)


def _near_codes(series: pd.Series) -> np.ndarray:
    """Codes of normalised strings for string columns, exact codes for the others."""
    dtype = series.dtype
    stringy = (
        dtype == object
        or pd.api.types.is_string_dtype(dtype)
        or (
            isinstance(dtype, pd.CategoricalDtype)
            and not pd.api.types.is_numeric_dtype(dtype.categories.dtype)
        )
    )
    if not stringy:
        return _exact_codes(series)
    codes, uniques = _factorize_with_uniques(series)
    normal = pd.factorize(np.asarray(normalize_text(uniques), dtype=object))[0].astype(np.int64)
    # code -1 (missing) reads the appended -1; an all-missing column has no uniques at all
    out: np.ndarray = np.append(normal, -1)[codes]
    return out


def _factorize(series: pd.Series) -> np.ndarray:
    return _factorize_with_uniques(series)[0]


def _factorize_with_uniques(series: pd.Series) -> tuple[np.ndarray, Any]:
    try:
        codes, uniques = pd.factorize(series)
    except TypeError:  # unhashable values such as lists
        codes, uniques = pd.factorize(series.map(repr, na_action="ignore"))
    return np.asarray(codes, dtype=np.int64), uniques


def _seed_hash(n: int) -> np.ndarray:
    return np.full(n, 0x243F6A8885A308D3, dtype=np.uint64)


def _mix_into(h: np.ndarray, codes: np.ndarray) -> None:
    """h <- fmix64(h * step + code), in place (a 64-bit hash combine, collisions verified)."""
    np.multiply(h, _STEP, out=h)
    np.add(h, np.ascontiguousarray(codes, dtype=np.int64).view(np.uint64), out=h)
    np.bitwise_xor(h, h >> np.uint64(33), out=h)
    np.multiply(h, _C1, out=h)
    np.bitwise_xor(h, h >> np.uint64(33), out=h)
    np.multiply(h, _C2, out=h)
    np.bitwise_xor(h, h >> np.uint64(33), out=h)


def _in_shared_bucket(labels: np.ndarray) -> np.ndarray:
    shared: np.ndarray = np.bincount(labels)[labels] >= 2
    return shared


def _bad_rows(
    labels: np.ndarray, codes: list[np.ndarray], floats: list[tuple[np.ndarray, float]]
) -> np.ndarray:
    """Rows whose bucket holds different codes, or floats spread wider than the tolerance."""
    if labels.size == 0:
        return np.zeros(0, dtype=bool)
    order = np.argsort(labels, kind="stable")
    sorted_labels = labels[order]
    starts = np.flatnonzero(np.r_[True, sorted_labels[1:] != sorted_labels[:-1]])
    bad = np.zeros(starts.size, dtype=bool)
    for values in codes:
        v = values[order]
        bad |= np.minimum.reduceat(v, starts) != np.maximum.reduceat(v, starts)
    for values, tolerance in floats:
        v = values[order]
        bad |= (np.maximum.reduceat(v, starts) - np.minimum.reduceat(v, starts)) > tolerance
    bucket = np.cumsum(np.r_[True, sorted_labels[1:] != sorted_labels[:-1]]) - 1
    out = np.empty(labels.size, dtype=bool)
    out[order] = bad[bucket]
    return out


def _exact_split(labels: np.ndarray, codes: list[np.ndarray], rows: np.ndarray) -> np.ndarray:
    """Dense ids of (bucket, every code) for the selected rows: exact sub-buckets."""
    matrix = np.column_stack([labels] + [c[rows] for c in codes])
    return np.unique(matrix, axis=0, return_inverse=True)[1].reshape(-1).astype(np.int64)


def _verified(
    labels: np.ndarray,
    codes: list[np.ndarray],
    floats: list[tuple[np.ndarray, float]],
    splits: list[list[np.ndarray]],
) -> np.ndarray:
    """Bucket labels where a bucket that fails verification (a hash collision) is split.

    Each of ``splits`` is tried in turn on the rows still failing: first the exact codes
    and grid cells (undoes the collision), then the exact values (always verifies).
    """
    labels = labels.copy()
    for exact in splits:
        bad = _bad_rows(labels, codes, floats)
        if not bad.any():
            break
        labels[bad] = _exact_split(labels[bad], exact, bad) + labels.max() + 1
    return labels


def _anchors(labels: np.ndarray) -> np.ndarray:
    """For each row, the position of the first row of its bucket (a star of edges)."""
    _, first, inverse = np.unique(labels, return_index=True, return_inverse=True)
    return np.asarray(first[inverse.reshape(-1)], dtype=np.int64)


def _dense(labels: np.ndarray) -> np.ndarray:
    return np.asarray(pd.factorize(labels)[0], dtype=np.int64)
