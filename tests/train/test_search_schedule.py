"""run_search's adaptive schedule: the first phase, shares by promise, convergence, reproducibility."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_regression

from assay.data.schema import infer_schema
from assay.train.families import LightGBMFamily, LinearFamily
from assay.train.search import SearchResult, run_search


def _data(X: np.ndarray, y: np.ndarray, task: str, n_train: int) -> dict:
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(X.shape[1])])
    return {
        "X_train": frame[:n_train],
        "y_train": y[:n_train],
        "X_val": frame[n_train:].reset_index(drop=True),
        "y_val": y[n_train:],
        "task": task,
        "schema": infer_schema(frame),
        "features": list(frame.columns),
        "text_column": None,
    }


@pytest.fixture(scope="module")
def interaction() -> dict:
    """A label set by the sign of x0 * x1: no linear model beats chance, trees do well."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(600, 4))
    y = ((X[:, 0] * X[:, 1] > 0) ^ (rng.random(600) < 0.05)).astype(int)
    return _data(X, y, "binary", 400)


@pytest.fixture(scope="module")
def linear() -> dict:
    X, y = make_regression(n_samples=300, n_features=5, noise=10.0, random_state=0)
    return _data(X, y, "regression", 200)


def _search(data: dict, **kw) -> SearchResult:
    options = {
        "families": ["dummy", "linear", "lightgbm"],
        "primary_metric": "roc_auc",
        "trials": 20,
        "minutes": None,
        "sampler": "tpe",
        "pruning": True,
        "seed": 0,
        "cv_rows": 0,
    }
    options.update(kw)
    return run_search(**data, **options)


def test_the_most_promising_family_receives_most_of_the_budget(interaction) -> None:
    result = _search(interaction)
    families = [t.family for t in result.trials]
    # first phase: defaults + two trials each; then linear (at chance level) gets nothing
    assert families[:6] == ["linear"] * 3 + ["lightgbm"] * 3
    assert families[6:] == ["lightgbm"] * 14
    assert result.trials_of("linear")[0].params == LinearFamily().defaults("binary")
    assert result.trials_of("lightgbm")[0].params == LightGBMFamily().defaults("binary")
    assert result.best_family == "lightgbm" and result.best_value > 0.9


def test_the_schedule_is_reproducible_with_a_trial_budget(interaction) -> None:
    first = _search(interaction, trials=12, seed=3)
    second = _search(interaction, trials=12, seed=3)
    assert [(t.family, t.params, t.value) for t in first.trials] == [
        (t.family, t.params, t.value) for t in second.trials
    ]
    np.testing.assert_array_equal(
        first.estimator.predict_proba(interaction["X_val"]),
        second.estimator.predict_proba(interaction["X_val"]),
    )


def test_a_one_parameter_family_stops_once_converged(linear) -> None:
    alone = _search(linear, families=["linear"], primary_metric="rmse", trials=40)
    assert 8 <= len(alone.trials) < 40  # stops long before the budget is spent
    values = [t.value for t in alone.trials]
    before = min(values[:-5])
    assert before - min(values) <= 1e-4 * before  # the last five trials brought nothing


def test_the_budget_a_converged_family_leaves_goes_to_the_others(linear) -> None:
    result = _search(linear, families=["linear", "lightgbm"], primary_metric="rmse", trials=30)
    assert len(result.trials) == 30
    assert result.best_family == "linear"
    n_linear = len(result.trials_of("linear"))
    assert n_linear < 15  # the leader, but converged: the rest went to lightgbm
    assert [t.family for t in result.trials][-5:] == ["lightgbm"] * 5


def test_every_family_gets_a_trial_when_the_budget_is_smaller(interaction) -> None:
    result = _search(interaction, families=["linear", "lightgbm"], trials=1)
    assert [t.family for t in result.trials] == ["linear", "lightgbm"]


def test_the_grid_sampler_never_revisits_a_grid_point(interaction) -> None:
    result = _search(interaction, sampler="grid", trials=40)
    for family, cls in (("linear", LinearFamily), ("lightgbm", LightGBMFamily)):
        grid = cls().grid("binary")
        size = int(np.prod([len(v) for v in grid.values()]))
        points = [tuple(sorted(t.params.items())) for t in result.trials_of(family)]
        assert len(points) == len(set(points)) <= size


def test_a_time_budget_reserves_and_stops(interaction) -> None:
    result = _search(interaction, trials=None, minutes=0.02)
    assert {t.family for t in result.trials} == {"linear", "lightgbm"}
    assert result.refitted and result.fit_rows == 600
