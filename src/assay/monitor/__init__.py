"""Stage 9, monitoring: drift of logged traffic against the training reference.

- :func:`build_reference` profiles the training rows once (:class:`ReferenceProfile`,
  stored with the model version as JSON);
- :func:`detect_drift` compares a window of traffic with it (:class:`DriftReport`);
- :data:`DRIFT_TESTS` holds the per-column tests by alias (``psi``, ``ks``, ``chi2``,
  ``js``); :class:`BaseDriftTest` is the extension point;
- free-text columns are profiled and tested through the base checkpoint by
  :mod:`assay.monitor.text_drift` (``mmd``, ``text_length``, ``unknown_tokens``).
"""

from __future__ import annotations

from assay.monitor.drift import (
    ColumnDrift,
    DriftCheck,
    DriftReport,
    DriftThresholds,
    detect_drift,
)
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
    TextProfile,
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
    "DriftCheck",
    "DriftReport",
    "DriftStat",
    "DriftThresholds",
    "JSDistanceTest",
    "KSTest",
    "PSITest",
    "ReferenceProfile",
    "SkippedColumn",
    "TextProfile",
    "build_reference",
    "detect_drift",
]
