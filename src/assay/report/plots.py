"""The report's pictures, drawn with matplotlib (Agg) into inline PNG data URIs.

Every function takes the plain dicts of the stage results and returns a
``data:image/png;base64,...`` string, or None when the data needed is missing or
malformed, so the report can say "not available" instead of failing. Figures are
made with :class:`matplotlib.figure.Figure` directly, never through pyplot, so no
global backend is switched and no window can open. The PNG carries no software
metadata, so the same inputs give the same bytes.
"""

from __future__ import annotations

import base64
import io
import math
import warnings
from collections.abc import Callable, Sequence
from typing import Any

from assay.report.wording import running_best

__all__ = [
    "beeswarm_plot",
    "calibration_plot",
    "dependence_plot",
    "importance_plot",
    "confusion_plot",
    "learning_curve_plot",
    "pr_plot",
    "predicted_vs_actual_plot",
    "residuals_plot",
    "roc_plot",
    "score_distribution_plot",
    "search_plot",
    "threshold_marker",
    "threshold_plot",
]

DPI = 96
SIZE = (4.6, 3.5)
MAX_LEGEND = 10
MAX_ANNOTATED_LABELS = 12
#: parse_math off: a class label such as "$100" must print as written, not as TeX
_STYLE: Any = {
    "text.parse_math": False,
    "font.size": 8.5,
    "axes.titlesize": 9.5,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
}
_STEP_LABELS = {"epoch": "epoch", "boosting_round": "boosting round", "train_size": "training rows"}


def _render(
    draw: Callable[[Any, Any], None],
    size: tuple[float, float] = SIZE,
    width_ratios: tuple[float, ...] | None = None,
) -> str:
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    with matplotlib.rc_context(_STYLE), warnings.catch_warnings():
        # missing glyphs and tight_layout notices are cosmetic
        warnings.simplefilter("ignore")
        fig = Figure(figsize=size, dpi=DPI)
        FigureCanvasAgg(fig)
        if width_ratios:
            ax = fig.subplots(1, len(width_ratios), sharey=True,
                              gridspec_kw={"width_ratios": list(width_ratios)})
        else:
            ax = fig.add_subplot()
        draw(fig, ax)
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", metadata={"Software": None})
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _numbers(values: Any) -> list[float] | None:
    if not isinstance(values, (list, tuple)) or not values:
        return None
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            return None
        out.append(float(v))
    return out


def _xy(curve: Any) -> tuple[list[float], list[float]] | None:
    if not isinstance(curve, dict):
        return None
    x, y = _numbers(curve.get("x")), _numbers(curve.get("y"))
    if x is None or y is None or len(x) != len(y):
        return None
    return x, y


def _legend(ax: Any, n: int) -> None:
    if n > 1:
        handles, labels = ax.get_legend_handles_labels()
        ax.legend(handles[:MAX_LEGEND], labels[:MAX_LEGEND], loc="best", fontsize=7, frameon=False)


def _class_curves(curves: Any) -> list[tuple[str, list[float], list[float]]]:
    out = []
    for curve in curves if isinstance(curves, (list, tuple)) else []:
        points = _xy(curve)
        if points is not None:
            label = curve.get("label")
            out.append(("" if label is None else str(label), *points))
    return out


def roc_plot(curves: Sequence[dict[str, Any]] | None) -> str | None:
    """ROC curves (one per class for more than two classes) with the chance diagonal."""
    found = _class_curves(curves)
    if not found:
        return None

    def draw(fig: Any, ax: Any) -> None:
        for label, x, y in found:
            ax.plot(x, y, lw=1.6, label=f"class {label}" if label else None)
        ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=1, label="chance")
        ax.set(xlim=(0, 1), ylim=(0, 1.02), xlabel="false positive rate",
               ylabel="true positive rate", title="ROC curve")
        _legend(ax, len(found) + 1)

    return _render(draw)


