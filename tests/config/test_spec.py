"""Validation of assay.yaml: every mistake is one error naming its key path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from assay.config import check_spec_against_data, load_spec, parse_spec, parse_threshold
from assay.errors import ConfigError, DataError


def minimal(**extra: Any) -> dict[str, Any]:
    return {"task": "binary", "data": {"source": "d.csv", "target": "y"}, **extra}


def test_defaults_follow_the_task() -> None:
    spec = parse_spec(minimal())
    assert spec.primary_metric == "roc_auc"
    assert spec.split_strategy == "stratified"
    regression = parse_spec({"task": "regression", "data": {"source": "d.csv", "target": "y"}})
    assert regression.primary_metric == "rmse" and regression.split_strategy == "random"
    timed = parse_spec({"task": "binary", "data": {"source": "d.csv", "target": "y", "time": "t"}})
    assert timed.split_strategy == "chronological"


@pytest.mark.parametrize(
    ("raw", "key", "match"),
    [
        (minimal(colour="red"), "colour", "unknown key; valid keys here: name, task, data"),
        (
            {"task": "binary", "data": {"source": "d.csv", "target": "y", "taget": "z"}},
            "data.taget",
            "unknown key; valid keys here: source, query, target",
        ),
        (minimal(split={"test_size": "big"}), "split.test_size", "valid number"),
        (minimal(split={"test_size": 0.9}), "split.test_size", "less than 0.5"),
        (minimal(task="classification"), "task", "'binary', 'multiclass', 'regression'"),
        (minimal(acceptance={"rmse": "<= 3"}), "acceptance.rmse", "not a binary metric.*roc_auc"),
        (minimal(acceptance={"roc_auc": "0.8"}), "acceptance.roc_auc", "not a threshold.*>= 0.80"),
        (minimal(acceptance={"roc_auc": 0.8}), "acceptance", "string"),
        (minimal(metrics={"primary": "mae"}), "metrics.primary", "'mae' is not a binary metric"),
        (minimal(search={"trials": 0}), "search", "budget is zero"),
        (minimal(split={"strategy": "chronological"}), "split.strategy", "needs data.time"),
        (minimal(split={"strategy": "group"}), "split.strategy", "needs data.group"),
        ({"data": {"source": "d.csv", "target": "y"}}, "task", "is required"),
        ({"task": "binary", "data": {"source": "d.csv"}}, "data.target", "is required"),
        (minimal(fairness={"limits": {"equalized_odds_difference": "small"}}), "fairness.limits", "threshold"),
        (minimal(gate={"acceptance_on": "median"}), "gate.acceptance_on", "'interval' or 'point'"),
        (minimal(slices=["a", {"column": "b", "acceptance": {"rmse": "<= 1"}}]),
         "slices[1].acceptance.rmse", "not a binary metric"),
        (minimal(slices=[{"column": "b", "acceptance": {"recall": "0.6"}}]),
         "slices[0].acceptance.recall", "not a threshold"),
        (minimal(slices=[{"column": "b", "acceptance": {"recall": 0.6}}]),
         "slices[0].acceptance.recall", "no direction"),
        (minimal(slices=[{"colum": "b"}]), "slices[0].colum", "unknown key"),
        (minimal(slices=[{"acceptance": {"recall": ">= 0.6"}}]), "slices[0].column", "needs column"),
        (minimal(slices=[{"column": "b", "acceptance": ">= 0.6"}]), "slices[0].acceptance", "mapping"),
    ],
)
def test_invalid_specs_name_the_key(raw: dict[str, Any], key: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match) as info:
        parse_spec(raw)
    assert info.value.key is not None and info.value.key.startswith(key)


def test_slices_take_names_and_entries_with_criteria() -> None:
    spec = parse_spec(minimal(slices=["region", {"column": "plan", "acceptance": {"recall": ">= 0.6"}}]))
    assert spec.slices == ["region", "plan"]
    assert spec.slice_acceptance == {"plan": {"recall": ">= 0.6"}}
    assert spec.slice_thresholds["plan"]["recall"].holds(0.6) and spec.has_acceptance
    assert parse_spec(spec.to_dict()) == spec  # the stored form loads back
    plain = parse_spec(minimal(slices=["region"]))
    assert plain.slices == ["region"] and not plain.has_acceptance
    assert plain.gate.acceptance_on == "interval"


def test_threshold_parsing() -> None:
    t = parse_threshold(">= 0.8")
    assert t.holds(0.8) and t.holds(0.81) and not t.holds(0.79)
    assert parse_threshold("<3e-2").holds(0.01)
    with pytest.raises(ValueError, match="no direction"):
        parse_threshold(0.8)


def test_yaml_errors_name_the_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "assay.yaml"
    path.write_text("task: binary\ndata:\n  source: d.csv\n   target: y\n")
    with pytest.raises(ConfigError, match=r"line 4, column 10: is not valid YAML") as info:
        load_spec(path)
    assert str(path) in str(info.value)
    assert info.value.fields["line"] == 4 and info.value.fields["column"] == 10
    path.write_text("")
    with pytest.raises(ConfigError, match="is empty"):
        load_spec(path)
    path.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_spec(path)
    with pytest.raises(ConfigError, match="file not found.*assay init"):
        load_spec(tmp_path / "missing.yaml")


@pytest.fixture
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(1)
    return pd.DataFrame(
        {
            "x": rng.normal(size=100),
            "plan": rng.choice(["a", "b"], 100),
            "y": rng.integers(0, 2, 100),
            "amount": rng.normal(100, 20, 100),
            "grade": rng.choice(["A", "B", "C"], 100),
        }
    )


def test_columns_named_in_the_spec_must_exist(frame: pd.DataFrame) -> None:
    spec = parse_spec(minimal(slices=["plan", "region"]))
    with pytest.raises(ConfigError, match="column 'region' is not in data.*one of: x, plan, y") as info:
        check_spec_against_data(spec, frame)
    assert info.value.key == "slices[1]"
    spec = parse_spec({"task": "binary", "data": {"source": "d.csv", "target": "Y"}})
    with pytest.raises(ConfigError, match="column 'Y'") as info:
        check_spec_against_data(spec, frame)
    assert info.value.key == "data.target"


@pytest.mark.parametrize(
    ("task", "target", "match"),
    [
        ("binary", "amount", "binary but the target has 100 distinct values.*task: regression"),
        ("binary", "grade", "binary but the target has 3 distinct values.*task: multiclass"),
        ("regression", "plan", "regression but the target is not numeric"),
        ("multiclass", "amount", "looks continuous"),
        ("multiclass", "y", "task: binary"),
        ("regression", "y", "only 2 values"),
    ],
)
def test_task_and_target_must_agree(frame: pd.DataFrame, task: str, target: str, match: str) -> None:
    spec = parse_spec({"task": task, "data": {"source": "d.csv", "target": target}})
    with pytest.raises(DataError, match=match) as info:
        check_spec_against_data(spec, frame)
    assert info.value.column == target


def test_unusable_targets(frame: pd.DataFrame) -> None:
    spec = parse_spec(minimal())
    with pytest.raises(DataError, match="single value"):
        check_spec_against_data(spec, frame.assign(y=1))
    with pytest.raises(DataError, match="empty in every row"):
        check_spec_against_data(spec, frame.assign(y=np.nan))
    with pytest.raises(DataError, match="has 1 row; assay needs at least 10"):
        check_spec_against_data(spec, frame.head(1))


def regression(**extra: Any) -> dict[str, Any]:
    return {"task": "regression", "data": {"source": "d.csv", "target": "y"}, **extra}


@pytest.mark.parametrize(
    ("raw", "key", "match"),
    [
        (
            regression(fairness={"limits": {"equalized_odds_difference": "<= 0.1"}}),
            "fairness.limits.equalized_odds_difference",
            "not a fairness limit of a regression task; valid: mae_difference, mae_ratio, "
            "rmse_difference, rmse_ratio",
        ),
        (
            minimal(fairness={"limits": {"mae_ratio": ">= 0.8"}}),
            "fairness.limits.mae_ratio",
            "not a fairness limit of a binary task; valid: demographic_parity_difference, "
            "equalized_odds_difference, disparate_impact_ratio",
        ),
        (
            minimal(fairness={"limits": {"parity": "<= 0.1"}}),
            "fairness.limits.parity",
            "'parity' is not a fairness limit; valid: demographic_parity_difference",
        ),
        (
            regression(fairness={"limits": {"mae_difference": "small"}}),
            "fairness.limits.mae_difference",
            "not a threshold",
        ),
        (minimal(fairness={"mitigation": "always"}), "fairness.mitigation", "'auto', 'off'"),
        (regression(calibration={"max_ece": 0.05}), "calibration.max_ece", "no class probabilities"),
        (minimal(calibration={"max_ece": 1.5}), "calibration.max_ece", "less than 1"),
        (minimal(calibration={"method": "platt"}), "calibration.method", "valid: 'auto', 'isotonic' or 'sigmoid'"),
    ],
)
def test_fairness_and_calibration_settings_fit_the_task(
    raw: dict[str, Any], key: str, match: str
) -> None:
    with pytest.raises(ConfigError, match=match) as info:
        parse_spec(raw)
    assert info.value.key == key


def test_task_fairness_limits_and_calibration_are_accepted() -> None:
    spec = parse_spec(regression(fairness={"protected": ["sex"], "limits": {"mae_ratio": ">= 0.8"}}))
    assert spec.fairness.limits == {"mae_ratio": ">= 0.8"} and spec.fairness.mitigation == "auto"
    spec = parse_spec(minimal(calibration={"max_ece": 0.05, "method": "sigmoid"}))
    assert spec.calibration.max_ece == 0.05 and spec.calibration.method == "sigmoid"
    assert parse_spec(minimal()).calibration.max_ece is None
