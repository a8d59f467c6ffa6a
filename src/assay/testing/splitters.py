"""The leakage contract every splitter must pass, as a reusable pytest class.

Use it like this (a test module provides the two fixtures)::

    import pytest
    from assay.testing.splitters import SplitCase, SplitterContract, example_frame

    @pytest.fixture
    def splitter():
        return MySplitter()

    @pytest.fixture
    def split_case():
        return SplitCase("plain", example_frame(240, seed=1), target="target")

    class TestMySplitter(SplitterContract):
        pass

The checks are also available as functions (``check_*``) for property tests.
Requires pytest (a test dependency).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pytest

from assay.split.base import PARTS, BaseSplitter, SplitAssignment
from assay.split.splitters import parse_gap, time_values

__all__ = [
    "SplitCase",
    "SplitterContract",
    "check_duplicates_intact",
    "check_groups_intact",
    "check_partition",
    "check_time_order",
    "example_frame",
]


@dataclass(frozen=True)
class SplitCase:
    """A frame and the arguments a splitter is called with in the contract."""

    name: str
    frame: pd.DataFrame = field(repr=False)
    target: str | None = None
    group: str | None = None
    time: str | None = None
    test_size: float = 0.2
    validation_size: float = 0.2
    gap: str | float | None = None
    seed: int = 0

    def kwargs(self, seed: int | None = None) -> dict[str, Any]:
        """Keyword arguments for ``BaseSplitter.split``/``assign``."""
        return {
            "target": self.target,
            "group": self.group,
            "time": self.time,
            "test_size": self.test_size,
            "validation_size": self.validation_size,
            "gap": self.gap,
            "seed": self.seed if seed is None else seed,
        }

    @property
    def duplicate_columns(self) -> list[str]:
        """The columns two rows must share to be exact duplicates (all but group and time)."""
        return [c for c in self.frame.columns if c not in (self.group, self.time)]


def example_frame(
    n: int = 240,
    *,
    seed: int = 0,
    n_classes: int = 2,
    n_groups: int | None = None,
    time: bool = False,
    duplicate_share: float = 0.1,
) -> pd.DataFrame:
    """A small frame with features ``x0``, ``x1``, ``colour``, a ``target`` and exact duplicates.

    ``duplicate_share`` of the rows copy the features and target of another row.
    ``n_groups`` adds a ``group`` column; ``time`` adds a daily ``time`` column with
    some rows sharing a day.
    """
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "x0": rng.normal(size=n).round(6),
            "x1": rng.normal(size=n).round(6),
            "colour": rng.choice(np.array(["red", "green", "blue"]), n),
            "target": rng.integers(0, n_classes, n),
        }
    )
    n_copies = int(round(n * duplicate_share))
    if n_copies:
        copies = rng.choice(n, size=n_copies, replace=False)
        sources = rng.choice(np.setdiff1d(np.arange(n), copies), size=n_copies)
        for column in list(frame.columns):
            values = frame[column].to_numpy().copy()
            values[copies] = values[sources]
            frame[column] = values
    if n_groups is not None:
        frame["group"] = rng.integers(0, n_groups, n)
    if time:
        days = np.sort(rng.integers(0, int(n * 0.9), n))
        frame["time"] = pd.Timestamp("2024-01-01") + pd.to_timedelta(days, unit="D")
    return frame


def check_partition(assignment: SplitAssignment, n: int, *, drops_rows: bool) -> None:
    """Parts are sorted, disjoint, inside ``0..n-1``, non-empty, and cover every row not dropped."""
    parts = assignment.as_tuple()
    for name, part in zip(PARTS, parts):
        if part.dtype != np.int64:
            raise AssertionError(f"{name} positions are {part.dtype}, not int64")
        if part.size == 0:
            raise AssertionError(f"{name} is empty")
        if np.any(np.diff(part) <= 0):
            raise AssertionError(f"{name} positions are not sorted and unique")
        if part.min() < 0 or part.max() >= n:
            raise AssertionError(f"{name} has positions outside 0..{n - 1}")
    seen = np.concatenate(parts)
    if np.unique(seen).size != seen.size:
        raise AssertionError("a row is in two parts")
    left_out = n - seen.size
    counted = assignment.dropped_for_gap + assignment.straddling_removed
    if left_out != counted:
        raise AssertionError(f"{left_out} rows are in no part, but {counted} drops are counted")
    if not drops_rows and left_out:
        raise AssertionError(f"{left_out} rows were dropped by a splitter that must keep all rows")


def check_groups_intact(parts: tuple[np.ndarray, ...], frame: pd.DataFrame, group: str) -> None:
    """No value of ``group`` (a missing value counts as one group) appears in two parts."""
    codes = pd.factorize(frame[group], use_na_sentinel=False)[0]
    _check_sets_intact(parts, codes, f"group column '{group}'")


def check_duplicates_intact(
    parts: tuple[np.ndarray, ...], frame: pd.DataFrame, columns: list[str]
) -> None:
    """No two rows equal on ``columns`` land in different parts."""
    codes = frame.groupby(columns, dropna=False, sort=False).ngroup().to_numpy()
    _check_sets_intact(parts, codes, "exact duplicates on " + ", ".join(columns))


def check_time_order(
    parts: tuple[np.ndarray, ...], frame: pd.DataFrame, time: str, gap: str | float | None
) -> None:
    """max(train) <= min(validation) - gap and max(validation) <= min(test) - gap."""
    t, is_datetime = time_values(frame[time], time)
    step = parse_gap(gap, is_datetime=is_datetime)
    train, validation, test = (t[p] for p in parts)
    if train.max() > validation.min() - step:
        raise AssertionError(
            f"train reaches {train.max()}, later than validation start {validation.min()} - gap"
        )
    if validation.max() > test.min() - step:
        raise AssertionError(
            f"validation reaches {validation.max()}, later than test start {test.min()} - gap"
        )


def _check_sets_intact(parts: tuple[np.ndarray, ...], codes: np.ndarray, what: str) -> None:
    owner = np.full(int(codes.max()) + 1 if codes.size else 0, -1, dtype=np.int64)
    for index, part in enumerate(parts):
        ids = np.unique(codes[part])
        clash = ids[(owner[ids] >= 0) & (owner[ids] != index)]
        if clash.size:
            first = int(np.flatnonzero(codes == clash[0])[0])
            raise AssertionError(
                f"{what}: the set of row {first} is in both {PARTS[owner[clash[0]]]} and "
                f"{PARTS[index]}"
            )
        owner[ids] = index


class SplitterContract:
    """Leakage invariants every splitter keeps (Optuna ``StorageTestCase`` style).

    A subclass (or its module) provides the fixtures ``splitter`` (a
    :class:`~assay.split.base.BaseSplitter`) and ``split_case`` (a :class:`SplitCase`
    the splitter can handle).

    Attributes:
        size_tolerance: how far the test share may be from the requested one
            (blocks, ties and drops move it).
    """

    size_tolerance: ClassVar[float] = 0.1

    def test_parts_disjoint_and_cover_every_row(
        self, splitter: BaseSplitter, split_case: SplitCase
    ) -> None:
        """Every row is in exactly one part, or counted as dropped (time splits only)."""
        result = splitter.assign(split_case.frame, **split_case.kwargs())
        check_partition(result, len(split_case.frame), drops_rows=splitter.orders_time)

    def test_split_matches_assign(self, splitter: BaseSplitter, split_case: SplitCase) -> None:
        """``split`` returns the parts of ``assign``."""
        parts = splitter.split(split_case.frame, **split_case.kwargs())
        result = splitter.assign(split_case.frame, **split_case.kwargs())
        for got, want in zip(parts, result.as_tuple()):
            np.testing.assert_array_equal(got, want)

    def test_no_group_in_two_parts(self, splitter: BaseSplitter, split_case: SplitCase) -> None:
        """Rows sharing a group value stay in one part."""
        if split_case.group is None:
            pytest.skip("the case has no group column")
        parts = splitter.split(split_case.frame, **split_case.kwargs())
        check_groups_intact(parts, split_case.frame, split_case.group)

    def test_no_exact_duplicate_straddles(
        self, splitter: BaseSplitter, split_case: SplitCase
    ) -> None:
        """Rows equal on every column but group and time stay in one part."""
        parts = splitter.split(split_case.frame, **split_case.kwargs())
        check_duplicates_intact(parts, split_case.frame, split_case.duplicate_columns)

    def test_time_order_holds_with_gap(
        self, splitter: BaseSplitter, split_case: SplitCase
    ) -> None:
        """Train ends a gap before validation starts, validation a gap before test."""
        if not splitter.orders_time:
            pytest.skip(f"'{splitter.alias}' does not order by time")
        if split_case.time is None:
            raise AssertionError("a time-ordered splitter needs a case with a time column")
        parts = splitter.split(split_case.frame, **split_case.kwargs())
        check_time_order(parts, split_case.frame, split_case.time, split_case.gap)

    def test_same_seed_same_split(self, splitter: BaseSplitter, split_case: SplitCase) -> None:
        """Two calls with one seed give identical parts."""
        first = splitter.split(split_case.frame, **split_case.kwargs())
        again = splitter.split(split_case.frame.copy(), **split_case.kwargs())
        for a, b in zip(first, again):
            np.testing.assert_array_equal(a, b)

    def test_different_seed_different_split(
        self, splitter: BaseSplitter, split_case: SplitCase
    ) -> None:
        """Another seed gives another split (for randomised splitters)."""
        if not splitter.randomized:
            pytest.skip(f"'{splitter.alias}' does not use the seed")
        first = splitter.split(split_case.frame, **split_case.kwargs())
        other = splitter.split(split_case.frame, **split_case.kwargs(seed=split_case.seed + 1))
        assert any(not np.array_equal(a, b) for a, b in zip(first, other))

    def test_frame_not_modified(self, splitter: BaseSplitter, split_case: SplitCase) -> None:
        """Splitting leaves the frame as it was."""
        before = split_case.frame.copy(deep=True)
        splitter.split(split_case.frame, **split_case.kwargs())
        pd.testing.assert_frame_equal(split_case.frame, before)

    def test_test_share_near_requested(
        self, splitter: BaseSplitter, split_case: SplitCase
    ) -> None:
        """The test part holds about ``test_size`` of the rows."""
        _, _, test = splitter.split(split_case.frame, **split_case.kwargs())
        share = test.size / len(split_case.frame)
        assert abs(share - split_case.test_size) <= self.size_tolerance
