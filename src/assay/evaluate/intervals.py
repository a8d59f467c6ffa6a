"""Bootstrap confidence intervals, and the paired bootstrap that compares two models.

Resampling is vectorised: a matrix of row indices (one resample per row) is turned
into per-resample confusion counts, weighted sums and rank statistics, so the
metrics of hundreds of resamples cost a few numpy passes instead of hundreds of
scikit-learn calls. Each vectorised metric equals scikit-learn's on the resampled
rows (the tests check this row by row).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from assay.config.metrics import CLASSIFICATION_TASKS, HIGHER_IS_BETTER
from assay.errors import DataError
from assay.evaluate.inputs import as_array, as_proba, check_metrics, check_task, resolve_classes
from assay.evaluate.metrics import PROBA_METRICS, metric_value

__all__ = [
    "PairedComparison",
    "bootstrap_intervals",
    "paired_bootstrap",
    "resample_index",
    "resampled_metrics",
]

#: resampled cells (resamples x rows) held in memory at once
_CHUNK_CELLS = 2_000_000


@dataclass(frozen=True)
class PairedComparison:
    """Candidate B against champion A on the same rows.

    ``delta`` is oriented so that **a positive delta means B is better**, whatever the
    metric's direction (for a loss it is ``loss_A - loss_B``). ``p_value_b_not_better``
    is the bootstrap share of resamples in which B is not better (ties count half),
    so identical models give 0.5 and a clearly better B gives a value near 0.
    """

    metric: str
    value_a: float
    value_b: float
    delta: float
    ci_low: float
    ci_high: float
    p_value_b_not_better: float
    n_boot: int
    higher_is_better: bool

    @property
    def b_better(self) -> bool:
        """True when the whole interval of the delta lies above zero."""
        return self.ci_low > 0

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable fields."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PairedComparison:
        """Inverse of :meth:`to_dict`."""
        return cls(**data)


def resample_index(n_rows: int, n_boot: int, seed: int) -> np.ndarray:
    """An (n_boot, n_rows) matrix of row indices drawn with replacement."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, n_rows, size=(n_boot, n_rows), dtype=np.int64)


