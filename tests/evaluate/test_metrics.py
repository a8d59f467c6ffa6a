"""compute_metrics equals scikit-learn on the same predictions, and is None where undefined."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from assay.config.metrics import TASK_METRICS
from assay.errors import ConfigError, DataError
from assay.evaluate import compute_metrics, metric_value


def test_binary_metrics_equal_sklearn_with_positive_class_second(binary_predictions) -> None:
    p = binary_predictions
    got = compute_metrics("binary", p["y_true"], p["y_pred"], p["proba"], p["classes"])
    positive = p["y_true"] == "yes"
    score = p["proba"][:, 1]
    expected = {
        "accuracy": skm.accuracy_score(p["y_true"], p["y_pred"]),
        "balanced_accuracy": skm.balanced_accuracy_score(p["y_true"], p["y_pred"]),
        "precision": skm.precision_score(p["y_true"], p["y_pred"], pos_label="yes"),
        "recall": skm.recall_score(p["y_true"], p["y_pred"], pos_label="yes"),
        "f1": skm.f1_score(p["y_true"], p["y_pred"], pos_label="yes"),
        "roc_auc": skm.roc_auc_score(positive, score),
        "pr_auc": skm.average_precision_score(positive, score),
        "log_loss": skm.log_loss(p["y_true"], p["proba"], labels=["no", "yes"]),
        "brier": skm.brier_score_loss(positive, score),
    }
    assert list(got) == list(TASK_METRICS["binary"])
    assert got == pytest.approx(expected, rel=1e-12)


def test_binary_positive_class_follows_classes_order(binary_predictions) -> None:
    p = binary_predictions
    flipped = compute_metrics(
        "binary", p["y_true"], p["y_pred"], p["proba"][:, ::-1], ["yes", "no"]
    )
    assert flipped["recall"] == pytest.approx(
        skm.recall_score(p["y_true"], p["y_pred"], pos_label="no")
    )
    # the ranking quality does not depend on which class is called positive
    assert flipped["roc_auc"] == pytest.approx(
        skm.roc_auc_score(p["y_true"] == "yes", p["proba"][:, 1])
    )


def test_binary_accepts_a_1d_positive_probability(binary_predictions) -> None:
    p = binary_predictions
    full = compute_metrics("binary", p["y_true"], p["y_pred"], p["proba"], p["classes"])
    one = compute_metrics("binary", p["y_true"], p["y_pred"], p["proba"][:, 1], p["classes"])
    assert one == full


@pytest.mark.parametrize("task", ["multiclass", "text-classification"])
def test_multiclass_metrics_equal_sklearn(task: str, multiclass_predictions) -> None:
    p = multiclass_predictions
    yt, yp, proba = p["y_true"], p["y_pred"], p["proba"]
    got = compute_metrics(task, yt, yp, proba, p["classes"])
    expected = {
        "accuracy": skm.accuracy_score(yt, yp),
        "balanced_accuracy": skm.balanced_accuracy_score(yt, yp),
        "precision_macro": skm.precision_score(yt, yp, average="macro"),
        "recall_macro": skm.recall_score(yt, yp, average="macro"),
        "f1_macro": skm.f1_score(yt, yp, average="macro"),
        "f1_weighted": skm.f1_score(yt, yp, average="weighted"),
        "roc_auc_ovr": skm.roc_auc_score(yt, proba, multi_class="ovr", labels=p["classes"]),
        "log_loss": skm.log_loss(yt, proba, labels=p["classes"]),
    }
    assert got == pytest.approx(expected, rel=1e-12)


def test_text_classification_with_two_classes_uses_macro_metrics(binary_predictions) -> None:
    p = binary_predictions
    got = compute_metrics("text-classification", p["y_true"], p["y_pred"], p["proba"], p["classes"])
    assert got["f1_macro"] == pytest.approx(skm.f1_score(p["y_true"], p["y_pred"], average="macro"))
    assert got["roc_auc_ovr"] == pytest.approx(
        skm.roc_auc_score(p["y_true"] == "yes", p["proba"][:, 1])
    )


def test_regression_metrics_equal_sklearn(regression_predictions) -> None:
    yt, yp = regression_predictions["y_true"], regression_predictions["y_pred"]
    got = compute_metrics("regression", yt, yp)
    expected = {
        "mae": skm.mean_absolute_error(yt, yp),
        "rmse": skm.root_mean_squared_error(yt, yp),
        "r2": skm.r2_score(yt, yp),
        "mape": skm.mean_absolute_percentage_error(yt, yp),
        "median_ae": skm.median_absolute_error(yt, yp),
    }
    assert got == pytest.approx(expected, rel=1e-12)


def test_mape_is_none_when_a_target_is_zero() -> None:
    got = compute_metrics("regression", [0.0, 1.0, 2.0], [0.5, 1.0, 2.5])
    assert got["mape"] is None
    assert got["mae"] == pytest.approx(1.0 / 3.0)


def test_undefined_metrics_are_none_not_errors() -> None:
    got = compute_metrics("binary", ["a", "a", "a"], ["a", "b", "a"], [0.2, 0.7, 0.1], ["a", "b"])
    assert got["roc_auc"] is None
    assert got["pr_auc"] is None
    assert got["accuracy"] == pytest.approx(2 / 3)
    assert got["log_loss"] is not None


def test_probability_metrics_are_none_without_probabilities(multiclass_predictions) -> None:
    p = multiclass_predictions
    got = compute_metrics("multiclass", p["y_true"], p["y_pred"], None, p["classes"])
    assert got["roc_auc_ovr"] is None and got["log_loss"] is None
    assert got["accuracy"] is not None


def test_metric_value_picks_one_metric(regression_predictions) -> None:
    yt, yp = regression_predictions["y_true"], regression_predictions["y_pred"]
    assert metric_value("regression", "rmse", yt, yp) == pytest.approx(
        skm.root_mean_squared_error(yt, yp)
    )


def test_unknown_task_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown task 'ranking'.*binary"):
        compute_metrics("ranking", [1], [1])


def test_metric_of_another_task_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="'roc_auc' is not a regression metric"):
        compute_metrics("regression", [1.0], [1.0], metrics=["roc_auc"])


def test_probability_shape_mismatch_is_a_data_error() -> None:
    with pytest.raises(DataError, match=r"probabilities do not match.*shape \(3, 2\)"):
        compute_metrics("binary", [0, 1, 0], [0, 1, 0], np.ones((3, 3)) / 3, [0, 1])


def test_length_mismatch_is_a_data_error() -> None:
    with pytest.raises(DataError, match="y_pred has a different number of rows.*expected 3 rows"):
        compute_metrics("binary", [0, 1, 0], [0, 1], classes=[0, 1])


def test_binary_task_with_three_labels_is_a_data_error() -> None:
    with pytest.raises(DataError, match="exactly two classes"):
        compute_metrics("binary", [0, 1, 2], [0, 1, 2])
