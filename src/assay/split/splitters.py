"""The concrete splitters: stratified, random, group and chronological."""

from __future__ import annotations

import math
import re
import warnings
from typing import Any, Callable, cast

import numpy as np
import pandas as pd

from assay.errors import ConfigError, DataError
from assay.split.base import (
    SPLITTERS,
    BaseSplitter,
    Gap,
    SplitAssignment,
    SplitRequest,
)

__all__ = [
    "ChronologicalSplitter",
    "GroupSplitter",
    "RandomSplitter",
    "StratifiedSplitter",
    "parse_gap",
    "time_values",
]

_TRAIN, _VAL, _TEST = 0, 1, 2
_NAMES = ("train", "validation", "test")
# on equal shortfall the smaller parts are served first
_PREFERENCE = np.array([_TEST, _VAL, _TRAIN])


@SPLITTERS.register("random")
class RandomSplitter(BaseSplitter):
    """A seeded shuffle of blocks (single rows, duplicate sets, groups) into the three parts."""

    def assign_rows(self, frame: pd.DataFrame, request: SplitRequest) -> SplitAssignment:
        """Place the blocks by row count, in seeded order."""
        codes = np.zeros(len(frame), dtype=np.int64)
        return _assignment(_place(request.blocks, codes, 1, request, what="rows"))


@SPLITTERS.register("stratified")
class StratifiedSplitter(BaseSplitter):
    """Like ``random``, aiming at each class's share in every split.

    Blocks of several rows (duplicate sets, groups) go, largest first, to the part
    whose per-class shortfall best matches the block's class counts; single rows
    then fill each class's remaining shortfall exactly. Every class needs rows in
    at least three blocks, one per split.
    """

    def validate(self, frame: pd.DataFrame, request: SplitRequest) -> None:
        """The target must be named and have no missing values."""
        if request.target is None:
            raise ConfigError(
                "a stratified split needs the target column",
                key="data.target",
                fix="Name the target, or use split.strategy: random.",
            )
        missing = int(frame[request.target].isna().sum())
        if missing:
            raise DataError(
                f"the target has {missing} missing values, which cannot be stratified",
                column=request.target,
                expected="a label on every row",
                received=f"{missing} of {len(frame)} rows without a label",
                fix="Drop the unlabelled rows first (make_splits does this for you).",
            )

    def assign_rows(self, frame: pd.DataFrame, request: SplitRequest) -> SplitAssignment:
        """Place blocks so that every part gets its share of every class."""
        target = cast(str, request.target)
        try:
            codes, classes = pd.factorize(frame[target], sort=True)
        except TypeError:  # labels of mixed types do not sort
            codes, classes = pd.factorize(frame[target])
        codes = codes.astype(np.int64)
        _check_classes(request.blocks, codes, classes, target)
        part = _place(request.blocks, codes, len(classes), request, what="rows")
        return _assignment(part)


@SPLITTERS.register("group")
class GroupSplitter(BaseSplitter):
    """All rows of a group value land in one split (and so do duplicate rows).

    Groups are shuffled with the seed and assigned by row count, like ``random``;
    a missing group value is a group of its own.
    """

    def validate(self, frame: pd.DataFrame, request: SplitRequest) -> None:
        """The group column must be named (the base class checks it holds 3 groups or more)."""
        if request.group is None:
            raise ConfigError(
                "a group split needs a group column",
                key="data.group",
                fix="Name the column whose rows must stay together as data.group.",
            )

    def assign_rows(self, frame: pd.DataFrame, request: SplitRequest) -> SplitAssignment:
        """Place the groups (joined by duplicates) by row count, in seeded order."""
        codes = np.zeros(len(frame), dtype=np.int64)
        part = _place(request.blocks, codes, 1, request, what=f"groups of '{request.group}'")
        return _assignment(part)


