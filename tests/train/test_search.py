"""run_search: budgets, samplers, reproducibility, baseline, failures and the result object."""

from __future__ import annotations

import json

import numpy as np
import optuna
import pandas as pd
import pytest
from sklearn.datasets import make_classification, make_regression
from sklearn.dummy import DummyClassifier
from sklearn.metrics import roc_auc_score

from assay.data.schema import infer_schema
from assay.errors import AssayError, ConfigError, DataError
from assay.train.curves import final_model
from assay.train.families import LightGBMFamily, LinearFamily
from assay.train.search import SearchResult, TrialInfo, _Reporter, run_search


def _frame(X: np.ndarray) -> pd.DataFrame:
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(X.shape[1])])
    frame["grade"] = pd.Series(np.where(X[:, 0] > 0, "high", "low"), dtype="str")
    return frame


@pytest.fixture(scope="module")
def binary() -> dict:
    X, y = make_classification(n_samples=500, n_features=6, n_informative=4, random_state=1)
    frame = _frame(X)
    return {
        "X_train": frame[:350],
        "y_train": y[:350],
        "X_val": frame[350:],
        "y_val": y[350:],
        "task": "binary",
        "schema": infer_schema(frame),
        "features": list(frame.columns),
        "text_column": None,
    }


@pytest.fixture(scope="module")
def regression() -> dict:
    X, y = make_regression(n_samples=400, n_features=5, noise=10.0, random_state=0)
    frame = _frame(X)
    return {
        "X_train": frame[:280],
        "y_train": y[:280],
        "X_val": frame[280:],
        "y_val": y[280:],
        "task": "regression",
        "schema": infer_schema(frame),
        "features": list(frame.columns),
        "text_column": None,
    }


def _search(data: dict, **kw) -> SearchResult:
    options = {
        "families": ["dummy", "linear", "lightgbm"],
        "primary_metric": "roc_auc",
        "trials": 6,
        "minutes": None,
        "sampler": "tpe",
        "pruning": True,
        "seed": 0,
    }
    options.update(kw)
    return run_search(**data, **options)


def test_the_same_seed_gives_the_same_trials_and_best_model(binary) -> None:
    first = _search(binary, seed=5)
    second = _search(binary, seed=5)
    assert [t.params for t in first.trials] == [t.params for t in second.trials]
    assert (first.best_family, first.best_params) == (second.best_family, second.best_params)
    np.testing.assert_array_equal(
        first.estimator.predict_proba(binary["X_val"]),
        second.estimator.predict_proba(binary["X_val"]),
    )


def test_every_family_starts_with_its_defaults_then_trials_follow_the_schedule(binary) -> None:
    result = _search(binary, trials=5)
    families = [t.family for t in result.trials]
    assert families[:2] == ["linear", "lightgbm"]  # the first phase: one trial each
    assert len(families) == 5 and set(families) == {"linear", "lightgbm"}
    assert result.trials_of("linear")[0].params == LinearFamily().defaults("binary")
    assert result.trials_of("lightgbm")[0].params == LightGBMFamily().defaults("binary")
    assert [t.number for t in result.trials] == list(range(5))


def test_best_is_the_top_complete_trial_in_the_metric_direction(binary, regression) -> None:
    # chosen on the validation rows (small data is otherwise cross-validated)
    up = _search(binary, cv_rows=0)
    done = [t for t in up.trials if t.state == "complete"]
    assert up.higher_is_better and up.best_value == max(t.value for t in done)
    down = _search(regression, primary_metric="rmse", trials=4, cv_rows=0)
    done = [t for t in down.trials if t.state == "complete"]
    assert not down.higher_is_better and down.best_value == min(t.value for t in done)
    assert down.best_value < down.baseline_value


def test_the_reported_score_is_the_returned_model_on_validation(binary) -> None:
    result = _search(binary, refit=False, cv_rows=0)
    proba = result.estimator.predict_proba(binary["X_val"])[:, 1]
    assert result.best_value == pytest.approx(roc_auc_score(binary["y_val"], proba))


