"""The contract every drift test must honour, as a reusable pytest class.

A drift test compares a column's reference profile with a window of traffic. On numeric
and categorical columns (whichever kinds the test applies to) the contract asserts that

- a sample compared with itself shows no drift (statistic 0, p-value 1 where there is one),
  also as a Hypothesis property over arbitrary samples with gaps;
- a planted shift is flagged (a p-value below ``alpha``, or an effect size at or above the
  test's threshold);
- every result is finite or None, with a p-value in [0, 1], and ``json.dumps`` accepts its
  ``to_dict()`` as is;
- an empty window gives ``None`` (nothing to compare), and an all-missing window or a
  constant column gives a finite result or None, never an exception;
- neither the profile nor the counted window is changed by ``compute`` (the window is
  counted once per column and read by every test), and the same input gives the same result.

Use it like this (a test module provides the ``drift_test`` fixture)::

    import pytest
    from assay.testing.drift import DriftTestContract

    class TestMyDriftTest(DriftTestContract):
        @pytest.fixture
        def drift_test(self):
            return MyDriftTest()

Requires pytest and Hypothesis (test dependencies).
"""

from __future__ import annotations

import json
import math
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assay.data.schema import ColumnSchema
from assay.monitor.drift_tests import BaseDriftTest, CurrentColumn, DriftStat
from assay.monitor.reference import ColumnProfile, ProfileKind, build_reference

__all__ = [
    "DriftTestContract",
    "check_stat_well_formed",
    "compute_on",
    "drift_sample",
    "profile_of",
]

_SCHEMA: dict[str, ColumnSchema] = {
    "numeric": ColumnSchema("x", "numeric", "float64", True, 0),
    "categorical": ColumnSchema("c", "categorical", "str", True, 0),
}
_LEVELS = np.array(["red", "green", "blue", "grey"])


def _dtype(kind: str) -> str:
    return "float64" if kind == "numeric" else "object"


def profile_of(kind: str, reference: pd.Series) -> ColumnProfile:
    """The reference profile of ``reference`` as a ``numeric`` or ``categorical`` column."""
    schema = _SCHEMA[kind]
    frame = pd.DataFrame({schema.name: reference.reset_index(drop=True)})
    return build_reference(frame, [schema], seed=0)[schema.name]


def compute_on(test: BaseDriftTest, profile: ColumnProfile, current: pd.Series) -> DriftStat:
    """``test`` on ``current`` counted against ``profile``."""
    return test.compute(CurrentColumn.from_series(profile, current))


def drift_sample(kind: str, n: int, *, seed: int = 0, shift: bool = False) -> pd.Series:
    """A column of ``kind`` with a few gaps; ``shift`` moves its distribution well away.

    Numeric: normal(0, 1), shifted to normal(1.5, 1). Categorical: level shares
    0.55/0.25/0.15/0.05, reversed when shifted.
    """
    rng = np.random.default_rng(seed)
    if kind == "numeric":
        values: list[Any] = rng.normal(1.5 if shift else 0.0, 1.0, n).tolist()
    else:
        shares = np.array([0.55, 0.25, 0.15, 0.05])
        values = rng.choice(_LEVELS, size=n, p=shares[::-1] if shift else shares).tolist()
    gaps = rng.random(n) < 0.03
    return pd.Series([None if gap else v for v, gap in zip(values, gaps)], dtype=_dtype(kind))


def check_stat_well_formed(stat: DriftStat, alias: str) -> None:
    """``stat`` is the test's, finite or None, a p-value in [0, 1], and JSON as is."""
    assert isinstance(stat, DriftStat)
    assert stat.test == alias
    for value in (stat.statistic, stat.p_value):
        assert value is None or (isinstance(value, float) and math.isfinite(value)), stat
    if stat.p_value is not None:
        assert 0.0 <= stat.p_value <= 1.0, stat
    text = json.dumps(stat.to_dict(), allow_nan=False)
    assert DriftStat.from_dict(json.loads(text)) == stat


