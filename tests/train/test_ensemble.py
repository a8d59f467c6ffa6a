"""Greedy ensemble selection on out-of-fold predictions, and the ensemble estimators."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from assay.data.schema import infer_schema
from assay.train.ensemble import (
    EnsembleClassifier,
    EnsembleRegressor,
    OutOfFoldScorer,
    clear_gain,
    fitted_ensemble,
    rank_auc,
    select_blend,
)
from assay.train.pipeline import ModelPipeline
from assay.train.preprocess import build_preprocessor
from assay.train.scoring import score_predictions


def _folds(n: int, k: int = 5, seed: int = 0) -> tuple[np.ndarray, ...]:
    return tuple(np.array_split(np.random.default_rng(seed).permutation(n), k))


def _half_informative(n: int = 400) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two-class labels and two candidates, each sure on its half of the rows, 0.5 elsewhere."""
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, n)
    first_half = np.arange(n) < n // 2
    sure = np.where(y == 1, 0.9, 0.1)
    a = np.where(first_half, sure, 0.5)
    b = np.where(first_half, 0.5, sure)
    # a coin flip where a candidate knows nothing: ties go to the first class
    as_proba = lambda p: np.column_stack([1.0 - p, p])
    return y, as_proba(a), as_proba(b)


def test_two_candidates_each_knowing_half_the_rows_blend_to_equal_weights() -> None:
    y, a, b = _half_informative()
    scorer = OutOfFoldScorer("accuracy", y, _folds(len(y)), classes=np.array([0, 1]))
    blend = select_blend([a, b], scorer, higher_is_better=True)
    assert blend.weights == (0.5, 0.5)
    assert blend.value == pytest.approx(1.0)
    # alone, each is right on its half and on the other half's class-0 rows
    assert blend.single_value == pytest.approx(scorer(a))
    assert scorer(a) < 0.8 and scorer(b) < 0.8
    assert blend.improves and blend.members == [0, 1]


def test_averaging_independent_errors_halves_the_squared_error() -> None:
    rng = np.random.default_rng(0)
    y = rng.normal(size=4000)
    a, b = y + rng.normal(size=4000), y + rng.normal(size=4000)
    scorer = OutOfFoldScorer("rmse", y, _folds(len(y)))
    blend = select_blend([a, b], scorer, higher_is_better=False)
    assert blend.weights[0] == pytest.approx(0.5, abs=0.1)
    assert sum(blend.weights) == pytest.approx(1.0)
    assert blend.value == pytest.approx(blend.single_value / np.sqrt(2), rel=0.05)
    assert blend.improves


def test_weights_are_non_negative_sum_to_one_and_are_multiples_of_a_step() -> None:
    rng = np.random.default_rng(1)
    y = rng.normal(size=300)
    candidates = [y * rng.uniform(0.2, 1.2) + rng.normal(scale=s, size=300) for s in (1, 2, 3)]
    scorer = OutOfFoldScorer("mae", y, _folds(300))
    blend = select_blend(candidates, scorer, higher_is_better=False, steps=10)
    weights = np.asarray(blend.weights)
    assert (weights >= 0).all() and weights.sum() == pytest.approx(1.0)
    # k additions of n weigh k / n
    assert any(np.allclose(weights * n, np.round(weights * n)) for n in range(1, 11))
    blended = sum(w * c for w, c in zip(weights, candidates))
    assert blend.value == pytest.approx(scorer(blended))


def test_a_duplicate_or_worse_candidate_gives_no_ensemble() -> None:
    y, a, _ = _half_informative()
    scorer = OutOfFoldScorer("accuracy", y, _folds(len(y)), classes=np.array([0, 1]))
    blend = select_blend([a, a.copy()], scorer, higher_is_better=True)
    assert blend.weights == (1.0, 0.0) and not blend.improves
    worse = np.full_like(a, 0.5)
    assert not select_blend([a, worse], scorer, higher_is_better=True).improves


