"""detect_drift: planted shifts found by name, no false alarms, small windows, the report."""

from __future__ import annotations

import json
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.distance import jensenshannon

from assay.data.schema import ColumnSchema, infer_schema
from assay.errors import ConfigError, DataError
from assay.monitor import DriftReport, ReferenceProfile, build_reference, detect_drift

Maker = Callable[[np.random.Generator, int, bool], np.ndarray]
LEVELS = np.array(["basic", "plus", "pro", "team", "enterprise"], dtype=object)
WEIGHTS = np.array([0.4, 0.25, 0.15, 0.12, 0.08])

# each feature: how to draw n rows of it, unshifted or shifted
FEATURES: dict[str, Maker] = {
    "age": lambda rng, n, s: rng.normal(40.0 + (8.0 if s else 0.0), 8.0, n),
    "income": lambda rng, n, s: rng.lognormal(10.0, 0.5 * (2.0 if s else 1.0), n),
    "balance": lambda rng, n, s: rng.normal(0.0, 1000.0 * (2.0 if s else 1.0), n),
    "score": lambda rng, n, s: rng.beta(2.0, 5.0 if not s else 2.0, n),
    "visits": lambda rng, n, s: rng.poisson(6.0 if s else 3.0, n),
    "tenure": lambda rng, n, s: rng.exponential(12.0 if not s else 24.0, n),
    "plan": lambda rng, n, s: LEVELS[rng.choice(5, n, p=WEIGHTS[::-1] if s else WEIGHTS)],
    "region": lambda rng, n, s: np.array(["north", "south", "east", "west"], dtype=object)[
        rng.choice(4, n, p=[0.1, 0.2, 0.3, 0.4] if s else [0.4, 0.3, 0.2, 0.1])
    ],
}


def _frame(rng: np.random.Generator, n: int, shifted: frozenset[str] = frozenset()) -> pd.DataFrame:
    return pd.DataFrame({name: make(rng, n, name in shifted) for name, make in FEATURES.items()})