class DriftTestContract:
    """No drift on itself, a flagged shift, well-formed results and untouched inputs.

    Subclasses provide the ``drift_test`` fixture (an instance). A planted shift counts
    as flagged when the p-value is below ``alpha``, or, for tests without one, when the
    statistic reaches ``effect_threshold[alias]`` (``default_effect_threshold`` otherwise).
    """

    alpha: ClassVar[float] = 1e-3
    effect_threshold: ClassVar[dict[str, float]] = {"psi": 0.2, "js": 0.1}
    default_effect_threshold: ClassVar[float] = 0.1
    rows: ClassVar[int] = 800

    @pytest.fixture
    def drift_test(self) -> BaseDriftTest:
        """The drift test under test (override in the subclass)."""
        raise NotImplementedError("define a `drift_test` fixture returning the test instance")

    @pytest.fixture(params=["numeric", "categorical"])
    def kind(self, request: pytest.FixtureRequest, drift_test: BaseDriftTest) -> ProfileKind:
        """Each column kind the test applies to."""
        kind: ProfileKind = request.param
        if kind not in drift_test.kinds:
            pytest.skip(f"{type(drift_test).__name__} does not apply to {kind} columns")
        return kind

    def flagged(self, stat: DriftStat) -> bool:
        """Whether ``stat`` reports drift."""
        if stat.p_value is not None:
            return stat.p_value < self.alpha
        threshold = self.effect_threshold.get(stat.test, self.default_effect_threshold)
        return stat.statistic is not None and stat.statistic >= threshold

    def _no_drift(self, stat: DriftStat) -> None:
        assert stat.statistic is not None, stat
        assert stat.statistic == pytest.approx(0.0, abs=1e-9), stat
        if stat.p_value is not None:
            assert stat.p_value == pytest.approx(1.0), stat
        assert not self.flagged(stat)

    def test_a_sample_against_itself_shows_no_drift(
        self, drift_test: BaseDriftTest, kind: ProfileKind
    ) -> None:
        sample = drift_sample(kind, self.rows)
        stat = compute_on(drift_test, profile_of(kind, sample), sample)
        check_stat_well_formed(stat, drift_test.alias)
        self._no_drift(stat)

    def test_no_drift_on_itself_for_any_sample(
        self, drift_test: BaseDriftTest, kind: ProfileKind
    ) -> None:
        numbers = st.one_of(st.floats(-1e6, 1e6), st.integers(-5, 5).map(float), st.none())
        levels = st.one_of(st.sampled_from(["a", "b", "c", "d", " ", "é"]), st.none())

        @settings(max_examples=40, deadline=None, derandomize=True, database=None)
        @given(values=st.lists(numbers if kind == "numeric" else levels, min_size=1, max_size=60))
        def prop(values: list[Any]) -> None:
            series = pd.Series(values, dtype=_dtype(kind))
            stat = compute_on(drift_test, profile_of(kind, series), series)
            check_stat_well_formed(stat, drift_test.alias)
            if stat.statistic is None:  # nothing to compare (e.g. no value for KS)
                assert series.isna().all()
                return
            self._no_drift(stat)

        prop()

    def test_a_planted_shift_is_flagged(
        self, drift_test: BaseDriftTest, kind: ProfileKind
    ) -> None:
        profile = profile_of(kind, drift_sample(kind, self.rows, seed=1))
        same = compute_on(drift_test, profile, drift_sample(kind, self.rows, seed=2))
        shifted = compute_on(
            drift_test, profile, drift_sample(kind, self.rows, seed=2, shift=True)
        )
        check_stat_well_formed(same, drift_test.alias)
        check_stat_well_formed(shifted, drift_test.alias)
        assert self.flagged(shifted), shifted
        assert not self.flagged(same), same
        assert shifted.statistic is not None and same.statistic is not None
        assert shifted.statistic > same.statistic

    def test_an_empty_window_has_nothing_to_compare(
        self, drift_test: BaseDriftTest, kind: ProfileKind
    ) -> None:
        profile = profile_of(kind, drift_sample(kind, self.rows))
        stat = compute_on(drift_test, profile, pd.Series([], dtype=_dtype(kind)))
        check_stat_well_formed(stat, drift_test.alias)
        assert stat.statistic is None and stat.p_value is None, stat

    def test_an_all_missing_window_gives_a_clear_result(
        self, drift_test: BaseDriftTest, kind: ProfileKind
    ) -> None:
        profile = profile_of(kind, drift_sample(kind, self.rows))
        gaps = pd.Series([None] * 50, dtype=_dtype(kind))
        check_stat_well_formed(compute_on(drift_test, profile, gaps), drift_test.alias)
        # against a reference that is itself all missing, nothing changed
        stat = compute_on(drift_test, profile_of(kind, gaps), gaps)
        check_stat_well_formed(stat, drift_test.alias)
        assert not self.flagged(stat), stat

    def test_a_constant_column_gives_a_clear_result(
        self, drift_test: BaseDriftTest, kind: ProfileKind
    ) -> None:
        value, other = (3.0, -2.0) if kind == "numeric" else ("only", "other")
        constant = pd.Series([value] * 200, dtype=_dtype(kind))
        profile = profile_of(kind, constant)
        self._no_drift(compute_on(drift_test, profile, constant))
        moved = compute_on(drift_test, profile, pd.Series([other] * 200, dtype=_dtype(kind)))
        check_stat_well_formed(moved, drift_test.alias)
        assert self.flagged(moved), moved
        # a sample against a constant reference, and a constant window against a sample
        for stat in (
            compute_on(drift_test, profile, drift_sample(kind, 200)),
            compute_on(drift_test, profile_of(kind, drift_sample(kind, 200)), constant),
        ):
            check_stat_well_formed(stat, drift_test.alias)

    def test_inputs_are_left_unchanged_and_results_repeat(
        self, drift_test: BaseDriftTest, kind: ProfileKind
    ) -> None:
        profile = profile_of(kind, drift_sample(kind, self.rows, seed=1))
        saved_profile = json.dumps(profile.to_dict(), sort_keys=True)
        series = drift_sample(kind, self.rows, seed=2, shift=True)
        saved_series = series.copy(deep=True)
        current = CurrentColumn.from_series(profile, series)
        counts = current.counts.copy()
        values = None if current.values is None else current.values.copy()
        first = drift_test.compute(current)
        second = drift_test.compute(current)
        pd.testing.assert_series_equal(series, saved_series)
        assert json.dumps(profile.to_dict(), sort_keys=True) == saved_profile
        np.testing.assert_array_equal(current.counts, counts)
        if values is not None:
            assert current.values is not None
            np.testing.assert_array_equal(current.values, values)
        assert first == second
        assert compute_on(drift_test, profile, series) == first
