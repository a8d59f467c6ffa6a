"""Local explanations: each row's output split into per-feature contributions.

:func:`local_explainer` rebuilds a version's per-row explainer from its fitted model
and its stored :class:`~assay.explain.result.Explanation` (a linear model's background
mean is kept there, so no training rows are needed to explain a request);
:func:`explain_rows` answers one :class:`~assay.explain.result.RowExplanation` per row.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from assay.data.values import native
from assay.explain.explainers import BaseExplainer, NoExplainer, explainer_for
from assay.explain.result import Explanation, RowExplanation

__all__ = ["explain_rows", "local_explainer"]


def local_explainer(
    model: Any, features: Sequence[str], explanation: Explanation | None, *, family: str = "",
    version: int | None = None,
) -> BaseExplainer:
    """The per-row explainer of a registered model; :class:`NoExplainer` when it has none.

    Args:
        model: the fitted model.
        features: its input columns.
        explanation: the version's stored global explanation (None when it was
            registered before explanations were computed).
        family: the family alias, named in the error.
        version: the version number, named in the error.
    """
    where = f"model version {version}" if version is not None else "explanation"
    offsets = None
    if explanation is not None and explanation.method == "linear":
        offsets = np.asarray(explanation.offsets, dtype=float)
    try:
        return explainer_for(model, features, offsets=offsets, family=family)
    except NoExplainer as exc:
        if explanation is None and exc.what.startswith("the linear model"):
            raise NoExplainer(
                "the version was registered without an explanation (its linear model's "
                "background mean is unknown)",
                where=where,
                fix="Retrain it with `assay run` to register a version with its explanation.",
            ) from None
        raise NoExplainer(exc.what, where=where, expected=exc.expected, received=exc.received,
                          fix=exc.fix) from None


def explain_rows(explainer: BaseExplainer, X: pd.DataFrame | np.ndarray) -> list[RowExplanation]:
    """One explanation per row of ``X``: contributions that add up, with the base value, to
    the model's output (log-odds, raw score of the top class, or the prediction).

    ``X`` is a frame of the raw input columns, or a matrix already preprocessed as the
    model's pipeline does.
    """
    if X.shape[0] == 0:
        return []
    if isinstance(X, pd.DataFrame):
        attributions = explainer.attributions(X)
    else:
        attributions = explainer.from_matrix(X)
    totals = attributions.totals
    multiclass = attributions.values.shape[2] > 1
    features = attributions.features
    out: list[RowExplanation] = []
    for i in range(X.shape[0]):
        k = int(np.argmax(totals[i])) if multiclass else 0
        if attributions.classes:
            label = native(attributions.classes[k])
        else:
            label = None
        out.append(RowExplanation(
            output=float(totals[i, k]),
            output_space=attributions.output,
            output_class=label,
            base_value=float(attributions.base[k]),
            contributions={f: float(v) for f, v in zip(features, attributions.values[i, :, k])},
        ))
    return out

