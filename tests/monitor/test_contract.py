"""The whole contract on live traffic: acceptance thresholds, fairness limits and latency,
each judged on its interval, each breach an alert of its own kind."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from assay.config.spec import parse_threshold
from assay.evaluate.fairness import fairness_metrics
from assay.monitor.contract import (
    ContractReport,
    fairness_checks,
    judge,
    latency_check,
)
from assay.monitor.monitor import latest_reports, monitor_project


def _run(monitored: Any) -> Any:
    return monitor_project(monitored.project, registry=monitored.registry)


def _check(report: Any, kind: str, metric: str, attribute: str | None = None) -> Any:
    return next(
        c for c in report.contract.checks
        if c.kind == kind and c.metric == metric and c.attribute == attribute
    )


# -- the rule ---------------------------------------------------------------------------


def test_a_breach_needs_the_whole_interval_on_the_failing_side() -> None:
    at_least = parse_threshold(">= 0.8")
    assert judge(at_least, 0.9, [0.85, 0.95]) == "met"
    assert judge(at_least, 0.7, [0.6, 0.79]) == "breach"  # upper bound below the bound
    assert judge(at_least, 0.75, [0.65, 0.85]) == "inconclusive"  # could be noise
    assert judge(at_least, 0.75, None) == "inconclusive"
    assert judge(at_least, None, None) == "not_judged"
    at_most = parse_threshold("<= 0.1")
    assert judge(at_most, 0.3, [0.2, 0.4]) == "breach"  # lower bound above the bound
    assert judge(at_most, 0.15, [0.05, 0.25]) == "inconclusive"


def test_fairness_values_agree_with_the_evaluation_on_large_groups() -> None:
    rng = np.random.default_rng(3)
    n = 600
    group = rng.choice(["a", "b", "c"], n)
    y_true = rng.integers(0, 2, n)
    y_pred = np.where(group == "c", rng.integers(0, 2, n), y_true)
    limits = {
        "demographic_parity_difference": "<= 0.5",
        "equalized_odds_difference": "<= 0.9",
        "disparate_impact_ratio": ">= 0.1",
    }
    checks = fairness_checks(
        limits, {"g": group.tolist()}, task="binary", classes=[0, 1],
        predictions=y_pred.tolist(), labels=y_true.tolist(), min_group=30, min_labels=30,
    )
    expected = fairness_metrics("binary", y_true, y_pred, pd.DataFrame({"g": group}), [0, 1])[0]
    for check in checks:
        assert check.observed == pytest.approx(expected.value(check.metric), abs=1e-9)
        assert check.interval is not None and check.interval[0] <= check.observed <= check.interval[1]
        assert check.n == n and check.status == "met"


def test_small_groups_are_left_out_and_one_group_is_not_judged() -> None:
    group = ["a"] * 200 + ["b"] * 5
    checks = fairness_checks(
        {"demographic_parity_difference": "<= 0.1"}, {"g": group}, task="binary", classes=[0, 1],
        predictions=[1] * 100 + [0] * 105, labels=[None] * 205, min_group=30, min_labels=30,
    )
    assert checks[0].status == "not_judged" and "b=5" in checks[0].note


def test_latency_is_judged_per_request_and_needs_enough_requests() -> None:
    slow = latency_check([1500.0] * 200, [f"r{i}" for i in range(200)], objective_ms=1000)
    assert slow.status == "breach" and slow.observed == 1500.0 and slow.n == 200
    # 200 predictions of 2 requests: two requests are too few to estimate a p99
    few = latency_check([1500.0] * 200, ["a", "b"] * 100, objective_ms=1000)
    assert few.status == "not_judged" and few.n == 2
    fast = latency_check(list(np.linspace(1, 50, 300)), list(range(300)), objective_ms=1000)
    assert fast.status == "met"


def test_a_report_stored_before_the_contract_reads_back_empty() -> None:
    assert ContractReport.from_dict(None).checks == ()


# -- planted breaches over logged traffic -----------------------------------------------


def test_recall_far_below_its_threshold_raises_an_acceptance_breach(
    monitored: Any, make_frame: Any
) -> None:
    monitored.configure(acceptance={"recall": ">= 0.9", "accuracy": ">= 0.3"})
    # every label positive: the model finds about half of them
    monitored.send(make_frame(300, 21), label=lambda prediction, y: 1)
    report = _run(monitored)
    recall = _check(report, "acceptance", "recall")
    assert recall.status == "breach" and recall.interval[1] < 0.9 and recall.n == 300
    assert _check(report, "acceptance", "accuracy").status != "breach"
    breaches = [a for a in report.alerts.raised if a.kind == "acceptance_breach"]
    assert len(breaches) == 1
    evidence = breaches[0].evidence
    assert evidence["metric"] == "recall" and evidence["threshold"] == ">= 0.9"
    assert evidence["n"] == 300 and evidence["observed"] < 0.7
    assert evidence["interval"][1] < 0.9 and "recall" in breaches[0].message
    assert report.verdict == "acceptance_breach"
    stored = latest_reports(monitored.registry.store)[0]
    assert stored.contract == report.contract


def test_a_group_with_a_large_error_gap_raises_a_fairness_breach(
    monitored: Any, make_frame: Any
) -> None:
    monitored.configure(fairness={"protected": ["plan"],
                                  "limits": {"equalized_odds_difference": "<= 0.2"}})
    frame = make_frame(300, 22)
    champion = monitored.model(monitored.champion)
    predicted = [p.prediction for p in champion.predict(frame[champion.features])]
    # the labels confirm the model except on the 'team' plan, where it is always wrong
    labels = [1 - p if plan == "team" else p for p, plan in zip(predicted, frame["plan"])]
    monitored.send(frame, label=labels)
    report = _run(monitored)
    check = _check(report, "fairness", "equalized_odds_difference", "plan")
    assert check.status == "breach" and check.observed > 0.9 and check.interval[0] > 0.2
    alerts = [a for a in report.alerts.raised if a.kind == "fairness_breach"]
    assert len(alerts) == 1 and alerts[0].evidence["attribute"] == "plan"
    assert alerts[0].evidence["metric"] == "equalized_odds_difference"
    assert "'plan'" in alerts[0].message


def test_logged_latencies_over_the_objective_raise_a_latency_breach(
    monitored: Any, make_frame: Any
) -> None:
    monitored.send(make_frame(300, 23), label=False, latency_ms=5000.0)  # serving SLA: 1000 ms
    report = _run(monitored)
    check = _check(report, "latency", "latency_p99_ms")
    assert check.status == "breach" and check.observed == pytest.approx(5000.0) and check.n == 300
    alerts = [a for a in report.alerts.raised if a.kind == "latency_breach"]
    assert len(alerts) == 1 and alerts[0].evidence["threshold"] == "<= 1000"


def test_clean_traffic_meeting_the_contract_raises_no_breach(
    monitored: Any, make_frame: Any
) -> None:
    monitored.configure(
        acceptance={"accuracy": ">= 0.6", "roc_auc": ">= 0.7"},
        fairness={"protected": ["plan"], "limits": {"demographic_parity_difference": "<= 0.5",
                                                    "equalized_odds_difference": "<= 0.5"}},
    )
    monitored.send(make_frame(300, 24))
    report = _run(monitored)
    statuses = {(c.kind, c.metric): c.status for c in report.contract.checks}
    assert statuses == {
        ("acceptance", "accuracy"): "met",
        ("acceptance", "roc_auc"): "met",
        ("fairness", "demographic_parity_difference"): "met",
        ("fairness", "equalized_odds_difference"): "met",
        ("latency", "latency_p99_ms"): "met",
    }
    assert not {a.kind for a in report.alerts.active} & {
        "acceptance_breach", "fairness_breach", "latency_breach"}
    assert report.verdict == "ok"


def test_too_few_labels_are_not_judged_and_raise_nothing(monitored: Any, make_frame: Any) -> None:
    monitored.configure(acceptance={"recall": ">= 0.99"},
                        fairness={"protected": ["plan"],
                                  "limits": {"equalized_odds_difference": "<= 0.01"}})
    frame = make_frame(300, 25)
    # ten labels, every one contradicting the model: too few to judge anything on
    labels: list[Any] = [1] * 10 + [None] * 290
    monitored.send(frame, label=labels)
    report = _run(monitored)
    recall = _check(report, "acceptance", "recall")
    assert recall.status == "not_judged" and recall.n == 10 and "min_labels" in recall.note
    odds = _check(report, "fairness", "equalized_odds_difference", "plan")
    assert odds.status == "not_judged"
    assert not {a.kind for a in report.alerts.raised} & {"acceptance_breach", "fairness_breach"}


def test_a_breach_that_recovers_resolves_its_alert(monitored: Any, make_frame: Any) -> None:
    monitored.send(make_frame(300, 26), label=False, latency_ms=5000.0)
    first = _run(monitored)
    assert "latency_breach" in first.new_alert_kinds
    monitored.send(make_frame(300, 27), label=False, latency_ms=2.0)
    second = _run(monitored)
    assert "latency_breach" not in second.alert_kinds
    assert [a.kind for a in second.alerts.resolved] == ["latency_breach"]


# -- flags name their field ----------------------------------------------------------------


def test_the_flagged_inputs_alert_names_the_fields(monitored: Any, make_frame: Any) -> None:
    from assay.serve.log import LogEntry
    from assay.store.database import utcnow

    champion = monitored.model(monitored.champion)
    frame = make_frame(100, 28)
    answers = champion.predict(frame[champion.features])
    records = frame[champion.features].to_dict("records")
    entries = [
        # the target is a declared column: sent back with the record, it is not flagged
        LogEntry(f"f{i}", utcnow(), champion.version, "champion", f"r{i}",
                 {**record, "y": int(y), "colour": "red"}, a.prediction, a.probabilities,
                 a.confidence, 1.0, ["unknown_field"])
        for i, (record, y, a) in enumerate(zip(records, frame["y"], answers))
    ]
    monitored.log.append(entries)
    monitored.log.flush()
    report = _run(monitored)
    assert report.flagged.by_field == {"unknown_field:colour": 1.0}
    alert = next(a for a in report.alerts.raised if a.kind == "flagged_inputs")
    assert "unknown_field 100.0% (fields: colour 100.0%)" in alert.message
    assert "y" not in alert.message.split("fields:")[1]


def test_a_protected_attribute_no_record_carries_is_not_judged(monitored: Any, make_frame: Any) -> None:
    monitored.configure(fairness={"protected": ["plan", "region"],
                                  "limits": {"demographic_parity_difference": "<= 0.9"}})
    # a data file standing in for traffic: 'plan' is a column of it, 'region' is not
    report = monitor_project(monitored.project, registry=monitored.registry,
                             current=make_frame(300, 29), record=False)
    assert _check(report, "fairness", "demographic_parity_difference", "plan").status == "met"
    region = _check(report, "fairness", "demographic_parity_difference", "region")
    assert region.status == "not_judged" and "'region'" in region.note
    assert any("region" in note for note in report.notes)
    assert _check(report, "latency", "latency_p99_ms").status == "not_judged"
