"""`assay run` end to end on real files: registry, gates, test-set accounting, reports."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from assay.errors import ConfigError, DataError, GateFailed, NotFoundError, StoreError
from assay.lifecycle import evaluation_of, promote_version, rollback_champion
from assay.pipeline import open_registry, run_project
from assay.split import make_splits

from .conftest import classification_frame


def test_first_run_registers_and_promotes(make_project) -> None:
    project = make_project(acceptance={"roc_auc": ">= 0.6"})
    result = run_project(project)
    assert result.version == 1 and result.promoted and result.champion == 1
    assert [g.name for g in result.gate.gates] == [
        "acceptance", "baseline", "fairness", "calibration", "robustness", "latency",
        "plausibility", "champion",
    ]
    assert result.test_value is not None and result.test_value > result.baseline_value
    assert result.test_uses == 1
    registry = open_registry(project)
    record = registry.get(1)
    assert record.status == "champion"
    assert list(record.lineage.features) == ["x0", "x1", "x2", "x3", "x4", "x5", "segment"]
    assert record.data_version.startswith("sha256:")
    assert Path(result.report).exists() and Path(result.report).with_suffix(".md").exists()
    # the stored evaluation is what the model does on the sealed test rows
    dataset = project.load_data()
    plan = make_splits(dataset.frame, project.spec, data_version=dataset.version,
                       features=list(record.lineage.features))
    test = plan.take(dataset.frame, "test")
    model = registry.load_model(1)
    expected = roc_auc_score(test["y"], model.predict_proba(test[list(record.lineage.features)])[:, 1])
    assert evaluation_of(registry, 1).metrics["roc_auc"] == pytest.approx(expected)


def test_unattainable_acceptance_exits_with_champion_unchanged(make_project) -> None:
    project = make_project()
    first = run_project(project)
    assert first.promoted
    strict = make_project(acceptance={"roc_auc": ">= 0.999"})
    second = run_project(strict)
    assert not second.promoted
    failed = {g.name for g in second.gate.failed}
    assert "acceptance" in failed
    registry = open_registry(strict)
    assert registry.alias("champion") == 1
    assert registry.get(second.version).status == "registered"
    assert registry.latest_gate(second.version).passed is False
    with pytest.raises(GateFailed, match="cannot be promoted.*acceptance"):
        promote_version(registry, second.version, reason=None, force=False)
    assert registry.alias("champion") == 1


def test_same_model_again_does_not_replace_the_champion(make_project) -> None:
    project = make_project()
    run_project(project)
    again = run_project(project)
    champion_gate = next(g for g in again.gate.gates if g.name == "champion")
    assert not champion_gate.passed and "the champion stays" in champion_gate.message
    assert champion_gate.evidence["delta"] == pytest.approx(0.0)
    assert again.champion == 1
    # the sealed test set was scored for both candidates and for the comparison
    assert again.test_uses == 3


def test_force_promote_and_rollback_restore_the_exact_previous_version(make_project) -> None:
    project = make_project()
    run_project(project)
    run_project(project)
    registry = open_registry(project)
    promoted = promote_version(registry, 2, reason="manual check", force=True)
    assert promoted.version == 2 and registry.alias("champion") == 2
    actions = [e.action for e in registry.events(limit=3)]
    assert actions[:2] == ["promote", "override"]
    back = rollback_champion(registry, reason="regression in staging")
    assert back.version == 1 and registry.alias("champion") == 1
    assert registry.load_model(1) is not None
    with pytest.raises(NotFoundError, match="no previous champion"):
        rollback_champion(registry, reason=None)
    assert registry.alias("champion") == 1


def test_blocking_audit_stops_before_training(make_project) -> None:
    frame = classification_frame()
    frame["settled_amount"] = frame["y"] * 100.0
    project = make_project(frame)
    with pytest.raises(GateFailed, match="target_leakage.*settled_amount"):
        run_project(project)
    registry = open_registry(project)
    assert registry.list() == []
    assert registry.latest_audit() is not None and registry.latest_audit().passed is False


def _churn_with_fee(n: int = 2000, seed: int = 0) -> "pd.DataFrame":
    """Churn unpredictable from usage; a fee paid by 12.6% of all rows, every one a leaver."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.3).astype(int)
    frame = pd.DataFrame({"usage": rng.normal(size=n), "tenure": rng.integers(1, 60, n)})
    leavers = rng.choice(np.flatnonzero(y == 1), int(0.126 * n), replace=False)
    frame["cancellation_fee_paid"] = 0.0
    frame.loc[leavers, "cancellation_fee_paid"] = rng.uniform(20, 200, len(leavers)).round(2)
    frame["segment"] = rng.choice(["a", "b"], n)
    frame["y"] = y
    return frame


