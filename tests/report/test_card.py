"""The model card: sections, the primary metric with its interval, limits, escaping."""

from __future__ import annotations

import dataclasses
import re

from markdown_it import MarkdownIt

from assay.report import ReportInput, render_model_card

SCRIPT = "<script>alert(1)</script>"  # the slice column name planted by conftest
TITLES = ["Intended use", "Data", "Metrics", "What the model leans on", "Slices and fairness", "Limits",
          "Lineage"]


def _section(card: str, title: str) -> str:
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", card, re.M | re.S)
    assert match, title
    return match.group(1)


def test_sections_in_order(binary_input: ReportInput) -> None:
    card = render_model_card(binary_input)
    assert card.startswith("# Model card: churn, version 3\n")
    assert re.findall(r"^## (.+)$", card, re.M) == TITLES


def test_primary_metric_with_interval(binary_input: ReportInput) -> None:
    card = render_model_card(binary_input)
    evaluation = binary_input.evaluation or {}
    value = evaluation["metrics"]["roc_auc"]
    low, high = evaluation["intervals"]["roc_auc"]
    use = _section(card, "Intended use")
    assert (f"**Primary metric:** roc_auc (higher is better): {value:.4f} on the sealed test set "
            f"(95% interval [{low:.4f}, {high:.4f}])") in use
    baseline = (binary_input.baseline or {})["metrics"]["roc_auc"]
    assert (f"| **roc_auc** (primary) | {value:.4f} | [{low:.4f}, {high:.4f}] | {baseline:.4f} | "
            "`>= 0.7` met |") in _section(card, "Metrics")


def test_regression_primary_metric(regression_input: ReportInput) -> None:
    card = render_model_card(regression_input)
    evaluation = regression_input.evaluation or {}
    low, high = evaluation["intervals"]["rmse"]
    assert f"rmse (lower is better): {evaluation['metrics']['rmse']:.4f}" in card
    assert f"[{low:.4f}, {high:.4f}]" in card
    assert "no protected attribute was evaluated" in _section(card, "Slices and fairness")


def test_acceptance_outcomes(binary_input: ReportInput) -> None:
    use = _section(render_model_card(binary_input), "Intended use")
    assert "roc_auc `>= 0.7`: observed" in use and "], met." in use
    assert re.search(r"accuracy `>= 0.99`: observed [0-9.]+ \[[0-9., ]+\], NOT met\.", use)


def test_limits_name_the_weak_points(binary_input: ReportInput) -> None:
    limits = _section(render_model_card(binary_input), "Limits")
    assert "Acceptance criterion not met: accuracy" in limits
    assert "The model failed to answer: missing:a, missing:b, missing:c." in limits
    assert "Slice 'region': level(s) islands have fewer than 30 rows" in limits
    assert "Audit (warn) missing\\_values" not in limits  # underscores are left alone
    assert "Audit (warn) missing_values \\[b\\]: 12% of 'b' is missing" in limits
    assert "Learning curve: overfitting. Regularise more or stop earlier." in limits


def test_limits_warn_about_an_overused_test_set(binary_input: ReportInput) -> None:
    version = {**binary_input.version, "test_uses": 9, "max_test_uses": 5}
    card = render_model_card(dataclasses.replace(binary_input, version=version))
    assert "scored 9 candidates: its metrics are optimistically biased" in _section(card, "Limits")
    assert "> **Warning:** the sealed test set has scored 9 candidates" in _section(card, "Metrics")


def test_failed_gate_is_stated(binary_input: ReportInput) -> None:
    gates = [{"name": "latency", "passed": False, "message": "p99 80 ms", "evidence": {}}]
    card = render_model_card(dataclasses.replace(binary_input, gates=gates))
    assert "> **Gates failed:** latency. Not fit for promotion." in card
    assert "Failed gates: latency." in _section(card, "Limits")


def test_fairness_table(binary_input: ReportInput) -> None:
    fairness = _section(render_model_card(binary_input), "Slices and fairness")
    ratio = (binary_input.evaluation or {})["fairness"][0]["disparate_impact_ratio"]
    assert f"| `sex` | disparate impact ratio | {ratio:.4f} | `>= 0.8` | met |" in fairness
    assert "unreliable (fewer than 30 rows): `islands`" in fairness


def test_user_strings_cannot_inject_html(binary_input: ReportInput) -> None:
    finding = {"check": "outliers", "severity": "warn", "columns": ["x"],
               "message": f"values like {SCRIPT} | broken", "evidence": {}, "fix": ""}
    report = dataclasses.replace(binary_input, audit={**(binary_input.audit or {}),
                                                      "findings": [finding]})
    rendered = MarkdownIt("commonmark").enable("table").render(render_model_card(report))
    assert "<script>" not in rendered
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in rendered


def test_missing_parts_say_not_available() -> None:
    card = render_model_card(ReportInput(version={"version": 2}))
    assert re.findall(r"^## (.+)$", card, re.M) == TITLES
    assert "Not available: the version has no evaluation" in _section(card, "Metrics")
    assert "**Split:** not available." in _section(card, "Data")
    assert "no specific weakness" in _section(card, "Limits")


def test_the_card_states_what_is_trusted(binary_input: ReportInput) -> None:
    digest = "sha256:" + "ab" * 32
    version = {**binary_input.version, "artifact": digest}
    lineage = _section(render_model_card(dataclasses.replace(binary_input, version=version)), "Lineage")
    assert f"- **Artifact:** `{digest}`" in lineage
    trust = next(line for line in lineage.splitlines() if line.startswith("- **Trust:**"))
    assert "the signing key, kept outside the store, is the trust root" in trust
    assert "unpickled only after its HMAC-SHA256 signature" in trust
    assert "without the key cannot get code run" in trust and "hash detects corruption" in trust


def test_criteria_say_how_they_were_judged_and_slice_failures_name_the_level(
    binary_input: ReportInput,
) -> None:
    judged = {"metric": "roc_auc", "threshold": ">= 0.7", "observed": 0.81, "interval": [0.74, 0.88],
              "passed": True, "conclusive": True, "judged": "interval", "judged_value": 0.74}
    sliced = {"metric": "recall", "threshold": ">= 0.6", "observed": 0.31, "interval": None,
              "passed": False, "slice": "plan", "level": "pro", "n": 80, "judged": "point",
              "judged_value": 0.31}
    card = render_model_card(dataclasses.replace(binary_input, acceptance=[judged, sliced]))
    use = _section(card, "Intended use")
    assert "judged on the interval's lower bound 0.7400" in use
    assert "recall on plan=pro `>= 0.6`: observed 0.3100" in use and "NOT met" in use
    assert "Acceptance criterion not met: recall &gt;= 0.6 on plan=pro" in _section(card, "Limits")
