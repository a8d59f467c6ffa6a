"""The search times its finalists as they will be served and rejects those over the objective.

The slow model is planted: its served call sleeps 80 ms, far above the 50 ms objective; the
others answer in well under a millisecond to a few, far below it.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_classification

from assay.data.schema import infer_schema
from assay.evaluate import ServedPath
from assay.train.result import SearchResult
from assay.train.search import run_search

SLA = 50.0


def _final(model: Any) -> Any:
    inner = getattr(model, "estimator_", model)
    steps = getattr(inner, "steps", None)
    return steps[-1][1] if steps else inner


def _slow(family_class: str, calls: list[str] | None = None):
    """A served path whose call sleeps 80 ms when the final estimator's class contains
    ``family_class`` (every other model answers through its own predict_proba)."""

    def served(model: Any) -> ServedPath:
        slow = family_class in type(_final(model)).__name__

        def call(row: pd.DataFrame) -> Any:
            if calls is not None:
                calls.append(type(_final(model)).__name__)
            if slow:
                time.sleep(0.08)
            return model.predict_proba(row)

        return ServedPath("test path", lambda f: [f.iloc[[i]] for i in range(len(f))], call)

    return served


@pytest.fixture(scope="module")
def data() -> dict:
    # an interaction only trees see: lightgbm wins on validation
    X, _ = make_classification(n_samples=600, n_features=4, n_informative=4, n_redundant=0,
                               random_state=3)
    y = ((X[:, 0] > 0) ^ (X[:, 1] > 0)).astype(int)
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(4)])
    return {"X_train": frame[:400], "y_train": y[:400], "X_val": frame[400:],
            "y_val": y[400:], "task": "binary", "schema": infer_schema(frame),
            "features": list(frame.columns), "text_column": None}


def _search(data: dict, **kw: Any) -> SearchResult:
    options: dict[str, Any] = {"families": ["dummy", "linear", "lightgbm"],
                               "primary_metric": "roc_auc", "trials": 4, "minutes": None,
                               "sampler": "tpe", "pruning": False, "seed": 0, "cv_rows": 0}
    options.update(kw)
    return run_search(**data, **options)


def test_a_finalist_over_the_objective_is_rejected_and_the_next_best_chosen(data) -> None:
    free = _search(data)
    assert free.best_family == "lightgbm" and free.latency_checks == ()

    result = _search(data, latency_p99_ms=SLA, served=_slow("LGBM"))
    assert result.best_family == "linear"
    assert "LGBM" not in type(_final(result.estimator)).__name__
    rejected = [c for c in result.latency_checks if not c.passed]
    assert [c.family for c in rejected] == ["lightgbm"]
    assert rejected[0].p99_ms is not None and rejected[0].p99_ms >= 80.0
    assert "over the 50 ms serving.latency_p99_ms" in rejected[0].reason
    assert rejected[0].attempts == 3  # measured again before it was refused
    passed = [c for c in result.latency_checks if c.passed]
    assert [c.family for c in passed] == ["linear"] and (passed[0].p99_ms or 0) < SLA
    # the trial keeps the reason; the record round-trips
    marked = [t for t in result.trials if t.rejected]
    assert len(marked) == 1 and marked[0].family == "lightgbm"
    assert marked[0].value == rejected[0].value
    again = SearchResult.from_dict(result.to_dict())
    assert again.latency_checks == result.latency_checks and again.latency_sla_ms == SLA


def test_fast_finalists_pass_and_nothing_is_rejected(data) -> None:
    calls: list[str] = []
    result = _search(data, latency_p99_ms=SLA, served=_slow("Nothing", calls))
    assert result.best_family == "lightgbm"
    assert [c.passed for c in result.latency_checks] == [True]
    assert not any(t.rejected for t in result.trials)
    assert calls and set(calls) == {"LGBMClassifier"}  # the finalist was timed, served


def test_cross_validated_candidates_are_each_timed(data) -> None:
    result = _search(data, cv_rows=10_000, ensemble=False, latency_p99_ms=SLA,
                     served=_slow("LGBM"))
    assert set(result.cv_values) <= {"linear"}  # lightgbm never reached the comparison
    assert {c.family for c in result.latency_checks if not c.passed} == {"lightgbm"}
    assert result.best_family == "linear"


def test_when_every_finalist_is_over_the_best_is_kept_and_said(data) -> None:
    result = _search(data, families=["dummy", "lightgbm"], latency_p99_ms=SLA,
                     served=_slow("LGBM"))
    assert result.best_family == "lightgbm"
    assert "no finalist answers one row within serving.latency_p99_ms" in result.latency_note
    assert all(not c.passed and "kept" in c.reason for c in result.latency_checks)
    assert not any(t.rejected for t in result.trials)


def test_searches_stored_before_latency_checks_load(data) -> None:
    stored = _search(data, families=["dummy", "linear"], trials=1).to_dict()
    for key in ("latency_sla_ms", "latency_checks", "latency_note"):
        stored.pop(key)
    for trial in stored["trials"]:
        trial.pop("rejected")
    loaded = SearchResult.from_dict(stored)
    assert loaded.latency_checks == () and loaded.latency_sla_ms is None
    assert all(t.rejected is None for t in loaded.trials)


@pytest.mark.slow
def test_a_blend_over_the_objective_leaves_the_best_single_model() -> None:
    from assay.train.ensemble import EnsembleClassifier

    X, y = make_classification(n_samples=500, n_features=8, n_informative=5, random_state=1,
                               flip_y=0.1)
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(8)])
    data = {"X_train": frame[:350], "y_train": y[:350], "X_val": frame[350:],
            "y_val": y[350:], "task": "binary", "schema": infer_schema(frame),
            "features": list(frame.columns), "text_column": None}
    options: dict[str, Any] = {"families": ["dummy", "linear", "lightgbm", "mlp"], "trials": 8,
                               "seed": 3, "cv_rows": 2_000}
    blended = _search(data, **options)
    assert blended.ensemble is not None  # this search returns a blend when latency is free
    result = _search(data, **options, latency_p99_ms=SLA, served=_slow("Ensemble"))
    assert result.ensemble is None and not isinstance(result.estimator, EnsembleClassifier)
    checks = {c.family: c for c in result.latency_checks}
    assert not checks["ensemble"].passed and (checks["ensemble"].p99_ms or 0) >= 80.0
    assert all(c.passed for c in result.latency_checks if c.family != "ensemble")
