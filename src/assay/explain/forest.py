"""Exact tree SHAP values of a scikit-learn forest (extra trees, random forests), with shap.

Imported only when such a model is explained: the ``shap`` package (``assay[explain]``)
takes seconds to import. The values are in the forest's own output: class probabilities
for a classifier (of the second class for a binary one), the prediction for a regressor.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp

from assay.errors import MissingDependencyError
from assay.explain.base import Attributions, BaseExplainer
from assay.explain.result import OutputSpace

try:
    import shap
except ImportError:  # pragma: no cover - shap is an optional dependency
    raise MissingDependencyError("shap", "explain") from None

__all__ = ["ForestExplainer"]


class ForestExplainer(BaseExplainer):
    """shap's ``TreeExplainer`` (path-dependent: no background rows needed) on the forest."""

    method = "tree_shap"

    def __init__(self, model: Any, features: Sequence[str]) -> None:
        super().__init__(model, features)
        self._shap = shap.TreeExplainer(self.final)

    def from_matrix(self, Xt: Any) -> Attributions:
        """Contributions to the forest's probabilities (or prediction), summed to the raw columns."""
        matrix = Xt.toarray() if sp.issparse(Xt) else np.asarray(Xt, dtype=float)
        values = np.asarray(self._shap.shap_values(matrix, check_additivity=False), dtype=float)
        if values.ndim == 2:
            values = values[:, :, None]
        base = np.atleast_1d(np.asarray(self._shap.expected_value, dtype=float))
        summed = np.einsum("npk,pf->nfk", values, self._groups(values.shape[1]))
        classes = self._classes()
        if not classes:
            return Attributions(summed, base, "prediction", self.features)
        output: OutputSpace = "probability"
        if len(classes) == 2:  # the second class's probability, as for the log-odds
            return Attributions(summed[:, :, 1:], base[1:], output, self.features, classes[1:])
        return Attributions(summed, base, output, self.features, classes)
