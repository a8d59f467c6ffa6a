"""Attribution drift in ``assay monitor``: known answers on a linear champion.

The monitored project's ``y`` follows ``x0``: a linear champion leans on ``x0`` (its share
of the mean |attribution| is about 0.87 on the test rows). Traffic drawn like the training
data keeps the shares; traffic with ``x0`` held constant takes its attributions away, and
traffic where ``x2``'s spread explodes hands ``x2`` a large share.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from assay.config import load_spec
from assay.errors import ConfigError
from assay.explain import Explanation, FeatureImportance
from assay.monitor.alerts import list_alerts
from assay.monitor.attribution_drift import MIN_ROWS, AttributionDrift, attribution_drift
from assay.monitor.monitor import latest_reports, monitor_project
from assay.monitor.report import MonitorReport
from assay.pipeline import open_registry, run_project
from assay.project import Project

from tests.monitor.conftest import Monitored, monitor_frame, write_monitored

LINEAR_ONLY = {"families": ["linear"], "trials": 1, "cv_folds": 2, "ensemble": False}


@pytest.fixture(scope="module")
def linear_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A monitored project whose champion is one linear model (read-only)."""
    root = tmp_path_factory.mktemp("attribution-template") / "project"
    project = write_monitored(root, search=LINEAR_ONLY)
    registry = open_registry(project)
    try:
        result = run_project(project, registry=registry, write_report=False)
        if not result.promoted:
            registry.promote(result.version, gate_passed=result.gate.passed,
                             force=not result.gate.passed, reason="test fixture")
    finally:
        registry.store.close()
    return root


@pytest.fixture
def linear(linear_template: Path, tmp_path: Path) -> Iterator[Monitored]:
    root = tmp_path / "project"
    shutil.copytree(linear_template, root)
    project = Project.open(root / "assay.yaml")
    handle = Monitored(project, open_registry(project))
    yield handle
    handle.close()


def test_the_linear_champion_leans_on_x0(linear: Monitored) -> None:
    record = linear.registry.get(linear.champion)
    assert record.family == "linear"
    linear.send(monitor_frame(300, 7), label=False)
    report = monitor_project(linear.project, record=False)
    assert report.attribution.judged and report.attribution.method == "linear"
    assert report.attribution.reference_ranking()[0]["feature"] == "x0"
    assert report.attribution.reference_ranking()[0]["share"] > 0.5


def test_traffic_like_the_training_data_raises_no_attribution_drift(linear: Monitored) -> None:
    linear.send(monitor_frame(300, 7), label=False)
    report = monitor_project(linear.project)
    attribution = report.attribution
    assert attribution.judged and attribution.n_rows == 300
    assert attribution.drifted == ()
    assert attribution.largest_shift < attribution.threshold
    assert [f["feature"] for f in attribution.live_ranking()][0] == "x0"
    assert "attribution_drift" not in report.alert_kinds
    assert list_alerts(linear.registry.store, kind="attribution_drift") == []


def test_a_constant_x0_raises_attribution_drift_with_both_rankings(linear: Monitored) -> None:
    flat = monitor_frame(300, 8)
    flat["x0"] = 0.0
    linear.send(flat, label=False)
    report = monitor_project(linear.project)
    attribution = report.attribution
    x0 = next(f for f in attribution.features if f.feature == "x0")
    assert x0.reference_rank == 1 and x0.live_rank > 1
    assert x0.shift < -attribution.threshold
    assert attribution.drifted[0].feature == "x0"  # the largest move comes first
    assert "attribution_drift" in report.new_alert_kinds
    alert = next(a for a in report.alerts.raised if a.kind == "attribution_drift")
    assert "x0" in alert.message and "rank 1 ->" in alert.message
    evidence = alert.evidence
    assert evidence["reference"][0]["feature"] == "x0" and evidence["reference"][0]["rank"] == 1
    assert evidence["live"][0]["feature"] != "x0"
    assert {r["feature"] for r in evidence["live"]} == {"x0", "x1", "x2", "x3", "plan"}
    assert "x0" in [f["feature"] for f in evidence["features"]]
    assert evidence["threshold"] == pytest.approx(0.10)
    # stored with the report and read back
    stored = latest_reports(linear.registry.store, 1)[0]
    assert stored.attribution == attribution

    # the condition goes away on traffic drawn like the training data: the alert resolves
    linear.send(monitor_frame(300, 9), label=False)
    later = monitor_project(linear.project)
    assert later.attribution.judged and later.attribution.drifted == ()
    assert "attribution_drift" in {a.kind for a in later.alerts.resolved}
    assert list_alerts(linear.registry.store, open_only=True, kind="attribution_drift") == []


def test_an_exploding_spread_hands_the_column_a_share(linear: Monitored) -> None:
    wide = monitor_frame(300, 10)
    wide["x2"] = wide["x2"] * 30.0
    linear.send(wide, label=False)
    report = monitor_project(linear.project, record=False)
    x2 = next(f for f in report.attribution.features if f.feature == "x2")
    assert x2.shift > report.attribution.threshold and x2.live_share > x2.reference_share
    assert x2.live_rank < x2.reference_rank
    assert "x2" in {f.feature for f in report.attribution.drifted}