def pr_plot(curves: Sequence[dict[str, Any]] | None) -> str | None:
    """Precision-recall curves (x = recall, y = precision)."""
    found = _class_curves(curves)
    if not found:
        return None

    def draw(fig: Any, ax: Any) -> None:
        for label, x, y in found:
            ax.plot(x, y, lw=1.6, label=f"class {label}" if label else None,
                    drawstyle="steps-post")
        ax.set(xlim=(0, 1), ylim=(0, 1.02), xlabel="recall", ylabel="precision",
               title="Precision-recall curve")
        _legend(ax, len(found))

    return _render(draw)


def calibration_plot(calibration: dict[str, Any] | None) -> str | None:
    """The reliability curve against the diagonal, titled with the expected calibration error."""
    if not isinstance(calibration, dict):
        return None
    x = _numbers(calibration.get("mean_predicted"))
    y = _numbers(calibration.get("fraction_positive"))
    if x is None or y is None or len(x) != len(y):
        return None
    ece = calibration.get("ece")
    top_label = calibration.get("kind") == "top_label"

    def draw(fig: Any, ax: Any) -> None:
        ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=1, label="perfectly calibrated")
        ax.plot(x, y, marker="o", lw=1.6, label="model")
        title = "Calibration"
        if isinstance(ece, (int, float)):
            title += f" (ECE {ece:.3f})"
        ax.set(xlim=(0, 1), ylim=(0, 1.02), title=title,
               xlabel="mean predicted confidence" if top_label else "mean predicted probability",
               ylabel="share correct" if top_label else "observed share positive")
        _legend(ax, 2)

    return _render(draw)


def _histogram(histogram: Any) -> tuple[list[float], list[str], list[list[int]]] | None:
    if not isinstance(histogram, dict):
        return None
    edges = _numbers(histogram.get("edges"))
    labels = histogram.get("labels")
    counts = histogram.get("counts")
    if edges is None or not isinstance(labels, list) or not isinstance(counts, list):
        return None
    if len(labels) != len(counts) or not labels:
        return None
    rows = []
    for row in counts:
        if not isinstance(row, list) or len(row) != len(edges) - 1:
            return None
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in row):
            return None
        rows.append(row)
    return edges, [str(label) for label in labels], rows


def score_distribution_plot(
    histogram: dict[str, Any] | None, threshold: float | None = None
) -> str | None:
    """The scores of the test rows, one outlined histogram per true class (each scaled to
    its own rows, so a small class stays visible), with the decision threshold if given."""
    parsed = _histogram(histogram)
    if parsed is None:
        return None
    edges, labels, counts = parsed
    true_class = (histogram or {}).get("kind") == "true_class"

    def draw(fig: Any, ax: Any) -> None:
        for label, row in zip(labels[:MAX_LEGEND], counts[:MAX_LEGEND]):
            total = sum(row)
            if not total:
                continue
            shares = [v / total for v in row]
            ax.stairs(shares, edges, lw=1.6, label=f"true class {label} ({total:,} rows)")
        if threshold is not None:
            ax.axvline(threshold, color="black", ls="--", lw=1,
                       label=f"decision threshold {threshold:.2f}")
        ax.set(xlim=(0, 1), xlabel="probability of the true class" if true_class
               else "predicted probability of the positive class", ylabel="share of the class",
               title="Score distributions per class")
        _legend(ax, 2)

    return _render(draw)


def threshold_marker(curve: dict[str, Any] | None) -> tuple[float, str] | None:
    """Where the threshold plot draws its marker and what it calls it, or None."""
    if not isinstance(curve, dict):
        return None
    value = curve.get("threshold")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    kind = "tuned threshold" if curve.get("tuned") else "default threshold"
    return float(value), f"{kind} {float(value):.2f}"


