"""Latency measurement: what is timed, the rounds and the re-measurement (planted sleeps, not
wall time: every sleep is far above or below the objective)."""

from __future__ import annotations

import time

import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression

from assay.errors import DataError
from assay.evaluate import LatencyReport, ServedPath, measure_latency


class _Counting:
    """Records the sizes of the frames it is called on."""

    def __init__(self, proba: bool) -> None:
        self.sizes: list[int] = []
        if proba:
            self.predict_proba = self._call

    def _call(self, X: pd.DataFrame) -> list[float]:
        assert isinstance(X, pd.DataFrame)
        self.sizes.append(len(X))
        return [0.0] * len(X)

    def predict(self, X: pd.DataFrame) -> list[float]:
        return self._call(X)


class _Planted:
    """``predict`` sleeps ``slow`` seconds on the calls ``slow_calls`` picks (by call number,
    counted from 1), and on every call of the row whose ``a`` is ``slow_row``."""

    def __init__(self, slow: float = 0.08, slow_calls=lambda n: False, slow_row: int | None = None):
        self.calls, self.slow, self.slow_calls, self.slow_row = 0, slow, slow_calls, slow_row

    def predict(self, X: pd.DataFrame) -> list[float]:
        self.calls += 1
        one = len(X) == 1
        if one and (self.slow_calls(self.calls) or int(X["a"].iloc[0]) == self.slow_row):
            time.sleep(self.slow)
        return [0.0] * len(X)


X10 = pd.DataFrame({"a": range(10)})
QUICK = {"batch_size": 2, "batch_repeats": 1, "pause_s": 0.0}


def test_classifier_is_timed_on_single_row_frames_and_batches(fitted) -> None:
    model, X, _, _, _ = fitted
    report = measure_latency(model, X, n_single=20, batch_size=300, seed=1, rounds=3)
    assert report.method == "predict_proba" and report.path == "pipeline"
    assert report.n_single == 20 and report.batch_size == 300
    assert len(report.rounds) == 3 and report.attempts == 1
    assert 0 < report.single_p50_ms <= report.single_p99_ms
    low, median, high = report.round_p99_ms or (0, 0, 0)
    assert low <= median <= high and report.single_p99_ms == median
    assert report.batch_rows_per_s > 0
    assert report.batch_ms_per_row == pytest.approx(1000.0 * 1 / report.batch_rows_per_s)
    assert LatencyReport.from_dict(report.to_dict()) == report


def test_call_pattern() -> None:
    spy = _Counting(proba=True)
    X = pd.DataFrame({"a": range(10)})
    measure_latency(spy, X, n_single=5, batch_size=40, batch_repeats=2, rounds=2, warmup=3)
    # three warm-up calls, five single rows twice, two batches (rows drawn with replacement)
    assert spy.sizes == [1] * 3 + [1] * 10 + [40, 40]


def test_a_planted_sleep_is_over_the_objective_in_every_round() -> None:
    report = measure_latency(_Planted(slow_calls=lambda n: True), X10, n_single=4, rounds=2,
                             warmup=1, sla_ms=50.0, retries=1, **QUICK)
    assert report.single_p99_ms >= 80.0 and all(r.p50_ms >= 80.0 for r in report.rounds)
    assert report.attempts == 2  # measured again before it counts as over
    assert all(p >= 80.0 for p in report.attempt_p99_ms)


def test_a_row_slow_every_time_shows_in_the_p99() -> None:
    report = measure_latency(_Planted(slow_row=7), X10, n_single=40,
                             rounds=3, warmup=2, **QUICK)
    assert report.single_p99_ms >= 80.0 and report.single_p50_ms < 50.0


