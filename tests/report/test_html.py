"""The HTML report: every section, real numbers, inline images, no network, escaping."""

from __future__ import annotations

import base64
import dataclasses
import os
from html.parser import HTMLParser
from pathlib import Path

import pytest

from assay.errors import DataError
from assay.report import SECTIONS, ReportInput, render_html, write_report

SCRIPT = "<script>alert(1)</script>"  # the slice column name planted by conftest


class _Collector(HTMLParser):
    """Every tag with its attributes, and the text of each section by id."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.sections: dict[str, str] = {}
        self._section: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag == "section":
            self._section = dict(attrs).get("id")
            self.sections[self._section or ""] = ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "section":
            self._section = None

    def handle_data(self, data: str) -> None:
        if self._section is not None:
            self.sections[self._section] += data


def _parse(html: str) -> _Collector:
    parser = _Collector()
    parser.feed(html)
    parser.close()
    return parser


def _images(parsed: _Collector) -> dict[str, str]:
    return {str(a.get("alt")): str(a.get("src")) for t, a in parsed.tags if t == "img"}


@pytest.mark.parametrize("fixture", ["binary_input", "regression_input"])
def test_every_section_is_present_in_order(fixture: str, request: pytest.FixtureRequest) -> None:
    html = render_html(request.getfixturevalue(fixture))
    positions = [html.index(f"<h2>{title}</h2>") for _, title in SECTIONS]
    assert positions == sorted(positions)
    assert list(_parse(html).sections) == [anchor for anchor, _ in SECTIONS]


def test_header_names_the_version(binary_input: ReportInput) -> None:
    html = render_html(binary_input)
    assert "<h1>churn \u2014 model version 3</h1>" in html
    facts = ("linear", "candidate", "sha256:abc123", "git:1a2b3c",
             "2024-05-01T10:00:00+00:00 by ana")
    for fact in facts:
        assert fact in html


def test_metric_values_intervals_and_baseline_appear(binary_input: ReportInput) -> None:
    metrics = _parse(render_html(binary_input)).sections["metrics"]
    evaluation = binary_input.evaluation or {}
    baseline = (binary_input.baseline or {})["metrics"]
    for name, value in evaluation["metrics"].items():
        assert f"{value:.4f}" in metrics, name
        low, high = evaluation["intervals"][name]
        assert f"[{low:.4f}, {high:.4f}]" in metrics, name
        assert f"{baseline[name]:.4f}" in metrics, name
    assert "roc_auc (primary)" in metrics
    assert ">= 0.7" in metrics and ">= 0.99" in metrics


def test_acceptance_result_follows_the_criterion(binary_input: ReportInput) -> None:
    html = render_html(binary_input)
    # accuracy >= 0.99 fails on this model, roc_auc >= 0.70 passes
    assert '<td>&gt;= 0.99</td><td class="fail">FAIL</td>' in html
    assert '<td>&gt;= 0.7</td><td class="pass">pass</td>' in html


def test_plots_are_inline_png_data_uris(
    binary_input: ReportInput, regression_input: ReportInput
) -> None:
    classification = _images(_parse(render_html(binary_input)))
    assert set(classification) == {"ROC curve", "Precision-recall curve", "Calibration",
                                   "Confusion matrix", "Score distributions per class",
                                   "Precision and recall by threshold (default threshold 0.50 "
                                   "marked)", "Learning curve", "Search history"}
    regression = _images(_parse(render_html(regression_input)))
    assert set(regression) == {"Predicted vs actual", "Residuals"}
    for uri in [*classification.values(), *regression.values()]:
        assert uri.startswith("data:image/png;base64,")
        assert base64.b64decode(uri.split(",", 1)[1]).startswith(b"\x89PNG\r\n\x1a\n")


@pytest.mark.parametrize("fixture", ["binary_input", "regression_input"])
def test_no_external_resource_is_referenced(fixture: str, request: pytest.FixtureRequest) -> None:
    html = render_html(request.getfixturevalue(fixture))
    parsed = _parse(html)
    links = [a[k] or "" for _, a in parsed.tags for k in ("src", "href") if k in a]
    assert links, "the page has images and anchors"
    assert not [u for u in links if u.lower().startswith(("http:", "https:", "//"))]
    assert not [t for t, _ in parsed.tags if t in ("script", "link", "iframe", "object")]
    assert "url(" not in html and "@import" not in html


def test_a_failing_gate_shows_the_banner(binary_input: ReportInput) -> None:
    assert 'class="banner fail"' not in render_html(binary_input)
    gates = [*binary_input.gates,
             {"name": "fairness", "passed": False, "message": "disparate impact 0.6 < 0.8",
              "evidence": {"disparate_impact_ratio": 0.6}}]
    html = render_html(dataclasses.replace(binary_input, gates=gates))
    assert '<div class="banner fail" role="alert">Gate failed: fairness.' in html
    assert "<td>disparate impact 0.6 &lt; 0.8</td>" in html
    assert "FAIL" in _parse(html).sections["gates"]


def test_overused_test_set_warns(binary_input: ReportInput) -> None:
    message = "the sealed test set has scored 7 candidates: its metrics are optimistically biased"
    assert message not in render_html(binary_input)
    version = {**binary_input.version, "test_uses": 7, "max_test_uses": 5}
    html = render_html(dataclasses.replace(binary_input, version=version))
    assert message in html
    assert 'class="banner warn"' in html


def test_user_strings_are_escaped(binary_input: ReportInput) -> None:
    finding = {"check": "outliers", "severity": "warn", "columns": [SCRIPT],
               "message": f"column {SCRIPT} has outliers", "evidence": {}, "fix": "<b>trim</b>"}
    audit = {**(binary_input.audit or {}), "findings": [finding]}
    html = render_html(dataclasses.replace(binary_input, audit=audit))
    assert "<script" not in html.lower()
    assert "<b>trim" not in html
    # the slice column of the real evaluation and the audit finding, both escaped
    assert html.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 3
    assert SCRIPT in _parse(html).sections["slices"]


def test_missing_parts_say_not_available() -> None:
    html = render_html(ReportInput(version={"version": 9}))
    sections = _parse(html).sections
    assert list(sections) == [anchor for anchor, _ in SECTIONS]
    for anchor, text in sections.items():
        assert "not available" in text, anchor
    assert "<img" not in html


def test_empty_evaluation_parts_say_not_available(binary_input: ReportInput) -> None:
    evaluation = {**(binary_input.evaluation or {}), "slices": [], "fairness": [],
                  "robustness": None, "latency": None, "artifact_size_bytes": None,
                  "curves": {}, "confusion": None}
    report = dataclasses.replace(binary_input, evaluation=evaluation, fairness_criteria=[],
                                 search={}, learning_curve=None, gates=[])
    sections = _parse(render_html(report)).sections
    for anchor in ("gates", "plots", "learning-curve", "search", "slices", "fairness",
                   "robustness", "latency"):
        assert "not available" in sections[anchor], anchor
    assert "ROC curve: not available" in sections["plots"]


def test_sections_show_their_details(binary_input: ReportInput) -> None:
    sections = _parse(render_html(binary_input)).sections
    assert "unreliable (n < 30)" in sections["slices"]
    assert "islands" in sections["slices"]
    assert "disparate impact ratio" in sections["fairness"] and ">= 0.8" in sections["fairness"]
    assert "overfitting" in sections["learning-curve"]
    assert "Regularise more or stop earlier." in sections["learning-curve"]
    assert "3 complete, 1 pruned" in sections["search"]
    robust = (binary_input.evaluation or {})["robustness"]
    for case in robust["cases"]:
        assert case["name"] in sections["robustness"]
    assert "rows/s" in sections["latency"] and "12.1 KiB" in sections["latency"]
    assert "12% of 'b' is missing" in sections["audit"]
    assert "Impute 'b' or drop it." in sections["audit"]
    assert "Straddling duplicates removed4" in sections["split"]
    assert "52.0%" in sections["split"] and "48.5%" in sections["split"]


def test_best_trial_is_highlighted(binary_input: ReportInput) -> None:
    html = render_html(binary_input)
    assert '<tr class="best"><td>1</td><td>lightgbm</td>' in html
    assert html.count('<tr class="best">') == 1


def test_lower_is_better_search_highlights_the_minimum(binary_input: ReportInput) -> None:
    search = {**(binary_input.search or {}), "metric": "log_loss"}
    html = render_html(dataclasses.replace(binary_input, search=search))
    assert '<tr class="best"><td>0</td><td>linear</td>' in html


def test_rendering_is_deterministic(binary_input: ReportInput) -> None:
    version = {**binary_input.version}
    again = dataclasses.replace(binary_input, version=version)
    assert render_html(binary_input) == render_html(again)


def test_write_report_writes_html_and_card(binary_input: ReportInput, tmp_path: Path) -> None:
    target = tmp_path / "out" / "report.html"
    written = write_report(binary_input, target)
    assert written == target
    assert target.read_text(encoding="utf-8") == render_html(binary_input)
    card = tmp_path / "out" / "report.md"
    assert card.read_text(encoding="utf-8").startswith("# Model card: churn, version 3")
    assert sorted(p.name for p in target.parent.iterdir()) == ["report.html", "report.md"]
    assert os.stat(target).st_mode & 0o044 == 0o044


def test_write_report_rejects_a_folder(binary_input: ReportInput, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="the report path is a folder.*report.html"):
        write_report(binary_input, tmp_path)


def test_write_report_rejects_a_markdown_target(binary_input: ReportInput, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="report and its model card would be the same file"):
        write_report(binary_input, tmp_path / "card.md")


def test_input_types_are_checked() -> None:
    with pytest.raises(TypeError, match="ReportInput.version must be a dict"):
        ReportInput(version=3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="ReportInput.gates must be a list of dicts"):
        ReportInput(version={"version": 1}, gates=["acceptance"])  # type: ignore[list-item]


def test_report_input_round_trips(binary_input: ReportInput) -> None:
    import json

    data = json.loads(json.dumps(binary_input.to_dict()))
    assert ReportInput.from_dict(data) == binary_input


def test_multiclass_report_has_one_curve_per_class_and_per_class_fairness() -> None:
    import numpy as np
    import pandas as pd
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression

    from assay.evaluate import evaluate

    X, y = make_classification(n_samples=360, n_features=4, n_informative=4, n_redundant=0,
                               n_classes=3, random_state=7)
    frame = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    labels = np.array(["cat", "dog", "eel"])[y]
    group = pd.DataFrame({"site": np.random.default_rng(7).choice(["x", "y"], len(frame))})
    model = LogisticRegression().fit(frame.iloc[:240], labels[:240])
    evaluation = evaluate(model, frame.iloc[240:].reset_index(drop=True), labels[240:],
                          task="multiclass", protected=group.iloc[240:].reset_index(drop=True),
                          seed=7, n_boot=20, check_robustness=False, time_latency=False)
    report = ReportInput(version={"version": 4, "task": "multiclass"},
                         evaluation=evaluation.to_dict())
    html = render_html(report)
    sections = _parse(html).sections
    assert "Per class, one-vs-rest: site" in sections["fairness"]
    # no threshold curve: more than two classes decide by the most probable class
    assert set(_images(_parse(html))) == {"ROC curve", "Precision-recall curve", "Calibration",
                                         "Confusion matrix", "Score distributions per class"}
    assert f"{evaluation.metrics['f1_macro']:.4f}" in sections["metrics"]


def test_search_result_shape_is_understood(binary_input: ReportInput) -> None:
    """SearchResult.to_dict(): primary_metric, higher_is_better, and the curve it carries."""
    search = {
        "primary_metric": "log_loss", "higher_is_better": False, "sampler": "random",
        "best_family": "lightgbm", "best_params": {}, "best_value": 0.3, "baseline_value": 0.69,
        "trials": [{"number": 0, "family": "lightgbm", "params": {}, "value": 0.3,
                    "state": "complete", "seconds": 1.0, "error": None},
                   {"number": 1, "family": "mlp", "params": {}, "value": None,
                    "state": "failed", "seconds": 0.1, "error": "RuntimeError: boom"}],
        "curve": {"kind": "boosting_round", "metric": "log_loss", "steps": [10, 20],
                  "train": [0.4, 0.3], "validation": [0.45, 0.4]},
        "diagnosis": {"verdict": "good", "reason": "train 0.3 vs validation 0.4 (gap 0.1)",
                      "action": "Nothing to change.", "evidence": {"gap": 0.1}},
        "skipped": {"mlp": "torch is not installed"},
    }
    report = dataclasses.replace(binary_input, search=search, learning_curve=None)
    html = render_html(report)
    sections = _parse(html).sections
    assert "log_loss (lower is better, on validation)" in sections["search"]
    assert "RuntimeError: boom" in sections["search"]
    assert "torch is not installed" in sections["search"]
    assert "train 0.3 vs validation 0.4 (gap 0.1)" in sections["learning-curve"]
    assert "Learning curve" in _images(_parse(html))
    assert '<tr class="best"><td>0</td>' in html


def test_public_names_are_pinned() -> None:
    import assay.report

    assert sorted(assay.report.__all__) == [
        "ReportInput", "SECTIONS", "render_html", "render_model_card", "write_report"
    ]


def test_mitigation_and_recalibration_are_shown(binary_input: ReportInput) -> None:
    from assay.evaluate.calibration import Recalibration
    from assay.evaluate.mitigation import MitigatedModel, MitigationComparison

    comparison = MitigationComparison(
        reasons=("fairness limit demographic_parity_difference <= 0.1 fails on 'group'",),
        attribute="group", constraint="demographic_parity", rows="test", primary="roc_auc",
        limits={"demographic_parity_difference": "<= 0.1"},
        models=(
            MitigatedModel("none", "the chosen model", 0.85,
                           {"group": {"demographic_parity_difference": 0.877}}, False),
            MitigatedModel("reductions", "fairlearn ExponentiatedGradient", 0.65,
                           {"group": {"demographic_parity_difference": 0.0045}}, True),
        ),
        skipped={"threshold": "'group' is not a model input"},
    )
    recal = Recalibration(0.05, "isotonic", True, 0.1276, 0.0333, 0.109, 0.0265)
    evaluation = {**(binary_input.evaluation or {}), "mitigation": comparison.to_dict(),
                  "recalibration": recal.to_dict()}
    sections = _parse(render_html(dataclasses.replace(binary_input, evaluation=evaluation))).sections
    fairness = sections["fairness"]
    assert "Mitigation: group (demographic_parity)" in fairness
    assert "fairlearn ExponentiatedGradient" in fairness and "0.0045" in fairness
    assert "threshold: not fitted: 'group' is not a model input" in fairness
    assert "the alternatives are not registered" in fairness
    metrics = sections["metrics"]
    assert "isotonic recalibration, fitted on the validation rows" in metrics
    assert "0.109" in metrics and "0.0265" in metrics


def test_regression_fairness_shows_group_errors(regression_input: ReportInput) -> None:
    evaluation = dict(regression_input.evaluation or {})
    evaluation["fairness"] = [{
        "attribute": "region", "positive_label": None, "demographic_parity_difference": None,
        "equalized_odds_difference": None, "disparate_impact_ratio": None,
        "groups": [{"group": "n", "n": 50, "selection_rate": None, "true_positive_rate": None,
                    "false_positive_rate": None, "reliable": True, "mae": 1.5, "rmse": 2.0},
                   {"group": "s", "n": 50, "selection_rate": None, "true_positive_rate": None,
                    "false_positive_rate": None, "reliable": True, "mae": 4.5, "rmse": 6.0}],
        "per_class": [], "note": "", "mae_difference": 3.0, "mae_ratio": 1 / 3,
        "rmse_difference": 4.0, "rmse_ratio": 1 / 3,
    }]
    report = dataclasses.replace(regression_input, evaluation=evaluation)
    fairness = _parse(render_html(report)).sections["fairness"]
    assert "mae ratio" in fairness and "rmse difference" in fairness
    assert "demographic parity" not in fairness
    assert "MAE" in fairness and "4.5" in fairness
def test_the_gates_section_shows_plausibility(binary_input: ReportInput) -> None:
    import numpy as np

    from assay.evaluate import ConfusionMatrix, check_plausibility

    assert binary_input.evaluation is not None
    stored = binary_input.evaluation.get("plausibility")
    assert stored is not None and not stored["signals"]  # the fixture's model is plausible
    assert "Plausibility: no sign of a leak" in _parse(render_html(binary_input)).sections["gates"]
    leaky = check_plausibility(
        "binary", np.zeros(400), ConfusionMatrix((0, 1), ((290, 0), (30, 80))),
        primary="f1", test_value=0.84,
    )
    evaluation = {**binary_input.evaluation, "plausibility": leaky.to_dict()}
    gates = _parse(render_html(dataclasses.replace(binary_input, evaluation=evaluation)))
    text = gates.sections["gates"]
    assert "Plausibility: too good to be true" in text
    assert "no false positives among 80 predicted" in text
