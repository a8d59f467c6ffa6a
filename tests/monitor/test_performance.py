"""Live performance from feedback labels, the feedback-loop guard, and telling drifts apart."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, roc_auc_score

from assay.errors import ConfigError, NotFoundError
from assay.monitor.monitor import latest_reports, monitor_project, parse_span
from assay.monitor.performance import (
    FeedbackLoopCheck,
    LivePerformance,
    coerce_labels,
    detect_feedback_loop,
    live_performance,
    metric_drop,
)


def _logged(y_true: np.ndarray, proba: np.ndarray, labelled: np.ndarray) -> pd.DataFrame:
    """A frame shaped like read_predictions: predictions, probabilities and labels."""
    pred = (proba >= 0.5).astype(int)
    return pd.DataFrame(
        {
            "id": [f"p{i}" for i in range(len(y_true))],
            "prediction": pred.tolist(),
            "probabilities": [{"0": 1 - p, "1": p} for p in proba.tolist()],
            "label": [int(y) if keep else None for y, keep in zip(y_true, labelled)],
        }
    )


def _perf(frame: pd.DataFrame, reference: dict[str, Any], **kw: Any) -> LivePerformance:
    return live_performance(
        frame, version=1, task="binary", classes=[0, 1], primary="roc_auc",
        reference=reference, tolerance=0.05, **kw,
    )


def test_labels_match_classes_by_value_or_text() -> None:
    labels, valid = coerce_labels([1, "0", 1.0, "x", None, 0], "binary", [0, 1])
    assert valid.tolist() == [True, True, True, False, False, True]
    assert [labels[i] for i in (0, 1, 2, 5)] == [1, 0, 1, 0]
    numbers, ok = coerce_labels([1.5, "2", None, "nan", True], "regression", None)
    assert ok.tolist() == [True, True, False, False, False]
    assert numbers[:2].tolist() == [1.5, 2.0]


def test_live_metrics_equal_scikit_learn_on_the_labelled_rows() -> None:
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 400)
    proba = np.clip(0.35 * y + 0.65 * rng.random(400), 0, 1)
    labelled = rng.random(400) < 0.6
    perf = _perf(_logged(y, proba, labelled), {"roc_auc": 0.9, "accuracy": 0.8})
    assert perf.n_predictions == 400 and perf.n_labelled == int(labelled.sum())
    pred = (proba >= 0.5).astype(int)
    assert perf.metrics["accuracy"] == pytest.approx(accuracy_score(y[labelled], pred[labelled]))
    assert perf.metrics["roc_auc"] == pytest.approx(roc_auc_score(y[labelled], proba[labelled]))
    low, high = perf.intervals["roc_auc"]
    assert low <= perf.metrics["roc_auc"] <= high
    assert perf.checked_metric == "roc_auc"
    assert LivePerformance.from_dict(perf.to_dict()) == perf


def test_a_drop_is_measured_in_the_metric_direction() -> None:
    assert metric_drop("roc_auc", 0.7, 0.9) == pytest.approx(0.2)
    assert metric_drop("rmse", 12.0, 10.0) == pytest.approx(0.2)  # relative for errors
    assert metric_drop("rmse", 8.0, 10.0) == pytest.approx(-0.2)


def test_degraded_only_beyond_tolerance_and_noise() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    good = np.where(y == 1, 0.8, 0.2)
    flipped = np.where(rng.random(300) < 0.45, 1 - good, good)  # accuracy ~0.55
    everyone = np.ones(300, dtype=bool)
    reference = {"accuracy": 1.0, "roc_auc": 1.0}
    bad = _perf(_logged(y, flipped, everyone), reference)
    assert bad.assessed and bad.degraded and bad.drop > 0.3
    fine = _perf(_logged(y, good, everyone), reference)
    assert fine.assessed and not fine.degraded and fine.drop == pytest.approx(0.0)
    few = _perf(_logged(y, flipped, np.arange(300) < 20), reference)
    assert not few.assessed and not few.degraded
    assert "only 20 labelled predictions (needs 30" in few.message


def test_labels_copying_the_predictions_are_detected_excluded_and_reported() -> None:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 160)
    proba = np.where(rng.random(160) < 0.8, 0.5 * y + 0.25, 0.75 - 0.5 * y)  # ~80% right
    frame = _logged(y, proba, np.ones(160, dtype=bool))
    copier = np.arange(160) < 60
    frame.loc[copier, "label"] = frame.loc[copier, "prediction"]
    frame["label_source"] = np.where(copier, "auto-labeller", "analyst")
    loop = detect_feedback_loop(frame, task="binary", classes=[0, 1], test_accuracy=0.85)
    assert loop.detected and loop.excluded_sources == ("auto-labeller",)
    assert loop.excluded_labels == 60
    assert "'auto-labeller' agrees with the model on 100.0% of 60 labels" in loop.message
    assert FeedbackLoopCheck.from_dict(loop.to_dict()) == loop
    perf = _perf(frame, {"roc_auc": 0.9, "accuracy": 0.85}, feedback_loop=loop)
    assert perf.n_labelled == 100
    # a model this good may honestly be confirmed that often; too few labels prove nothing
    assert not detect_feedback_loop(frame, task="binary", classes=[0, 1], test_accuracy=0.97).detected
    small = frame.loc[~copier | (np.arange(160) < 40)]
    assert not detect_feedback_loop(small, task="binary", classes=[0, 1], test_accuracy=0.85).detected


def test_concept_drift_raises_a_concept_alert_not_a_data_drift_one(monitored: Any, make_frame: Any) -> None:
    monitored.send(make_frame(300, 11, concept=True))
    report = monitor_project(monitored.project, registry=monitored.registry)
    assert report.drift.checked and report.drift.ranked == ()
    assert report.performance.assessed and report.performance.degraded
    assert report.verdict == "concept_drift"
    assert [a.kind for a in report.alerts.raised] == ["concept_drift"]
    alert = report.alerts.raised[0]
    assert "inputs are stable" in alert.message and alert.evidence["drifted_features"] == []
    assert alert.evidence["live"] < alert.evidence["test"] - 0.2
    stored = latest_reports(monitored.registry.store)
    assert [r.report_id for r in stored] == [report.report_id] and report.report_id is not None
    assert stored[0].verdict == "concept_drift" and stored[0].drift == report.drift


def test_drifted_inputs_raise_data_drift_and_a_performance_alert(monitored: Any, make_frame: Any) -> None:
    unlabelled = monitored.send(make_frame(300, 12, shift=3.0), label=False)
    report = monitor_project(monitored.project, registry=monitored.registry)
    assert report.drift.ranked == ("x0",)
    assert not report.performance.assessed
    assert [a.kind for a in report.alerts.raised] == ["data_drift"]
    assert report.alerts.raised[0].evidence["features"][0]["name"] == "x0"
    assert len(unlabelled) == 300
    # labels arrive: the error rises too, explained by the drifted input
    monitored.send(make_frame(300, 13, shift=3.0, concept=True))
    report = monitor_project(monitored.project, registry=monitored.registry)
    kinds = sorted(a.kind for a in report.alerts.active)
    assert kinds == ["data_drift", "performance"]
    assert "concept_drift" not in kinds
    perf_alert = next(a for a in report.alerts.active if a.kind == "performance")
    assert "drifted too" in perf_alert.message


def test_stable_traffic_raises_nothing(monitored: Any, make_frame: Any) -> None:
    monitored.send(make_frame(300, 14))
    report = monitor_project(monitored.project, registry=monitored.registry)
    assert report.verdict == "ok" and report.healthy
    assert report.performance.assessed and not report.performance.degraded


def test_flagged_inputs_raise_their_own_alert(monitored: Any, make_frame: Any) -> None:
    monitored.send(make_frame(270, 15), label=False)
    monitored.send(make_frame(30, 16), label=False, flags=["unknown_category"])
    report = monitor_project(monitored.project, registry=monitored.registry)
    assert report.flagged.by_code == {"unknown_category": pytest.approx(0.1)}
    assert [a.kind for a in report.alerts.raised] == ["flagged_inputs"]


def test_a_data_file_can_stand_in_for_traffic(monitored: Any, make_frame: Any) -> None:
    report = monitor_project(
        monitored.project, registry=monitored.registry, current=make_frame(300, 17, concept=True),
        record=False,
    )
    assert report.window["kind"] == "file" and report.n_rows == 300
    assert report.verdict == "concept_drift"
    assert report.report_id is None and report.alerts.raised == ()


def test_window_settings_are_checked() -> None:
    assert parse_span("1d").total_seconds() == 86400
    assert parse_span("30min").total_seconds() == 1800
    with pytest.raises(ConfigError, match="monitoring.window_span: the value is not a positive duration"):
        parse_span("soon")


def test_monitoring_without_a_champion_says_what_to_do(fresh_project: Any) -> None:
    with pytest.raises(NotFoundError, match="there is no champion to monitor.*assay run"):
        monitor_project(fresh_project)


def test_flagged_share_from_assay_yaml(monitored: Any, make_frame: Any) -> None:
    # 10% of the window is flagged: an alert at the default 5%, none at 20%
    monitored.send(make_frame(270, 15), label=False)
    monitored.send(make_frame(30, 16), label=False, flags=["unknown_category"])
    monitored.configure(monitoring={"flagged_share": 0.2})
    quiet = monitor_project(monitored.project, registry=monitored.registry, record=False)
    assert quiet.flagged.by_code == {"unknown_category": pytest.approx(0.1)}
    assert "flagged_inputs" not in {a.kind for a in quiet.alerts.raised}
    assert quiet.verdict != "flagged_inputs"
    monitored.configure(monitoring={"flagged_share": 0.05})
    loud = monitor_project(monitored.project, registry=monitored.registry)
    assert [a.kind for a in loud.alerts.raised] == ["flagged_inputs"]


def test_min_window_and_min_labels_from_assay_yaml(monitored: Any, make_frame: Any) -> None:
    monitored.send(make_frame(300, 21, concept=True))
    judged = monitor_project(monitored.project, registry=monitored.registry, record=False)
    assert judged.drift.checked and judged.performance.assessed
    monitored.configure(monitoring={"min_window": 500, "min_labels": 400})
    unjudged = monitor_project(monitored.project, registry=monitored.registry, record=False)
    assert not unjudged.drift.checked and not unjudged.performance.assessed


def test_alert_cooldown_from_assay_yaml(monitored: Any, make_frame: Any) -> None:
    monitored.send(make_frame(300, 21, concept=True))
    monitored.configure(monitoring={"alert_cooldown": "1h"})
    first = monitor_project(monitored.project, registry=monitored.registry)
    later = first.at + timedelta(minutes=30)
    again = monitor_project(monitored.project, registry=monitored.registry, now=later)
    assert [a.kind for a in first.alerts.raised] == ["concept_drift"]
    assert again.alerts.raised == () and [a.kind for a in again.alerts.suppressed] == ["concept_drift"]
    much_later = first.at + timedelta(hours=2)
    third = monitor_project(monitored.project, registry=monitored.registry, now=much_later)
    assert [a.kind for a in third.alerts.raised] == ["concept_drift"]
    monitored.configure(monitoring={"alert_cooldown": "soon"})
    with pytest.raises(ConfigError, match="monitoring.alert_cooldown: the value is not a positive duration"):
        monitor_project(monitored.project, registry=monitored.registry)
