"""What an explanation is: the typed, stored results of the explain stage.

:class:`Explanation` is a version's global explanation (what it leans on over the
sealed test rows), stored with the version's lineage; :class:`RowExplanation` is one
row's local explanation (the prediction split into per-feature contributions).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args

from assay.explain.tokens import TextTokens

__all__ = [
    "METHODS",
    "OUTPUT_SPACES",
    "Explanation",
    "FeatureImportance",
    "Method",
    "OutputSpace",
    "RowExplanation",
]

#: how the attributions were computed: exact tree SHAP (LightGBM), exact linear
#: attributions (coefficient x (value - mean)), permutation importance (no per-row values),
#: or occlusion of a text's words (a text model without an exact explainer: words only)
Method = Literal["tree_shap", "linear", "permutation", "occlusion"]
#: the space the attributions add up in: a binary classifier's log-odds, a multiclass
#: classifier's raw score of a class (its softmax logit), a class probability (a forest's
#: own output), a regressor's prediction, or, for permutation importance, the increase of
#: the loss when a column is shuffled
OutputSpace = Literal["log_odds", "raw_score", "probability", "prediction", "loss_increase"]
METHODS: tuple[str, ...] = get_args(Method)
OUTPUT_SPACES: tuple[str, ...] = get_args(OutputSpace)


@dataclass(frozen=True)
class FeatureImportance:
    """One input column's weight in a global explanation.

    Attributes:
        feature: the raw input column (one-hot levels, missing indicators and date parts
            are summed back to the column they come from).
        importance: mean absolute attribution over the explained rows (``tree_shap``,
            ``linear``), or the mean loss increase when the column is shuffled
            (``permutation``).
        share: ``importance`` over the sum of all importances (0 when all are 0).
        rank: 1 for the most important column.
    """

    feature: str
    importance: float
    share: float
    rank: int

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values."""
        return {"feature": self.feature, "importance": self.importance, "share": self.share,
                "rank": self.rank}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeatureImportance:
        """The inverse of :meth:`to_dict`."""
        return cls(str(data["feature"]), float(data["importance"]), float(data.get("share", 0.0)),
                   int(data["rank"]))


@dataclass(frozen=True)
class Explanation:
    """A model version's global explanation, computed at registration.

    Attributes:
        method: how the attributions were computed (:data:`Method`).
        output: the space they add up in (:data:`OutputSpace`).
        features: every input column, most important first.
        rows: how many rows were explained (the sealed test rows, or a seeded sample).
        seed: the seed of the sample.
        classes: the classes whose raw scores the base values are of (multiclass), else ().
        base_values: the expected model output over the background rows (one value, or one
            per class of a multiclass model); empty for ``permutation``.
        offsets: ``linear`` only: per class, per feature, the mean contribution of the
            background rows (coefficient x mean of the preprocessed values summed over the
            column's outputs); a row's attribution is its own term minus this.
        sample_features: the columns of the beeswarm sample, in the model's input order.
        sample_values: up to :data:`SAMPLE_ROWS` explained rows' raw values (JSON values).
        sample_attributions: the same rows' attributions (towards each row's predicted
            class for a multiclass model); empty for ``permutation``.
        note: a sentence the report shows (why permutation was used, what was skipped).
        tokens: a text model's word attributions by occlusion on sampled texts.
    """

    method: Method
    output: OutputSpace
    features: tuple[FeatureImportance, ...]
    rows: int
    seed: int
    classes: tuple[Any, ...] = ()
    base_values: tuple[float, ...] = ()
    offsets: tuple[tuple[float, ...], ...] = ()
    sample_features: tuple[str, ...] = ()
    sample_values: tuple[tuple[Any, ...], ...] = ()
    sample_attributions: tuple[tuple[float, ...], ...] = ()
    note: str = ""
    tokens: TextTokens | None = None

    @property
    def ranking(self) -> list[str]:
        """The columns, most important first."""
        return [f.feature for f in self.features]

    def importance(self, feature: str) -> FeatureImportance:
        """The entry of ``feature`` (a ``KeyError`` naming it when the model has no such input)."""
        for item in self.features:
            if item.feature == feature:
                return item
        raise KeyError(feature)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values (lists for tuples)."""
        return {
            "method": self.method,
            "output": self.output,
            "features": [f.to_dict() for f in self.features],
            "rows": self.rows,
            "seed": self.seed,
            "classes": list(self.classes),
            "base_values": list(self.base_values),
            "offsets": [list(row) for row in self.offsets],
            "sample_features": list(self.sample_features),
            "sample_values": [list(row) for row in self.sample_values],
            "sample_attributions": [list(row) for row in self.sample_attributions],
            "note": self.note,
            "tokens": self.tokens.to_dict() if self.tokens is not None else None,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Explanation:
        """The inverse of :meth:`to_dict`; keys missing from older records take their defaults."""
        method = str(data["method"])
        output = str(data["output"])
        if method not in METHODS or output not in OUTPUT_SPACES:
            raise ValueError(f"unknown explanation method or output: {method!r}, {output!r}")
        return cls(
            method=method,  # type: ignore[arg-type]
            output=output,  # type: ignore[arg-type]
            features=tuple(FeatureImportance.from_dict(f) for f in data.get("features", [])),
            rows=int(data.get("rows", 0)),
            seed=int(data.get("seed", 0)),
            classes=tuple(data.get("classes", ())),
            base_values=tuple(float(v) for v in data.get("base_values", ())),
            offsets=tuple(tuple(float(v) for v in row) for row in data.get("offsets", ())),
            sample_features=tuple(str(f) for f in data.get("sample_features", ())),
            sample_values=tuple(tuple(row) for row in data.get("sample_values", ())),
            sample_attributions=tuple(
                tuple(float(v) for v in row) for row in data.get("sample_attributions", ())
            ),
            note=str(data.get("note", "")),
            tokens=TextTokens.from_dict(data["tokens"]) if data.get("tokens") else None,
        )


@dataclass(frozen=True)
class RowExplanation:
    """One row's prediction split into per-feature contributions.

    ``base_value + sum(contributions.values()) == output`` (to float precision), in the
    space ``output_space`` names.

    Attributes:
        output: the model's output for the row in ``output_space`` (a binary classifier's
            log-odds of its second class, a multiclass classifier's raw score of
            ``output_class``, a forest's probability of ``output_class``, a regressor's
            prediction).
        output_space: :data:`OutputSpace` (never ``loss_increase``).
        output_class: the class whose score is explained (classification), else None.
        base_value: the expected output over the background rows.
        contributions: input column -> its contribution, in the model's input order.
    """

    output: float
    output_space: OutputSpace
    output_class: Any
    base_value: float
    contributions: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values."""
        return {
            "output": self.output,
            "output_space": self.output_space,
            "output_class": self.output_class,
            "base_value": self.base_value,
            "contributions": dict(self.contributions),
        }