@SPLITTERS.register("chronological")
class ChronologicalSplitter(BaseSplitter):
    """Train on the past, validate on what follows, test on the latest rows.

    Rows are ordered by the time column; rows with the same time always land on the
    same side. With a ``gap``, rows less than the gap before the validation start
    and before the test start are dropped, so that every training row is at least
    the gap earlier than every validation row, and every validation row at least
    the gap earlier than every test row. A block (duplicate set or group) that
    would reach into a later split keeps only its rows in the earliest one; the
    later rows are dropped, because moving them would break time order.

    The gap is a duration (``"7d"``, ``"12h"``, ``"30min"``) for a datetime column,
    or a number in the column's units (seconds for a datetime column).
    """

    randomized = False
    orders_time = True

    def validate(self, frame: pd.DataFrame, request: SplitRequest) -> None:
        """The time column must be named and parse completely; the gap must parse."""
        if request.time is None:
            raise ConfigError(
                "a chronological split needs a time column",
                key="data.time",
                fix="Name the event-time column as data.time, or choose another strategy.",
            )
        _, is_datetime = time_values(frame[request.time], request.time)
        parse_gap(request.gap, is_datetime=is_datetime)

    def assign_rows(self, frame: pd.DataFrame, request: SplitRequest) -> SplitAssignment:
        """Cut the time line at the test and validation starts, then apply the gap."""
        column = cast(str, request.time)
        t, is_datetime = time_values(frame[column], column)
        gap = parse_gap(request.gap, is_datetime=is_datetime)
        n = len(t)
        _, n_val, n_test = request.targets(n)
        ordered = np.sort(t, kind="stable")
        test_start = ordered[n - n_test]
        val_start = ordered[n - n_test - n_val]
        part = np.full(n, -1, dtype=np.int64)
        part[t >= test_start] = _TEST
        part[(t >= val_start) & (t < test_start)] = _VAL
        part[t < val_start] = _TRAIN
        _require_parts(part, column, _ties_error(column, t))
        part[(part == _VAL) & (t > test_start - gap)] = -1
        part[(part == _TRAIN) & (t > val_start - gap)] = -1
        _require_parts(part, column, _gap_too_large(column, request.gap))
        dropped_for_gap = int(np.count_nonzero(part < 0))

        blocks = request.blocks
        assigned = part >= 0
        earliest = np.full(int(blocks.max()) + 1, _TEST + 1, dtype=np.int64)
        np.minimum.at(earliest, blocks[assigned], part[assigned])
        straddling = assigned & (part > earliest[blocks])
        part[straddling] = -1
        removed = int(np.count_nonzero(straddling))
        _require_parts(part, column, _straddle_error(request.group, removed))
        return _assignment(part, dropped_for_gap=dropped_for_gap, straddling_removed=removed)


def _require_parts(part: np.ndarray, column: str, error: Callable[[str], DataError]) -> None:
    for index, name in enumerate(_NAMES):
        if not np.any(part == index):
            raise error(name)


def _ties_error(column: str, t: np.ndarray) -> Callable[[str], DataError]:
    def make(name: str) -> DataError:
        return DataError(
            f"the time column has too few distinct times for a {name} split "
            "(rows with the same time stay on one side)",
            column=column,
            expected="enough distinct times to cut the rows three ways",
            received=f"{np.unique(t).size} distinct times over {t.size} rows",
            fix="Use a finer time column or another split strategy.",
        )

    return make


def _gap_too_large(column: str, gap: Gap) -> Callable[[str], DataError]:
    def make(name: str) -> DataError:
        return DataError(
            f"the gap is so large that the {name} split is empty",
            column=column,
            expected="a gap shorter than the time the validation split spans",
            received=f"gap {gap!r}",
            fix="Shorten split.gap or raise split.validation_size.",
        )

    return make


