"""The plots: PNG data URIs from good data, None from missing or malformed data."""

from __future__ import annotations

import base64
import io

import pytest
from matplotlib.image import imread

from assay.report import plots
from assay.report.wording import fixed, interval, num, pct, running_best, size_bytes

PNG = b"\x89PNG\r\n\x1a\n"


def _png(uri: str | None) -> bytes:
    assert uri is not None and uri.startswith("data:image/png;base64,")
    data = base64.b64decode(uri.split(",", 1)[1])
    assert data.startswith(PNG)
    return data


def test_each_plot_draws_a_png() -> None:
    roc = [{"kind": "roc", "x": [0, 0.2, 1], "y": [0, 0.8, 1], "label": "$100"}]
    pr = [{"kind": "pr", "x": [0, 0.5, 1], "y": [1, 0.9, 0.5], "label": "yes"}]
    calibration = {"mean_predicted": [0.1, 0.5, 0.9], "fraction_positive": [0.2, 0.5, 0.8],
                   "counts": [5, 5, 5], "ece": 0.07}
    confusion = {"labels": ["no", "yes"], "matrix": [[40, 10], [5, 45]]}
    scatter = {"kind": "predicted_vs_actual", "x": [1.0, 2.0, 3.0], "y": [1.1, 2.2, 2.7]}
    curve = {"kind": "boosting_round", "metric": "log_loss", "steps": [1, 2, 3],
             "train": [0.6, 0.5, 0.4], "validation": [0.65, 0.55, 0.5]}
    trials = [{"number": 0, "family": "linear", "value": 0.8},
              {"number": 1, "family": "lightgbm", "value": None}]
    for uri in (plots.roc_plot(roc), plots.pr_plot(pr), plots.calibration_plot(calibration),
                plots.confusion_plot(confusion), plots.predicted_vs_actual_plot(scatter),
                plots.residuals_plot(scatter), plots.learning_curve_plot(curve),
                plots.search_plot(trials, "roc_auc", True)):
        _png(uri)


def test_confusion_heatmap_has_the_expected_shape() -> None:
    confusion = {"labels": list("abcdefghijklmnop"), "matrix": [[1] * 16 for _ in range(16)]}
    small = imread(io.BytesIO(_png(plots.confusion_plot({"labels": ["a"], "matrix": [[3]]}))))
    large = imread(io.BytesIO(_png(plots.confusion_plot(confusion))))
    assert large.shape[0] > small.shape[0]  # the figure grows with the number of classes


@pytest.mark.parametrize("value", [None, {}, [], {"x": [1, 2], "y": [1]}, {"x": ["a"], "y": [1]}])
def test_malformed_points_give_none(value: object) -> None:
    assert plots.predicted_vs_actual_plot(value) is None  # type: ignore[arg-type]
    assert plots.roc_plot([value]) is None  # type: ignore[list-item]


def test_malformed_structures_give_none() -> None:
    assert plots.confusion_plot({"labels": ["a", "b"], "matrix": [[1, 2]]}) is None
    assert plots.calibration_plot({"mean_predicted": [0.1], "fraction_positive": []}) is None
    assert plots.learning_curve_plot({"steps": [1, 2], "train": [1], "validation": [1, 2]}) is None
    failed = [{"number": 0, "value": None, "state": "failed"}]
    assert plots.search_plot(failed, "mae", False) is None


def test_same_input_same_bytes() -> None:
    curve = [{"kind": "roc", "x": [0, 0.3, 1], "y": [0, 0.7, 1], "label": 1}]
    assert plots.roc_plot(curve) == plots.roc_plot(curve)


def test_running_best_follows_the_direction() -> None:
    values = [None, 0.5, 0.4, 0.7, None, 0.6]
    assert running_best(values, True) == [None, 0.5, 0.5, 0.7, 0.7, 0.7]
    assert running_best(values, False) == [None, 0.5, 0.4, 0.4, 0.4, 0.4]


def test_number_formats() -> None:
    assert num(0.87344) == "0.8734"
    assert num(None) == "\u2014" and num(float("nan")) == "\u2014"
    assert num(12345.67) == "12,345.7"
    assert num(0.0001234) == "1.23e-04"
    assert num(1200) == "1,200"
    assert interval([0.1, 0.25]) == "[0.1000, 0.2500]"
    assert interval(None) == "\u2014"
    assert pct(0.125) == "12.5%"
    assert size_bytes(512) == "512 B" and size_bytes(12_345) == "12.1 KiB"
    assert size_bytes(5 * 1024**3) == "5.0 GiB"
    assert fixed(1.23456, 3, "ms") == "1.235 ms" and fixed(None) == "\u2014"
