"""Learning curves and their diagnosis on planted cases with known verdicts."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_classification
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.tree import DecisionTreeClassifier

from assay.data.schema import infer_schema
from assay.train.context import BuildContext
from assay.train.curves import (
    Diagnosis,
    LearningCurve,
    curve_from_estimator,
    diagnose,
    learning_curve_for,
    train_size_curve,
)
from assay.train.families import get_family
from assay.train.objective import objective_for
from assay.train.pipeline import fit_model
from assay.train.scoring import score_estimator


def _split(X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, ...]:
    return X[:600], y[:600], X[600:], y[600:]


def _context(frame: pd.DataFrame) -> BuildContext:
    """A binary task on every column of ``frame``, scored by ROC AUC (no threshold hint)."""
    return BuildContext.of(
        task="binary",
        schema=infer_schema(frame),
        features=list(frame.columns),
        text_column=None,
        objective=objective_for("binary", "roc_auc"),
        seed=0,
    )


@pytest.fixture(scope="module")
def noisy() -> tuple[np.ndarray, ...]:
    X, y = make_classification(
        n_samples=900, n_features=10, n_informative=3, flip_y=0.3, random_state=0
    )
    return _split(X, y)


@pytest.fixture(scope="module")
def clean() -> tuple[np.ndarray, ...]:
    # a well-specified logistic model: a linear model fits it as well as it can be fitted
    rng = np.random.default_rng(0)
    X = rng.normal(size=(900, 5))
    p = 1 / (1 + np.exp(-(X @ np.array([1.5, -1.0, 0.5, 0.0, 2.0]))))
    return _split(X, (rng.random(900) < p).astype(int))


def test_a_deep_unregularised_tree_on_noisy_data_overfits(noisy) -> None:
    X, y, Xv, yv = noisy
    curve = train_size_curve(
        DecisionTreeClassifier(random_state=0), X, y, Xv, yv, metric="accuracy"
    )
    assert curve.kind == "train_size" and len(curve.steps) == 5
    assert curve.steps == (120.0, 240.0, 360.0, 480.0, 600.0)
    assert all(t == 1.0 for t in curve.train)  # it memorises every training row
    result = diagnose(curve, higher_is_better=True, baseline=0.5)
    assert result.verdict == "overfitting"
    assert result.evidence["gap"] > 0.2
    assert "Regularise" in result.action


def test_boosting_deep_trees_on_noise_overfits_per_round(noisy) -> None:
    X, y, Xv, yv = noisy
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(X.shape[1])])
    val = pd.DataFrame(Xv, columns=frame.columns)
    family = get_family("lightgbm")
    model = family.build(
        {"learning_rate": 0.3, "num_leaves": 127, "min_child_samples": 2, "reg_lambda": 0.0},
        _context(frame),
    )
    fit_model(model, frame, y, eval_set=(val, yv))
    curve = curve_from_estimator(model)
    assert curve is not None and curve.kind == "boosting_round" and curve.metric == "log_loss"
    result = diagnose(curve, higher_is_better=False)
    assert result.verdict == "overfitting", result.reason
    assert result.evidence["worsening"] > 0.02


def test_a_dummy_model_underfits(clean) -> None:
    X, y, Xv, yv = clean
    curve = train_size_curve(DummyClassifier(strategy="prior"), X, y, Xv, yv, metric="roc_auc")
    baseline = score_estimator("roc_auc", DummyClassifier().fit(X, y), Xv, yv)
    result = diagnose(curve, higher_is_better=True, baseline=baseline)
    assert result.verdict == "underfitting"
    assert "baseline" in result.reason
    assert result.evidence["gain_over_baseline"] == pytest.approx(0.0)


def test_a_net_stopped_while_still_improving_underfits(clean) -> None:
    X, y, Xv, yv = clean
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(5)])
    val = pd.DataFrame(Xv, columns=frame.columns)
    family = get_family("mlp")
    model = family.build(
        {"n_layers": 1, "width": 8, "learning_rate": 1e-3, "max_epochs": 6, "dropout": 0.0},
        _context(frame),
    )
    fit_model(model, frame, y, eval_set=(val, yv))
    curve = curve_from_estimator(model)
    assert curve is not None and curve.kind == "epoch" and len(curve.steps) == 6
    result = diagnose(curve, higher_is_better=False)
    assert result.verdict == "underfitting"
    assert result.evidence["improving_at_end"] is True


def test_a_well_specified_model_is_good(clean) -> None:
    X, y, Xv, yv = clean
    model = LogisticRegression().fit(X, y)
    curve = learning_curve_for(model, X, y, Xv, yv, metric="roc_auc")
    assert curve.kind == "train_size"  # a linear model records no iterations
    baseline = score_estimator("roc_auc", DummyClassifier().fit(X, y), Xv, yv)
    result = diagnose(curve, higher_is_better=True, baseline=baseline)
    assert result.verdict == "good", result.reason


@pytest.mark.parametrize(
    ("train", "validation", "verdict"),
    [
        # train keeps falling, validation bottoms out at step 3 and climbs back
        ([0.6, 0.4, 0.2, 0.1, 0.05, 0.02], [0.62, 0.5, 0.45, 0.5, 0.6, 0.7], "overfitting"),
        # both high and close, still falling at the end
        ([0.69, 0.66, 0.63, 0.6, 0.57, 0.54], [0.69, 0.67, 0.64, 0.61, 0.58, 0.55], "underfitting"),
        # both settled close together
        ([0.6, 0.35, 0.3, 0.29, 0.29, 0.29], [0.6, 0.37, 0.32, 0.31, 0.31, 0.312], "good"),
    ],
)
def test_verdicts_on_hand_made_loss_curves_and_their_mirror_scores(
    train: list[float], validation: list[float], verdict: str
) -> None:
    steps = tuple(float(i) for i in range(1, 7))
    loss = LearningCurve("epoch", "log_loss", steps, tuple(train), tuple(validation))
    assert diagnose(loss, higher_is_better=False).verdict == verdict
    # the same shape as a bounded score where higher is better
    score = LearningCurve(
        "epoch", "accuracy", steps, tuple(1 - v for v in train), tuple(1 - v for v in validation)
    )
    assert diagnose(score, higher_is_better=True).verdict == verdict


def test_curve_and_diagnosis_serialise_to_json_and_back() -> None:
    curve = LearningCurve("epoch", "log_loss", (1.0, 2.0), (0.5, 0.4), (0.55, 0.45))
    assert LearningCurve.from_dict(json.loads(json.dumps(curve.to_dict()))) == curve
    result = diagnose(curve, higher_is_better=False, baseline=0.69)
    again = Diagnosis.from_dict(json.loads(json.dumps(result.to_dict())))
    assert again == result


def test_a_curve_with_mismatched_lengths_is_rejected() -> None:
    with pytest.raises(ValueError, match="as many train and validation values as steps"):
        LearningCurve("epoch", "log_loss", (1.0, 2.0), (0.5,), (0.5, 0.4))
