"""The splitter contract: ``BaseSplitter``, its registry and the assignment it returns.

A splitter turns a frame into train / validation / test row positions. Leakage
safety is shared: the base class joins the user's groups with duplicate groups
into *blocks* (connected components), and every splitter keeps a block in one
split (moving it whole, or, where moving would break time order, dropping the
later rows).
"""

from __future__ import annotations

import abc
import math
from dataclasses import dataclass, replace
from typing import ClassVar

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from assay.aliases import AliasTable
from assay.data.keys import exact_duplicate_groups
from assay.errors import ConfigError, DataError

__all__ = [
    "MIN_ROWS_PER_SPLIT",
    "PARTS",
    "SPLITTERS",
    "BaseSplitter",
    "Gap",
    "SplitAssignment",
    "SplitRequest",
    "union_groupings",
]

#: the three parts of a split, in time order for chronological splits
PARTS: tuple[str, str, str] = ("train", "validation", "test")
#: fewer expected rows than this in any split is too small to learn or evaluate on
MIN_ROWS_PER_SPLIT = 3

Gap = str | float | int | None


@dataclass(frozen=True)
class SplitRequest:
    """The validated arguments of one split, as a splitter's ``assign_rows`` sees them.

    Attributes:
        target: the label column (stratification), or None.
        group: the user's group column, or None.
        time: the event-time column (chronological splits), or None.
        test_size: share of rows for the sealed test set.
        validation_size: share of rows for validation.
        gap: time left out before the validation and the test start (chronological only).
        seed: the seed of every random choice.
        blocks: int64 block id per row; rows of one block must never straddle splits
            (the union of the group column and the duplicate groups).
    """

    target: str | None
    group: str | None
    time: str | None
    test_size: float
    validation_size: float
    gap: Gap
    seed: int
    blocks: np.ndarray

    def targets(self, n: int) -> tuple[int, int, int]:
        """Wanted rows per split (train, validation, test) for ``n`` rows, at least 1 each."""
        n_test = max(1, int(round(n * self.test_size)))
        n_val = max(1, int(round(n * self.validation_size)))
        return n - n_test - n_val, n_val, n_test


