"""Score distributions per class, precision and recall by threshold with the model's decision
threshold marked, and metric deltas against the previous version, in the report and the card."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import precision_score, recall_score

from assay.evaluate import evaluate
from assay.evaluate.curves import build_curves
from assay.evaluate.evaluation import Evaluation, decision_threshold
from assay.lifecycle import _previous_metrics
from assay.report import ReportInput, render_html, render_model_card
from assay.report.plots import score_distribution_plot, threshold_marker, threshold_plot
from assay.train.objective import ThresholdedClassifier


def _section(html: str, title: str) -> str:
    return html[html.index(f"<h2>{title}</h2>"):].split("<h2>", 2)[1]


@pytest.fixture(scope="module")
def tuned() -> tuple[ThresholdedClassifier, pd.DataFrame, np.ndarray, Evaluation]:
    X, y = make_classification(n_samples=400, n_features=4, weights=[0.7], random_state=3)
    frame = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    model = ThresholdedClassifier(LogisticRegression(), "f1", random_state=0)
    model.fit(frame.iloc[:250], y[:250])
    test, y_test = frame.iloc[250:].reset_index(drop=True), y[250:]
    evaluation = evaluate(model, test, y_test, task="binary", n_boot=0,
                          check_robustness=False, time_latency=False)
    return model, test, y_test, evaluation


def test_the_threshold_curve_is_measured_at_the_tuned_threshold(tuned: Any) -> None:
    model, test, y_test, evaluation = tuned
    curve = evaluation.curves.threshold_curve
    assert curve is not None and curve.tuned
    assert curve.threshold == pytest.approx(float(model.threshold_))
    assert decision_threshold(model) == pytest.approx(float(model.threshold_))
    predicted = model.predict_proba(test)[:, 1] >= model.threshold_
    assert curve.precision_at == pytest.approx(precision_score(y_test, predicted))
    assert curve.recall_at == pytest.approx(recall_score(y_test, predicted))
    # the model's own decisions are those of the stored threshold
    assert evaluation.metrics["recall"] == pytest.approx(curve.recall_at)
    assert list(curve.recall) == sorted(curve.recall, reverse=True)  # recall falls as it rises


def test_the_score_histogram_counts_every_test_row_under_its_true_class(tuned: Any) -> None:
    _, _, y_test, evaluation = tuned
    histogram = evaluation.curves.score_histogram
    assert histogram is not None and histogram.kind == "positive_class"
    assert list(histogram.labels) == [0, 1]
    assert [sum(c) for c in histogram.counts] == [int((y_test == 0).sum()),
                                                  int((y_test == 1).sum())]
    assert Evaluation.from_dict(evaluation.to_dict()).curves == evaluation.curves


def test_an_evaluation_stored_before_the_new_curves_still_loads(tuned: Any) -> None:
    stored = tuned[3].to_dict()
    for key in ("score_histogram", "threshold_curve"):
        del stored["curves"][key]
    old = Evaluation.from_dict(stored)
    assert old.curves.score_histogram is None and old.curves.threshold_curve is None


def test_the_threshold_is_read_from_decisions_when_the_model_names_none() -> None:
    y = np.array([0, 0, 1, 0, 1, 1, 0, 1])
    score = np.array([0.1, 0.2, 0.3, 0.35, 0.6, 0.7, 0.8, 0.9])
    proba = np.c_[1 - score, score]

    def curve(decided: np.ndarray) -> Any:
        return build_curves("binary", y, decided.astype(int), proba, [0, 1]).threshold_curve

    default = curve(score > 0.5)
    assert (default.threshold, default.tuned) == (0.5, False)
    # the positive class from 0.3 up: a cut at 0.3, recall 4/4, precision 4/6
    cut = curve(score >= 0.3)
    assert (cut.threshold, cut.tuned) == (0.3, True)
    assert (cut.precision_at, cut.recall_at) == (pytest.approx(4 / 6), 1.0)
    # decisions no single cut reproduces (per-group thresholds): no marker, honest numbers
    mixed = curve(np.array([1, 0, 1, 0, 0, 1, 1, 1], dtype=bool))
    assert mixed.threshold is None and threshold_marker(mixed.to_dict()) is None
    assert (mixed.precision_at, mixed.recall_at) == (pytest.approx(3 / 5), pytest.approx(3 / 4))
    assert threshold_plot(mixed.to_dict()).startswith("data:image/png;base64,")
    report = _report({"threshold_curve": mixed.to_dict()})
    assert "does not decide by one threshold" in render_model_card(report)


def _curves(threshold: float = 0.42, tuned: bool = True) -> dict[str, Any]:
    return {
        "roc": [], "pr": [],
        "score_histogram": {"kind": "positive_class", "edges": [0.0, 0.25, 0.5, 0.75, 1.0],
                            "labels": ["stay", "churn"], "counts": [[30, 10, 0, 0], [0, 2, 4, 14]]},
        "threshold_curve": {"thresholds": [0.0, 0.25, 0.5, 0.75], "precision": [0.3, 0.5, 0.8, 1.0],
                            "recall": [1.0, 0.9, 0.7, 0.4], "f1": [0.46, 0.64, 0.75, 0.57],
                            "threshold": threshold, "tuned": tuned, "precision_at": 0.81,
                            "recall_at": 0.66, "f1_at": 0.7273, "positive_label": "churn"},
    }


def _report(curves: dict[str, Any], *, previous: dict[str, Any] | None = None,
            fingerprint: str = "sha256:test-a") -> ReportInput:
    evaluation = {"task": "binary", "n_rows": 60, "classes": ["stay", "churn"],
                  "primary": "roc_auc", "curves": curves,
                  "metrics": {"roc_auc": 0.91, "recall": 0.66, "log_loss": 0.30}}
    return ReportInput(
        version={"version": 5, "family": "logistic", "task": "binary",
                 "test_fingerprint": fingerprint},
        evaluation=evaluation, previous=previous, spec={"name": "churn"},
    )


def test_the_plots_mark_the_stored_threshold() -> None:
    curves = _curves()
    assert threshold_marker(curves["threshold_curve"]) == (0.42, "tuned threshold 0.42")
    assert threshold_marker({**curves["threshold_curve"], "tuned": False}) == (
        0.42, "default threshold 0.42")
    assert threshold_plot(curves["threshold_curve"]).startswith("data:image/png;base64,")
    assert score_distribution_plot(curves["score_histogram"], 0.42).startswith("data:image/png")
    assert threshold_plot({**curves["threshold_curve"], "recall": [1.0]}) is None  # ragged
    assert score_distribution_plot({"edges": [0, 1], "labels": ["a"], "counts": [[1, 2]]}) is None


def test_the_report_shows_both_plots_with_their_key_facts() -> None:
    section = _section(render_html(_report(_curves())), "Plots")
    assert 'alt="Score distributions per class"' in section
    assert 'alt="Precision and recall by threshold (tuned threshold 0.42 marked)"' in section
    assert "At the tuned threshold 0.42: precision 0.81, recall 0.66, F1 0.73" in section
    # bin centres: stay (30 x 0.125 + 10 x 0.375) / 40 = 0.1875,
    # churn (2 x 0.375 + 4 x 0.625 + 14 x 0.875) / 20 = 0.775
    assert "class stay 0.19 (40 rows)" in section and "class churn 0.78 (20 rows)" in section


def test_an_old_evaluation_renders_and_says_the_plots_are_unavailable() -> None:
    html = render_html(_report({"roc": [], "pr": []}))
    section = _section(html, "Plots")
    assert "Score distributions per class: not available" in section
    assert "Precision and recall by threshold: not available" in section
    assert "stored before score histograms were recorded" in section
    card = render_model_card(_report({"roc": [], "pr": []}))
    assert "tuned threshold" not in card and "## Metrics" in card


def test_the_metric_deltas_are_the_difference_of_the_stored_metrics() -> None:
    previous = {"version": 4, "metrics": {"roc_auc": 0.88, "recall": 0.70, "log_loss": 0.35},
                "test_fingerprint": "sha256:test-a", "n_rows": 60}
    report = _report(_curves(), previous=previous)
    section = _section(render_html(report), "Metrics")
    assert "Against version 4" in section
    assert "<td>roc_auc</td><td>0.9100</td><td>0.8800</td>" in section
    assert "+0.0300 (better)" in section          # 0.91 - 0.88
    assert "-0.0400 (worse)" in section           # recall 0.66 - 0.70
    assert "-0.0500 (better)" in section          # log loss falls: better
    assert "same sealed test rows" in section and "different test rows" not in section
    assert ReportInput.from_dict(report.to_dict()) == report

    card = render_model_card(report)
    part = card[card.index("### Against version 4"):]
    assert "| roc\\_auc | 0.9100 | 0.8800 | +0.0300 (better) |" in part or \
        "| roc_auc | 0.9100 | 0.8800 | +0.0300 (better) |" in part
    assert "- At the tuned threshold 0.42: precision 0.81, recall 0.66, F1 0.73." in card


def test_deltas_on_different_test_rows_say_so() -> None:
    previous = {"version": 2, "metrics": {"roc_auc": 0.95}, "test_fingerprint": "sha256:test-b"}
    report = _report(_curves(), previous=previous)
    section = _section(render_html(report), "Metrics")
    assert "different test rows (sha256:test-a vs sha256:test-b)" in section
    assert "do not over-read small deltas" in section
    assert "different test rows" in render_model_card(report)
    # no earlier version: no comparison at all
    assert "Against version" not in render_html(_report(_curves()))


def test_the_previous_metrics_come_from_the_version_the_importance_comparison_uses() -> None:
    def record(version: int, evaluation: str | None, fingerprint: str) -> Any:
        return SimpleNamespace(version=version, test_fingerprint=fingerprint,
                               lineage=SimpleNamespace(evaluation=evaluation))

    stored = {"e2": {"metrics": {"roc_auc": 0.8}, "n_rows": 50},
              "e3": {"metrics": {"roc_auc": 0.85}, "n_rows": 60}}
    registry = SimpleNamespace(
        list=lambda: [record(2, "e2", "fp-2"), record(3, "e3", "fp-3"), record(4, None, "fp-4"),
                      record(5, "e5", "fp-5")],
        load_json=lambda digest: stored[digest])
    chosen = _previous_metrics(registry, 5, {"version": 2, "explanation": {}})  # type: ignore[arg-type]
    assert chosen == {"version": 2, "metrics": {"roc_auc": 0.8}, "n_rows": 50,
                      "test_fingerprint": "fp-2"}
    newest = _previous_metrics(registry, 5, None)  # type: ignore[arg-type]
    assert newest is not None and newest["version"] == 3
    assert _previous_metrics(registry, 2, None) is None  # type: ignore[arg-type]
