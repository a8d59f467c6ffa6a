"""Stage 9, monitoring: drift of logged traffic against the training reference.

- :func:`build_reference` profiles the training rows once (:class:`ReferenceProfile`,
  stored with the model version as JSON);
- :func:`detect_drift` compares a window of traffic with it (:class:`DriftReport`);
- :data:`DRIFT_TESTS` holds the per-column tests by alias (``psi``, ``ks``, ``chi2``,
  ``js``); :class:`BaseDriftTest` is the extension point.
"""

from __future__ import annotations

from assay.monitor.drift import ColumnDrift, DriftReport, DriftThresholds, detect_drift
from assay.monitor.drift_tests import (
    DRIFT_TESTS,
    BaseDriftTest,
    ChiSquaredTest,
    CurrentColumn,
    DriftStat,
    JSDistanceTest,
    KSTest,
    PSITest,
)
from assay.monitor.reference import (
    CONFIDENCE,
    PREDICTION,
    ColumnProfile,
    ReferenceProfile,
    SkippedColumn,
    build_reference,
)

__all__ = [
    "CONFIDENCE",
    "DRIFT_TESTS",
    "PREDICTION",
    "BaseDriftTest",
    "ChiSquaredTest",
    "ColumnDrift",
    "ColumnProfile",
    "CurrentColumn",
    "DriftReport",
    "DriftStat",
    "DriftThresholds",
    "JSDistanceTest",
    "KSTest",
    "PSITest",
    "ReferenceProfile",
    "SkippedColumn",
    "build_reference",
    "detect_drift",
]
