"""The evaluation stage: every metric with intervals, curves, slices, fairness,
robustness and latency of a fitted model, checked against the acceptance criteria."""

from __future__ import annotations

from assay.evaluate.curves import (
    Calibration,
    ConfusionMatrix,
    Curve,
    Curves,
    ResidualSummary,
    build_curves,
    compute_confusion,
    expected_calibration_error,
)
from assay.evaluate.evaluation import (
    Criterion,
    CVSummary,
    Evaluation,
    check_acceptance,
    check_slice_acceptance,
    check_fairness,
    evaluate,
)
from assay.evaluate.fairness import (
    FAIRNESS_METRICS,
    ClassFairness,
    FairnessResult,
    GroupRates,
    fairness_metrics,
)
from assay.evaluate.intervals import (
    PairedComparison,
    bootstrap_intervals,
    paired_bootstrap,
    resample_index,
    resampled_metrics,
)
from assay.evaluate.latency import LatencyReport, LatencyRound, ServedPath, measure_latency
from assay.evaluate.metrics import PROBA_METRICS, compute_metrics, metric_value
from assay.evaluate.plausibility import (
    FeatureCost,
    PlausibilityReport,
    PlausibilitySignal,
    check_plausibility,
)
from assay.evaluate.robustness import RobustnessCase, RobustnessReport, robustness
from assay.evaluate.slices import SliceLevel, SliceReport, reaggregate, slice_metrics

__all__ = [
    "FAIRNESS_METRICS",
    "PROBA_METRICS",
    "CVSummary",
    "Calibration",
    "ClassFairness",
    "ConfusionMatrix",
    "Criterion",
    "Curve",
    "Curves",
    "Evaluation",
    "FeatureCost",
    "FairnessResult",
    "GroupRates",
    "LatencyReport",
    "LatencyRound",
    "PairedComparison",
    "PlausibilityReport",
    "PlausibilitySignal",
    "ResidualSummary",
    "RobustnessCase",
    "RobustnessReport",
    "ServedPath",
    "SliceLevel",
    "SliceReport",
    "bootstrap_intervals",
    "build_curves",
    "check_acceptance",
    "check_slice_acceptance",
    "check_fairness",
    "check_plausibility",
    "compute_confusion",
    "compute_metrics",
    "evaluate",
    "expected_calibration_error",
    "fairness_metrics",
    "measure_latency",
    "metric_value",
    "paired_bootstrap",
    "reaggregate",
    "resample_index",
    "resampled_metrics",
    "robustness",
    "slice_metrics",
]