def _straddle_error(group: str | None, removed: int) -> Callable[[str], DataError]:
    def make(name: str) -> DataError:
        return DataError(
            f"the {name} split is empty once rows repeating a duplicate or group of an "
            "earlier split are dropped",
            column=group,
            expected=f"rows in {name} whose duplicates and groups are not in an earlier split",
            received=f"{removed} straddling rows dropped",
            fix="Use a group column whose values do not recur over time, or a group split.",
        )

    return make


_GAP_UNITS: dict[str, float] = {
    **dict.fromkeys(("s", "sec", "secs", "second", "seconds"), 1.0),
    **dict.fromkeys(("min", "mins", "minute", "minutes"), 60.0),
    **dict.fromkeys(("h", "hr", "hrs", "hour", "hours"), 3600.0),
    **dict.fromkeys(("d", "day", "days"), 86400.0),
    **dict.fromkeys(("w", "wk", "week", "weeks"), 604800.0),
}
_GAP_TEXT = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*([a-zA-Z]+)\s*$")


def parse_gap(gap: Gap, *, is_datetime: bool) -> Any:
    """The gap in the units of the time values: int nanoseconds (datetime) or the column's units.

    ``None`` is no gap. A string is a duration (``"7d"``, ``"12h"``, ``"30min"``,
    ``"1w"``) or a plain number; a number is in the column's units, seconds for a
    datetime column.
    """
    if gap is None:
        return 0
    if isinstance(gap, bool) or not isinstance(gap, (int, float, str)):
        raise _gap_error(gap)
    if isinstance(gap, str):
        try:
            value = float(gap)
        except ValueError:
            value = _duration_seconds(gap)
            if not is_datetime:
                raise ConfigError(
                    "a duration needs a datetime time column; this time column is numeric",
                    key="split.gap",
                    expected="a number in the time column's units",
                    received=gap,
                    fix="Give split.gap as a number, e.g. 7 if the column counts days.",
                ) from None
    else:
        value = float(gap)
    if not math.isfinite(value):
        raise _gap_error(gap)
    if value < 0:
        raise ConfigError(
            "the gap must not be negative",
            key="split.gap",
            expected="a duration or number >= 0",
            received=gap,
            fix="Give the time to leave out between splits, e.g. '7d'.",
        )
    if is_datetime:
        return int(round(value * 1e9))
    return value


def _duration_seconds(text: str) -> float:
    match = _GAP_TEXT.match(text)
    if match and match.group(2).lower() in _GAP_UNITS:
        return float(match.group(1)) * _GAP_UNITS[match.group(2).lower()]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            delta = pd.Timedelta(text)
    except (ValueError, TypeError):
        raise _gap_error(text) from None
    if pd.isna(delta):
        raise _gap_error(text)
    return float(delta.total_seconds())


def _gap_error(gap: object) -> ConfigError:
    return ConfigError(
        "the gap is not a duration",
        key="split.gap",
        expected="a duration such as '7d', '12h', '30min', or a number in the time column's units",
        received=gap,
        fix="Write split.gap as e.g. '7d'.",
    )


def time_values(series: pd.Series, column: str) -> tuple[np.ndarray, bool]:
    """The time column as orderable numbers and whether it holds datetimes.

    Datetimes become int64 nanoseconds (UTC); numbers stay float64; strings are
    parsed as dates. A missing or unparseable value is a ``DataError`` naming examples.
    """
    if pd.api.types.is_bool_dtype(series.dtype):
        raise DataError(
            "the time column holds booleans, not times",
            column=column,
            expected="datetimes or numbers",
            received=str(series.dtype),
            fix="Name the event-time column as data.time.",
        )
    if pd.api.types.is_numeric_dtype(series.dtype):
        values = series.to_numpy(dtype=np.float64, na_value=np.nan)
        _no_missing(np.isnan(values), column)
        return values, False
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        parsed = series
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            parsed = pd.to_datetime(series, errors="coerce", format="mixed", utc=True)
        failed = parsed.isna() & series.notna()
        if failed.any():
            examples = ", ".join(repr(str(v)) for v in series[failed].unique()[:5])
            raise DataError(
                f"{int(failed.sum())} of {len(series)} values of the time column do not parse "
                "as dates",
                column=column,
                expected="dates or datetimes (e.g. 2024-03-01 or 2024-03-01T12:00:00Z)",
                received=examples,
                fix="Correct or drop these rows, or name another column as data.time.",
            )
    _no_missing(parsed.isna().to_numpy(), column)
    return parsed.to_numpy(dtype="datetime64[ns]").view(np.int64), True


