"""TorchMLPClassifier / TorchMLPRegressor: scikit-learn contract, early stopping, determinism."""

from __future__ import annotations

import pickle

import joblib
import numpy as np
import optuna
import pytest
import scipy.sparse as sp
import torch
from sklearn.base import clone
from sklearn.datasets import make_classification, make_regression
from sklearn.metrics import accuracy_score, log_loss, mean_squared_error, r2_score

from assay.train.mlp import TorchMLPClassifier, TorchMLPRegressor


@pytest.fixture(scope="module")
def classification() -> tuple[np.ndarray, ...]:
    X, y = make_classification(
        n_samples=600,
        n_features=8,
        n_informative=5,
        n_classes=3,
        n_clusters_per_class=1,
        random_state=0,
    )
    return X[:400], y[:400], X[400:], y[400:]


@pytest.fixture(scope="module")
def regression() -> tuple[np.ndarray, ...]:
    X, y = make_regression(n_samples=500, n_features=6, noise=5.0, random_state=0)
    y = y + 1000.0  # far from zero: the target must be standardised internally
    return X[:350], y[:350], X[350:], y[350:]


def test_get_and_set_params_round_trip_through_clone() -> None:
    model = TorchMLPClassifier((32,), dropout=0.2, max_epochs=7, class_weight="balanced")
    params = model.get_params()
    assert params["hidden_layers"] == (32,) and params["max_epochs"] == 7
    twin = clone(model).set_params(dropout=0.3)
    assert twin.get_params()["dropout"] == 0.3
    assert twin.get_params()["class_weight"] == "balanced"


def test_classifier_learns_and_probabilities_are_distributions(classification) -> None:
    X, y, Xv, yv = classification
    model = TorchMLPClassifier((32,), max_epochs=60, random_state=0).fit(X, y)
    proba = model.predict_proba(Xv)
    assert proba.shape == (len(Xv), 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-9)
    assert list(model.classes_) == [0, 1, 2]
    assert accuracy_score(yv, model.predict(Xv)) > 0.8


def test_string_labels_are_kept(classification) -> None:
    X, y, Xv, _ = classification
    labels = np.array(["ant", "bee", "cat"])[y]
    model = TorchMLPClassifier((16,), max_epochs=5).fit(X, labels)
    assert list(model.classes_) == ["ant", "bee", "cat"]
    assert set(model.predict(Xv)) <= {"ant", "bee", "cat"}


def test_regressor_learns_in_the_target_units(regression) -> None:
    X, y, Xv, yv = regression
    model = TorchMLPRegressor((64,), max_epochs=150, learning_rate=3e-3, random_state=0)
    model.fit(X, y, eval_set=(Xv, yv))
    assert r2_score(yv, model.predict(Xv)) > 0.9
    # the recorded validation loss is the MSE in the target's units, at the restored epoch
    best = min(model.history_["validation"])
    assert mean_squared_error(yv, model.predict(Xv)) == pytest.approx(best, rel=1e-4)


def test_early_stopping_restores_the_best_epoch(classification) -> None:
    X, y, Xv, yv = classification
    model = TorchMLPClassifier(
        (128, 128),
        dropout=0.0,
        learning_rate=1e-2,
        weight_decay=0.0,
        max_epochs=300,
        patience=5,
        random_state=0,
    ).fit(X, y, eval_set=(Xv, yv))
    val = model.history_["validation"]
    assert model.best_epoch_ == int(np.argmin(val)) + 1
    assert model.n_epochs_ == model.best_epoch_ + 5 < 300  # stopped `patience` epochs later
    assert len(model.history_["train"]) == model.n_epochs_
    # the fitted weights are those of the best epoch: their log loss is the recorded minimum
    assert log_loss(yv, model.predict_proba(Xv)) == pytest.approx(min(val), rel=1e-4)


