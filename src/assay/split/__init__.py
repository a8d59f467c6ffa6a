"""The split stage: train / validation / test row positions, leakage-safe.

``make_splits(frame, spec, data_version=...)`` returns a :class:`SplitPlan`. The
splitters are registered by alias in :data:`SPLITTERS`; every one keeps duplicate
sets and groups in one split, and the chronological one keeps time order with a gap.
"""

from __future__ import annotations

from assay.split.base import (
    MIN_ROWS_PER_SPLIT,
    PARTS,
    SPLITTERS,
    BaseSplitter,
    SplitAssignment,
    SplitRequest,
    union_groupings,
)
from assay.split.plan import SplitPlan, fingerprint_test_set, make_splits
from assay.split.splitters import (
    ChronologicalSplitter,
    GroupSplitter,
    RandomSplitter,
    StratifiedSplitter,
    parse_gap,
    time_values,
)

__all__ = [
    "MIN_ROWS_PER_SPLIT",
    "PARTS",
    "SPLITTERS",
    "BaseSplitter",
    "ChronologicalSplitter",
    "GroupSplitter",
    "RandomSplitter",
    "SplitAssignment",
    "SplitPlan",
    "SplitRequest",
    "StratifiedSplitter",
    "fingerprint_test_set",
    "make_splits",
    "parse_gap",
    "time_values",
    "union_groupings",
]
