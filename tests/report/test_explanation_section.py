"""The report and the model card show what the model leans on: the importance bar plot, the
beeswarm of per-row contributions, the ranking, and a warning when one column dominates."""

from __future__ import annotations

from typing import Any

from assay.report import ReportInput, render_html, render_model_card
from assay.report.plots import beeswarm_plot, dependence_plot, importance_plot


def _explanation(leak: bool = False) -> dict[str, Any]:
    importance = {"fee_paid": 3.0, "tenure": 0.4, "plan": 0.2} if leak else {
        "tenure": 1.0, "plan": 0.8, "fee_paid": 0.1}
    total = sum(importance.values())
    ranked = sorted(importance, key=lambda k: -importance[k])
    names = ["tenure", "plan", "fee_paid"]
    return {
        "method": "tree_shap", "output": "log_odds", "rows": 120, "seed": 0,
        "features": [{"feature": n, "importance": importance[n], "share": importance[n] / total,
                      "rank": ranked.index(n) + 1} for n in names],
        "base_values": [-0.4],
        "sample_features": names,
        "sample_values": [[float(i), "basic" if i % 2 else "pro", float(i % 3)] for i in range(10)],
        "sample_attributions": [[0.1 * i, -0.05 * i, 0.3] for i in range(10)],
    }


def _report(explanation: dict[str, Any] | None) -> ReportInput:
    return ReportInput(version={"version": 3, "family": "lightgbm", "task": "binary"},
                       explanation=explanation)


def test_the_report_names_a_dominant_column_first_with_a_warning() -> None:
    html = render_html(_report(_explanation(leak=True)))
    assert "<h2>What the model leans on</h2>" in html
    section = html[html.index("<h2>What the model leans on</h2>"):]
    assert section.index("fee_paid") < section.index("tenure")
    assert "&#39;fee_paid&#39; carries 83" in section or "'fee_paid' carries 83" in section
    assert "exact tree SHAP values" in section
    gallery = section.split("<h2>", 2)[1]
    # importance, beeswarm and a dependence plot for each of the three columns
    assert gallery.count("data:image/png;base64,") == 5
    assert "Dependence: fee_paid" in gallery


def test_a_balanced_model_has_no_dominance_warning_and_a_missing_one_says_so() -> None:
    html = render_html(_report(_explanation()))
    section = html[html.index("<h2>What the model leans on</h2>"):]
    assert "carries" not in section.split("<h2>", 2)[1]
    html = render_html(_report(None))
    assert "no explanation was computed for this version" in html


def test_the_model_card_ranks_the_columns() -> None:
    card = render_model_card(_report(_explanation(leak=True)))
    part = card[card.index("## What the model leans on"):]
    assert "over 120 test rows" in part and "log odds" in part
    assert part.index("| 1 | fee_paid |") < part.index("| 2 | tenure |")
    assert "no explanation was computed" in render_model_card(_report(None))


def test_the_plots_draw_or_say_not_available() -> None:
    assert importance_plot(_explanation()).startswith("data:image/png;base64,")
    assert beeswarm_plot(_explanation()).startswith("data:image/png;base64,")
    assert importance_plot(None) is None and beeswarm_plot({"features": []}) is None
    assert importance_plot({"features": [{"feature": "a"}]}) is None  # malformed: no rank
    assert dependence_plot(_explanation(), "plan").startswith("data:image/png;base64,")
    assert dependence_plot(_explanation(), "no_such_column") is None
    assert ReportInput.from_dict(_report(_explanation()).to_dict()).explanation == _explanation()


def test_the_report_sets_the_ranking_beside_the_previous_version() -> None:
    report = ReportInput(version={"version": 4, "family": "lightgbm", "task": "binary"},
                         explanation=_explanation(leak=True),
                         previous_explanation={"version": 3, "explanation": _explanation()})
    html = render_html(report)
    section = html[html.index("<h2>What the model leans on</h2>"):].split("<h2>", 2)[1]
    assert "Rank in v3" in section and "Against version 3" in section
    # fee_paid: 83.3% of the importance now, 5.3% before
    assert "+78.1 pt" in section
    assert ReportInput.from_dict(report.to_dict()) == report
