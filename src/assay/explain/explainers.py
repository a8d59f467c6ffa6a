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
- :class:`~assay.explain.forest.ForestExplainer` (extra trees, random forests): exact tree
  SHAP values from the ``shap`` package (``assay[explain]``), in the forest's probabilities
  (or prediction).

A model with neither form has no per-row explainer (:class:`NoExplainer` says so); its
global importance is measured by permutation (:mod:`assay.explain.summary`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import HuberRegressor, LinearRegression, LogisticRegression, Ridge

from assay.errors import AssayError, MissingDependencyError
from assay.explain.base import Attributions, BaseExplainer, NoExplainer, split_model
from assay.explain.result import OutputSpace

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
_FORESTS = (ExtraTreesClassifier, ExtraTreesRegressor, RandomForestClassifier, RandomForestRegressor)


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
    if isinstance(final, _FORESTS):
        try:
            from assay.explain.forest import ForestExplainer
        except MissingDependencyError as exc:
            raise NoExplainer(
                f"the model family '{name}' is explained with the optional package 'shap', "
                "which is not installed",
                where="explanation",
                fix=exc.fix,
            ) from None
        return ForestExplainer(model, features)
    raise NoExplainer(
        f"the model family '{name}' has no per-row explainer",
        where="explanation",
        expected="a tree or linear model (lightgbm, extra_trees, linear, tfidf_linear)",
        received=type(final).__name__,
        fix="Its global importance (permutation) is in the report; for per-row "
        "contributions, serve a lightgbm, extra_trees or linear version.",
    )
