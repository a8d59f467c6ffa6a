"""Duplicate checks: exact copies, copies with conflicting labels, and near copies.

Duplicates matter because a random split scatters the copies of a row across
train and test: the model is then tested on rows it has memorised and the test
metrics are inflated. Copies whose labels disagree are label noise the model cannot fit.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from assay.audit.base import CHECKS, AuditContext, BaseCheck, Finding, Severity
from assay.data.keys import exact_duplicate_groups, near_duplicate_groups
from assay.data.values import native

__all__ = ["WARN_SHARE", "DuplicateRowsCheck", "NearDuplicateRowsCheck"]

#: above this share of rows, duplicates are a warning rather than context
WARN_SHARE = 0.01
_EXAMPLES = 5
_EXAMPLE_ROWS = 5


@CHECKS.register("duplicate_rows")
class DuplicateRowsCheck(BaseCheck):
    """Rows that are exact copies on features and target, and copies whose targets conflict.

    Two findings at most: the exact copies (``warn`` above 1% of rows, ``info`` below)
    and the groups of rows with equal features but different targets (``warn``). The
    second is not looked for on regression tasks, where equal features with different
    continuous targets are ordinary noise, nor when there is no target. Id, time, group
    and dropped columns are not compared.
    """

    def applies(self, ctx: AuditContext) -> bool:
        """Only when there are features and at least two rows."""
        return bool(ctx.features) and len(ctx.frame) >= 2

    def run(self, ctx: AuditContext) -> list[Finding]:
        """The duplicate and conflicting-label findings on ``ctx``."""
        frame = ctx.frame
        features = ctx.features
        columns = [*features, ctx.target] if ctx.target else features
        findings = []
        groups = exact_duplicate_groups(frame, columns)
        duplicate = _duplicate_finding(self.alias, groups, ctx.target is not None)
        if duplicate is not None:
            findings.append(duplicate)
        if ctx.target is not None and ctx.task != "regression":
            conflict = _conflict_finding(self.alias, frame, features, ctx.target)
            if conflict is not None:
                findings.append(conflict)
        return findings


@CHECKS.register("near_duplicate_rows")
class NearDuplicateRowsCheck(BaseCheck):
    """Rows equal up to case, whitespace, punctuation or tiny numeric noise, but not exactly.

    Compares features and target with
    :func:`assay.data.keys.near_duplicate_groups` (relative tolerance 1e-6 on float
    columns); exact copies are left to ``duplicate_rows``. ``warn`` when the rows that
    near-deduplication would remove exceed 1% of rows, ``info`` below.
    """

    tolerance: float = 1e-6

    def applies(self, ctx: AuditContext) -> bool:
        """Only when there are features and at least two rows."""
        return bool(ctx.features) and len(ctx.frame) >= 2

    def run(self, ctx: AuditContext) -> list[Finding]:
        """The near-duplicate finding on ``ctx`` (at most one)."""
        frame = ctx.frame
        columns = [*ctx.features, ctx.target] if ctx.target else list(ctx.features)
        near = near_duplicate_groups(
            frame, columns, numeric_tolerance=self.tolerance, seed=ctx.seed
        )
        exact = exact_duplicate_groups(frame, columns)
        # a near group counts when it joins rows of two or more exact groups
        distinct = _distinct_per_group(near, exact)
        affected = distinct >= 2
        if not affected.any():
            return []
        n = len(frame)
        extra = int((distinct[affected] - 1).sum())
        rows = np.flatnonzero(affected[near])
        share = extra / n
        differing = _differing_columns(frame.iloc[rows], columns, near[rows])
        examples = _near_examples(frame, columns, near, exact, affected)
        severity: Severity = "warn" if share > WARN_SHARE else "info"
        noisy = ", ".join(differing) if differing else "none"
        return [
            Finding(
                check=self.alias,
                severity=severity,
                columns=tuple(differing),
                message=(
                    f"near copies of other rows: {_n(extra, 'extra row')} ({share:.2%}) in "
                    f"{_n(int(affected.sum()), 'group')} of {_n(rows.size, 'row')}, equal up to "
                    "case, whitespace, punctuation or numeric noise (columns that differ: "
                    f"{noisy})"
                ),
                evidence={
                    "rows": extra,
                    "share": round(share, 6),
                    "groups": int(affected.sum()),
                    "rows_in_groups": int(rows.size),
                    "numeric_tolerance": self.tolerance,
                    "columns_differing": differing,
                    "examples": examples,
                },
                fix=(
                    "Normalise the strings (case, whitespace, punctuation) and round the noisy "
                    "numbers, then deduplicate before splitting; otherwise split with these "
                    "groups so that near copies cannot straddle train and test."
                ),
            )
        ]


def _duplicate_finding(check: str, groups: np.ndarray, with_target: bool) -> Finding | None:
    sizes = np.bincount(groups)
    repeated = np.flatnonzero(sizes >= 2)
    if repeated.size == 0:
        return None
    n = groups.size
    extra = int(n - sizes.size)
    share = extra / n
    in_groups = int(sizes[repeated].sum())
    examples = [np.flatnonzero(groups == g)[:_EXAMPLE_ROWS].tolist() for g in repeated[:_EXAMPLES]]
    severity: Severity = "warn" if share > WARN_SHARE else "info"
    on = "features and target" if with_target else "features"
    return Finding(
        check=check,
        severity=severity,
        columns=(),
        message=(
            f"exact copies of other rows on {on}: {_n(extra, 'extra row')} ({share:.2%}) "
            f"in {_n(repeated.size, 'group')} of {_n(in_groups, 'row')}"
        ),
        evidence={
            "rows": extra,
            "share": round(share, 6),
            "groups": int(repeated.size),
            "rows_in_groups": in_groups,
            "examples": examples,
        },
        fix=(
            "Deduplicate before splitting (keep one row per group); otherwise copies "
            "straddle train and test and inflate the test metrics."
        ),
    )


def _conflict_finding(
    check: str, frame: pd.DataFrame, features: list[str], target: str
) -> Finding | None:
    groups = exact_duplicate_groups(frame, features)
    labels = np.asarray(pd.factorize(frame[target])[0], dtype=np.int64)
    known = labels >= 0
    sizes = np.bincount(groups[known], minlength=int(groups.max()) + 1)
    candidate = known & (sizes[groups] >= 2)
    if not candidate.any():
        return None
    distinct = _distinct_per_group(groups[candidate], labels[candidate], sizes.size)
    conflicting = np.flatnonzero(distinct >= 2)
    if conflicting.size == 0:
        return None
    in_conflict = (distinct >= 2)[groups] & known
    rows = int(in_conflict.sum())
    values = frame[target]
    examples = []
    for g in conflicting[:_EXAMPLES]:
        positions = np.flatnonzero((groups == g) & known)[:_EXAMPLE_ROWS]
        examples.append(
            {
                "rows": positions.tolist(),
                "targets": [_plain(v) for v in values.iloc[positions]],
            }
        )
    return Finding(
        check=check,
        severity="warn",
        columns=(target,),
        message=(
            f"same features, different '{target}': {_n(conflicting.size, 'group')} of "
            f"{_n(rows, 'row')} disagree on the label"
        ),
        evidence={
            "groups": int(conflicting.size),
            "rows": rows,
            "share": round(rows / len(frame), 6),
            "examples": examples,
        },
        fix=(
            "Resolve the label of each group from its source of truth, or drop the "
            "conflicting rows: no model can fit both labels."
        ),
    )


def _distinct_per_group(groups: np.ndarray, other: np.ndarray, size: int = 0) -> np.ndarray:
    """For each group id, how many distinct values of ``other`` its rows hold."""
    width = int(other.max()) + 1
    pairs = pd.unique(groups.astype(np.int64) * width + other)
    return np.bincount(pairs // width, minlength=max(size, int(groups.max()) + 1))


def _differing_columns(sub: pd.DataFrame, columns: list[str], near: np.ndarray) -> list[str]:
    """Columns whose raw values vary inside at least one near-duplicate group."""
    groups = np.asarray(pd.factorize(near)[0], dtype=np.int64)
    return [
        c
        for c in columns
        if bool((_distinct_per_group(groups, exact_duplicate_groups(sub, [c])) >= 2).any())
    ]


def _near_examples(
    frame: pd.DataFrame,
    columns: list[str],
    near: np.ndarray,
    exact: np.ndarray,
    affected: np.ndarray,
) -> list[dict[str, Any]]:
    """Two rows of each of the first groups, with the columns where their raw values differ."""
    examples = []
    for g in np.flatnonzero(affected)[:_EXAMPLES]:
        positions = np.flatnonzero(near == g)
        first = int(positions[0])
        other = int(positions[exact[positions] != exact[first]][0])
        a, b = frame.iloc[first], frame.iloc[other]
        values = {c: [_plain(a[c]), _plain(b[c])] for c in columns if not _same(a[c], b[c])}
        examples.append({"rows": [first, other], "values": values})
    return examples


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _same(a: Any, b: Any) -> bool:
    if _missing(a) and _missing(b):
        return True
    try:
        return bool(a == b)
    except (TypeError, ValueError):
        return False


def _missing(value: Any) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _plain(value: Any) -> Any:
    """A JSON-serialisable form of one cell: missing is None, inf and others are text."""
    value = native(value, missing_as_none=True, iso_timestamps=True)
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if value is None or isinstance(value, (bool, int, str)):
        return value
    return str(value)