def test_a_larger_attribution_shift_tolerates_the_move(linear: Monitored) -> None:
    wide = monitor_frame(300, 10)
    wide["x2"] = wide["x2"] * 30.0
    linear.send(wide, label=False)
    linear.configure(monitoring={"attribution_shift": 1.0})
    report = monitor_project(linear.project, record=False)
    assert report.attribution.judged and report.attribution.threshold == 1.0
    assert report.attribution.drifted == ()


def test_too_few_rows_are_not_judged(linear: Monitored) -> None:
    flat = monitor_frame(MIN_ROWS - 1, 11)
    flat["x0"] = 0.0
    linear.send(flat, label=False)
    report = monitor_project(linear.project)
    assert not report.attribution.judged
    assert f"fewer than the {MIN_ROWS}" in report.attribution.reason
    assert "attribution_drift" not in report.alert_kinds


def _explanation(method: str) -> Explanation:
    features = tuple(FeatureImportance(f"x{i}", 1.0, 0.5, i + 1) for i in range(2))
    output = "loss_increase" if method == "permutation" else "log_odds"
    return Explanation(method=method, output=output, features=features, rows=10,  # type: ignore[arg-type]
                       seed=0)


def test_versions_without_a_per_row_explanation_are_not_judged() -> None:
    rows = monitor_frame(200, 1)[["x0", "x1"]]
    permutation = attribution_drift(None, ["x0", "x1"], _explanation("permutation"), rows,
                                    threshold=0.1, family="mlp", version=3)
    assert not permutation.judged and permutation.drifted == ()
    assert "the mlp family has no per-row explainer" in permutation.reason
    missing = attribution_drift(None, ["x0", "x1"], None, rows, threshold=0.1, version=3)
    assert not missing.judged and "registered without an explanation" in missing.reason


def test_reports_stored_before_attribution_drift_still_load(linear: Monitored) -> None:
    linear.send(monitor_frame(120, 12), label=False)
    data = monitor_project(linear.project, record=False).to_dict()
    assert data["attribution"]["judged"] is True
    del data["attribution"]
    old = MonitorReport.from_dict(data)
    assert old.attribution == AttributionDrift.from_dict(None)
    assert not old.attribution.judged and old.attribution.drifted == ()


@pytest.mark.parametrize("value", [0, -0.1, 1.5])
def test_attribution_shift_must_be_in_zero_one(tmp_path: Path, value: float) -> None:
    path = tmp_path / "assay.yaml"
    path.write_text("task: binary\ndata: {source: d.csv, target: y}\n"
                    f"monitoring: {{attribution_shift: {value}}}\n")
    with pytest.raises(ConfigError, match="monitoring.attribution_shift"):
        load_spec(path)


def test_cli_monitor_shows_the_attribution_table(linear: Monitored) -> None:
    import typer
    from typer.testing import CliRunner

    from assay.cli.monitor import register_monitor_commands

    app = typer.Typer()
    register_monitor_commands(app)
    flat = monitor_frame(300, 8)
    flat["x0"] = 0.0
    linear.send(flat, label=False)
    result = CliRunner().invoke(app, ["monitor", "--config", str(linear.project.config_path)],
                                env={"COLUMNS": "200"})
    assert result.exit_code == 1, result.output
    assert "Attributions against training" in result.output
    assert "attribution_drift" in result.output
    row = next(line for line in result.output.splitlines() if "│ x0" in line)
    assert "yes" in row


def test_a_lightgbm_model_loses_its_signal_column() -> None:
    """Tree SHAP (LightGBM ``pred_contrib``): ``signal`` leads at training; held constant on
    the window its share collapses, and the window drawn like the training rows keeps it."""
    import numpy as np
    import pandas as pd

    from assay.data.schema import infer_schema
    from assay.explain import explain_model
    from assay.train.context import BuildContext
    from assay.train.families import get_family
    from assay.train.objective import objective_for
    from assay.train.pipeline import fit_model

    def rows(n: int, seed: int) -> tuple[pd.DataFrame, pd.Series]:
        rng = np.random.default_rng(seed)
        frame = pd.DataFrame({"signal": rng.normal(size=n), "minor": rng.normal(size=n),
                              "noise": rng.normal(size=n)})
        logit = 3.0 * frame["signal"] + 0.5 * frame["minor"]
        return frame, pd.Series((logit + rng.logistic(size=n) * 0.3 > 0).astype(int))

    features = ["signal", "minor", "noise"]
    train, y = rows(600, 0)
    family = get_family("lightgbm")
    context = BuildContext.of(task="binary", schema=infer_schema(train), features=features,
                              text_column=None, objective=objective_for("binary", "roc_auc"),
                              seed=0)
    model = family.build(family.defaults("binary"), context)
    fit_model(model, train, y)
    test, y_test = rows(300, 1)
    explanation = explain_model(model, test, y_test, task="binary", features=features, seed=0)
    assert explanation.method == "tree_shap" and explanation.ranking[0] == "signal"

    same, _ = rows(300, 2)
    clean = attribution_drift(model, features, explanation, same, threshold=0.1,
                              family="lightgbm", version=1)
    assert clean.judged and clean.method == "tree_shap" and clean.drifted == ()

    flat = same.assign(signal=0.0)
    moved = attribution_drift(model, features, explanation, flat, threshold=0.1,
                              family="lightgbm", version=1)
    assert moved.judged and moved.drifted[0].feature == "signal"
    signal = moved.drifted[0]
    assert signal.reference_rank == 1 and signal.live_rank > 1 and signal.shift < -0.1
    assert moved.live_ranking()[0]["feature"] != "signal"