@dataclass(frozen=True)
class SplitAssignment:
    """What a splitter decided: sorted int64 positions per split and what it left out.

    Attributes:
        train, validation, test: row positions into the frame given to the splitter.
        dropped_for_gap: rows left out by a chronological gap.
        straddling_removed: rows left out because an earlier split already holds rows
            of their block (a duplicate or a group), where moving them would break time order.
    """

    train: np.ndarray
    validation: np.ndarray
    test: np.ndarray
    dropped_for_gap: int = 0
    straddling_removed: int = 0

    def __post_init__(self) -> None:
        for name in PARTS:
            values = np.sort(np.asarray(getattr(self, name), dtype=np.int64))
            values.setflags(write=False)
            object.__setattr__(self, name, values)

    def as_tuple(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(train, validation, test)``."""
        return self.train, self.validation, self.test

    def part(self, name: str) -> np.ndarray:
        """The positions of one part by name (``train``, ``validation`` or ``test``)."""
        if name not in PARTS:
            raise KeyError(name)
        result: np.ndarray = getattr(self, name)
        return result


class BaseSplitter(abc.ABC):
    """Divides rows into train, validation and test, never letting a block straddle.

    Subclasses are registered with ``@SPLITTERS.register("alias")`` and implement
    :meth:`assign_rows`. Call order of :meth:`split` / :meth:`assign`:

    1. the sizes, the row count, the named columns and (when a group column is
       named) its three or more groups are checked (``ConfigError`` / ``DataError``);
    2. :meth:`validate` (a hook, nothing by default) checks the columns the
       splitter needs;
    3. blocks are built: the group column joined with the duplicate groups (given,
       or the exact duplicates over every column but group and time);
    4. :meth:`assign_rows` returns a :class:`SplitAssignment`;
    5. the result is checked: parts disjoint, none empty.

    The frame is never modified. Positions refer to the frame as given.

    Attributes:
        randomized: whether the seed changes the split (False for time order).
        orders_time: whether the split puts train before validation before test in time.
    """

    alias: ClassVar[str]
    randomized: ClassVar[bool] = True
    orders_time: ClassVar[bool] = False

    def split(
        self,
        frame: pd.DataFrame,
        *,
        target: str | None = None,
        group: str | None = None,
        time: str | None = None,
        test_size: float = 0.2,
        validation_size: float = 0.2,
        gap: Gap = None,
        seed: int = 0,
        duplicates: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Train, validation and test positions (sorted int64 arrays) into ``frame``."""
        return self.assign(
            frame,
            target=target,
            group=group,
            time=time,
            test_size=test_size,
            validation_size=validation_size,
            gap=gap,
            seed=seed,
            duplicates=duplicates,
        ).as_tuple()

    def assign(
        self,
        frame: pd.DataFrame,
        *,
        target: str | None = None,
        group: str | None = None,
        time: str | None = None,
        test_size: float = 0.2,
        validation_size: float = 0.2,
        gap: Gap = None,
        seed: int = 0,
        duplicates: np.ndarray | None = None,
    ) -> SplitAssignment:
        """Like :meth:`split`, with the counts of rows left out.

        ``duplicates`` is an int64 duplicate-group id per row (``assay.data.keys``);
        when None, exact duplicates over every column but ``group`` and ``time`` are used.
        """
        _check_sizes(test_size, validation_size, len(frame))
        for role, column in (("target", target), ("group", group), ("time", time)):
            if column is not None and column not in frame.columns:
                raise DataError(
                    f"the {role} column is not in the data",
                    column=column,
                    expected="one of: " + ", ".join(map(str, frame.columns[:20])),
                    fix=f"Name an existing column as data.{role}.",
                )
        if gap is not None and not self.orders_time:
            raise ConfigError(
                f"a gap only applies to chronological splits, not to '{self.alias}'",
                key="split.gap",
                received=gap,
                fix="Remove split.gap or set split.strategy: chronological.",
            )
        if group is not None:
            _check_group_count(frame[group], group)
        request = SplitRequest(
            target=target,
            group=group,
            time=time,
            test_size=float(test_size),
            validation_size=float(validation_size),
            gap=gap,
            seed=int(seed),
            blocks=np.zeros(0, dtype=np.int64),
        )
        self.validate(frame, request)
        blocks = _blocks(frame, group=group, time=time, duplicates=duplicates)
        request = replace(request, blocks=blocks)
        result = self.assign_rows(frame, request)
        _check_result(result, len(frame), self.alias)
        return result

    def validate(self, frame: pd.DataFrame, request: SplitRequest) -> None:
        """Hook: raise ``ConfigError``/``DataError`` when the frame cannot be split this way."""

    @abc.abstractmethod
    def assign_rows(self, frame: pd.DataFrame, request: SplitRequest) -> SplitAssignment:
        """Assign rows to the three parts; rows of one ``request.blocks`` id stay together."""


SPLITTERS: AliasTable[type[BaseSplitter]] = AliasTable("splitter")


def union_groupings(*groupings: np.ndarray) -> np.ndarray:
    """Join row groupings: rows linked by any of them share one id (connected components).

    Ids are renumbered 0..k-1 in order of first appearance, so the result does not
    depend on how the inputs were numbered.
    """
    arrays = [np.asarray(g) for g in groupings if g is not None]
    if not arrays:
        raise ValueError("union_groupings needs at least one grouping")
    n = len(arrays[0])
    codes = [pd.factorize(g, use_na_sentinel=False)[0].astype(np.int64) for g in arrays]
    if len(codes) == 1:
        return _first_seen(codes[0])
    # a bipartite graph: row nodes 0..n-1, then one node per label of each grouping
    offset = n
    rows: list[np.ndarray] = []
    cols: list[np.ndarray] = []
    for code in codes:
        rows.append(np.arange(n, dtype=np.int64))
        cols.append(code + offset)
        offset += int(code.max()) + 1 if n else 0
    graph = coo_matrix(
        (np.ones(n * len(codes), dtype=np.int8), (np.concatenate(rows), np.concatenate(cols))),
        shape=(offset, offset),
    )
    _, labels = connected_components(graph, directed=False)
    return _first_seen(labels[:n].astype(np.int64))


def _first_seen(ids: np.ndarray) -> np.ndarray:
    return np.asarray(pd.factorize(ids)[0], dtype=np.int64)


def _blocks(
    frame: pd.DataFrame, *, group: str | None, time: str | None, duplicates: np.ndarray | None
) -> np.ndarray:
    n = len(frame)
    if duplicates is None:
        columns = [c for c in frame.columns if c not in (group, time)]
        duplicates = exact_duplicate_groups(frame, columns) if columns else np.arange(n)
    duplicates = np.asarray(duplicates)
    if duplicates.shape != (n,):
        raise ValueError(f"duplicates must hold one id per row ({n}), got shape {duplicates.shape}")
    if group is None:
        return union_groupings(duplicates)
    return union_groupings(frame[group].to_numpy(dtype=object), duplicates)


def _check_sizes(test_size: float, validation_size: float, n: int) -> None:
    for key, value in (("split.test_size", test_size), ("split.validation_size", validation_size)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 0.5:
            raise ConfigError(
                "a split size must be a share of the rows",
                key=key,
                expected="a number above 0 and below 0.5",
                received=value,
                fix=f"Set {key} to e.g. 0.2.",
            )
    smallest = min(test_size, validation_size, 1.0 - test_size - validation_size)
    needed = math.ceil(MIN_ROWS_PER_SPLIT / smallest - 1e-9)
    if n < needed:
        raise DataError(
            f"the data set is too small to split: {MIN_ROWS_PER_SPLIT} rows per split are "
            f"needed, which takes at least {needed} rows with test_size={test_size:g} and "
            f"validation_size={validation_size:g}",
            expected=f">= {needed} rows with a known target",
            received=f"{n} rows",
            fix="Add rows, or raise split.test_size / split.validation_size.",
        )


def _check_group_count(series: pd.Series, column: str) -> None:
    n_groups = int(series.nunique(dropna=False))
    if n_groups < 3:
        detail = "a single group" if n_groups == 1 else f"only {n_groups} groups"
        raise DataError(
            f"the group column holds {detail}, so no split can keep groups apart",
            column=column,
            expected="at least 3 groups (one per split; dozens for stable estimates)",
            received=f"{n_groups} distinct value(s)",
            fix="Choose a finer group column, or remove data.group.",
        )


def _check_result(result: SplitAssignment, n: int, alias: str) -> None:
    seen = np.concatenate(result.as_tuple())
    if seen.size and (seen.min() < 0 or seen.max() >= n):
        raise RuntimeError(f"splitter '{alias}' returned positions outside 0..{n - 1}")
    if np.unique(seen).size != seen.size:
        raise RuntimeError(f"splitter '{alias}' put a row in two splits")
    for name in PARTS:
        if result.part(name).size == 0:
            raise DataError(
                f"the {name} split is empty",
                expected="rows in train, validation and test",
                received=f"{n} rows, none assigned to {name}",
                fix="Add rows or groups, or change split.test_size / split.validation_size.",
            )