def test_the_selection_is_deterministic_and_rejects_bad_input() -> None:
    y, a, b = _half_informative()
    scorer = OutOfFoldScorer("log_loss", y, _folds(len(y)), classes=np.array([0, 1]))
    first = select_blend([a, b], scorer, higher_is_better=False)
    assert select_blend([a, b], scorer, higher_is_better=False) == first
    with pytest.raises(ValueError, match="at least one candidate"):
        select_blend([], scorer, higher_is_better=False)
    with pytest.raises(ValueError, match="same shape"):
        select_blend([a, a[:10]], scorer, higher_is_better=False)


@pytest.mark.parametrize("metric", ["roc_auc", "roc_auc_ovr", "f1_macro", "accuracy", "log_loss"])
def test_the_scorer_is_the_mean_of_the_folds_metric(metric: str) -> None:
    rng = np.random.default_rng(2)
    k = 2 if metric == "roc_auc" else 4
    y = rng.integers(0, k, 500)
    proba = rng.dirichlet(np.ones(k), size=500)
    proba[np.arange(500), y] += 0.3
    proba /= proba.sum(axis=1, keepdims=True)
    classes = np.arange(k)
    folds = _folds(500)
    expected = np.mean(
        [
            score_predictions(metric, y[r], proba=proba[r], classes=classes,
                              y_pred=classes[np.argmax(proba[r], axis=1)])
            for r in folds
        ]
    )
    assert OutOfFoldScorer(metric, y, folds, classes)(proba) == pytest.approx(expected)


def test_a_tuned_threshold_is_chosen_on_the_out_of_fold_probabilities() -> None:
    rng = np.random.default_rng(4)
    y = (rng.random(600) < 0.2).astype(int)
    p = np.clip(0.15 + 0.3 * y + rng.normal(scale=0.15, size=600), 0, 1)
    proba = np.column_stack([1 - p, p])
    scorer = OutOfFoldScorer("f1", y, _folds(600), np.array([0, 1]), threshold_metric="f1")
    t = scorer.threshold(proba)
    assert t is not None and t != 0.5
    labels = (p >= t).astype(int)
    expected = np.mean([score_predictions("f1", y[r], y_pred=labels[r]) for r in _folds(600)])
    assert scorer(proba) == pytest.approx(expected)
    argmax = OutOfFoldScorer("f1", y, _folds(600), np.array([0, 1]))
    assert argmax.threshold(proba) is None and scorer(proba) > argmax(proba)


def test_rank_auc_matches_scikit_learn_with_ties() -> None:
    rng = np.random.default_rng(5)
    score = np.round(rng.random(300), 1)
    positive = rng.random(300) < 0.4
    assert rank_auc(positive, score) == pytest.approx(roc_auc_score(positive, score))


@pytest.fixture(scope="module")
def multiclass() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(6)
    X = rng.normal(size=(300, 4))
    y = np.array(["a", "b", "c"])[(X[:, 0] > 0).astype(int) + (X[:, 1] > 0.5).astype(int)]
    return X, y


def test_the_classifier_averages_its_members_probabilities(multiclass) -> None:
    X, y = multiclass
    members = [LogisticRegression(max_iter=500),
               DecisionTreeClassifier(max_depth=3, random_state=0)]
    model = EnsembleClassifier(members, [3, 1]).fit(X, y)
    by_hand = [clone(m).fit(X, y) for m in members]
    expected = 0.75 * by_hand[0].predict_proba(X) + 0.25 * by_hand[1].predict_proba(X)
    np.testing.assert_allclose(model.predict_proba(X), expected)
    np.testing.assert_array_equal(model.classes_, ["a", "b", "c"])
    np.testing.assert_array_equal(model.predict(X), model.classes_[expected.argmax(axis=1)])
    np.testing.assert_allclose(model.weights_, [0.75, 0.25])


def test_a_binary_ensemble_predicts_by_its_threshold(multiclass) -> None:
    X, y = multiclass
    y2 = (y == "c").astype(int)
    model = EnsembleClassifier([LogisticRegression(), LogisticRegression(C=0.1)], [1, 1],
                               threshold=0.2).fit(X, y2)
    proba = model.predict_proba(X)[:, 1]
    np.testing.assert_array_equal(model.predict(X), (proba >= 0.2).astype(int))
    assert (model.predict(X) != proba.round()).any()  # not the 0.5 rule


