"""The RBF support-vector estimators and the svm family: known answers, and the row limit."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from sklearn.datasets import make_circles, make_friedman1
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, mean_squared_error
from sklearn.svm import SVC

from assay.data.schema import infer_schema
from assay.errors import ConfigError
from assay.train.context import BuildContext
from assay.train.curves import final_model
from assay.train.families import SVMFamily, get_family
from assay.train.kernel import (
    RBFSupportVectorClassifier,
    RBFSupportVectorRegressor,
    relative_gamma,
)
from assay.train.objective import objective_for
from assay.train.preprocess import build_preprocessor
from assay.train.search import run_search


@pytest.fixture(scope="module")
def circles() -> tuple[np.ndarray, np.ndarray]:
    X, y = make_circles(n_samples=600, noise=0.1, factor=0.5, random_state=0)
    return X, y


def test_relative_gamma_of_one_is_scikit_learns_scale() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(scale=3.0, size=(200, 7))
    y = (X[:, 0] > 0).astype(int)
    expected = SVC(gamma="scale").fit(X, y)._gamma
    assert relative_gamma(X, 1.0) == pytest.approx(expected, rel=1e-12)
    assert relative_gamma(X, 2.5) == pytest.approx(2.5 * expected, rel=1e-12)
    assert relative_gamma(sp.csr_matrix(X), 1.0) == pytest.approx(expected, rel=1e-9)
    # a constant matrix has no spread: the width falls back to 1 / n_features
    assert relative_gamma(np.ones((5, 4)), 1.0) == pytest.approx(0.25)


def test_classifier_learns_a_boundary_no_linear_model_can(circles) -> None:
    X, y = circles
    train, test = slice(0, 400), slice(400, None)
    svm = RBFSupportVectorClassifier(C=1.0, random_state=0).fit(X[train], y[train])
    linear = LogisticRegression().fit(X[train], y[train])
    assert accuracy_score(y[test], svm.predict(X[test])) > 0.9
    assert accuracy_score(y[test], linear.predict(X[test])) < 0.7


def test_classifier_labels_are_the_most_probable_class(circles) -> None:
    X, y = circles
    labels = np.where(y == 1, "inner", "outer")
    model = RBFSupportVectorClassifier(C=3.0, gamma_factor=2.0, random_state=1).fit(X, labels)
    proba = model.predict_proba(X)
    assert list(model.classes_) == ["inner", "outer"]
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_array_equal(model.predict(X), model.classes_[proba.argmax(axis=1)])


def test_classifier_is_reproducible_for_a_seed(circles) -> None:
    X, y = circles
    first = RBFSupportVectorClassifier(random_state=7).fit(X, y).predict_proba(X)
    second = RBFSupportVectorClassifier(random_state=7).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(first, second)


def test_classifier_calibrates_with_fewer_folds_for_a_small_class() -> None:
    rng = np.random.default_rng(3)
    X = rng.normal(size=(60, 3))
    y = np.array(["a"] * 57 + ["b"] * 3)
    X[y == "b"] += 4.0
    model = RBFSupportVectorClassifier(random_state=0).fit(X, y)
    assert model.predict_proba(X).shape == (60, 2)


def test_classifier_refuses_a_class_of_one_row() -> None:
    X = np.arange(20, dtype=float).reshape(10, 2)
    y = np.array([0] * 9 + [1])
    with pytest.raises(ValueError, match="at least two rows of every class"):
        RBFSupportVectorClassifier().fit(X, y)


def test_regressor_does_not_depend_on_the_target_scale() -> None:
    X, y = make_friedman1(n_samples=300, noise=0.5, random_state=0)
    small = RBFSupportVectorRegressor(C=10.0, epsilon=0.05).fit(X, y).predict(X)
    large = RBFSupportVectorRegressor(C=10.0, epsilon=0.05).fit(X, 1000.0 * y + 7.0).predict(X)
    np.testing.assert_allclose(large, 1000.0 * small + 7.0, rtol=1e-6)


def test_regressor_beats_the_mean_on_a_nonlinear_target() -> None:
    X, y = make_friedman1(n_samples=500, noise=0.5, random_state=1)
    model = RBFSupportVectorRegressor(C=10.0).fit(X[:350], y[:350])
    rmse = mean_squared_error(y[350:], model.predict(X[350:])) ** 0.5
    baseline = mean_squared_error(y[350:], np.full(150, y[:350].mean())) ** 0.5
    assert rmse < 0.5 * baseline


def test_minmax_scaling_maps_the_training_range_to_the_unit_interval() -> None:
    frame = pd.DataFrame({"pixel": [0.0, 0.0, 0.0, 16.0, 8.0], "size": [1.0, 2.0, 3.0, 4.0, 5.0]})
    schema = infer_schema(frame)
    out = build_preprocessor(schema, ["pixel", "size"], scale="minmax", text_column=None)
    values = np.asarray(out.fit_transform(frame))[:, :2]
    np.testing.assert_allclose(values[:, 0], [0.0, 0.0, 0.0, 1.0, 0.5])
    np.testing.assert_allclose(values[:, 1], [0.0, 0.25, 0.5, 0.75, 1.0])


def test_the_family_builds_the_scaling_it_is_given() -> None:
    frame = pd.DataFrame({"x": [0.0, 1.0, 2.0, 10.0]})
    family = get_family("svm")
    context = BuildContext(
        task="binary",
        schema=infer_schema(frame),
        features=("x",),
        text_column=None,
        objective=objective_for("binary", "roc_auc"),
        seed=0,
    )
    for scaling, scaler in (("standard", "StandardScaler"), ("minmax", "MinMaxScaler")):
        model = family.build({**family.defaults("binary"), "scaling": scaling}, context)
        numeric = model.named_steps["preprocess"].transformers[0][1]
        assert type(numeric.named_steps["scale"]).__name__ == scaler
    with pytest.raises(ValueError, match="scaling"):
        family.build({"scaling": "robust"}, context)


def _circle_search(families: list[str], rows: int = 400, **kw):
    X, y = make_circles(n_samples=rows, noise=0.1, factor=0.5, random_state=2)
    frame = pd.DataFrame(X, columns=["a", "b"])
    cut = int(rows * 0.7)
    return run_search(
        frame[:cut],
        y[:cut],
        frame[cut:],
        y[cut:],
        task="binary",
        schema=infer_schema(frame),
        features=["a", "b"],
        text_column=None,
        families=families,
        primary_metric="roc_auc",
        trials=4,
        minutes=None,
        sampler="tpe",
        pruning=True,
        seed=0,
        **kw,
    )


def test_the_search_chooses_the_svm_where_the_boundary_is_a_circle() -> None:
    result = _circle_search(["dummy", "linear", "svm"], ensemble=False)
    assert result.best_family == "svm"
    assert type(final_model(result.estimator)).__name__ == "RBFSupportVectorClassifier"
    assert result.best_value > 0.95


def test_the_search_skips_the_svm_above_its_row_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    assert SVMFamily.max_rows == 5_000
    monkeypatch.setattr(SVMFamily, "max_rows", 300)
    result = _circle_search(["dummy", "linear", "svm"], rows=400)
    assert result.skipped == {"svm": "fits at most 300 rows; training + validation has 400"}
    assert {t.family for t in result.trials} == {"linear"}
    with pytest.raises(ConfigError, match=r"search.families: no listed model family can be") as err:
        _circle_search(["dummy", "svm"], rows=400)
    assert "linear" in err.value.expected
