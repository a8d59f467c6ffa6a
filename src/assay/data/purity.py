"""Pure regions: a value or a range of one column that implies a single class.

A field recorded after the outcome often leaks only part of the time: a cancellation
fee is paid by some of the customers who leave and by nobody who stays, so
``cancellation_fee > 0`` holds on a tenth of the rows and every one of them churned,
while the other nine tenths say nothing. Such a column predicts the target only
moderately on the whole (a single-feature ROC AUC of 0.8), so a test of overall
strength misses it; what gives it away is a region of the column that is *pure*.

:func:`find_pure_regions` looks at every region of one column:

* each value that at least :data:`MIN_ROWS` rows share (a category, a boolean, a
  spike of a number such as 0);
* each side of a threshold of a number or date (``x > t``, ``x <= t``);
* the rows where the column is missing, and the rows where it is present.

A region is reported for a class when all of these hold:

1. it is *material*: at least :data:`MIN_SHARE` of the rows and :data:`MIN_ROWS` rows;
2. it is *(near-)pure*: at least :data:`MIN_PURITY` of its rows are of that class;
3. the purity is *far above the base rate*: the region keeps at most
   :data:`MAX_CONTAMINATION` of the other classes' overall share, so a majority
   class of 95% needs a region of 99.75%, not 99%;
4. *chance cannot explain it*: the one-sided exact binomial test of the class count
   against the base rate, Bonferroni-corrected for every region and class looked at,
   has p < :data:`ALPHA`; small categories that happen to be pure fail here;
5. for the side of a threshold, the *edge is sharp*: the rows just beyond the
   threshold (at least half as many as the region holds) keep at most
   :data:`MAX_EDGE_LIFT` of the region's lift over the base rate. A genuinely
   predictive measurement gets purer gradually towards its tail, so its neighbouring
   rows are nearly as pure; a leak jumps from pure to ordinary at its boundary.

Nothing here knows about audits or models: the audit's ``target_leakage`` check and
the evaluation's plausibility check both call it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

__all__ = [
    "ALPHA",
    "MAX_CONTAMINATION",
    "MAX_EDGE_LIFT",
    "MIN_PURITY",
    "MIN_ROWS",
    "MIN_SHARE",
    "PureRegion",
    "find_pure_regions",
    "purest_region",
]

MIN_PURITY = 0.99
MIN_SHARE = 0.02
MIN_ROWS = 30
MAX_CONTAMINATION = 0.03
ALPHA = 1e-6
MAX_EDGE_LIFT = 0.2
EDGE_SHARE = 0.25

RegionKind = Literal["value", "above", "below", "missing", "present"]


@dataclass(frozen=True)
class PureRegion:
    """A region of one column where a single class holds (nearly) every row.

    Attributes:
        feature: the column.
        region: the region in words, e.g. ``cancellation_fee_paid > 0``.
        kind: ``value`` (one value), ``above`` / ``below`` (a side of a threshold),
            ``missing`` or ``present``.
        rows: rows in the region; ``share`` is their share of all rows looked at.
        label: the class the region implies, as text.
        purity: the share of the region's rows of that class.
        base_rate: the class's share of all rows.
        p_value: the Bonferroni-corrected one-sided binomial p-value of the class count.
        edge_rate: the class's share of the rows just beyond a threshold (None for a
            value, missing or present region).
    """

    feature: str
    region: str
    kind: RegionKind
    rows: int
    share: float
    label: str
    purity: float
    base_rate: float
    p_value: float
    edge_rate: float | None = None

    @property
    def contrary_rows(self) -> int:
        """Rows in the region of another class."""
        return self.rows - int(round(self.purity * self.rows))

    def describe(self) -> str:
        """``'fee > 0' (12.6% of rows) is 100.0% class '1' (base rate 30.1%)``."""
        return (
            f"'{self.region}' ({100 * self.share:.1f}% of rows, {self.rows:,}) is "
            f"{100 * self.purity:.1f}% class '{self.label}' (base rate {100 * self.base_rate:.1f}%)"
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable fields."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PureRegion:
        """Inverse of :meth:`to_dict`."""
        return cls(
            feature=str(data["feature"]),
            region=str(data["region"]),
            kind=data["kind"],
            rows=int(data["rows"]),
            share=float(data["share"]),
            label=str(data["label"]),
            purity=float(data["purity"]),
            base_rate=float(data["base_rate"]),
            p_value=float(data["p_value"]),
            edge_rate=None if data.get("edge_rate") is None else float(data["edge_rate"]),
        )


@dataclass(frozen=True)
class _Block:
    """Regions of one kind: per region, the class counts, the edge counts and the words."""

    kind: RegionKind
    counts: np.ndarray  # (regions, classes)
    edge: np.ndarray | None  # (regions, classes): the rows just beyond each threshold
    words: Callable[[int], str]


def find_pure_regions(
    series: pd.Series, y: np.ndarray, labels: Sequence[str], *, name: str | None = None
) -> list[PureRegion]:
    """Every pure region of ``series`` for the class codes ``y`` (0..k-1), largest first.

    ``labels[c]`` is the text of class ``c``; ``name`` the column's name in the region's
    words (default: the series name). Rows are aligned by position.
    """
    y = np.asarray(y, dtype=np.int64)
    n, k = len(y), len(labels)
    column = str(name if name is not None else series.name)
    if n < MIN_ROWS or k < 2 or len(series) != n:
        return []
    base = np.bincount(y, minlength=k).astype(np.float64) / n
    blocks = _blocks(series, y, k, column)
    tested = max(1, sum(len(b.counts) for b in blocks) * k)
    found: list[PureRegion] = []
    for block in blocks:
        found.extend(_judge(block, column, labels, base, n, tested))
    found.sort(key=lambda r: (-r.rows, -r.purity))
    return found


def purest_region(
    series: pd.Series, y: np.ndarray, labels: Sequence[str], *, name: str | None = None
) -> PureRegion | None:
    """The largest pure region of ``series`` (None when there is none)."""
    found = find_pure_regions(series, y, labels, name=name)
    return found[0] if found else None


def _judge(
    block: _Block, column: str, labels: Sequence[str], base: np.ndarray, n: int, tested: int
) -> list[PureRegion]:
    """The regions of ``block`` that pass every test (see the module docstring)."""
    counts = block.counts
    if not len(counts):
        return []
    rows = counts.sum(axis=1)
    cls = np.argmax(counts, axis=1)
    hits = counts[np.arange(len(counts)), cls]
    purity = hits / np.maximum(rows, 1)
    rate = base[cls]
    keep = (rows >= MIN_ROWS) & (rows >= MIN_SHARE * n) & (rows < n) & (purity >= MIN_PURITY)
    keep &= (1.0 - purity) <= MAX_CONTAMINATION * (1.0 - rate)
    edge_rate = np.full(len(counts), np.nan)
    if block.edge is not None:
        edge_rows = block.edge.sum(axis=1)
        edge_hits = block.edge[np.arange(len(counts)), cls]
        edge_rate = np.where(edge_rows > 0, edge_hits / np.maximum(edge_rows, 1), rate)
        keep &= (edge_rate - rate) <= MAX_EDGE_LIFT * (purity - rate)
    out: list[PureRegion] = []
    for i in np.flatnonzero(keep):
        p_value = min(1.0, _binomial_tail(int(hits[i]), int(rows[i]), float(rate[i])) * tested)
        if p_value >= ALPHA:
            continue
        out.append(
            PureRegion(
                feature=column,
                region=block.words(int(i)),
                kind=block.kind,
                rows=int(rows[i]),
                share=round(float(rows[i]) / n, 6),
                label=str(labels[int(cls[i])]),
                purity=round(float(purity[i]), 6),
                base_rate=round(float(rate[i]), 6),
                p_value=float(f"{p_value:.3g}"),
                edge_rate=None if block.edge is None else round(float(edge_rate[i]), 6),
            )
        )
    return out


def _blocks(series: pd.Series, y: np.ndarray, k: int, column: str) -> list[_Block]:
    dtype = series.dtype
    missing = series.isna().to_numpy()
    out: list[_Block] = []
    if 0 < missing.sum() < len(series):
        both = np.stack([_counts(y[missing], k), _counts(y[~missing], k)])
        out.append(_Block("missing", both[:1], None, lambda i: f"{column} is missing"))
        out.append(_Block("present", both[1:], None, lambda i: f"{column} is present"))
    present = ~missing
    if not present.any():
        return out
    numeric = (
        pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)
    ) or pd.api.types.is_datetime64_any_dtype(dtype)
    if numeric:
        return out + _numeric_blocks(series[present], y[present], k, column)
    values = series[present].astype(str).to_numpy()
    codes, levels = pd.factorize(values)
    table = np.zeros((len(levels), k), dtype=np.int64)
    np.add.at(table, (codes, y[present]), 1)
    out.append(_Block("value", table, None, lambda i: f"{column} = {levels[i]}"))
    return out


def _numeric_blocks(series: pd.Series, y: np.ndarray, k: int, column: str) -> list[_Block]:
    dates = pd.api.types.is_datetime64_any_dtype(series.dtype)
    if dates:
        values = series.to_numpy(dtype="datetime64[ns]").astype(np.int64).astype(np.float64)
    else:
        values = series.to_numpy(dtype=np.float64, na_value=np.nan)
    finite = np.isfinite(values)
    values, y = values[finite], y[finite]
    if not len(values):
        return []
    distinct, inverse = np.unique(values, return_inverse=True)
    table = np.zeros((len(distinct), k), dtype=np.int64)
    np.add.at(table, (inverse, y), 1)
    sizes = table.sum(axis=1)
    spikes = np.flatnonzero(sizes >= MIN_ROWS)
    out = [
        _Block(
            "value", table[spikes], None,
            lambda i: f"{column} = {_show(distinct[spikes[i]], dates)}",
        )
    ]
    m = len(distinct)
    if m < 2:
        return out
    below = np.cumsum(table, axis=0)  # below[j]: rows with a value <= distinct[j]
    cum = below.sum(axis=1)
    total = int(cum[-1])
    j = np.arange(m - 1)
    low_rows = cum[:-1]
    high_rows = total - low_rows
    # the rows just beyond a threshold: whole values, at least half as many as the region
    near = np.ceil(EDGE_SHARE * np.minimum(low_rows, high_rows))
    need_low = np.maximum(MIN_ROWS, near).astype(np.int64)
    stop = np.minimum(np.searchsorted(cum, low_rows + need_low, side="left"), m - 1)
    edge_low = below[stop] - below[j]
    need_high = need_low
    start = np.searchsorted(cum, low_rows - need_high, side="right")
    before = np.vstack([np.zeros((1, k), dtype=np.int64), below])  # before[s]: rows < index s
    edge_high = below[j] - before[start]
    out.append(
        _Block("below", below[:-1], edge_low, lambda i: f"{column} <= {_show(distinct[i], dates)}")
    )
    out.append(
        _Block(
            "above", below[-1] - below[:-1], edge_high,
            lambda i: f"{column} > {_show(distinct[i], dates)}",
        )
    )
    return out


def _counts(y: np.ndarray, k: int) -> np.ndarray:
    return np.bincount(y, minlength=k).astype(np.int64)


def _show(value: float, dates: bool) -> str:
    if dates:
        return str(pd.Timestamp(int(value)))
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.6g}"


def _binomial_tail(hits: int, rows: int, rate: float) -> float:
    """P(X >= hits) for X ~ Binomial(rows, rate)."""
    from scipy.stats import binom

    return float(binom.sf(hits - 1, rows, rate))