def threshold_plot(curve: dict[str, Any] | None) -> str | None:
    """Precision, recall and F1 against the decision threshold, the model's threshold marked
    (no marker when its decisions are no single cut of the score)."""
    if not isinstance(curve, dict):
        return None
    x = _numbers(curve.get("thresholds"))
    lines = [(name, _numbers(curve.get(name))) for name in ("precision", "recall", "f1")]
    marker = threshold_marker(curve)
    if x is None or any(y is None or len(y) != len(x) for _, y in lines):
        return None

    def draw(fig: Any, ax: Any) -> None:
        for name, y in lines:
            ax.plot(x, y, lw=1.6, label="F1" if name == "f1" else name)
        if marker is not None:
            ax.axvline(marker[0], color="black", ls="--", lw=1, label=marker[1])
        ax.set(xlim=(0, 1), ylim=(0, 1.02), xlabel="decision threshold (probability of the "
               "positive class)", ylabel="value", title="Precision and recall by threshold")
        _legend(ax, 4)

    return _render(draw)


def confusion_plot(confusion: dict[str, Any] | None) -> str | None:
    """A heatmap coloured by row share (recall per true class), annotated with counts."""
    if not isinstance(confusion, dict):
        return None
    labels = confusion.get("labels")
    matrix = confusion.get("matrix")
    if not isinstance(labels, list) or not isinstance(matrix, list) or not labels:
        return None
    rows = [_numbers(r) for r in matrix]
    if len(rows) != len(labels) or any(r is None or len(r) != len(labels) for r in rows):
        return None
    counts = [[int(v) for v in r or []] for r in rows]
    shares = [[v / max(sum(r), 1) for v in r] for r in counts]
    names = [str(label) for label in labels]
    n = len(names)
    side = min(3.2 + 0.25 * n, 9.0)

    def draw(fig: Any, ax: Any) -> None:
        image = ax.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
        ax.grid(False)
        tilt = n > 3
        ax.set_xticks(range(n), names, rotation=45 if tilt else 0, ha="right" if tilt else "center")
        ax.set_yticks(range(n), names)
        ax.set(xlabel="predicted", ylabel="true", title="Confusion matrix")
        if n <= MAX_ANNOTATED_LABELS:
            for i in range(n):
                for j in range(n):
                    ax.text(j, i, f"{counts[i][j]:,}", ha="center", va="center", fontsize=8,
                            color="white" if shares[i][j] > 0.5 else "black")
        fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of true class")

    return _render(draw, size=(side + 1.0, side))


def _scatter_points(curve: Any) -> tuple[list[float], list[float]] | None:
    points = _xy(curve)
    if points is None:
        return None
    kept = [(a, p) for a, p in zip(*points, strict=False) if math.isfinite(a) and math.isfinite(p)]
    if not kept:
        return None
    return [a for a, _ in kept], [p for _, p in kept]


def predicted_vs_actual_plot(curve: dict[str, Any] | None) -> str | None:
    """Predicted against actual values (x = actual) with the identity line."""
    points = _scatter_points(curve)
    if points is None:
        return None
    actual, predicted = points

    def draw(fig: Any, ax: Any) -> None:
        low = min(min(actual), min(predicted))
        high = max(max(actual), max(predicted))
        ax.scatter(actual, predicted, s=8, alpha=0.5, lw=0)
        ax.plot([low, high], [low, high], ls="--", color="grey", lw=1, label="perfect")
        ax.set(xlabel="actual", ylabel="predicted", title="Predicted vs actual")
        _legend(ax, 2)

    return _render(draw)


def residuals_plot(curve: dict[str, Any] | None) -> str | None:
    """Residuals (predicted - actual) against the prediction, and their histogram."""
    points = _scatter_points(curve)
    if points is None:
        return None
    actual, predicted = points
    residual = [p - a for a, p in zip(actual, predicted, strict=False)]

    def draw(fig: Any, axes: Any) -> None:
        ax, hist = axes
        ax.scatter(predicted, residual, s=8, alpha=0.5, lw=0)
        ax.axhline(0.0, ls="--", color="grey", lw=1)
        ax.set(xlabel="predicted", ylabel="residual (predicted - actual)", title="Residuals")
        hist.hist(residual, bins=20, orientation="horizontal", color="tab:orange", alpha=0.8)
        hist.axhline(0.0, ls="--", color="grey", lw=1)
        hist.set(xlabel="rows", title="Distribution")

    return _render(draw, size=(5.6, 3.5), width_ratios=(3.0, 1.0))


