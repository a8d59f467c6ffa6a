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

Free-text columns are judged by another kind of plug-in
(:class:`~assay.monitor.text_drift.BaseTextDriftTest`: a text profile and measured texts
in, a :class:`~assay.monitor.drift.DriftCheck` with its own verdict out).
:class:`TextDriftTestContract` asserts the same properties of those on synthetic measures
(:func:`text_drift_sample`), so it needs no model: itself gives statistic 0 (p-value 1) and
no drift, also for arbitrary samples; a planted shift of lengths, unknown tokens and
embeddings is flagged while a second sample of the same distribution is not; an empty
window gives None and no drift; all-missing and constant windows give clear results; the
inputs are left as they were and the result repeats.

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
from assay.monitor.drift import DriftCheck
from assay.monitor.drift_tests import BaseDriftTest, CurrentColumn, DriftStat
from assay.monitor.reference import ColumnProfile, ProfileKind, TextProfile, build_reference
from assay.monitor.text_drift import BaseTextDriftTest, TextFeatures, text_profile

__all__ = [
    "DriftTestContract",
    "TextDriftTestContract",
    "check_check_well_formed",
    "check_stat_well_formed",
    "compute_on",
    "drift_sample",
    "profile_of",
    "text_drift_sample",
    "text_profile_of",
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


# -- free-text columns ------------------------------------------------------------------------


def text_drift_sample(
    n: int, *, seed: int = 0, shift: bool = False, dim: int = 8, gaps: float = 0.03
) -> TextFeatures:
    """Synthetic measures of ``n`` texts (a ``gaps`` share missing); ``shift`` moves them.

    Lengths in tokens ``1 + Poisson(20)`` (shifted: ``Poisson(40)``), about five characters
    a token; unknown tokens ``Binomial(tokens, 0.002)`` (shifted: 0.08); unit embeddings
    scattered around one axis (shifted: around another).
    """
    rng = np.random.default_rng(seed)
    tokens = 1.0 + rng.poisson(40 if shift else 20, n)
    chars = tokens * 5.0 + rng.integers(0, 5, n)
    unknown = rng.binomial(tokens.astype(np.int64), 0.08 if shift else 0.002).astype(float)
    center = np.zeros(dim)
    center[1 if shift else 0] = 1.0
    vectors = center + 0.5 * rng.normal(size=(n, dim))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    missing = rng.random(n) < gaps
    for values in (tokens, chars, unknown):
        values[missing] = np.nan
    embeddings = vectors[~missing].astype(np.float16).astype(np.float32)
    return TextFeatures(chars, tokens, unknown, embeddings)


def text_profile_of(features: TextFeatures) -> TextProfile:
    """The reference profile of synthetic measures (a stand-in base, seed 0)."""
    return text_profile(
        "review", features, base="synthetic", base_sha256="0" * 64, max_length=64, seed=0
    )


def check_check_well_formed(check: DriftCheck, alias: str) -> None:
    """``check`` is the test's, finite or None, a p-value in [0, 1], and JSON as is."""
    assert isinstance(check, DriftCheck)
    assert check.test == alias
    for value in (check.statistic, check.p_value, check.threshold):
        assert value is None or (isinstance(value, float) and math.isfinite(value)), check
    if check.p_value is not None:
        assert 0.0 <= check.p_value <= 1.0, check
    assert isinstance(check.drifted, bool)
    if check.statistic is None:
        assert check.p_value is None and not check.drifted, check
    text = json.dumps(check.to_dict(), allow_nan=False)
    assert DriftCheck.from_dict(json.loads(text)) == check


def _features_copy(features: TextFeatures) -> TextFeatures:
    return TextFeatures(
        features.chars.copy(),
        features.tokens.copy(),
        features.unknown.copy(),
        features.embeddings.copy(),
    )


def _same_features(a: TextFeatures, b: TextFeatures) -> bool:
    return all(
        np.array_equal(x, y, equal_nan=True)
        for x, y in zip(
            (a.chars, a.tokens, a.unknown, a.embeddings),
            (b.chars, b.tokens, b.unknown, b.embeddings),
        )
    )


class TextDriftTestContract:
    """The drift-test contract for tests of free-text columns (see the module doc).

    Subclasses provide the ``text_drift_test`` fixture (an instance). A check counts as
    flagged by its own verdict (``drifted``): each text test decides with its threshold.
    """

    rows: ClassVar[int] = 400

    @pytest.fixture
    def text_drift_test(self) -> BaseTextDriftTest:
        """The text drift test under test (override in the subclass)."""
        raise NotImplementedError("define a `text_drift_test` fixture returning the test")

    def _no_drift(self, check: DriftCheck) -> None:
        assert check.statistic is not None, check
        assert check.statistic == pytest.approx(0.0, abs=1e-9), check
        if check.p_value is not None:
            assert check.p_value == pytest.approx(1.0), check
        assert not check.drifted, check

    def test_a_sample_against_itself_shows_no_drift(
        self, text_drift_test: BaseTextDriftTest
    ) -> None:
        sample = text_drift_sample(self.rows)
        check = text_drift_test.compute(text_profile_of(sample), sample)
        check_check_well_formed(check, text_drift_test.alias)
        self._no_drift(check)

    def test_no_drift_on_itself_for_any_sample(self, text_drift_test: BaseTextDriftTest) -> None:
        row = st.one_of(
            st.none(),
            st.tuples(
                st.integers(0, 30),
                st.floats(0.0, 1.0),
                st.lists(st.integers(-2, 2), min_size=3, max_size=3),
            ),
        )

        @settings(max_examples=40, deadline=None, derandomize=True, database=None)
        @given(rows=st.lists(row, min_size=1, max_size=40))
        def prop(rows: list[Any]) -> None:
            present = [r for r in rows if r is not None]
            tokens = np.array([np.nan if r is None else float(r[0]) for r in rows])
            unknown = np.array(
                [np.nan if r is None else float(np.floor(r[0] * r[1])) for r in rows]
            )
            embeddings = np.array([r[2] for r in present], dtype=np.float32).reshape(-1, 3)
            sample = TextFeatures(tokens * 4.0, tokens, unknown, embeddings)
            check = text_drift_test.compute(text_profile_of(sample), sample)
            check_check_well_formed(check, text_drift_test.alias)
            if check.statistic is None:  # nothing to compare (no text, or no token)
                return
            self._no_drift(check)

        prop()

    def test_a_planted_shift_is_flagged(self, text_drift_test: BaseTextDriftTest) -> None:
        profile = text_profile_of(text_drift_sample(self.rows, seed=1))
        same = text_drift_test.compute(profile, text_drift_sample(self.rows, seed=2))
        shifted = text_drift_test.compute(
            profile, text_drift_sample(self.rows, seed=2, shift=True)
        )
        check_check_well_formed(same, text_drift_test.alias)
        check_check_well_formed(shifted, text_drift_test.alias)
        assert shifted.drifted, shifted
        assert not same.drifted, same
        assert shifted.statistic is not None and same.statistic is not None
        assert shifted.statistic > same.statistic

    def test_an_empty_window_has_nothing_to_compare(
        self, text_drift_test: BaseTextDriftTest
    ) -> None:
        profile = text_profile_of(text_drift_sample(self.rows))
        check = text_drift_test.compute(profile, text_drift_sample(0))
        check_check_well_formed(check, text_drift_test.alias)
        assert check.statistic is None and check.p_value is None and not check.drifted

    def test_an_all_missing_window_gives_a_clear_result(
        self, text_drift_test: BaseTextDriftTest
    ) -> None:
        profile = text_profile_of(text_drift_sample(self.rows))
        gaps = text_drift_sample(50, gaps=1.0)
        check_check_well_formed(text_drift_test.compute(profile, gaps), text_drift_test.alias)
        # against a reference that is itself all missing, nothing changed
        check = text_drift_test.compute(text_profile_of(gaps), gaps)
        check_check_well_formed(check, text_drift_test.alias)
        assert not check.drifted, check

    def test_constant_texts_give_a_clear_result(self, text_drift_test: BaseTextDriftTest) -> None:
        def constant(tokens: float, unknown: float, axis: int) -> TextFeatures:
            vector = np.zeros((200, 8), dtype=np.float32)
            vector[:, axis] = 1.0
            column = np.full(200, tokens)
            return TextFeatures(column * 5.0, column, np.full(200, unknown), vector)

        same = constant(10.0, 0.0, 0)
        profile = text_profile_of(same)
        self._no_drift(text_drift_test.compute(profile, same))
        # below the reference: its one open-ended bin above holds any longer text
        moved = text_drift_test.compute(profile, constant(2.0, 2.0, 1))
        check_check_well_formed(moved, text_drift_test.alias)
        assert moved.drifted, moved
        # a sample against a constant reference, and constant texts against a sample
        for check in (
            text_drift_test.compute(profile, text_drift_sample(200)),
            text_drift_test.compute(text_profile_of(text_drift_sample(200)), same),
        ):
            check_check_well_formed(check, text_drift_test.alias)

    def test_inputs_are_left_unchanged_and_results_repeat(
        self, text_drift_test: BaseTextDriftTest
    ) -> None:
        profile = text_profile_of(text_drift_sample(self.rows, seed=1))
        saved_profile = json.dumps(profile.to_dict(), sort_keys=True)
        current = text_drift_sample(self.rows, seed=2, shift=True)
        saved = _features_copy(current)
        first = text_drift_test.compute(profile, current)
        second = text_drift_test.compute(profile, current)
        assert _same_features(current, saved)
        assert json.dumps(profile.to_dict(), sort_keys=True) == saved_profile
        assert first == second
