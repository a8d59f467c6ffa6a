"""The drift tests against scipy and hand computations on fixed arrays."""

from __future__ import annotations

import inspect

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.distance import jensenshannon
from scipy.stats import chisquare, ks_2samp

from assay.data.schema import ColumnSchema
from assay.monitor import (
    DRIFT_TESTS,
    BaseDriftTest,
    ChiSquaredTest,
    CurrentColumn,
    JSDistanceTest,
    KSTest,
    PSITest,
    build_reference,
    drift_tests,
)
from assay.monitor.drift_tests import (
    EPSILON,
    chi2_pooled,
    js_distance,
    ks_2samp_sorted,
    ks_statistic,
    psi,
)

NUM = ColumnSchema("x", "numeric", "float64", True, 0)
CAT = ColumnSchema("c", "categorical", "str", True, 0)


def _current(
    column: ColumnSchema, reference: pd.Series, current: pd.Series, **kw: int
) -> CurrentColumn:
    profile = build_reference(pd.DataFrame({column.name: reference}), [column], **kw)[column.name]
    return CurrentColumn.from_series(profile, current)


def test_every_drift_test_is_registered() -> None:
    concrete = [
        obj
        for _, obj in inspect.getmembers(drift_tests, inspect.isclass)
        if issubclass(obj, BaseDriftTest) and not inspect.isabstract(obj)
    ]
    assert {cls.alias for cls in concrete} == {"psi", "ks", "chi2", "js"}
    for cls in concrete:
        assert DRIFT_TESTS.get(cls.alias) is cls
    assert PSITest.alias == "psi" and KSTest.alias == "ks"
    assert ChiSquaredTest.alias == "chi2" and JSDistanceTest.alias == "js"


def test_psi_by_hand() -> None:
    # (0.25 - 0.5) ln(0.25 / 0.5) + (0.75 - 0.5) ln(0.75 / 0.5)
    assert psi(np.array([0.5, 0.5]), np.array([0.25, 0.75])) == pytest.approx(
        0.25 * np.log(2.0) + 0.25 * np.log(1.5), rel=1e-12
    )
    # an empty bin is floored at epsilon, so the term is large but finite
    value = psi(np.array([1.0, 0.0]), np.array([0.5, 0.5]))
    assert value == pytest.approx(
        (0.5 - 1.0) * np.log(0.5) + (0.5 - EPSILON) * np.log(0.5 / EPSILON), rel=1e-12
    )
    assert psi(np.array([0.2, 0.3, 0.5]), np.array([0.2, 0.3, 0.5])) == 0.0


def test_psi_test_on_reference_bins_by_hand() -> None:
    reference = pd.Series(np.arange(1.0, 101.0))  # ten bins of 0.1
    current = pd.Series(np.r_[np.full(30, 5.0), np.full(70, 95.0)])  # 0.3 in bin 0, 0.7 in bin 9
    stat = PSITest().compute(_current(NUM, reference, current))
    p = np.r_[np.full(10, 0.1), 0.0]
    q = np.r_[0.3, np.zeros(8), 0.7, 0.0]
    pe, qe = np.maximum(p, EPSILON), np.maximum(q, EPSILON)
    assert stat.test == "psi" and stat.p_value is None
    assert stat.statistic == pytest.approx(float(np.sum((qe - pe) * np.log(qe / pe))), rel=1e-12)


@settings(max_examples=60, deadline=None)
@given(
    p=st.lists(st.floats(0.0, 1.0), min_size=2, max_size=12),
    q=st.lists(st.floats(0.0, 1.0), min_size=2, max_size=12),
)
def test_psi_is_never_negative_and_zero_on_itself(p: list[float], q: list[float]) -> None:
    k = min(len(p), len(q))
    a, b = np.asarray(p[:k]), np.asarray(q[:k])
    assert psi(a, b) >= 0.0
    assert psi(a, a) == 0.0
    assert psi(a, b) == pytest.approx(psi(b, a))  # symmetric in the two distributions


def test_ks_equals_scipy_on_small_arrays() -> None:
    reference = pd.Series([0.1, 0.4, 0.4, 1.2, 2.0, 3.5, 3.5, 3.5, 7.0])
    current = pd.Series([0.4, 0.5, 2.0, 2.0, 9.0, None, 3.5])
    stat = KSTest().compute(_current(NUM, reference, current))
    expected = ks_2samp(reference.to_numpy(), current.dropna().to_numpy())
    assert stat.test == "ks"
    assert stat.statistic == float(expected.statistic)
    assert stat.p_value == float(expected.pvalue)


def test_ks_equals_scipy_above_the_exact_limit(seed: int) -> None:
    rng = np.random.default_rng(seed)
    reference = np.sort(rng.normal(size=15_000).round(2))  # ties on both sides
    current = rng.normal(0.05, 1.1, size=12_000).round(2)
    current[:25] = np.nan
    d, p_value = ks_2samp_sorted(reference, np.sort(current))
    expected = ks_2samp(reference, current[~np.isnan(current)])
    assert d == float(expected.statistic)
    assert p_value == float(expected.pvalue)