def learning_curve_plot(curve: dict[str, Any] | None) -> str | None:
    """Train and validation values per step (epoch, boosting round or training rows)."""
    if not isinstance(curve, dict):
        return None
    steps = _numbers(curve.get("steps"))
    train = _numbers(curve.get("train"))
    valid = _numbers(curve.get("validation"))
    if steps is None or train is None or valid is None:
        return None
    if not len(steps) == len(train) == len(valid):
        return None
    metric = str(curve.get("metric") or "metric")
    xlabel = _STEP_LABELS.get(str(curve.get("kind")), "step")
    marker = "o" if len(steps) <= 30 else None

    def draw(fig: Any, ax: Any) -> None:
        ax.plot(steps, train, marker=marker, ms=3, lw=1.6, label="train")
        ax.plot(steps, valid, marker=marker, ms=3, lw=1.6, label="validation")
        ax.set(xlabel=xlabel, ylabel=metric, title=f"Learning curve ({metric})")
        _legend(ax, 2)

    return _render(draw)


def search_plot(
    trials: Sequence[dict[str, Any]] | None, metric: str | None, higher_is_better: bool
) -> str | None:
    """Each trial's value by trial number, coloured by family, with the running best."""
    if not isinstance(trials, (list, tuple)):
        return None
    points: list[tuple[float, float | None, str]] = []
    for trial in trials:
        if not isinstance(trial, dict) or not isinstance(trial.get("number"), (int, float)):
            continue
        value = trial.get("value")
        finite: float | None = None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            finite = float(value) if math.isfinite(value) else None
        points.append((float(trial["number"]), finite, str(trial.get("family", ""))))
    if not any(v is not None for _, v, _ in points):
        return None
    points.sort(key=lambda p: p[0])
    best = running_best([v for _, v, _ in points], higher_is_better)
    families = list(dict.fromkeys(f for _, v, f in points if v is not None))

    def draw(fig: Any, ax: Any) -> None:
        for family in families:
            chosen = [(n, v) for n, v, f in points if f == family and v is not None]
            ax.scatter([n for n, _ in chosen], [v for _, v in chosen], s=14, label=family or None)
        steps = [(n, b) for (n, _, _), b in zip(points, best, strict=False) if b is not None]
        ax.step([n for n, _ in steps], [b for _, b in steps], where="post", color="black",
                lw=1.2, label="running best")
        from matplotlib.ticker import MaxNLocator

        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        name = metric or "value"
        ax.set(xlabel="trial", ylabel=name,
               title=f"Search history ({'higher' if higher_is_better else 'lower'} is better)")
        _legend(ax, len(families) + 1)

    return _render(draw)


#: columns drawn in the importance and beeswarm plots
MAX_FEATURES = 15


def importance_plot(explanation: dict[str, Any] | None) -> str | None:
    """Global importance: one horizontal bar per input column, the most important on top."""
    features = (explanation or {}).get("features")
    if not isinstance(features, list) or not features:
        return None
    try:
        shown = sorted(features, key=lambda f: int(f["rank"]))[:MAX_FEATURES]
        names = [str(f["feature"]) for f in shown][::-1]
        values = [float(f["importance"]) for f in shown][::-1]
    except (KeyError, TypeError, ValueError):
        return None
    label = ("mean loss increase when shuffled"
             if explanation and explanation.get("output") == "loss_increase"
             else f"mean |contribution| ({str((explanation or {}).get('output', '')).replace('_', ' ')})")

    def draw(fig: Any, ax: Any) -> None:
        ax.barh(range(len(names)), values, color="#3b6ea8")
        ax.set_yticks(range(len(names)), names)
        ax.set(xlabel=label, title="What the model leans on")
        ax.grid(axis="y", visible=False)

    return _render(draw, size=(SIZE[0], max(2.2, 0.9 + 0.24 * len(names))))