def _no_missing(missing: np.ndarray, column: str) -> None:
    if missing.any():
        raise DataError(
            f"{int(missing.sum())} rows have no time, so they cannot be placed in time order",
            column=column,
            expected="a time on every row",
            received=f"{int(missing.sum())} missing of {missing.size}",
            fix="Fill or drop the rows without a time before splitting.",
        )


def _check_classes(blocks: np.ndarray, codes: np.ndarray, classes: Any, target: str) -> None:
    """Every class needs rows in three separate blocks (one per split)."""
    n_classes = len(classes)
    rows = np.bincount(codes, minlength=n_classes)
    pairs = np.unique(blocks * n_classes + codes)
    spread = np.bincount(pairs % n_classes, minlength=n_classes)
    short = [i for i in range(n_classes) if spread[i] < 3]
    if not short:
        return
    singles = [i for i in short if rows[i] == 1]
    if singles:
        names = ", ".join(repr(classes[i]) for i in singles[:10])
        raise DataError(
            f"class {names} has a single row: it can be neither learned nor evaluated",
            column=target,
            expected="at least 3 rows per class (one in each split)",
            received=f"1 row of class {names}",
            fix="Collect more rows of this class, merge it into a similar class, or drop it.",
        )
    detail = ", ".join(
        f"{classes[i]!r} has {rows[i]} rows"
        + (f" in {spread[i]} sets that must stay together" if spread[i] != rows[i] else "")
        for i in short[:10]
    )
    raise DataError(
        f"too few rows to stratify: class {detail}",
        column=target,
        expected="at least 3 rows per class (in 3 separate groups/duplicate sets), one per split",
        received=f"{len(short)} class(es) below that",
        fix="Collect more rows of these classes, merge them, or use split.strategy: random.",
    )