def test_a_partial_leak_is_caught_by_the_audit_and_the_gate_and_quiet_once_dropped(
    make_project,
) -> None:
    frame = _churn_with_fee()
    project = make_project(frame, search={"families": ["linear"], "trials": 1, "cv_folds": 3})
    # the audit finds the pure region and blocks before anything is trained
    with pytest.raises(GateFailed, match=r"target_leakage \(cancellation_fee_paid\): "
                                         r"'cancellation_fee_paid > 0' implies 'y' = '1'"):
        run_project(project)
    # accepted anyway, the model is too good to be true and is not promoted
    result = run_project(project, accept=["target_leakage"])
    assert not result.promoted
    [failed] = result.gate.failed
    assert failed.name == "plausibility"
    assert "cancellation_fee_paid" in failed.message and "data.drop" in failed.message
    assert failed.evidence["suspect_features"][0] == "cancellation_fee_paid"
    # with the column dropped, the audit and the gate are quiet about leakage
    project = make_project(frame, search={"families": ["linear"], "trials": 1, "cv_folds": 3},
                           data={"source": "data.csv", "target": "y",
                                 "drop": ["cancellation_fee_paid"]})
    clean = run_project(project)
    audit = open_registry(project).latest_audit()
    assert audit is not None and audit.passed
    assert not [f for f in audit.report["findings"] if f["check"] == "target_leakage"]
    gate = next(g for g in clean.gate.gates if g.name == "plausibility")
    assert gate.passed and gate.message.startswith("no sign of a leak")


def test_tampered_artifact_refuses_to_load(make_project) -> None:
    project = make_project()
    run_project(project)
    registry = open_registry(project)
    record = registry.get(1)
    path = registry.store.artifacts.path_of(record.artifact_digest)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(StoreError, match="corrupted or was modified"):
        registry.load_model(1)


@pytest.mark.parametrize(
    ("overrides", "error", "match"),
    [
        ({"acceptance": {"mape": "<= 0.1"}}, ConfigError, "acceptance.mape"),
        ({"slices": ["flat"]}, ConfigError, "single level"),
    ],
)
def test_bad_framing_is_refused_before_training(make_project, overrides, error, match) -> None:
    frame = classification_frame()
    frame["flat"] = "same"
    if "mape" in str(overrides):
        frame["y"] = np.linspace(0, 10, len(frame))
        overrides = {**overrides, "task": "regression"}
    project = make_project(frame, **overrides)
    with pytest.raises(error, match=match):
        run_project(project)
    registry = open_registry(project)
    assert registry.list() == [] and registry.latest_audit() is None


def test_too_small_for_the_split_and_single_row_class(make_project) -> None:
    tiny = classification_frame(n=12)
    with pytest.raises(DataError, match="too small to split"):
        run_project(make_project(tiny))
    lonely = classification_frame()
    lonely.loc[0, "y"] = 2
    with pytest.raises(DataError, match="class '2' of the target has a single row"):
        run_project(make_project(lonely, task="multiclass"))


def test_text_classification_run(make_project) -> None:
    rng = np.random.default_rng(0)
    good = ["great", "love", "fast", "friendly", "excellent"]
    bad = ["slow", "broken", "rude", "refund", "awful"]
    filler = ["the", "service", "was", "and", "order", "staff", "my"]
    rows = []
    for i in range(400):
        label = "pos" if i % 2 else "neg"
        words = list(rng.choice(filler, 6)) + list(rng.choice(good if label == "pos" else bad, 2))
        rng.shuffle(words)
        rows.append({"review": " ".join(words) + f" #{i}", "label": label})
    import pandas as pd

    text = make_project(
        pd.DataFrame(rows), task="text-classification",
        data={"source": "data.csv", "target": "label", "text": "review"}, slices=[],
        search={"families": ["dummy", "tfidf_linear"], "trials": 2, "cv_folds": 3},
    )
    result = run_project(text)
    assert result.family == "tfidf_linear" and result.test_value > 0.9


def test_regression_run(make_project) -> None:
    rng = np.random.default_rng(0)
    frame = classification_frame()
    frame["y"] = frame["x0"] * 3 + frame["x1"] + rng.normal(scale=0.1, size=len(frame))
    regression = make_project(frame, task="regression", acceptance={"r2": ">= 0.8"})
    result = run_project(regression)
    assert result.primary == "rmse" and result.test_metrics["r2"] > 0.8 and result.promoted
