"""run_search on small data: an ensemble of cross-validated candidates when it scores better."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.base import clone

from assay.data.schema import infer_schema
from assay.pipeline import open_registry, run_project
from assay.project import Project
from assay.model.loaded import LoadedModel
from assay.train.context import BuildContext
from assay.train.ensemble import EnsembleClassifier, EnsembleRegressor
from assay.train.families import get_family
from assay.train.pipeline import ModelPipeline, fit_model
from assay.train.search import SearchResult, chosen_template, run_search


def _planted(seed: int = 0, n: int = 360) -> pd.DataFrame:
    """Twenty weak additive effects (linear models' part) plus an XOR of two signs (trees')."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 22))
    y = 0.25 * X[:, 2:].sum(axis=1) + np.sign(X[:, 0] * X[:, 1]) + rng.normal(scale=0.3, size=n)
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(22)])
    frame["y"] = y
    return frame


@pytest.fixture(scope="module")
def planted() -> dict:
    frame = _planted()
    return _data(frame.drop(columns="y"), frame["y"].to_numpy(), 240, "regression")


def _data(X: pd.DataFrame, y: np.ndarray, n_train: int, task: str) -> dict:
    """The search's inputs: the first ``n_train`` rows train, the rest validate."""
    return {
        "X_train": X[:n_train],
        "y_train": y[:n_train],
        "X_val": X[n_train:].reset_index(drop=True),
        "y_val": y[n_train:],
        "task": task,
        "schema": infer_schema(X),
        "features": list(X.columns),
        "text_column": None,
    }


def _search(data: dict, **kw) -> SearchResult:
    options = {
        "families": ["linear", "lightgbm"],
        "primary_metric": "rmse",
        "trials": 6,
        "minutes": None,
        "sampler": "tpe",
        "pruning": True,
        "seed": 0,
    }
    options.update(kw)
    return run_search(**data, **options)


@pytest.fixture(scope="module")
def blended(planted) -> SearchResult:
    return _search(planted)


def _joined(data: dict) -> tuple[pd.DataFrame, np.ndarray]:
    X = pd.concat([data["X_train"], data["X_val"]], ignore_index=True)
    return X, np.concatenate([data["y_train"], data["y_val"]])


def test_two_families_each_with_part_of_the_signal_blend_better_than_either(blended) -> None:
    record = blended.ensemble
    assert record is not None and isinstance(blended.estimator, EnsembleRegressor)
    assert {m.family for m in record.members} == {"linear", "lightgbm"}
    weights = [m.weight for m in record.members]
    assert all(w > 0 for w in weights) and sum(weights) == pytest.approx(1.0)
    assert weights == sorted(weights, reverse=True)
    # lower rmse: the blend beats its best single candidate and every member
    assert record.cv_value < record.single_value
    assert all(record.cv_value < m.cv_value for m in record.members)
    assert record.single_value == pytest.approx(min(blended.cv_values.values()))
    assert blended.selection == "cross_validation" and blended.refitted
    assert blended.fit_rows == 360 and blended.refit_params == {}
    # the best single candidate stays the reported winner, with its learning curve
    assert blended.best_value == min(t.value for t in blended.trials_of(blended.best_family))
    assert blended.cv_values[blended.best_family] == pytest.approx(record.single_value)
    assert isinstance(blended.searched, ModelPipeline) and blended.curve is not None
    # what the returned estimator is, unlike best_family, names the ensemble
    assert blended.model_family.startswith("ensemble (") and "linear" in blended.model_family
    assert len(blended.model_params["members"]) == len(record.members)


def test_the_ensemble_is_its_members_refitted_on_all_rows(planted, blended) -> None:
    X, y = _joined(planted)
    expected = np.zeros(len(X))
    context = BuildContext.of(
        task="regression",
        schema=planted["schema"],
        features=planted["features"],
        text_column=None,
        objective=blended.objective,
        seed=0,
    )
    for member in blended.ensemble.members:
        model = get_family(member.family).build(
            {**member.params, **member.refit_params}, context
        )
        expected += member.weight * fit_model(model, X, y).predict(X)
    np.testing.assert_allclose(blended.estimator.predict(X), expected, rtol=1e-10)
    lightgbm = next(m for m in blended.ensemble.members if m.family == "lightgbm")
    assert lightgbm.refit_params["n_estimators"] > 0


def test_ensemble_false_returns_a_single_refitted_model(planted) -> None:
    single = _search(planted, ensemble=False)
    assert single.ensemble is None and isinstance(single.estimator, ModelPipeline)
    assert single.selection == "cross_validation" and single.refitted
    assert single.model_family == single.best_family
    assert single.model_params == single.best_params


def test_no_ensemble_without_cross_validation_or_refit(planted) -> None:
    assert _search(planted, cv_rows=0).ensemble is None
    assert _search(planted, time_ordered=True).ensemble is None
    no_refit = _search(planted, refit=False)
    assert no_refit.ensemble is None and no_refit.estimator is no_refit.searched