def test_the_regressor_averages_its_members_predictions(multiclass) -> None:
    X, _ = multiclass
    y = X[:, 0] * 2 + np.sign(X[:, 1])
    members = [LinearRegression(), DecisionTreeRegressor(max_depth=4, random_state=0)]
    model = EnsembleRegressor(members, [0.6, 0.4]).fit(X, y)
    expected = 0.6 * LinearRegression().fit(X, y).predict(X) + 0.4 * clone(members[1]).fit(
        X, y
    ).predict(X)
    np.testing.assert_allclose(model.predict(X), expected)


def test_ensembles_clone_pickle_and_predict_identically(multiclass) -> None:
    X, y = multiclass
    model = EnsembleClassifier([LogisticRegression(), DecisionTreeClassifier(random_state=0)],
                               [1, 2]).fit(X, y)
    loaded = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    again = clone(model)
    assert not hasattr(again, "estimators_") and again.get_params()["weights"] == [1, 2]
    np.testing.assert_allclose(again.fit(X, y).predict_proba(X), model.predict_proba(X))


def test_an_ensemble_of_members_fitted_elsewhere(multiclass) -> None:
    X, y = multiclass
    members = [LogisticRegression(), DecisionTreeClassifier(max_depth=2, random_state=0)]
    fitted = [clone(m).fit(X, y) for m in members]
    model = fitted_ensemble(members, fitted, [1, 1], classes=np.unique(y))
    np.testing.assert_allclose(
        model.predict_proba(X), (fitted[0].predict_proba(X) + fitted[1].predict_proba(X)) / 2
    )
    with pytest.raises(ValueError, match="2 members but 1 fitted"):
        fitted_ensemble(members, fitted[:1], [1, 1], classes=np.unique(y))


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        ([1.0], "one weight per member: 2 members, 1 weights"),
        ([1.0, -0.5], "non-negative with a positive sum"),
        ([0.0, 0.0], "non-negative with a positive sum"),
    ],
)
def test_bad_weights_are_refused(multiclass, weights, message) -> None:
    X, y = multiclass
    with pytest.raises(ValueError, match=message):
        EnsembleClassifier([LogisticRegression(), LogisticRegression()], weights).fit(X, y)


def test_members_with_the_same_preprocessing_transform_the_rows_once(multiclass) -> None:
    X, y = multiclass
    frame = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    schema = infer_schema(frame)

    def pipeline(model):
        return ModelPipeline([("preprocess", build_preprocessor(schema, list(frame.columns),
                                                                scale=True, text_column=None)),
                              ("model", model)])

    members = [pipeline(LogisticRegression(C=0.1)), pipeline(LogisticRegression(C=10.0)),
               DecisionTreeClassifier(max_depth=3, random_state=0)]
    model = EnsembleClassifier(members, [1, 1, 2]).fit(frame, y)
    assert len(model.groups_) == 2  # the two pipelines share one fitted preprocessing
    expected = sum(w * clone(m).fit(frame, y).predict_proba(frame)
                   for w, m in zip([0.25, 0.25, 0.5], members))
    np.testing.assert_allclose(model.predict_proba(frame), expected)
    loaded = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(loaded.predict_proba(frame.iloc[:1]),
                                  model.predict_proba(frame.iloc[:1]))


def test_a_gain_counts_only_beyond_one_standard_error_of_the_fold_differences() -> None:
    single = [0.90, 0.90, 0.90, 0.90]
    assert clear_gain([0.92, 0.91, 0.93, 0.92], single, higher_is_better=True)
    # the same mean gain, but one fold much worse: within the noise
    assert not clear_gain([0.99, 0.99, 0.99, 0.75], single, higher_is_better=True)
    assert clear_gain([9.0, 9.5, 9.2], [10.0, 10.0, 10.0], higher_is_better=False)
    assert not clear_gain([9.0], [10.0], higher_is_better=False)  # one fold: no noise estimate