def resampled_metrics(
    task: str,
    y_true: Any,
    y_pred: Any,
    proba: Any,
    classes: Sequence[Any] | None,
    metrics: Sequence[str] | None,
    index: np.ndarray,
) -> dict[str, np.ndarray]:
    """Each metric on each resample: row ``b`` of ``index`` lists the rows of resample ``b``.

    Returns metric -> array of length ``index.shape[0]``; NaN where the metric is
    undefined on that resample (e.g. ROC AUC when it holds one class only).
    """
    check_task(task)
    names = check_metrics(task, metrics)
    data = _Prepared.build(task, y_true, y_pred, proba, classes)
    index = np.asarray(index, dtype=np.int64)
    if index.ndim != 2 or index.shape[1] == 0:
        raise DataError(
            "the resample index must be a non-empty 2-D matrix",
            column="index",
            expected="shape (n_boot, n_rows)",
            received=f"shape {index.shape}",
            fix="Build it with resample_index(n_rows, n_boot, seed).",
        )
    out: dict[str, list[np.ndarray]] = {name: [] for name in names}
    step = max(1, _CHUNK_CELLS // index.shape[1])
    for start in range(0, index.shape[0], step):
        chunk = _Chunk(data, index[start : start + step])
        for name in names:
            out[name].append(chunk.metric(name))
    return {name: np.concatenate(parts) for name, parts in out.items()}


def bootstrap_intervals(
    task: str,
    y_true: Any,
    y_pred: Any,
    proba: Any = None,
    classes: Sequence[Any] | None = None,
    metrics: Sequence[str] | None = None,
    n_boot: int = 200,
    seed: int = 0,
    confidence: float = 0.95,
) -> dict[str, tuple[float, float]]:
    """Percentile bootstrap intervals of every metric (default 95 %).

    A metric with no finite value on any resample (e.g. a probability metric without
    probabilities) is left out of the result.
    """
    n = len(as_array(y_true, "y_true"))
    if n == 0:
        return {}
    samples = resampled_metrics(
        task, y_true, y_pred, proba, classes, metrics, resample_index(n, n_boot, seed)
    )
    out: dict[str, tuple[float, float]] = {}
    for name, values in samples.items():
        bounds = _percentile_interval(values, confidence)
        if bounds is not None:
            out[name] = bounds
    return out


def paired_bootstrap(
    task: str,
    metric: str,
    y_true: Any,
    pred_a: Any,
    proba_a: Any,
    pred_b: Any,
    proba_b: Any,
    classes: Sequence[Any] | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> PairedComparison:
    """Compare candidate B with champion A on the same rows and the same resamples.

    Raises:
        DataError: when the metric cannot be computed for A or B on these rows.
    """
    check_task(task)
    check_metrics(task, [metric], key="metric")
    yt = as_array(y_true, "y_true")
    value_a = metric_value(task, metric, yt, pred_a, proba_a, classes)
    value_b = metric_value(task, metric, yt, pred_b, proba_b, classes)
    if value_a is None or value_b is None:
        needs = " and probabilities for both models" if metric in PROBA_METRICS else ""
        raise DataError(
            f"'{metric}' cannot be computed for both models on these rows",
            column=metric,
            expected=f"a defined {metric} for A and B",
            received=f"A={value_a}, B={value_b}",
            fix=f"Compare on rows where the metric is defined{needs}, or pick another metric.",
        )
    sign = 1.0 if HIGHER_IS_BETTER[metric] else -1.0
    index = resample_index(len(yt), n_boot, seed)
    a = resampled_metrics(task, yt, pred_a, proba_a, classes, [metric], index)[metric]
    b = resampled_metrics(task, yt, pred_b, proba_b, classes, [metric], index)[metric]
    deltas = sign * (b - a)
    deltas = deltas[np.isfinite(deltas)]
    delta = sign * (value_b - value_a)
    if len(deltas) == 0:
        low = high = delta
        p_value = 0.5
    else:
        low, high = _percentile_interval(deltas, confidence) or (delta, delta)
        p_value = float((np.sum(deltas < 0) + 0.5 * np.sum(deltas == 0)) / len(deltas))
    return PairedComparison(
        metric=metric,
        value_a=float(value_a),
        value_b=float(value_b),
        delta=float(delta),
        ci_low=float(low),
        ci_high=float(high),
        p_value_b_not_better=p_value,
        n_boot=int(n_boot),
        higher_is_better=HIGHER_IS_BETTER[metric],
    )


def _percentile_interval(values: np.ndarray, confidence: float) -> tuple[float, float] | None:
    finite = values[np.isfinite(values)]
    if len(finite) == 0:
        return None
    tail = (1.0 - confidence) / 2.0 * 100.0
    low, high = np.percentile(finite, [tail, 100.0 - tail])
    return float(low), float(high)


@dataclass(frozen=True)
class _Prepared:
    """Per-row quantities computed once, before resampling."""

    task: str
    n: int
    n_labels: int
    n_classes: int
    true_code: np.ndarray
    pred_code: np.ndarray
    extra_true: bool
    proba: np.ndarray | None
    row_log_loss: np.ndarray | None
    y: np.ndarray | None
    err: np.ndarray | None
    has_zero: bool

    @classmethod
    def build(
        cls, task: str, y_true: Any, y_pred: Any, proba: Any, classes: Sequence[Any] | None
    ) -> _Prepared:
        yt = as_array(y_true, "y_true")
        yp = as_array(y_pred, "y_pred", len(yt))
        if task not in CLASSIFICATION_TASKS:
            y = yt.astype(float)
            err = yp.astype(float) - y
            empty = np.zeros(0, dtype=np.int64)
            return cls(
                task, len(yt), 0, 0, empty, empty, False, None, None, y, err, bool(np.any(y == 0))
            )
        labels = resolve_classes(task, yt, yp, classes)
        # labels outside `classes` get codes after them, as scikit-learn's label union would
        known = set(labels)
        extras = [v for v in dict.fromkeys([*yt.tolist(), *yp.tolist()]) if v not in known]
        lookup = {v: i for i, v in enumerate([*labels, *extras])}
        true_code = np.fromiter((lookup[v] for v in yt.tolist()), dtype=np.int64, count=len(yt))
        pred_code = np.fromiter((lookup[v] for v in yp.tolist()), dtype=np.int64, count=len(yp))
        pr = as_proba(proba, len(yt), len(labels))
        row_ll = None
        extra_true = bool(np.any(true_code >= len(labels)))
        if pr is not None and not extra_true:
            eps = np.finfo(pr.dtype).eps
            row_ll = -np.log(np.clip(pr[np.arange(len(yt)), true_code], eps, 1 - eps))
        return cls(
            task,
            len(yt),
            len(lookup),
            len(labels),
            true_code,
            pred_code,
            extra_true,
            pr,
            row_ll,
            None,
            None,
            False,
        )


class _Chunk:
    """The resamples of one block of the index matrix."""

    def __init__(self, data: _Prepared, index: np.ndarray) -> None:
        self.d = data
        self.index = index
        self.b = index.shape[0]
        self._confusion: np.ndarray | None = None
        self._weights: np.ndarray | None = None

    def metric(self, name: str) -> np.ndarray:
        fn: Callable[[], np.ndarray] = getattr(self, "_m_" + name.replace("-", "_"))
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.asarray(fn(), dtype=float)

    # --- shared statistics -------------------------------------------------------------
    @property
    def confusion(self) -> np.ndarray:
        """(b, L, L) counts: [resample, true label, predicted label]."""
        if self._confusion is None:
            size = self.d.n_labels**2
            code = self.d.true_code * self.d.n_labels + self.d.pred_code
            flat = (np.arange(self.b)[:, None] * size + code[self.index]).ravel()
            counts = np.bincount(flat, minlength=self.b * size)
            self._confusion = counts.reshape(self.b, self.d.n_labels, self.d.n_labels).astype(float)
        return self._confusion

    @property
    def weights(self) -> np.ndarray:
        """(b, n) multiplicity of each row in each resample."""
        if self._weights is None:
            flat = (np.arange(self.b)[:, None] * self.d.n + self.index).ravel()
            counts = np.bincount(flat, minlength=self.b * self.d.n)
            self._weights = counts.reshape(self.b, self.d.n).astype(float)
        return self._weights

    def _per_class(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        c = self.confusion
        tp = np.diagonal(c, axis1=1, axis2=2)
        return tp, c.sum(axis=2), c.sum(axis=1)  # tp, support (true), predicted

    def _rowmean(self, values: np.ndarray) -> np.ndarray:
        return np.asarray(values[self.index].mean(axis=1))

    def _auc(self, score: np.ndarray, positive: np.ndarray) -> np.ndarray:
        order = np.argsort(score, kind="mergesort")
        s = score[order]
        starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])
        w = self.weights[:, order]
        wpos = np.add.reduceat(w * positive[order], starts, axis=1)
        wneg = np.add.reduceat(w * ~positive[order], starts, axis=1)
        n_pos, n_neg = wpos.sum(axis=1), wneg.sum(axis=1)
        below = np.cumsum(wneg, axis=1) - wneg
        auc = (wpos * (below + 0.5 * wneg)).sum(axis=1) / (n_pos * n_neg)
        return np.where((n_pos > 0) & (n_neg > 0), auc, np.nan)

    def _average_precision(self, score: np.ndarray, positive: np.ndarray) -> np.ndarray:
        order = np.argsort(score, kind="mergesort")
        s = score[order]
        starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])
        w = self.weights[:, order]
        wpos = np.add.reduceat(w * positive[order], starts, axis=1)
        wneg = np.add.reduceat(w * ~positive[order], starts, axis=1)
        n_pos = wpos.sum(axis=1, keepdims=True)
        tp = n_pos - (np.cumsum(wpos, axis=1) - wpos)
        fp = wneg.sum(axis=1, keepdims=True) - (np.cumsum(wneg, axis=1) - wneg)
        precision = np.where(tp + fp > 0, tp / (tp + fp), 0.0)
        ap = (wpos * precision).sum(axis=1) / n_pos[:, 0]
        return np.where(n_pos[:, 0] > 0, ap, np.nan)

    def _positive(self) -> np.ndarray:
        return np.asarray(self.d.true_code == 1)

    def _nan(self) -> np.ndarray:
        return np.full(self.b, np.nan)

    # --- classification -------------------------------------------------------------------
    def _m_accuracy(self) -> np.ndarray:
        c = self.confusion
        return np.asarray(np.trace(c, axis1=1, axis2=2) / c.sum(axis=(1, 2)))

    def _m_balanced_accuracy(self) -> np.ndarray:
        tp, support, _ = self._per_class()
        present = support > 0
        recall = np.where(present, tp / np.where(present, support, 1), 0.0)
        return np.asarray(recall.sum(axis=1) / present.sum(axis=1))

    def _binary_counts(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        tp, support, predicted = self._per_class()
        return tp[:, 1], predicted[:, 1] - tp[:, 1], support[:, 1] - tp[:, 1]

    def _m_precision(self) -> np.ndarray:
        tp, fp, _ = self._binary_counts()
        return np.where(tp + fp > 0, tp / (tp + fp), 0.0)

    def _m_recall(self) -> np.ndarray:
        tp, _, fn = self._binary_counts()
        return np.where(tp + fn > 0, tp / (tp + fn), 0.0)

    def _m_f1(self) -> np.ndarray:
        tp, fp, fn = self._binary_counts()
        denom = 2 * tp + fp + fn
        return np.where(denom > 0, 2 * tp / denom, 0.0)

    def _macro(self, per_class: np.ndarray) -> np.ndarray:
        _, support, predicted = self._per_class()
        present = (support > 0) | (predicted > 0)
        return np.asarray(np.where(present, per_class, 0.0).sum(axis=1) / present.sum(axis=1))

    def _class_scores(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        tp, support, predicted = self._per_class()
        precision = np.where(predicted > 0, tp / np.where(predicted > 0, predicted, 1), 0.0)
        recall = np.where(support > 0, tp / np.where(support > 0, support, 1), 0.0)
        denom = support + predicted
        f1 = np.where(denom > 0, 2 * tp / np.where(denom > 0, denom, 1), 0.0)
        return precision, recall, f1, support

    def _m_precision_macro(self) -> np.ndarray:
        return self._macro(self._class_scores()[0])

    def _m_recall_macro(self) -> np.ndarray:
        return self._macro(self._class_scores()[1])

    def _m_f1_macro(self) -> np.ndarray:
        return self._macro(self._class_scores()[2])

    def _m_f1_weighted(self) -> np.ndarray:
        _, _, f1, support = self._class_scores()
        return np.asarray((f1 * support).sum(axis=1) / support.sum(axis=1))

    def _m_roc_auc(self) -> np.ndarray:
        if self.d.proba is None:
            return self._nan()
        return self._auc(self.d.proba[:, 1], self._positive())

    def _m_pr_auc(self) -> np.ndarray:
        if self.d.proba is None:
            return self._nan()
        return self._average_precision(self.d.proba[:, 1], self._positive())

    def _m_roc_auc_ovr(self) -> np.ndarray:
        if self.d.proba is None or self.d.extra_true:
            return self._nan()
        if self.d.n_classes == 2:
            return self._m_roc_auc()
        per_class = [
            self._auc(self.d.proba[:, k], self.d.true_code == k) for k in range(self.d.n_classes)
        ]
        # one class without positives (or negatives) makes scikit-learn's OvR average undefined
        return np.asarray(np.mean(np.vstack(per_class), axis=0))

    def _m_log_loss(self) -> np.ndarray:
        if self.d.row_log_loss is None:
            return self._nan()
        return self._rowmean(self.d.row_log_loss)

    def _m_brier(self) -> np.ndarray:
        if self.d.proba is None:
            return self._nan()
        return self._rowmean((self.d.proba[:, 1] - self._positive()) ** 2)

    # --- regression -------------------------------------------------------------------------
    def _err(self) -> np.ndarray:
        return self.d.err if self.d.err is not None else np.full(self.d.n, np.nan)

    def _m_mae(self) -> np.ndarray:
        return self._rowmean(np.abs(self._err()))

    def _m_rmse(self) -> np.ndarray:
        return np.asarray(np.sqrt(self._rowmean(self._err() ** 2)))

    def _m_median_ae(self) -> np.ndarray:
        return np.asarray(np.median(np.abs(self._err())[self.index], axis=1))

    def _m_mape(self) -> np.ndarray:
        if self.d.has_zero or self.d.y is None:
            return self._nan()
        return self._rowmean(np.abs(self._err()) / np.abs(self.d.y))

    def _m_r2(self) -> np.ndarray:
        if self.d.y is None or self.d.n < 2:
            return self._nan()
        y = self.d.y[self.index]
        sst = ((y - y.mean(axis=1, keepdims=True)) ** 2).sum(axis=1)
        sse = (self._err()[self.index] ** 2).sum(axis=1)
        constant = np.where(sse == 0, 1.0, 0.0)
        return np.where(sst > 0, 1.0 - sse / np.where(sst > 0, sst, 1.0), constant)