def test_internal_validation_fraction_when_no_eval_set(classification) -> None:
    X, y, _, _ = classification
    model = TorchMLPClassifier((16,), max_epochs=8, validation_fraction=0.25).fit(X, y)
    assert len(model.history_["validation"]) == model.n_epochs_
    no_val = TorchMLPClassifier((16,), max_epochs=8, validation_fraction=0.0).fit(X, y)
    assert no_val.history_["validation"] == [] and no_val.n_epochs_ == 8


def test_on_step_sees_every_epoch_and_can_stop_training(classification) -> None:
    X, y, Xv, yv = classification
    seen: list[tuple[int, float]] = []
    model = TorchMLPClassifier((16,), max_epochs=6, patience=100)
    model.fit(X, y, eval_set=(Xv, yv), on_step=lambda e, loss: seen.append((e, loss)))
    assert [e for e, _ in seen] == [1, 2, 3, 4, 5, 6]
    assert [v for _, v in seen] == model.history_["validation"]

    def prune(epoch: int, loss: float) -> None:
        if epoch == 2:
            raise optuna.TrialPruned()

    threads = torch.get_num_threads()
    with pytest.raises(optuna.TrialPruned):
        TorchMLPClassifier((16,), max_epochs=6).fit(X, y, eval_set=(Xv, yv), on_step=prune)
    assert torch.get_num_threads() == threads  # restored even when training is interrupted


def test_same_seed_same_model_other_seed_other_model(classification) -> None:
    X, y, Xv, _ = classification
    a = TorchMLPClassifier((32,), max_epochs=10, random_state=4).fit(X, y)
    b = TorchMLPClassifier((32,), max_epochs=10, random_state=4).fit(X, y)
    c = TorchMLPClassifier((32,), max_epochs=10, random_state=5).fit(X, y)
    np.testing.assert_array_equal(a.predict_proba(Xv), b.predict_proba(Xv))
    assert not np.array_equal(a.predict_proba(Xv), c.predict_proba(Xv))


def test_pickle_and_joblib_round_trips(classification, tmp_path) -> None:
    X, y, Xv, _ = classification
    model = TorchMLPClassifier((16,), max_epochs=5).fit(X, y)
    again = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(again.predict_proba(Xv), model.predict_proba(Xv))
    joblib.dump(model, tmp_path / "m.joblib")
    loaded = joblib.load(tmp_path / "m.joblib")
    np.testing.assert_array_equal(loaded.predict(Xv), model.predict(Xv))


def test_sparse_input_is_densified(classification) -> None:
    X, y, Xv, _ = classification
    dense = TorchMLPClassifier((16,), max_epochs=4).fit(X, y)
    sparse = TorchMLPClassifier((16,), max_epochs=4).fit(sp.csr_matrix(X), y)
    np.testing.assert_allclose(sparse.predict_proba(Xv), dense.predict_proba(Xv), atol=1e-6)


def test_balanced_class_weight_raises_minority_recall() -> None:
    X, y = make_classification(
        n_samples=800, n_features=6, weights=[0.93], flip_y=0.02, class_sep=0.8, random_state=2
    )
    kw = dict(hidden_layers=(32,), max_epochs=40, random_state=0, validation_fraction=0.0)
    plain = TorchMLPClassifier(**kw).fit(X[:500], y[:500])
    weighted = TorchMLPClassifier(class_weight="balanced", **kw).fit(X[:500], y[:500])
    recall = lambda m: float(np.mean(m.predict(X[500:])[y[500:] == 1] == 1))  # noqa: E731
    assert recall(weighted) > recall(plain)


def test_wrong_feature_count_and_single_class_are_errors(classification) -> None:
    X, y, Xv, _ = classification
    model = TorchMLPClassifier((8,), max_epochs=2).fit(X, y)
    with pytest.raises(ValueError, match="X has 3 features, but the network was fitted with 8"):
        model.predict(Xv[:, :3])
    with pytest.raises(ValueError, match="single class"):
        TorchMLPClassifier().fit(X, np.zeros(len(X)))
