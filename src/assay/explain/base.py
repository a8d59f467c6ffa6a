"""What every explainer shares: the attributions it answers and the contract it follows.

An explainer takes a fitted model built by a family (a ``ModelPipeline``, inside a
``ThresholdedClassifier`` or not) and its raw input columns; ``attributions(X)``
preprocesses the rows as the pipeline does, ``from_matrix(Xt)`` explains rows already
preprocessed, and both answer :class:`Attributions` on the raw columns.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from assay.errors import AssayError
from assay.explain.columns import column_map, group_matrix
from assay.explain.result import Method, OutputSpace
from assay.train.objective import ThresholdedClassifier

__all__ = ["Attributions", "BaseExplainer", "NoExplainer", "split_model"]


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