def test_slow_first_calls_and_one_slow_round_do_not_decide() -> None:
    # the first 12 calls are slow: the warm-up absorbs 10, round one the other 2
    first = _Planted(slow_calls=lambda n: n <= 12)
    report = measure_latency(first, X10, n_single=10, rounds=3, warmup=10, sla_ms=50.0, **QUICK)
    assert report.single_p99_ms < 50.0 and report.attempts == 1
    assert report.rounds[0].p99_ms >= 80.0  # the spread is kept
    assert (report.round_p99_ms or (0, 0, 0))[2] >= 80.0
    # round two (from call 12, after 1 warm-up and round one) is held up: it stops after
    # two slow calls (its p99 is then certainly over), and the median round is fine
    held = _Planted(slow_calls=lambda n: 12 <= n <= 13)
    report = measure_latency(held, X10, n_single=10, rounds=3, warmup=1, sla_ms=50.0, **QUICK)
    assert report.single_p99_ms < 50.0 and report.rounds[1].p50_ms >= 80.0


def test_a_busy_first_measurement_is_measured_again() -> None:
    # the first attempt is busy: the warm-up call, then two slow calls end a round (its p99
    # is certainly over), and two such rounds of three end the attempt; then all is quiet
    busy = _Planted(slow_calls=lambda n: n <= 5)
    report = measure_latency(busy, X10, n_single=4, rounds=3, warmup=1, sla_ms=50.0, **QUICK)
    assert report.attempts == 2 and report.attempt_p99_ms[0] >= 80.0
    assert report.single_p99_ms < 50.0 and report.sla_ms == 50.0
    # without an objective nothing is re-measured: the busy rounds are what is reported
    busy = _Planted(slow_calls=lambda n: n <= 9)
    once = measure_latency(busy, X10, n_single=4, rounds=3, warmup=1, **QUICK)
    assert once.attempts == 1 and once.single_p99_ms >= 80.0


def test_the_served_path_is_what_is_timed() -> None:
    spy = _Counting(proba=True)
    served: list[dict] = []
    path = ServedPath("fast path (test)", lambda frame: frame.to_dict("records"), served.append)
    report = measure_latency(spy, X10, n_single=5, rounds=2, warmup=3, served=path, **QUICK)
    assert report.path == "fast path (test)" and report.method == "fast path (test)"
    assert len(served) == 1 + 3 + 10 and all(isinstance(r, dict) for r in served)
    assert spy.sizes == [2]  # the model itself only for the batch


def test_a_served_path_that_fails_falls_back_to_the_model() -> None:
    def broken(record: dict) -> None:
        raise KeyError("x")

    path = ServedPath("fast path (test)", lambda frame: frame.to_dict("records"), broken)
    report = measure_latency(_Counting(proba=False), X10, n_single=3, rounds=1, served=path,
                             **QUICK)
    assert report.path.startswith("pipeline (the served path failed: KeyError")


def test_reports_stored_before_rounds_load() -> None:
    old = {"method": "predict_proba", "n_single": 200, "single_p50_ms": 1.0,
           "single_p99_ms": 2.0, "single_mean_ms": 1.1, "batch_size": 1000,
           "batch_rows_per_s": 1e5, "batch_ms_per_row": 0.01, "single_repeats": 3}
    report = LatencyReport.from_dict(old)
    assert report.rounds == () and report.round_p99_ms is None and report.attempts == 1
    assert report.single_p99_ms == 2.0 and report.path == "pipeline"


def test_regressor_uses_predict() -> None:
    X = pd.DataFrame({"a": [0.0, 1.0, 2.0]})
    model = LinearRegression().fit(X, [0.0, 1.0, 2.0])
    assert measure_latency(model, X, n_single=3, batch_size=10, rounds=1).method == "predict"


def test_empty_rows_are_a_data_error() -> None:
    with pytest.raises(DataError, match="non-empty DataFrame.*got 0 rows"):
        measure_latency(_Counting(proba=False), pd.DataFrame({"a": []}))


def test_evaluate_times_the_served_path_against_the_objective() -> None:
    from assay.evaluate import evaluate

    X = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0] * 5})
    y = X["a"] * 2.0
    model = LinearRegression().fit(X, y)
    calls: list[dict] = []
    path = ServedPath("fast path (test)", lambda frame: frame.to_dict("records"), calls.append)
    ev = evaluate(model, X, y, task="regression", n_boot=0, check_robustness=False,
                  served=path, latency_sla_ms=50.0)
    assert ev.latency is not None and ev.latency.path == "fast path (test)"
    assert ev.latency.sla_ms == 50.0 and len(ev.latency.rounds) == 5 and calls