def beeswarm_plot(explanation: dict[str, Any] | None) -> str | None:
    """Per-row contributions of the sampled rows, one line of points per column (most important
    on top); a point's colour is its value's rank within the column (numbers only)."""
    data = explanation or {}
    names = data.get("sample_features") or []
    rows = data.get("sample_attributions") or []
    values = data.get("sample_values") or []
    features = data.get("features") or []
    if not names or not rows or not features:
        return None
    try:
        order = [str(f["feature"]) for f in sorted(features, key=lambda f: int(f["rank"]))]
        position = {name: i for i, name in enumerate(names)}
        shown = [n for n in order if n in position][:MAX_FEATURES][::-1]
        points = [[float(row[position[n]]) for row in rows] for n in shown]
    except (KeyError, TypeError, ValueError, IndexError):
        return None

    def colour(name: str) -> list[float] | None:
        column = [row[position[name]] if position[name] < len(row) else None for row in values]
        numbers = [v for v in column if isinstance(v, (int, float)) and not isinstance(v, bool)
                   and math.isfinite(v)]
        if len(numbers) < 2 or len(numbers) != len(column):
            return None
        ranked = sorted(numbers)
        return [ranked.index(v) / (len(ranked) - 1) for v in numbers]

    def draw(fig: Any, ax: Any) -> None:
        import numpy as np

        rng = np.random.default_rng(0)
        for i, (name, xs) in enumerate(zip(shown, points)):
            jitter = i + rng.uniform(-0.25, 0.25, len(xs))
            shades = colour(name)
            ax.scatter(xs, jitter, s=7, alpha=0.7, c=shades if shades is not None else "grey",
                       cmap="coolwarm", vmin=0, vmax=1, linewidths=0)
        ax.axvline(0, color="grey", lw=0.8)
        ax.set_yticks(range(len(shown)), shown)
        ax.set(xlabel=f"contribution ({str(data.get('output', '')).replace('_', ' ')}); "
               "colour: low to high value", title="Per-row contributions")
        ax.grid(axis="y", visible=False)

    return _render(draw, size=(SIZE[0], max(2.2, 0.9 + 0.28 * len(shown))))


def dependence_plot(explanation: dict[str, Any] | None, feature: str) -> str | None:
    """One column's contribution against its value over the sampled rows (numbers on a
    scale, categories as levels); None when the column or the sample is missing."""
    data = explanation or {}
    names = list(data.get("sample_features") or [])
    rows = data.get("sample_attributions") or []
    values = data.get("sample_values") or []
    if feature not in names or not rows or len(values) != len(rows):
        return None
    j = names.index(feature)
    try:
        pairs = [(row[j], float(attr[j])) for row, attr in zip(values, rows) if row[j] is not None]
    except (TypeError, ValueError, IndexError):
        return None
    if len(pairs) < 2:
        return None
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v, _ in pairs)
    levels = sorted({str(v) for v, _ in pairs}) if not numeric else []
    if not numeric and len(levels) > 30:
        return None

    def draw(fig: Any, ax: Any) -> None:
        if numeric:
            ax.scatter([float(v) for v, _ in pairs], [c for _, c in pairs], s=9, alpha=0.7,
                       color="#3b6ea8", linewidths=0)
        else:
            position = {level: i for i, level in enumerate(levels)}
            ax.scatter([position[str(v)] for v, _ in pairs], [c for _, c in pairs], s=9,
                       alpha=0.7, color="#3b6ea8", linewidths=0)
            ax.set_xticks(range(len(levels)), levels, rotation=45 if len(levels) > 5 else 0)
        ax.axhline(0, color="grey", lw=0.8)
        ax.set(xlabel=feature, ylabel=f"contribution ({str(data.get('output', '')).replace('_', ' ')})",
               title=f"Dependence: {feature}")

    return _render(draw)