def test_the_ensemble_is_reproducible_with_a_trial_budget(planted, blended) -> None:
    again = _search(planted)
    assert again.ensemble == blended.ensemble
    X, _ = _joined(planted)
    np.testing.assert_array_equal(again.estimator.predict(X), blended.estimator.predict(X))


def test_the_ensemble_is_serialised_and_pickled(planted, blended) -> None:
    data = json.loads(json.dumps(blended.to_dict()))
    assert [m["family"] for m in data["ensemble"]["members"]] == [
        m.family for m in blended.ensemble.members
    ]
    assert SearchResult.from_dict(data) == blended
    older = {k: v for k, v in data.items() if k != "ensemble"}
    assert SearchResult.from_dict(older).ensemble is None
    loaded = pickle.loads(pickle.dumps(blended.estimator))
    X, _ = _joined(planted)
    np.testing.assert_array_equal(loaded.predict(X), blended.estimator.predict(X))


def test_the_template_rebuilds_the_ensemble_to_fit_again(planted, blended) -> None:
    template = chosen_template(
        blended, schema=planted["schema"], features=planted["features"], text_column=None
    )
    assert isinstance(template, EnsembleRegressor)
    assert template.weights == [m.weight for m in blended.ensemble.members]
    model = fit_model(
        clone(template),
        planted["X_train"],
        planted["y_train"],
        eval_set=(planted["X_val"], planted["y_val"]),
    )
    assert model.predict(planted["X_val"]).shape == (120,)
    single = _search(planted, ensemble=False)
    assert isinstance(
        chosen_template(
            single, schema=planted["schema"], features=planted["features"], text_column=None
        ),
        ModelPipeline,
    )


def _binary() -> dict:
    frame = _planted(seed=1, n=600)
    X = frame.drop(columns="y")
    y = (frame["y"].to_numpy() > 1.0).astype(int)  # a rarer positive class
    return _data(X, y, 400, "binary")


def test_a_binary_ensemble_predicts_at_a_threshold_chosen_out_of_fold() -> None:
    data = _binary()
    result = _search(data, primary_metric="f1", trials=8)
    record = result.ensemble
    assert record is not None and isinstance(result.estimator, EnsembleClassifier)
    assert record.threshold is not None and record.threshold == result.estimator.threshold
    proba = result.estimator.predict_proba(data["X_val"])
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_array_equal(
        result.estimator.predict(data["X_val"]), (proba[:, 1] >= record.threshold).astype(int)
    )
    # members are plain pipelines: the threshold is the ensemble's
    assert all(isinstance(m, ModelPipeline) for m in result.estimator.estimators_)


def test_an_ensemble_runs_through_assay_run_registry_and_serving(tmp_path: Path) -> None:
    _planted().to_csv(tmp_path / "data.csv", index=False)
    config = {
        "task": "regression",
        "data": {"source": "data.csv", "target": "y"},
        "split": {"strategy": "random", "test_size": 0.2, "validation_size": 0.2},
        "search": {"families": ["dummy", "linear", "lightgbm"], "trials": 6, "cv_folds": 5},
        "serving": {"latency_p99_ms": 1000},
    }
    (tmp_path / "assay.yaml").write_text(yaml.safe_dump(config))
    project = Project.open(tmp_path / "assay.yaml")
    result = run_project(project)
    registry = open_registry(project)
    model = registry.load_model(result.version)
    assert isinstance(model, EnsembleRegressor)
    record = registry.get(result.version)
    stored = registry.load_json(record.lineage.search)["ensemble"]
    assert stored is not None and {m["family"] for m in stored["members"]} >= {"linear"}
    # the version says what it is: an ensemble of its members, with their weights
    names = [m["family"] for m in stored["members"]]
    assert record.family == result.family == f"ensemble ({', '.join(dict.fromkeys(names))})"
    assert [m["weight"] for m in record.params["members"]] == [
        m["weight"] for m in stored["members"]
    ]
    frame = pd.read_csv(tmp_path / "data.csv")
    features = list(record.lineage.features)
    loaded = LoadedModel.load(registry, result.version)
    row = frame[features].iloc[:1]
    [one] = loaded.predict(loaded.validate([row.iloc[0].to_dict()]))
    assert one.prediction == pytest.approx(float(model.predict(row)[0]))
    assert "Ensemble" in Path(result.report).read_text(encoding="utf-8")
    # with the switch off, the same project registers a single model
    config["search"]["ensemble"] = False
    (tmp_path / "assay.yaml").write_text(yaml.safe_dump(config))
    off = run_project(Project.open(tmp_path / "assay.yaml"))
    assert isinstance(open_registry(project).load_model(off.version), ModelPipeline)