def _place(
    blocks: np.ndarray, codes: np.ndarray, n_classes: int, request: SplitRequest, *, what: str
) -> np.ndarray:
    """A part per row; rows of a block share a part; each class aims at its wanted counts.

    Wanted rows per (part, class) come from ``request.targets`` per class. Blocks
    of several rows go, largest first (blocks of a similar size in seeded order),
    to the part whose per-class shortfall has the largest dot product with the
    block's class counts; single rows then fill each class's remaining shortfall
    exactly (test first, then validation, then train, in seeded order). Last, a
    class missing from a part gets the smallest block holding it from the part
    with the most such blocks.
    """
    sizes = np.bincount(blocks)
    n_blocks = sizes.size
    if n_blocks < 3:
        raise DataError(
            f"only {n_blocks} sets of rows that must stay together ({what} joined by "
            "duplicates and groups), fewer than the 3 splits",
            expected="at least 3 independent rows or groups",
            received=f"{n_blocks} sets covering {int(sizes.sum())} rows",
            fix="Add rows or groups, or use a finer group column.",
        )
    rng = np.random.default_rng(request.seed)
    wanted = np.zeros((3, n_classes), dtype=np.int64)
    for label, n_rows in enumerate(np.bincount(codes, minlength=n_classes)):
        if n_rows:
            wanted[_TRAIN, label], wanted[_VAL, label], wanted[_TEST, label] = request.targets(
                int(n_rows)
            )
    shuffled = rng.permutation(n_blocks)
    # larger blocks first: a large block placed late would overshoot the part that
    # still has room; within a power of two the seeded order decides
    magnitude = np.floor(np.log2(sizes[shuffled])).astype(np.int64)
    order = shuffled[np.argsort(-magnitude, kind="stable")]
    block_part = np.full(n_blocks, -1, dtype=np.int64)
    filled = np.zeros((3, n_classes), dtype=np.int64)

    multi = order[sizes[order] > 1]
    if multi.size:
        local = np.full(n_blocks, -1, dtype=np.int64)
        local[multi] = np.arange(multi.size)
        member = local[blocks] >= 0
        counts = np.bincount(
            local[blocks[member]] * n_classes + codes[member], minlength=multi.size * n_classes
        ).reshape(multi.size, n_classes)
        for index, block in enumerate(multi):
            score = (wanted - filled) @ counts[index]
            chosen = int(_PREFERENCE[np.argmax(score[_PREFERENCE])])
            block_part[block] = chosen
            filled[chosen] += counts[index]

    single_rows = np.flatnonzero(sizes[blocks] == 1)
    rank = np.empty(n_blocks, dtype=np.int64)
    rank[order] = np.arange(n_blocks)
    single_rows = single_rows[np.argsort(rank[blocks[single_rows]], kind="stable")]
    for label in range(n_classes):
        rows = single_rows[codes[single_rows] == label]
        if not rows.size:
            continue
        short = np.clip(wanted[:, label] - filled[:, label], 0, None)
        share = _apportion(rows.size, short if short.sum() > 0 else wanted[:, label])
        n_test, n_val = int(share[_TEST]), int(share[_VAL])
        block_part[blocks[rows[:n_test]]] = _TEST
        block_part[blocks[rows[n_test : n_test + n_val]]] = _VAL
        block_part[blocks[rows[n_test + n_val :]]] = _TRAIN

    _repair(block_part, blocks, codes, n_classes, sizes, rank, what)
    return np.asarray(block_part[blocks])


def _repair(
    block_part: np.ndarray,
    blocks: np.ndarray,
    codes: np.ndarray,
    n_classes: int,
    sizes: np.ndarray,
    rank: np.ndarray,
    what: str,
) -> None:
    """Give every part at least one block of every class, moving the smallest spare block."""
    for label in range(n_classes):
        holding = np.unique(blocks[codes == label])
        for empty in (_TEST, _VAL, _TRAIN):
            if np.any(block_part[holding] == empty):
                continue
            per_part = np.bincount(block_part[holding], minlength=3)
            donor = int(np.argmax(per_part))
            if per_part[donor] < 2:
                raise DataError(
                    f"the {_NAMES[empty]} split cannot get rows of every class: {what} are "
                    "joined into too few sets that must stay together",
                    expected="at least 3 separate sets of rows per class",
                    received=f"{holding.size} sets",
                    fix="Add rows, or use a finer group column.",
                )
            spare = holding[block_part[holding] == donor]
            # the smallest spare block, the last such in the seeded order
            smallest = spare[sizes[spare] == sizes[spare].min()]
            block_part[smallest[np.argmax(rank[smallest])]] = empty


def _apportion(total: int, weights: np.ndarray) -> np.ndarray:
    """``total`` split in proportion to ``weights`` (largest remainders; ties: lower index)."""
    quotas = total * weights / weights.sum()
    counts = np.floor(quotas).astype(np.int64)
    remainders = quotas - counts
    for index in np.argsort(-remainders, kind="stable")[: total - int(counts.sum())]:
        counts[index] += 1
    return np.asarray(counts)


def _assignment(
    part: np.ndarray, *, dropped_for_gap: int = 0, straddling_removed: int = 0
) -> SplitAssignment:
    return SplitAssignment(
        train=np.flatnonzero(part == _TRAIN),
        validation=np.flatnonzero(part == _VAL),
        test=np.flatnonzero(part == _TEST),
        dropped_for_gap=dropped_for_gap,
        straddling_removed=straddling_removed,
    )
