"""The split stage: ``make_splits(frame, spec) -> SplitPlan``."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from assay.config.metrics import CLASSIFICATION_TASKS
from assay.data.keys import exact_duplicate_groups, near_duplicate_groups
from assay.errors import DataError, LeakageError
from assay.split.base import PARTS, SPLITTERS, union_groupings

if TYPE_CHECKING:
    from assay.config.spec import ProjectSpec

__all__ = ["SplitPlan", "fingerprint_test_set", "make_splits"]


@dataclass(frozen=True, eq=False)
class SplitPlan:
    """Train / validation / test row positions into the frame, and how they were made.

    Attributes:
        strategy: the resolved strategy (stratified | random | group | chronological).
        train, validation, test: sorted int64 positions into the frame given to
            :func:`make_splits` (read-only arrays; lists in :meth:`to_dict`).
        seed: the seed the split used.
        gap: the configured chronological gap, as written.
        sizes: rows per part, and ``dropped`` (no target, in a gap, or straddling).
        class_balance: per part, the share of each class (classification only, else {}).
        straddling_removed: rows dropped because their duplicate set or group already
            had rows in an earlier split (chronological splits only; other strategies
            move whole sets instead, so this is 0).
        dropped_for_gap: rows left out by the chronological gap.
        test_fingerprint: ``sha256:`` over the data version and the sorted test
            positions: identifies the sealed test set.
        data_version: the data version the positions refer to.
    """

    strategy: str
    train: np.ndarray
    validation: np.ndarray
    test: np.ndarray
    seed: int
    gap: str | float | None
    sizes: dict[str, int]
    class_balance: dict[str, dict[str, float]]
    straddling_removed: int
    dropped_for_gap: int
    test_fingerprint: str
    data_version: str = field(default="")

    def __post_init__(self) -> None:
        for name in PARTS:
            values = np.sort(np.asarray(getattr(self, name), dtype=np.int64))
            values.setflags(write=False)
            object.__setattr__(self, name, values)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SplitPlan):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]

    def part(self, name: str) -> np.ndarray:
        """The positions of ``train``, ``validation`` or ``test``."""
        if name not in PARTS:
            raise KeyError(f"{name!r} is not a split; use one of {', '.join(PARTS)}")
        result: np.ndarray = getattr(self, name)
        return result

    def take(self, frame: pd.DataFrame, name: str) -> pd.DataFrame:
        """The rows of one part of ``frame`` (the frame the plan was made on)."""
        return frame.iloc[self.part(name)]

    def verify_test_set(self, data_version: str) -> None:
        """Raise ``LeakageError`` unless the test positions and data version match the seal."""
        expected = fingerprint_test_set(self.test, data_version)
        if expected != self.test_fingerprint:
            raise LeakageError(
                "the test set no longer matches its seal: the data or the test rows changed",
                expected=self.test_fingerprint,
                received=expected,
                fix="Re-run the split on the registered data version; never edit test rows.",
            )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable form (positions as lists of int)."""
        return {
            "strategy": self.strategy,
            "train": self.train.tolist(),
            "validation": self.validation.tolist(),
            "test": self.test.tolist(),
            "seed": int(self.seed),
            "gap": self.gap,
            "sizes": {k: int(v) for k, v in self.sizes.items()},
            "class_balance": {
                part: {label: float(share) for label, share in shares.items()}
                for part, shares in self.class_balance.items()
            },
            "straddling_removed": int(self.straddling_removed),
            "dropped_for_gap": int(self.dropped_for_gap),
            "test_fingerprint": self.test_fingerprint,
            "data_version": self.data_version,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SplitPlan:
        """The inverse of :meth:`to_dict`."""
        return cls(
            strategy=data["strategy"],
            train=np.asarray(data["train"], dtype=np.int64),
            validation=np.asarray(data["validation"], dtype=np.int64),
            test=np.asarray(data["test"], dtype=np.int64),
            seed=int(data["seed"]),
            gap=data.get("gap"),
            sizes={k: int(v) for k, v in data["sizes"].items()},
            class_balance={
                part: {label: float(share) for label, share in shares.items()}
                for part, shares in data.get("class_balance", {}).items()
            },
            straddling_removed=int(data.get("straddling_removed", 0)),
            dropped_for_gap=int(data.get("dropped_for_gap", 0)),
            test_fingerprint=data["test_fingerprint"],
            data_version=data.get("data_version", ""),
        )


def fingerprint_test_set(test: np.ndarray, data_version: str) -> str:
    """``sha256:`` over the data version and the sorted test positions."""
    digest = hashlib.sha256()
    digest.update(data_version.encode())
    digest.update(b"\x00")
    digest.update(np.sort(np.asarray(test, dtype=np.int64)).astype("<i8").tobytes())
    return "sha256:" + digest.hexdigest()


def make_splits(
    frame: pd.DataFrame,
    spec: ProjectSpec,
    *,
    data_version: str,
    features: list[str] | None = None,
) -> SplitPlan:
    """Split ``frame`` as ``spec.split`` says, leakage-safe.

    Rows without a target are left out (counted in ``sizes["dropped"]``). Exact and
    near duplicates on ``features`` + target (default features: every column without
    a role in ``spec.data``) are kept in one split: random, stratified and group
    splits move whole duplicate sets (joined with the groups); chronological splits
    drop the later rows of a set that would straddle.

    Raises:
        DataError: a named column is missing, a class has a single row, or the data
            is too small, too coarse in time, or too few groups for the split.
        ConfigError: the split settings do not fit the data (e.g. an unparseable gap).
    """
    target = spec.data.target
    for key, column in (
        ("data.target", target),
        ("data.group", spec.data.group),
        ("data.time", spec.data.time),
    ):
        if column is not None and column not in frame.columns:
            raise DataError(
                f"column '{column}' is named as {key} in assay.yaml but is not in the data",
                column=column,
                expected="one of: " + ", ".join(map(str, list(frame.columns)[:20])),
                fix=f"Correct {key} or add the column to the data.",
            )
    columns = _duplicate_columns(frame, spec, features)
    kept = np.flatnonzero(frame[target].notna().to_numpy())
    rows = frame.iloc[kept].reset_index(drop=True)
    classification = spec.task in CLASSIFICATION_TASKS
    if classification:
        _check_single_row_classes(rows[target], target)
    duplicates = _duplicate_groups(rows, columns, seed=spec.seed)
    strategy = spec.split_strategy
    splitter = SPLITTERS.get(strategy, key="split.strategy")()
    assignment = splitter.assign(
        rows,
        target=target,
        group=spec.data.group,
        time=spec.data.time if strategy == "chronological" else None,
        test_size=spec.split.test_size,
        validation_size=spec.split.validation_size,
        gap=spec.split.gap,
        seed=spec.seed,
        duplicates=duplicates,
    )
    parts = {name: kept[assignment.part(name)] for name in PARTS}
    sizes = {name: int(parts[name].size) for name in PARTS}
    sizes["dropped"] = int(len(frame) - sum(sizes.values()))
    balance = _class_balance(frame[target], parts) if classification else {}
    return SplitPlan(
        strategy=strategy,
        train=parts["train"],
        validation=parts["validation"],
        test=parts["test"],
        seed=spec.seed,
        gap=spec.split.gap,
        sizes=sizes,
        class_balance=balance,
        straddling_removed=assignment.straddling_removed,
        dropped_for_gap=assignment.dropped_for_gap,
        test_fingerprint=fingerprint_test_set(parts["test"], data_version),
        data_version=data_version,
    )


def _duplicate_columns(
    frame: pd.DataFrame, spec: ProjectSpec, features: list[str] | None
) -> list[str]:
    """Features + target, or [] when there is no feature to compare."""
    if features is None:
        features = spec.feature_columns(frame.columns)
    missing = [c for c in features if c not in frame.columns]
    if missing:
        raise DataError(
            f"feature column '{missing[0]}' is not in the data",
            column=str(missing[0]),
            expected="one of: " + ", ".join(map(str, list(frame.columns)[:20])),
            received=missing,
            fix="Pass feature names that exist in the frame.",
        )
    if not features:
        return []
    return list(dict.fromkeys([*features, spec.data.target]))


def _duplicate_groups(rows: pd.DataFrame, columns: list[str], *, seed: int) -> np.ndarray:
    """Exact and near duplicate sets joined; every row its own set when nothing is compared."""
    if not columns or rows.empty:
        return np.arange(len(rows), dtype=np.int64)
    exact = exact_duplicate_groups(rows, columns)
    near = near_duplicate_groups(rows, columns, seed=seed)
    return union_groupings(exact, near)


def _check_single_row_classes(labels: pd.Series, target: str) -> None:
    counts = labels.value_counts(sort=False)
    single = [str(label) for label, count in counts.items() if count == 1]
    if single:
        names = ", ".join(f"'{s}'" for s in single[:10])
        raise DataError(
            f"class {names} of the target has a single row: it can be neither learned nor "
            "evaluated",
            column=target,
            expected="at least 3 rows per class (one in each split)",
            received=f"{len(single)} class(es) with 1 row",
            fix="Collect more rows of this class, merge it into a similar class, or drop it.",
        )


def _class_balance(
    labels: pd.Series, parts: dict[str, np.ndarray]
) -> dict[str, dict[str, float]]:
    classes = pd.unique(labels.dropna())
    try:
        classes = np.sort(classes)
    except TypeError:
        pass
    names = [str(c) for c in classes]
    out: dict[str, dict[str, float]] = {}
    for part, positions in parts.items():
        values = labels.iloc[positions]
        counts = values.value_counts()
        total = max(int(values.size), 1)
        out[part] = {name: float(counts.get(c, 0)) / total for name, c in zip(names, classes)}
    return out
