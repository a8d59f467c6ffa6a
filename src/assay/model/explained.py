"""Per-row explanations of a loaded version: validated records in, predictions with their
contributions out. The server's ``POST /v1/explain`` and ``assay explain`` both use it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from assay.errors import StoreError
from assay.explain import BaseExplainer, Explanation, RowExplanation, explain_rows, local_explainer
from assay.model.fastpath import FastPredictor
from assay.model.loaded import LoadedModel, Prediction
from assay.model.validation import ValidatedBatch

if TYPE_CHECKING:
    from assay.registry import ModelRegistry, ModelVersion

__all__ = ["ExplainedRow", "VersionExplainer", "stored_explanation"]


def stored_explanation(registry: ModelRegistry, record: ModelVersion) -> Explanation | None:
    """The global explanation registered with ``record`` (None for versions without one)."""
    digest = record.lineage.explanation
    if digest is None:
        return None
    data = registry.load_json(digest)
    try:
        return Explanation.from_dict(data)
    except (KeyError, TypeError, ValueError) as exc:
        raise StoreError(
            f"the stored explanation of model version {record.version} cannot be read ({exc})",
            where=f"model version {record.version}",
            fix="Upgrade assay to the version that registered it, or retrain the version.",
        ) from exc


@dataclass(frozen=True)
class ExplainedRow:
    """One row's prediction and its explanation."""

    prediction: Prediction
    explanation: RowExplanation

    def to_dict(self) -> dict[str, Any]:
        """The prediction's fields and the explanation's, in one JSON object."""
        return {**self.prediction.to_dict(), **self.explanation.to_dict()}


class VersionExplainer:
    """A loaded version and its per-row explainer (built once: it is reused per request).

    Raises (from :meth:`load`):
        NoExplainer: the version's family has no per-row explainer, or the version was
            registered without the explanation a linear model needs.
    """

    def __init__(self, model: LoadedModel, explainer: BaseExplainer) -> None:
        self.model = model
        self.explainer = explainer

    @classmethod
    def load(cls, registry: ModelRegistry, model: LoadedModel) -> VersionExplainer:
        """The explainer of the loaded ``model``, from its stored explanation."""
        record = registry.get(model.version)
        explanation = stored_explanation(registry, record)
        explainer = local_explainer(model.model, model.features, explanation,
                                    family=model.family, version=model.version)
        return cls(model, explainer)

    @property
    def version(self) -> int:
        """The version number."""
        return self.model.version

    def validate(self, records: Sequence[Any]) -> ValidatedBatch:
        """The records checked against the version's schema (as for a prediction)."""
        return self.model.validate(records)

    def explain(self, batch: ValidatedBatch) -> list[ExplainedRow]:
        """The valid rows of ``batch``: each one's prediction and its contributions."""
        if not batch.valid_index:
            return []
        predictions = self.model.predict(batch)
        fast = self.model.fast
        if isinstance(fast, FastPredictor) and batch.records:
            # the compiled preprocessing (checked against the pipeline when it was compiled)
            # spares the pipeline's per-call overhead, most of a one-row explanation
            matrix = fast.transform_many(batch.records)
            explanations = explain_rows(self.explainer, matrix)
        else:
            explanations = explain_rows(self.explainer, batch.frame)
        return [ExplainedRow(p, e) for p, e in zip(predictions, explanations)]
