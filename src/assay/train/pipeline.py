"""The model pipeline: preprocessing and a final model, fitted with an optional validation set.

Every estimator a model family builds accepts
``fit(X, y, *, eval_set=None, on_step=None)``: ``eval_set`` is the (raw) validation
frame and labels, which the pipeline passes through its fitted preprocessing before
handing them to the final model for early stopping; ``on_step(step, loss)`` receives
the validation loss after each boosting round or epoch (Optuna pruning uses it).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, cast

import lightgbm as lgb
import numpy as np
from sklearn.base import is_classifier
from sklearn.pipeline import Pipeline

__all__ = ["ModelPipeline", "StepCallback", "accepts_eval_set", "fit_model"]

#: called after each boosting round or epoch with (step, validation loss); may raise
#: (e.g. ``optuna.TrialPruned``) to stop training
StepCallback = Callable[[int, float], None]


def accepts_eval_set(estimator: Any) -> bool:
    """True when ``estimator.fit`` takes ``eval_set`` and ``on_step`` keywords."""
    try:
        params = inspect.signature(estimator.fit).parameters
    except (TypeError, ValueError):
        return False
    return "eval_set" in params and "on_step" in params


def fit_model(
    estimator: Any,
    X: Any,
    y: Any,
    *,
    eval_set: tuple[Any, Any] | None = None,
    on_step: StepCallback | None = None,
) -> Any:
    """Fit ``estimator``, passing the validation set and step callback when it takes them."""
    if accepts_eval_set(estimator):
        return estimator.fit(X, y, eval_set=eval_set, on_step=on_step)
    return estimator.fit(X, y)


class ModelPipeline(Pipeline):
    """A scikit-learn Pipeline whose ``fit`` also takes ``eval_set`` and ``on_step``.

    Args:
        steps: (name, transformer) pairs, then (name, model).
        stopping_rounds: rounds without validation improvement before a LightGBM
            model stops (when fitted with ``eval_set``); the best round is kept.
    """

    def __init__(self, steps: list[tuple[str, Any]], *, stopping_rounds: int = 30) -> None:
        super().__init__(steps)
        self.stopping_rounds = stopping_rounds

    def fit(
        self,
        X: Any,
        y: Any = None,
        *,
        eval_set: tuple[Any, Any] | None = None,
        on_step: StepCallback | None = None,
    ) -> ModelPipeline:
        """Fit preprocessing on ``X`` only, then the model (with the transformed ``eval_set``)."""
        model = self.steps[-1][1]
        if len(self.steps) > 1:
            head = Pipeline(self.steps[:-1])
            Xt = head.fit_transform(X, y)
            evals = None if eval_set is None else (head.transform(eval_set[0]), eval_set[1])
        else:
            Xt, evals = X, eval_set
        if isinstance(model, lgb.LGBMModel):
            _fit_lightgbm(model, Xt, y, evals, on_step, self.stopping_rounds)
        else:
            fit_model(model, Xt, y, eval_set=evals, on_step=on_step)
        return self


def _fit_lightgbm(
    model: lgb.LGBMModel,
    X: Any,
    y: Any,
    eval_set: tuple[Any, Any] | None,
    on_step: StepCallback | None,
    rounds: int,
) -> None:
    if eval_set is None:
        model.fit(X, y)
        return
    callbacks: list[Any] = [lgb.early_stopping(rounds, first_metric_only=True, verbose=False)]
    if on_step is not None:
        callbacks.append(_StepReporter(on_step))
    extra: dict[str, Any] = {}
    y_fit, y_val = y, eval_set[1]
    if is_classifier(model):
        # LightGBM 4.7 label-encodes eval_set but not eval_X/eval_y, so encode here the
        # way it encodes y (sorted classes -> 0..k-1)
        classes = np.unique(np.asarray(y))
        y_fit = _encode(classes, y)
        y_val = _encode(classes, y_val)
        weight = getattr(model, "class_weight", None)
        if weight is not None:
            # the training curve is weighted by class, so the validation curve must be too
            extra["eval_class_weight"] = [weight, weight]
    model.fit(
        X,
        y,
        # "training" is the name LightGBM's early stopping skips as the training set
        eval_X=(X, eval_set[0]),
        eval_y=cast(Any, (y_fit, y_val)),
        eval_names=["training", "validation"],
        callbacks=callbacks,
        **extra,
    )


def _encode(classes: np.ndarray, y: Any) -> np.ndarray:
    codes = np.searchsorted(classes, np.asarray(y))
    return np.clip(codes, 0, len(classes) - 1)


class _StepReporter:
    """A LightGBM callback that passes the validation loss of each round to ``on_step``."""

    order = 40

    def __init__(self, on_step: StepCallback) -> None:
        self.on_step = on_step

    def __call__(self, env: Any) -> None:
        for item in env.evaluation_result_list:
            name, value, higher_is_better = item[0], float(item[2]), bool(item[3])
            if name == "validation":
                self.on_step(env.iteration + 1, -value if higher_is_better else value)
                return
