"""The protected_attribute_correlation and slice_representation checks."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import demographic_parity_ratio
from scipy.stats import chi2_contingency, kruskal

from assay.audit import CHECKS, AuditContext, Finding, run_audit
from assay.audit.checks.fairness import slice_levels
from assay.data import Dataset

CHECK_NAMES = ["protected_attribute_correlation", "slice_representation"]


def _audit(frame: pd.DataFrame, only: list[str] | None = None, **kw: object) -> list[Finding]:
    kw.setdefault("target", "target")
    kw.setdefault("task", "binary")
    ctx = AuditContext(dataset=Dataset.from_frame(frame), **kw)  # type: ignore[arg-type]
    report = run_audit(ctx, only=only or CHECK_NAMES)
    json.dumps(report.to_dict())  # every finding is JSON-serialisable
    for finding in report.findings:
        assert Finding.from_dict(finding.to_dict()) == finding
        assert not finding.message.startswith("the check could not run"), finding.message
    return list(report.findings)


@pytest.fixture
def biased(seed: int) -> pd.DataFrame:
    """Group 'a': 500 of 1000 positive; group 'b': 200 of 1000 positive."""
    rng = np.random.default_rng(seed)
    y = np.r_[np.repeat([1, 0], [500, 500]), np.repeat([1, 0], [200, 800])]
    frame = pd.DataFrame({"x": rng.normal(size=2000), "gender": ["a"] * 1000 + ["b"] * 1000})
    frame["target"] = y
    return frame.sample(frac=1.0, random_state=seed).reset_index(drop=True)


def _with_gender(frame: pd.DataFrame, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    out = frame.copy()
    out["gender"] = rng.permutation(np.repeat(["f", "m"], len(frame) // 2))
    return out


def test_registered_in_order() -> None:
    names = CHECKS.names()
    assert names.index("protected_attribute_correlation") < names.index("slice_representation")


def test_clean_frame_with_a_random_protected_column_raises_no_warning(
    clean_frame: pd.DataFrame, seed: int
) -> None:
    frame = _with_gender(clean_frame, seed)
    findings = _audit(frame, protected=("gender",))
    assert [f for f in findings if f.severity in ("block", "warn")] == []
    # the ratio is always shown
    [info] = [f for f in findings if f.check == "protected_attribute_correlation"]
    assert info.severity == "info"
    assert info.evidence["disparate_impact_ratio"] > 0.8
    assert "disparate-impact ratio" in info.message


def test_checks_do_not_apply_without_protected_or_slices(clean_frame: pd.DataFrame) -> None:
    report = run_audit(
        AuditContext(dataset=Dataset.from_frame(clean_frame), target="target", task="binary"),
        only=CHECK_NAMES,
    )
    assert report.checks_run == ()


# ----------------------------------------------------------------------------- protected_attribute_correlation


def test_disparate_impact_ratio_is_computed_exactly(biased: pd.DataFrame) -> None:
    [finding] = _audit(biased, ["protected_attribute_correlation"], protected=("gender",))
    # by hand: 200/1000 over 500/1000
    assert finding.evidence["disparate_impact_ratio"] == pytest.approx(0.2 / 0.5, abs=1e-12)
    assert finding.evidence["disparate_impact_ratio"] == pytest.approx(
        demographic_parity_ratio(
            biased["target"], biased["target"], sensitive_features=biased["gender"]
        ),
        abs=1e-6,
    )
    assert finding.severity == "warn"
    assert finding.columns == ("gender",)
    assert "'gender'" in finding.message
    assert "20.0% for 'b' and 50.0% for 'a'" in finding.message
    assert "four-fifths" in finding.message
    assert "fairness.limits" in finding.fix and "re-weighting" in finding.fix
    assert finding.evidence["positive_class"] == "1"
    assert finding.evidence["groups"]["a"] == {"rows": 1000, "rates": {"0": 0.5, "1": 0.5}}
    assert finding.evidence["lowest_group"] == "b"


def test_cramers_v_and_chi_squared_match_scipy(biased: pd.DataFrame) -> None:
    [finding] = _audit(biased, ["protected_attribute_correlation"], protected=("gender",))
    table = pd.crosstab(biased["gender"], biased["target"]).to_numpy()
    chi2, p_value, _, _ = chi2_contingency(table, correction=False)
    assert finding.evidence["chi2_p_value"] == pytest.approx(p_value)
    assert finding.evidence["cramers_v"] == pytest.approx(np.sqrt(chi2 / 2000), abs=1e-6)


def test_positive_class_is_the_named_one_not_the_majority(seed: int) -> None:
    rng = np.random.default_rng(seed)
    # "yes" is the majority; its rate is 0.9 vs 0.6: ratio 0.6 / 0.9
    frame = pd.DataFrame(
        {
            "group": ["p"] * 500 + ["q"] * 500,
            "target": ["yes"] * 450 + ["no"] * 50 + ["yes"] * 300 + ["no"] * 200,
            "x": rng.normal(size=1000),
        }
    )
    [finding] = _audit(frame, ["protected_attribute_correlation"], protected=("group",))
    assert finding.evidence["positive_class"] == "yes"
    assert finding.evidence["disparate_impact_ratio"] == pytest.approx(0.6 / 0.9)
    assert finding.severity == "warn"


def test_small_non_significant_gap_is_info(seed: int) -> None:
    # 6/40 vs 4/40: ratio 0.67 but chi-squared cannot tell it from chance
    frame = pd.DataFrame(
        {
            "group": ["a"] * 40 + ["b"] * 40,
            "target": [1] * 6 + [0] * 34 + [1] * 4 + [0] * 36,
        }
    )
    [finding] = _audit(frame, ["protected_attribute_correlation"], protected=("group",))
    assert finding.severity == "info"
    assert finding.evidence["disparate_impact_ratio"] == pytest.approx(4 / 6)
    assert "not statistically significant" in finding.message


def test_numeric_protected_attribute_is_binned_into_quartiles(seed: int) -> None:
    rng = np.random.default_rng(seed)
    age = rng.integers(18, 90, 2000)
    target = (rng.random(2000) < np.where(age < 40, 0.1, 0.5)).astype(int)
    frame = pd.DataFrame({"age": age, "target": target})
    [finding] = _audit(frame, ["protected_attribute_correlation"], protected=("age",))
    assert finding.evidence["binned"] is True
    groups = finding.evidence["groups"]
    assert len(groups) == 4
    assert sum(g["rows"] for g in groups.values()) == 2000
    assert finding.severity == "warn"
    assert finding.evidence["lowest_group"].startswith("[18, ")


def test_multiclass_reports_the_rate_of_each_class(seed: int) -> None:
    rng = np.random.default_rng(seed)
    group = np.repeat(["a", "b"], 600)
    # class "c" is three times as frequent in group a as in group b
    probs = {"a": [0.3, 0.3, 0.4], "b": [0.45, 0.45, 0.1]}
    target = [rng.choice(["x", "y", "c"], p=probs[g]) for g in group]
    frame = pd.DataFrame({"group": group, "target": target})
    [finding] = _audit(
        frame, ["protected_attribute_correlation"], protected=("group",), task="multiclass"
    )
    rates = pd.crosstab(frame["group"], frame["target"], normalize="index")
    assert finding.evidence["class"] == "c"
    assert finding.evidence["disparate_impact_ratio"] == pytest.approx(
        rates["c"].min() / rates["c"].max()
    )
    assert set(finding.evidence["per_class_ratio"]) == {"x", "y", "c"}
    assert finding.severity == "warn"


def test_regression_reports_eta_squared_and_kruskal(seed: int) -> None:
    rng = np.random.default_rng(seed)
    group = np.repeat(["a", "b", "c"], 300)
    target = rng.normal(size=900) + np.select([group == "a", group == "b"], [1.0, 0.5], 0.0)
    frame = pd.DataFrame({"group": group, "target": target})
    [finding] = _audit(
        frame, ["protected_attribute_correlation"], protected=("group",), task="regression"
    )
    means = frame.groupby("group")["target"].mean()
    between = (300 * (means - target.mean()) ** 2).sum()
    total = ((target - target.mean()) ** 2).sum()
    assert finding.evidence["eta_squared"] == pytest.approx(between / total, abs=1e-6)
    samples = [frame.loc[frame["group"] == g, "target"] for g in "abc"]
    assert finding.evidence["kruskal_p_value"] == pytest.approx(kruskal(*samples).pvalue)
    assert finding.severity == "warn"
    assert "'group'" in finding.message


def test_regression_without_effect_is_info(seed: int) -> None:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"group": np.repeat(["a", "b"], 400), "target": rng.normal(size=800)})
    [finding] = _audit(
        frame, ["protected_attribute_correlation"], protected=("group",), task="regression"
    )
    assert finding.severity == "info"


# ----------------------------------------------------------------------------- slice_representation


def test_slice_level_with_twelve_rows_warns_naming_it(clean_frame: pd.DataFrame, seed: int) -> None:
    rng = np.random.default_rng(seed)
    frame = clean_frame.copy()
    frame["region"] = rng.choice(["north", "south", "east"], len(frame))
    frame.loc[:11, "region"] = "islands"
    [finding] = _audit(frame, ["slice_representation"], slices=("region",))
    assert finding.severity == "warn"
    assert finding.columns == ("region",)
    assert "'islands' (12 rows, ~2 in the test set)" in finding.message
    assert finding.evidence["small_levels"] == {"islands": 12}
    assert finding.evidence["expected_test_rows"] == {"islands": 2}
    assert "merge" in finding.fix


def test_slice_representation_covers_protected_columns_once(
    clean_frame: pd.DataFrame, seed: int
) -> None:
    frame = _with_gender(clean_frame, seed)
    frame.loc[:4, "gender"] = "x"
    findings = _audit(frame, ["slice_representation"], slices=("gender",), protected=("gender",))
    assert len(findings) == 1
    assert "'x' (5 rows, ~1 in the test set)" in findings[0].message


def test_level_with_a_nearly_absent_class_warns(seed: int) -> None:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"plan": ["basic"] * 200 + ["pro"] * 200, "x": rng.normal(size=400)})
    frame["target"] = [0, 1] * 100 + [0] * 197 + [1] * 3
    [finding] = _audit(frame, ["slice_representation"], slices=("plan",))
    assert finding.evidence["sparse_classes"] == {"pro": {"1": 3}}
    assert "'pro' (class '1': 3 rows)" in finding.message
    assert finding.evidence["small_levels"] == {}


def test_min_slice_size_is_respected(clean_frame: pd.DataFrame, seed: int) -> None:
    frame = _with_gender(clean_frame, seed)
    frame.loc[:49, "gender"] = "x"
    assert _audit(frame, ["slice_representation"], slices=("gender",), min_slice_size=50) == []
    [finding] = _audit(frame, ["slice_representation"], slices=("gender",), min_slice_size=51)
    assert finding.evidence["small_levels"] == {"x": 50}


def test_unknown_slice_column_is_named(clean_frame: pd.DataFrame) -> None:
    [finding] = _audit(clean_frame, ["slice_representation"], slices=("country",))
    assert finding.severity == "warn"
    assert finding.columns == ("country",)
    assert "'country'" in finding.message


def test_slice_levels_bins_many_valued_numbers_and_keeps_missing() -> None:
    values = pd.Series([*range(100), None], dtype="float64")
    levels, binned = slice_levels(values)
    assert binned
    assert levels.iloc[-1] == "(missing)"
    assert levels.iloc[:100].value_counts().tolist() == [25, 25, 25, 25]
    assert levels.iloc[0] == "[0, 24.75)" and levels.iloc[99] == "[74.25, 99]"
    few, binned_few = slice_levels(pd.Series([1.0, 0.0, 1.0]))
    assert not binned_few and few.tolist() == ["1", "0", "1"]