def _reference(frame: pd.DataFrame, **kw: object) -> ReferenceProfile:
    return build_reference(frame, infer_schema(frame).columns, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("seed", range(20))
def test_planted_shift_in_k_of_n_features_flags_exactly_those(seed: int) -> None:
    rng = np.random.default_rng(seed)
    names = list(FEATURES)
    k = int(rng.integers(1, len(names)))
    shifted = frozenset(rng.choice(names, size=k, replace=False).tolist())
    reference = _reference(_frame(rng, 5000), seed=seed)
    report = detect_drift(reference, _frame(rng, 5000, shifted))
    assert set(report.ranked) == shifted
    for column in report.features:
        if column.name in shifted:
            assert column.severity == "significant" and column.drifted, column
        else:  # no false alarm, not even a moderate one
            assert column.severity == "none" and not column.drifted, column
    assert report.share_drifted == pytest.approx(k / len(names))
    assert report.dataset_drift is (k / len(names) >= 0.5)
    psis = [report[name].psi for name in report.ranked]
    assert psis == sorted(psis, reverse=True)


def test_no_drift_on_traffic_drawn_from_the_reference(seed: int) -> None:
    rng = np.random.default_rng(seed)
    frame = _frame(rng, 5000)
    traffic = frame.sample(n=3000, replace=True, random_state=seed)
    report = detect_drift(_reference(frame), traffic)
    assert report.ranked == ()
    assert all(c.severity == "none" for c in report.columns)
    assert report.share_drifted == 0.0 and not report.dataset_drift


def test_the_reference_against_itself_is_zero(seed: int) -> None:
    frame = _frame(np.random.default_rng(seed), 3000)
    report = detect_drift(_reference(frame, sample=1000), frame)
    for column in report.columns:
        assert column.psi == 0.0 and column.js == 0.0, column
    assert report["plan"].statistic == pytest.approx(0.0, abs=1e-9)
    assert report["age"].statistic is not None and report["age"].statistic < 0.05


@settings(max_examples=30, deadline=None)
@given(
    values=st.lists(st.floats(-1e6, 1e6) | st.none(), min_size=30, max_size=120),
    levels=st.lists(st.sampled_from(["a", "b", "c", "d"]) | st.none(), min_size=30, max_size=120),
)
def test_drift_of_a_sample_against_itself_is_zero(
    values: list[float | None], levels: list[str | None]
) -> None:
    n = min(len(values), len(levels))
    frame = pd.DataFrame(
        {"x": pd.Series(values[:n], dtype="float64"), "c": pd.Series(levels[:n], dtype=object)}
    )
    columns = [
        ColumnSchema("x", "numeric", "float64", True, 0),
        ColumnSchema("c", "categorical", "object", True, 0),
    ]
    report = detect_drift(build_reference(frame, columns), frame)
    for column in report.columns:
        assert column.psi == 0.0 and column.js == 0.0 and not column.drifted


def test_psi_and_js_in_the_report_by_hand() -> None:
    reference = pd.DataFrame({"c": ["a"] * 500 + ["b"] * 500})
    current = pd.DataFrame({"c": ["a"] * 690 + ["b"] * 310})
    report = detect_drift(_reference(reference), current)
    column = report["c"]
    assert column.psi == pytest.approx(0.19 * np.log(0.69 / 0.5) + 0.19 * np.log(0.5 / 0.31))
    assert column.js == pytest.approx(jensenshannon([0.5, 0.5, 0, 0], [0.69, 0.31, 0, 0], base=2))
    assert 0.1 <= column.psi < 0.2
    assert column.severity == "moderate" and not column.drifted
    assert report.ranked == ()


def test_p_values_do_not_decide_on_a_huge_window() -> None:
    reference = pd.DataFrame({"c": ["a"] * 50_000 + ["b"] * 50_000})
    current = pd.DataFrame({"c": ["a"] * 51_000 + ["b"] * 49_000})
    column = detect_drift(_reference(reference), current)["c"]
    assert column.p_value is not None and column.p_value < 1e-6  # "significant" by p-value
    assert column.psi < 0.001 and column.severity == "none" and not column.drifted


def test_unseen_categories_are_counted_in_the_unseen_bin() -> None:
    reference = pd.DataFrame({"plan": ["basic"] * 600 + ["pro"] * 400})
    current = pd.DataFrame(
        {"plan": ["basic"] * 450 + ["pro"] * 300 + ["ultra"] * 150 + ["max"] * 100}
    )
    report = detect_drift(_reference(reference), current)
    column = report["plan"]
    assert column.unseen_current == pytest.approx(0.25)
    expected = np.maximum([0.6, 0.4, 0.0, 0.0], 1e-4)
    actual = np.maximum([0.45, 0.3, 0.25, 0.0], 1e-4)
    assert column.psi == pytest.approx(
        float(np.sum((actual - expected) * np.log(actual / expected)))
    )
    assert column.drifted and report.ranked == ("plan",)


def test_a_surge_of_missing_values_is_drift(seed: int) -> None:
    rng = np.random.default_rng(seed)
    frame = _frame(rng, 4000)
    current = _frame(rng, 4000)
    current.loc[current.index[:2000], "age"] = np.nan
    column = detect_drift(_reference(frame), current)["age"]
    assert column.missing_reference == 0.0 and column.missing_current == 0.5
    assert column.drifted
    assert column.statistic is not None and column.statistic < 0.05  # KS sees only the values


def test_prediction_and_confidence_drift(seed: int) -> None:
    rng = np.random.default_rng(seed)
    frame = _frame(rng, 4000)
    labels = rng.choice(["churn", "stay"], 4000, p=[0.2, 0.8])
    reference = _reference(frame, prediction=labels, confidence=rng.uniform(0.5, 1.0, 4000))
    traffic = _frame(rng, 4000).assign(
        prediction=rng.choice(["churn", "stay"], 4000, p=[0.6, 0.4]),
        confidence=rng.uniform(0.5, 1.0, 4000),
    )
    report = detect_drift(reference, traffic)
    assert report.prediction is not None and report.prediction.drifted
    assert report.prediction.test == "chi2"
    assert report.confidence is not None and not report.confidence.drifted
    assert report.ranked == ()  # model outputs are not features
    no_outputs = detect_drift(reference, traffic.drop(columns=["prediction", "confidence"]))
    assert no_outputs.prediction is None
    reasons = {s.name: s.reason for s in no_outputs.skipped}
    assert (
        reasons["__prediction__"]
        == "no column 'prediction' with the model's prediction in the window"
    )


def test_window_too_small_flags_nothing(seed: int) -> None:
    rng = np.random.default_rng(seed)
    reference = _reference(_frame(rng, 2000))
    shifted = _frame(rng, 29, frozenset(FEATURES))
    report = detect_drift(reference, shifted)
    assert not report.checked and report.columns == ()
    assert report.note.startswith("window too small: 29 rows, fewer than min_rows=30")
    assert report.ranked == () and not report.dataset_drift
    bigger = detect_drift(reference, _frame(rng, 30, frozenset(FEATURES)))
    assert bigger.checked and bigger.note == "" and len(bigger.features) == len(FEATURES)


def test_dataset_drift_share_is_configurable(seed: int) -> None:
    rng = np.random.default_rng(seed)
    reference = _reference(_frame(rng, 3000))
    current = _frame(rng, 3000, frozenset(["age", "income", "plan", "visits"]))
    assert detect_drift(reference, current).dataset_drift  # 4 of 8
    assert not detect_drift(reference, current, drift_share=0.6).dataset_drift


def test_report_round_trips_through_json(seed: int) -> None:
    rng = np.random.default_rng(seed)
    reference = _reference(_frame(rng, 2000), prediction=rng.integers(0, 2, 2000))
    report = detect_drift(reference, _frame(rng, 500, frozenset(["age"])).assign(prediction=1))
    data = json.loads(json.dumps(report.to_dict()))
    assert data["ranked"] == ["age"] and data["checked"] is True
    assert DriftReport.from_dict(data) == report


def test_a_missing_feature_is_a_data_error(seed: int) -> None:
    reference = _reference(_frame(np.random.default_rng(seed), 200))
    with pytest.raises(
        DataError, match=r"column 'age': reference feature 'age' is not in the current window"
    ):
        detect_drift(reference, _frame(np.random.default_rng(seed), 200).drop(columns="age"))
    with pytest.raises(DataError, match=r"current window is not a data frame .*got dict"):
        detect_drift(reference, {"age": [1.0]})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"psi_significant": 0.05},
            r"monitoring.psi_significant: .*expected a number >= psi_moderate",
        ),
        (
            {"js_threshold": 1.5},
            r"monitoring.js_threshold: .*expected a number in \(0, 1\], got 1.5",
        ),
        ({"min_rows": 0}, r"min_rows: .*expected an integer >= 1, got 0"),
        ({"numeric_test": "wasserstein"}, r"numeric_test: unknown drift test 'wasserstein'"),
        ({"numeric_test": "chi2"}, r"drift test 'chi2' does not apply to numeric columns"),
    ],
)
def test_bad_thresholds_are_config_errors(kwargs: dict[str, object], message: str) -> None:
    frame = pd.DataFrame({"x": np.arange(50.0)})
    with pytest.raises(ConfigError, match=message):
        detect_drift(_reference(frame), frame, **kwargs)  # type: ignore[arg-type]