def test_the_dummy_baseline_is_always_fitted_and_scored(binary) -> None:
    result = _search(binary, families=["linear"], trials=2)
    assert isinstance(final_model(result.baseline), DummyClassifier)
    assert result.baseline_value == pytest.approx(0.5)  # constant scores have an AUC of 0.5
    assert all(t.family == "linear" for t in result.trials)


def test_only_the_baseline_when_only_dummy_is_listed(binary) -> None:
    result = _search(binary, families=["dummy"])
    assert result.best_family == "dummy" and result.trials == ()
    assert result.best_value == result.baseline_value


def test_grid_sampler_visits_exactly_the_grid(binary) -> None:
    result = _search(binary, families=["linear"], sampler="grid", trials=20)
    tried = sorted(t.params["C"] for t in result.trials)
    assert tried == sorted(LinearFamily().grid("binary")["C"])


def test_random_sampler_is_reproducible_and_differs_from_tpe_draws(binary) -> None:
    a = _search(binary, families=["lightgbm"], sampler="random", trials=3, seed=2)
    b = _search(binary, families=["lightgbm"], sampler="random", trials=3, seed=2)
    assert [t.params for t in a.trials] == [t.params for t in b.trials]
    assert len({json.dumps(t.params, sort_keys=True) for t in a.trials}) == 3


def test_a_time_budget_alone_runs_at_least_one_trial_per_family(binary) -> None:
    result = _search(binary, trials=None, minutes=0.001)
    assert {t.family for t in result.trials} == {"linear", "lightgbm"}


def test_progress_is_reported_after_every_trial(binary) -> None:
    seen: list[TrialInfo] = []
    result = _search(binary, trials=4, progress=seen.append, cv_rows=0)
    assert [i.done for i in seen] == [1, 2, 3, 4]
    assert all(i.planned == 4 for i in seen)
    assert seen[-1].best_value == result.best_value
    assert [i.trial for i in seen] == list(result.trials)


def test_failing_configurations_are_failed_trials_with_their_error(binary, monkeypatch) -> None:
    original = LinearFamily.build

    def fragile(self, params, context):
        if params.get("C", 1.0) != 1.0:
            raise ValueError("solver diverged")
        return original(self, params, context)

    monkeypatch.setattr(LinearFamily, "build", fragile)
    result = _search(binary, families=["linear"], trials=3)
    states = [t.state for t in result.trials]
    assert states == ["complete", "failed", "failed"]
    assert result.trials[1].error == "ValueError: solver diverged"
    assert result.trials[1].value is None
    assert result.best_params == {"C": 1.0}


def test_every_trial_failing_is_an_error(binary, monkeypatch) -> None:
    def broken(self, params, context):
        raise ValueError("no luck")

    monkeypatch.setattr(LinearFamily, "build", broken)
    with pytest.raises(AssayError, match="search: no search trial completed.*ValueError: no luck"):
        _search(binary, families=["linear"], trials=2)


def test_reporter_prunes_a_trial_worse_than_the_median() -> None:
    study = optuna.create_study(
        direction="maximize", pruner=optuna.pruners.MedianPruner(n_startup_trials=2)
    )
    for _ in range(3):
        trial = study.ask()
        for step in range(1, 4):
            _Reporter(trial, maximise=True)(step, 0.3)  # low loss: good
        study.tell(trial, 0.9)
    trial = study.ask()
    with pytest.raises(optuna.TrialPruned, match="pruned at step 1"):
        _Reporter(trial, maximise=True)(1, 2.0)  # high loss in a maximising study: worse
    assert trial.storage.get_trial(trial._trial_id).intermediate_values == {1: -2.0}


def test_states_and_intermediate_pruning_in_a_real_search(binary) -> None:
    result = _search(binary, families=["lightgbm"], sampler="random", trials=8)
    assert {t.state for t in result.trials} <= {"complete", "pruned", "failed"}
    assert all(t.value is None for t in result.trials if t.state == "pruned")
    assert any(t.state == "complete" for t in result.trials)