@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning")  # scipy's p-value at n = 1
@settings(max_examples=80, deadline=None)
@given(
    a=st.lists(st.integers(-5, 5), min_size=1, max_size=40),
    b=st.lists(st.integers(-5, 5), min_size=1, max_size=40),
    missing=st.integers(0, 3),
)
def test_ks_statistic_equals_scipy_with_ties(a: list[int], b: list[int], missing: int) -> None:
    ref = np.sort(np.asarray(a, dtype=float))
    cur = np.sort(np.r_[np.asarray(b, dtype=float), [np.nan] * missing])
    # the asymptotic mode leaves the statistic as computed (exact mode rounds it to k / lcm)
    expected = ks_2samp(ref, np.asarray(b, dtype=float), method="asymp")
    assert ks_statistic(ref, cur) == float(expected.statistic)


def test_ks_is_none_without_current_values() -> None:
    stat = KSTest().compute(
        _current(NUM, pd.Series([1.0, 2.0]), pd.Series([None, None], dtype=float))
    )
    assert stat.statistic is None and stat.p_value is None


def test_chi2_equals_scipy_with_reference_shares_times_n() -> None:
    reference = pd.Series(["a"] * 50 + ["b"] * 30 + ["c"] * 20)
    current = pd.Series(["a"] * 30 + ["b"] * 40 + ["c"] * 30)
    stat = ChiSquaredTest().compute(_current(CAT, reference, current))
    expected = chisquare([30, 40, 30], [50.0, 30.0, 20.0])
    assert stat.test == "chi2"
    assert stat.statistic == pytest.approx(float(expected.statistic), rel=1e-12)
    assert stat.p_value == pytest.approx(float(expected.pvalue), rel=1e-9)


def test_chi2_pools_sparse_bins_and_unseen_levels() -> None:
    # bins: a, b, c, d (expected 2 and 1 at n=100), unseen, missing
    shares = np.array([0.6, 0.37, 0.02, 0.01, 0.0, 0.0])
    observed = np.array([55, 35, 3, 1, 6, 0])
    statistic, p_value, obs, expected = chi2_pooled(observed, shares)
    # the empty missing bin is dropped; c, d and the unseen values form one rare pool
    np.testing.assert_array_equal(obs, [55, 35, 10])
    np.testing.assert_allclose(expected, [60.0, 37.0, 3.0])
    reference = chisquare([55, 35, 10], [60.0, 37.0, 3.0])
    assert statistic == pytest.approx(float(reference.statistic), rel=1e-12)
    assert p_value == pytest.approx(float(reference.pvalue), rel=1e-9)


def test_chi2_unseen_values_alone_give_a_large_finite_statistic() -> None:
    shares = np.array([0.5, 0.5, 0.0, 0.0])
    statistic, p_value, obs, expected = chi2_pooled(np.array([40, 40, 20, 0]), shares)
    np.testing.assert_array_equal(obs, [40, 40, 20])
    np.testing.assert_allclose(expected, [50 * (1 - EPSILON), 50 * (1 - EPSILON), 100 * EPSILON])
    assert np.isfinite(statistic) and statistic > 1000
    assert p_value == pytest.approx(float(chisquare(obs, expected).pvalue))
    # a single bin left: nothing to compare
    assert chi2_pooled(np.array([7, 0, 0]), np.array([1.0, 0.0, 0.0]))[:2] == (0.0, 1.0)


def test_js_equals_scipy_base_2() -> None:
    reference = pd.Series(["a"] * 50 + ["b"] * 30 + ["c"] * 20)
    current = pd.Series(["a"] * 10 + ["b"] * 40 + ["c"] * 30 + ["new"] * 20)
    stat = JSDistanceTest().compute(_current(CAT, reference, current))
    expected = jensenshannon([0.5, 0.3, 0.2, 0.0, 0.0], [0.1, 0.4, 0.3, 0.2, 0.0], base=2)
    assert stat.statistic == pytest.approx(float(expected), rel=1e-12)
    assert js_distance(np.array([0.5, 0.5]), np.array([0.5, 0.5])) == 0.0
    assert js_distance(np.array([1.0, 0.0]), np.array([0.0, 1.0])) == pytest.approx(1.0)


def test_tests_apply_to_their_kinds() -> None:
    numeric = _current(NUM, pd.Series([1.0, 2.0, 3.0]), pd.Series([1.0])).profile
    categorical = _current(CAT, pd.Series(["a"]), pd.Series(["a"])).profile
    assert KSTest().applies_to(numeric) and not KSTest().applies_to(categorical)
    assert ChiSquaredTest().applies_to(categorical) and not ChiSquaredTest().applies_to(numeric)
    for test in (PSITest(), JSDistanceTest()):
        assert test.applies_to(numeric) and test.applies_to(categorical)
