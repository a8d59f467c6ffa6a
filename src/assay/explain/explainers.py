"""Per-row attributions of a fitted model, exact where the model's form allows it.

Call order: :func:`explainer_for` picks the explainer of a fitted model (a
``ModelPipeline``, inside a ``ThresholdedClassifier`` or not), then
``explainer.attributions(X)`` returns :class:`Attributions` on the raw input columns.

- :class:`TreeExplainer` (LightGBM): exact tree SHAP values from LightGBM itself
  (``pred_contrib``), in the booster's raw output: log-odds (binary), per-class raw
  scores (multiclass), the prediction (regression). No background is needed: the
  expectation is over the training rows each tree saw.
- :class:`LinearExplainer` (logistic regression, ridge, Huber): coefficient x (value -
  mean) on the preprocessed matrix, with the mean over background rows, summed back to
  the raw columns; in the decision function's space (log-odds / raw scores / prediction).

A model with neither form has no per-row explainer (:class:`NoExplainer` says so); its
global importance is measured by permutation (:mod:`assay.explain.summary`).
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import lightgbm as lgb
import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.linear_model import HuberRegressor, LinearRegression, LogisticRegression, Ridge
from sklearn.pipeline import Pipeline

from assay.errors import AssayError
from assay.explain.columns import column_map, group_matrix
from assay.explain.result import Method, OutputSpace
from assay.train.objective import ThresholdedClassifier

__all__ = [
    "Attributions",
    "BaseExplainer",
    "LinearExplainer",
    "NoExplainer",
    "TreeExplainer",
    "explainer_for",
    "split_model",
]

#: batches up to this many rows are explained on one thread
SMALL_BATCH = 256
_LINEAR = (LogisticRegression, Ridge, HuberRegressor, LinearRegression)


class NoExplainer(AssayError):
    """The model has no per-row explainer (its family is neither a tree booster nor linear)."""


@dataclass(frozen=True)
class Attributions:
    """Per-row, per-column attributions and the base value they start from.

    Attributes:
        values: shape (rows, columns, outputs); ``outputs`` is 1 for a binary classifier
            (the log-odds of its second class) or a regressor, the number of classes for a
            multiclass model (each class's raw score).
        base: shape (outputs,): the expected output.
        output: the space ``base + values.sum(axis=1)`` is in.
        features: the raw input columns, in ``values``' order.
        classes: the classes of the outputs (multiclass: all; binary: the second), else ().
    """

    values: np.ndarray
    base: np.ndarray
    output: OutputSpace
    features: tuple[str, ...]
    classes: tuple[Any, ...] = ()

    @property
    def totals(self) -> np.ndarray:
        """The model output per row and output: ``base + values.sum(axis=1)``, (rows, outputs)."""
        return np.asarray(self.base[None, :] + self.values.sum(axis=1))


def split_model(model: Any) -> tuple[Any, Any]:
    """``(preprocessing or None, final estimator)`` of a fitted model built by a family."""
    inner = model.estimator_ if isinstance(model, ThresholdedClassifier) else model
    if isinstance(inner, Pipeline):
        if len(inner.steps) == 1:
            return None, inner.steps[-1][1]
        head = inner.steps[:-1]
        pre = head[0][1] if len(head) == 1 else Pipeline(head)
        return pre, inner.steps[-1][1]
    return None, inner


class BaseExplainer(abc.ABC):
    """Attributions of one fitted model on its raw input columns.

    Subclasses set ``method`` and implement :meth:`from_matrix`.
    """

    method: ClassVar[Method]

    def __init__(self, model: Any, features: Sequence[str]) -> None:
        self.model = model
        self.features = tuple(str(f) for f in features)
        self.preprocess, self.final = split_model(model)
        self._owners: np.ndarray | None = None

    def attributions(self, X: pd.DataFrame) -> Attributions:
        """The attributions of the rows of ``X`` (its ``features`` columns)."""
        return self.from_matrix(self._matrix(X))

    @abc.abstractmethod
    def from_matrix(self, Xt: Any) -> Attributions:
        """The attributions of rows already preprocessed as the model's pipeline does (a
        compiled fast path's matrix, say)."""

    def _matrix(self, X: pd.DataFrame) -> Any:
        rows = X[list(self.features)]
        return rows if self.preprocess is None else self.preprocess.transform(rows)

    def _groups(self, width: int) -> np.ndarray:
        """The (preprocessed x raw) 0/1 matrix, traced once per explainer."""
        if self._owners is None:
            if self.preprocess is None:
                self._owners = np.arange(len(self.features))
            else:
                self._owners = column_map(self.preprocess, self.features, width)
        return group_matrix(self._owners, len(self.features))

    def _classes(self) -> tuple[Any, ...]:
        return tuple(getattr(self.model, "classes_", getattr(self.final, "classes_", ())))


class TreeExplainer(BaseExplainer):
    """Exact tree SHAP values of a LightGBM model (LightGBM's own ``pred_contrib``)."""

    method = "tree_shap"

    def from_matrix(self, Xt: Any) -> Attributions:
        """Contributions in the booster's raw output, summed back to the raw columns."""
        booster = self.final.booster_
        if sp.issparse(Xt):
            Xt = sp.csr_matrix(Xt)
        # one thread for small batches: OpenMP's start-up costs more than a few rows' trees
        # (tens of milliseconds on a busy machine against under one for a row)
        threads = {"num_threads": 1} if Xt.shape[0] <= SMALL_BATCH else {}
        raw = booster.predict(Xt, pred_contrib=True, **threads)
        if isinstance(raw, list):  # multiclass on sparse input: one sparse matrix per class
            raw = np.hstack([np.asarray(part.todense()) for part in raw])
        elif sp.issparse(raw):
            raw = np.asarray(raw.todense())
        raw = np.asarray(raw, dtype=float)
        classes = self._classes()
        k = len(classes) if len(classes) > 2 else 1
        width = raw.shape[1] // k - 1
        blocks = raw.reshape(len(raw), k, width + 1)  # LightGBM lays the classes out in blocks
        groups = self._groups(width)
        values = np.einsum("nkp,pf->nfk", blocks[:, :, :width], groups)
        base = blocks[0, :, width] if len(raw) else np.zeros(k)
        if k > 1:
            return Attributions(values, base, "raw_score", self.features, classes)
        output: OutputSpace = "log_odds" if len(classes) == 2 else "prediction"
        return Attributions(values, base, output, self.features, classes[1:] if classes else ())


class LinearExplainer(BaseExplainer):
    """Exact linear attributions: coefficient x (preprocessed value - background mean).

    Args:
        model: the fitted model.
        features: its raw input columns.
        background: rows whose preprocessed mean is the reference (the training rows).
        offsets: instead of ``background``, the stored per-output, per-column mean terms
            (:attr:`~assay.explain.result.Explanation.offsets`).
    """

    method = "linear"

    def __init__(
        self,
        model: Any,
        features: Sequence[str],
        *,
        background: pd.DataFrame | None = None,
        offsets: np.ndarray | None = None,
    ) -> None:
        super().__init__(model, features)
        if (background is None) == (offsets is None):
            raise ValueError("pass exactly one of background and offsets")
        coef = np.asarray(self.final.coef_, dtype=float)
        self.coef = coef.reshape(1, -1) if coef.ndim == 1 else coef
        self.intercept = np.atleast_1d(np.asarray(self.final.intercept_, dtype=float))
        self._weights: list[np.ndarray] | None = None
        if background is not None:
            Xb = self._matrix(background)
            mean = np.asarray(Xb.mean(axis=0)).ravel()
            self.offsets = np.vstack([mean @ w for w in self.weights(len(mean))])
        else:
            self.offsets = np.atleast_2d(np.asarray(offsets, dtype=float))

    def weights(self, width: int) -> list[np.ndarray]:
        """Per output, the (preprocessed x raw) matrix: the coefficient where a preprocessed
        column comes from a raw one."""
        if self._weights is None:
            groups = self._groups(width)
            self._weights = [row[:, None] * groups for row in self.coef]
        return self._weights

    @property
    def base(self) -> np.ndarray:
        """The expected output: intercept + coefficient . background mean, per output."""
        return np.asarray(self.intercept + self.offsets.sum(axis=1))

    def from_matrix(self, Xt: Any) -> Attributions:
        """``coef x (x - mean)`` per preprocessed column, summed to the raw columns."""
        weights = self.weights(Xt.shape[1])
        if len(weights) != len(self.offsets):
            raise AssayError("the stored linear offsets do not match the model's outputs",
                             where="explanation", expected=f"{len(weights)} output(s)",
                             received=f"{len(self.offsets)}",
                             fix="Re-register the version to recompute its explanation.")
        values = np.stack(
            [np.asarray(Xt @ w) - off[None, :] for w, off in zip(weights, self.offsets)], axis=2
        )
        classes = self._classes()
        if len(weights) > 1:
            return Attributions(values, self.base, "raw_score", self.features, classes)
        output: OutputSpace = "log_odds" if len(classes) == 2 else "prediction"
        return Attributions(values, self.base, output, self.features, classes[1:] if classes else ())


def explainer_for(
    model: Any,
    features: Sequence[str],
    *,
    background: pd.DataFrame | None = None,
    offsets: np.ndarray | None = None,
    family: str = "",
) -> BaseExplainer:
    """The per-row explainer of ``model``; :class:`NoExplainer` when it has none.

    A linear model needs ``background`` rows (or the stored ``offsets``) for its mean.
    """
    _, final = split_model(model)
    if isinstance(final, lgb.LGBMModel):
        return TreeExplainer(model, features)
    if isinstance(final, _LINEAR):
        if background is None and offsets is None:
            raise NoExplainer(
                "the linear model's explanation has no background mean",
                where="explanation",
                fix="Re-register the version: its explanation is computed at registration.",
            )
        return LinearExplainer(model, features, background=background, offsets=offsets)
    name = family or type(final).__name__
    raise NoExplainer(
        f"the model family '{name}' has no per-row explainer",
        where="explanation",
        expected="a LightGBM or linear model (lightgbm, linear, tfidf_linear)",
        received=type(final).__name__,
        fix="Its global importance (permutation) is in the report; for per-row "
        "contributions, serve a lightgbm or linear version.",
    )