def test_learning_curve_and_diagnosis_of_the_best_model(binary) -> None:
    trees = _search(binary, families=["lightgbm"], trials=2)
    assert trees.curve is not None and trees.curve.kind == "boosting_round"
    assert trees.diagnosis is not None and trees.diagnosis.verdict in {
        "overfitting",
        "underfitting",
        "good",
    }
    linear = _search(binary, families=["linear"], trials=1)
    assert linear.curve.kind == "train_size" and linear.curve.metric == "roc_auc"
    assert len(linear.curve.steps) == 5 and linear.curve.steps[-1] == 350


def test_the_result_serialises_to_json_and_back(binary) -> None:
    result = _search(binary, trials=3)
    data = json.loads(json.dumps(result.to_dict()))
    again = SearchResult.from_dict(data)
    assert again == result  # estimators are not compared (nor serialised)
    assert again.estimator is None and "estimator" not in data


def test_optuna_logging_is_restored(binary) -> None:
    before = optuna.logging.get_verbosity()
    _search(binary, families=["linear"], trials=1)
    assert optuna.logging.get_verbosity() == before


def test_mae_primary_searches_l1_models(regression) -> None:
    result = _search(regression, primary_metric="mae", families=["linear"], trials=2)
    assert result.objective.loss == "l1"
    assert type(final_model(result.estimator)).__name__ == "HuberRegressor"


def test_unsupported_families_are_skipped_with_the_reason(regression) -> None:
    text = {**regression, "task": "regression"}
    result = _search(text, families=["tfidf_linear", "linear"], primary_metric="rmse", trials=1)
    assert result.skipped == {"tfidf_linear": "does not support task 'regression'"}
    with pytest.raises(ConfigError, match=r"search.families: no listed model family can be trained"):
        _search(text, families=["tfidf_linear"], primary_metric="rmse")


@pytest.mark.parametrize(
    ("kw", "error", "message"),
    [
        (
            {"families": ["linear", "xgb"]},
            ConfigError,
            r"search.families\[1\]: unknown model family 'xgb'",
        ),
        ({"families": []}, ConfigError, r"search.families: no model family to search"),
        ({"sampler": "cmaes"}, ConfigError, r"search.sampler: unknown sampler 'cmaes'"),
        (
            {"trials": None, "minutes": None},
            ConfigError,
            r"search.trials: the search has no budget",
        ),
        ({"trials": 0}, ConfigError, r"search.trials: the trial budget must be at least 1"),
        (
            {"primary_metric": "rmse"},
            ConfigError,
            r"metrics.primary: 'rmse' is not a binary metric",
        ),
    ],
)
def test_invalid_settings_are_config_errors(binary, kw, error, message) -> None:
    with pytest.raises(error, match=message):
        _search(binary, **kw)


def test_mismatched_rows_and_labels_are_a_data_error(binary) -> None:
    bad = {**binary, "y_val": binary["y_val"][:-1]}
    with pytest.raises(DataError, match="validation rows and labels differ in length"):
        _search(bad)
    missing = {**binary, "features": [*binary["features"], "income"]}
    with pytest.raises(DataError, match=r"column 'income': a feature is missing"):
        _search(missing)


def test_text_classification_search_uses_the_text_families() -> None:
    from assay.testing.families import contract_data

    d = contract_data("text-classification")
    result = run_search(
        d.X_train,
        d.y_train,
        d.X_test,
        d.y_test,
        task=d.task,
        schema=d.schema,
        features=d.features,
        text_column=d.text_column,
        families=["dummy", "tfidf_linear", "mlp"],
        primary_metric="f1_macro",
        trials=2,
        minutes=None,
        sampler="tpe",
        pruning=True,
        seed=0,
    )
    assert result.best_family == "tfidf_linear"
    assert result.skipped == {"mlp": "does not support task 'text-classification'"}
    assert result.best_value > result.baseline_value + 0.3
