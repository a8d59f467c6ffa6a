"""The explain stage: what a model leans on, over a version's test rows and for one row.

``explain_model(model, X, y, ...) -> Explanation`` is the global explanation computed at
registration and stored with the version; ``explain_rows(model, X, explanation) ->
list[RowExplanation]`` splits each row's output into per-feature contributions.
"""

from __future__ import annotations

from assay.explain.explainers import (
    Attributions,
    BaseExplainer,
    LinearExplainer,
    NoExplainer,
    TreeExplainer,
    explainer_for,
)
from assay.explain.local import explain_rows, local_explainer
from assay.explain.result import (
    METHODS,
    OUTPUT_SPACES,
    Explanation,
    FeatureImportance,
    Method,
    OutputSpace,
    RowExplanation,
)
from assay.explain.summary import MAX_ROWS, SAMPLE_ROWS, explain_model, rank_features
from assay.explain.tokens import TextTokens, TokenAttribution, token_attributions

__all__ = [
    "MAX_ROWS",
    "METHODS",
    "OUTPUT_SPACES",
    "SAMPLE_ROWS",
    "Attributions",
    "BaseExplainer",
    "Explanation",
    "FeatureImportance",
    "LinearExplainer",
    "Method",
    "NoExplainer",
    "OutputSpace",
    "RowExplanation",
    "TextTokens",
    "TokenAttribution",
    "TreeExplainer",
    "explain_model",
    "explain_rows",
    "explainer_for",
    "local_explainer",
    "rank_features",
    "token_attributions",
]
