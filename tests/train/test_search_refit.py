"""run_search's final refit on training + validation rows and its small-data selection by CV."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_regression
from sklearn.metrics import root_mean_squared_error
from sklearn.model_selection import GroupKFold, KFold

from assay.data.schema import infer_schema
from assay.errors import ConfigError, DataError
from assay.train.context import BuildContext
from assay.train.curves import final_model
from assay.train.families import LightGBMFamily, LinearFamily, MLPFamily
from assay.train.objective import ThresholdedClassifier
from assay.train.pipeline import fit_model
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
def binary() -> dict:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(600, 4))
    y = ((X[:, 0] * X[:, 1] + 0.5 * X[:, 2] > 0) ^ (rng.random(600) < 0.1)).astype(int)
    return _data(X, y, "binary", 400)


@pytest.fixture(scope="module")
def regression() -> dict:
    X, y = make_regression(n_samples=300, n_features=5, noise=10.0, random_state=0)
    return _data(X, y, "regression", 200)


def _search(data: dict, **kw) -> SearchResult:
    options = {
        "families": ["lightgbm"],
        "primary_metric": "roc_auc",
        "trials": 3,
        "minutes": None,
        "sampler": "tpe",
        "pruning": True,
        "seed": 0,
        "ensemble": False,  # the single model's refit (tests/train/test_ensemble.py: ensembles)
    }
    options.update(kw)
    return run_search(**data, **options)


def _joined(data: dict) -> tuple[pd.DataFrame, np.ndarray]:
    X = pd.concat([data["X_train"], data["X_val"]], ignore_index=True)
    return X, np.concatenate([data["y_train"], data["y_val"]])


def _build(family, result: SearchResult, data: dict, extra: dict):
    context = BuildContext.of(
        task=data["task"],
        schema=data["schema"],
        features=data["features"],
        text_column=None,
        objective=result.objective,
        seed=result.seed,
    )
    return family.build({**result.best_params, **extra}, context)


def test_lightgbm_is_refitted_on_all_rows_with_the_scaled_best_round(binary) -> None:
    result = _search(binary)
    best_round = final_model(result.searched).best_iteration_
    assert result.refitted and result.fit_rows == 600
    assert result.refit_params == {"n_estimators": round(best_round * 600 / 400)}
    model = final_model(result.estimator)
    assert model.n_estimators == result.refit_params["n_estimators"]
    assert model.booster_.current_iteration() == model.n_estimators  # no early stopping
    X, y = _joined(binary)
    by_hand = fit_model(_build(LightGBMFamily(), result, binary, result.refit_params), X, y)
    np.testing.assert_array_equal(
        result.estimator.predict_proba(binary["X_val"]), by_hand.predict_proba(binary["X_val"])
    )
    assert not np.allclose(
        result.estimator.predict_proba(binary["X_val"]),
        result.searched.predict_proba(binary["X_val"]),
    )
    # the reported score and the learning curve stay the searched model's
    assert result.curve is not None and result.curve.kind == "boosting_round"
    assert len(result.curve.steps) > best_round


def test_a_tuned_threshold_is_kept_through_the_refit(binary) -> None:
    result = _search(binary, primary_metric="f1")
    assert isinstance(result.estimator, ThresholdedClassifier) and result.refitted
    assert result.estimator.threshold_ == result.searched.threshold_ != 0.5
    X, y = _joined(binary)
    inner = final_model(result.estimator)
    assert inner.n_estimators == result.refit_params["n_estimators"]
    by_hand = fit_model(_build(LightGBMFamily(), result, binary, result.refit_params).estimator, X, y)
    proba = result.estimator.predict_proba(binary["X_val"])
    np.testing.assert_array_equal(proba, by_hand.predict_proba(binary["X_val"]))
    expected = np.where(proba[:, 1] >= result.searched.threshold_, 1, 0)
    np.testing.assert_array_equal(result.estimator.predict(binary["X_val"]), expected)


def test_a_linear_model_is_refitted_on_all_rows(regression) -> None:
    result = _search(regression, families=["linear"], primary_metric="rmse", trials=2)
    assert result.refitted and result.refit_params == {} and result.fit_rows == 300
    X, y = _joined(regression)
    by_hand = fit_model(_build(LinearFamily(), result, regression, {}), X, y)
    np.testing.assert_allclose(
        final_model(result.estimator).coef_, final_model(by_hand).coef_, rtol=1e-10
    )


def test_the_mlp_is_refitted_for_its_best_epoch_without_a_holdout(regression) -> None:
    result = _search(regression, families=["mlp"], primary_metric="rmse", trials=1)
    best_epoch = final_model(result.searched).best_epoch_
    assert result.refit_params == {"max_epochs": best_epoch, "validation_fraction": 0.0}
    refitted = final_model(result.estimator)
    assert refitted.n_epochs_ == best_epoch and refitted.history_["validation"] == []
    assert result.curve is not None and result.curve.kind == "epoch"


def test_refit_false_returns_the_searched_model(binary) -> None:
    result = _search(binary, refit=False)
    assert not result.refitted and result.refit_params == {} and result.fit_rows == 400
    assert result.estimator is result.searched


def test_a_family_without_a_sound_refit_keeps_its_searched_model(regression, monkeypatch) -> None:
    monkeypatch.setattr(LinearFamily, "refit_params", lambda self, model, ratio: None)
    result = _search(regression, families=["linear"], primary_metric="rmse", trials=1)
    assert not result.refitted and result.estimator is result.searched


def test_the_refit_and_selection_are_serialised(regression) -> None:
    result = _search(regression, families=["linear", "lightgbm"], primary_metric="rmse", trials=4)
    data = json.loads(json.dumps(result.to_dict()))
    assert data["refitted"] is True and data["selection"] == "cross_validation"
    assert SearchResult.from_dict(data) == result
    old = {k: v for k, v in data.items() if k not in ("refitted", "selection", "cv_values")}
    assert SearchResult.from_dict(old).refitted is False  # results stored before the refit


def test_small_data_is_cross_validated_when_the_validation_rows_mislead(regression) -> None:
    # validation rows copied from the training rows reward memorising trees
    misled = {
        **regression,
        "X_val": regression["X_train"][:40].reset_index(drop=True),
        "y_val": regression["y_train"][:40],
    }
    options = {"families": ["linear", "lightgbm"], "primary_metric": "rmse", "trials": 6}
    on_validation = _search(misled, cv_rows=0, **options)
    assert on_validation.best_family == "lightgbm" and on_validation.selection == "validation"
    assert on_validation.cv_values == {}
    chosen = _search(misled, **options)
    assert chosen.selection == "cross_validation" and chosen.best_family == "linear"
    assert chosen.cv_values["linear"] < chosen.cv_values["lightgbm"]


def _cv_rmse(result: SearchResult, data: dict, splits) -> float:
    X, y = _joined(data)
    scores = []
    for fit_idx, score_idx in splits:
        model = fit_model(_build(LinearFamily(), result, data, {}), X.iloc[fit_idx], y[fit_idx])
        scores.append(root_mean_squared_error(y[score_idx], model.predict(X.iloc[score_idx])))
    return float(np.mean(scores))


def test_the_cross_validated_score_is_a_k_fold_mean_on_all_rows(regression) -> None:
    # one trial per family, so each family has one configuration to compare
    result = _search(regression, families=["linear", "lightgbm"], primary_metric="rmse", trials=2)
    assert result.best_family == "linear" and set(result.cv_values) == {"linear", "lightgbm"}
    folds = KFold(n_splits=5, shuffle=True, random_state=0).split(np.zeros(300))
    assert result.cv_values["linear"] == pytest.approx(_cv_rmse(result, regression, folds))


def test_groups_stay_whole_in_the_folds(regression) -> None:
    groups = np.arange(300) // 10
    result = _search(
        regression,
        families=["linear", "lightgbm"],
        primary_metric="rmse",
        trials=2,
        cv_groups=(groups[:200], groups[200:]),
        cv_folds=4,
    )
    folds = GroupKFold(n_splits=4).split(np.zeros(300), groups=groups)
    assert result.cv_values["linear"] == pytest.approx(_cv_rmse(result, regression, folds))


def test_time_ordered_or_large_data_is_chosen_on_validation(regression) -> None:
    options = {"families": ["linear", "lightgbm"], "primary_metric": "rmse", "trials": 2}
    assert _search(regression, time_ordered=True, **options).selection == "validation"
    assert _search(regression, cv_rows=200, **options).selection == "validation"
    assert _search(regression, cv_rows=201, **options).selection == "cross_validation"


@pytest.mark.parametrize(
    ("kw", "error", "message"),
    [
        ({"cv_folds": 1}, ConfigError, r"search.cv_folds: cross-validation needs at least two"),
        ({"cv_rows": -1}, ConfigError, r"search.cv_rows: the row count .* is negative"),
        (
            {"cv_groups": (np.zeros(200), np.zeros(99))},
            DataError,
            r"the groups do not match .*200 training and 100 validation group labels",
        ),
    ],
)
def test_invalid_selection_settings_are_errors(regression, kw, error, message) -> None:
    with pytest.raises(error, match=message):
        _search(regression, families=["linear"], primary_metric="rmse", **kw)


def test_mlp_family_refit_params_fix_the_best_epoch() -> None:
    class Fitted:
        best_epoch_ = 17

    assert MLPFamily().refit_params(Fitted(), 1.5) == {
        "max_epochs": 17,
        "validation_fraction": 0.0,
    }
    assert LightGBMFamily().refit_params(Fitted(), 1.5) is None  # not a LightGBM model
