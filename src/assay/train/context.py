"""What a model family builds from, besides its parameters: one frozen :class:`BuildContext`.

The search, the scheduler, the cross-validation template and the family contract suite
all build estimators the same way: ``family.build(params, context)``. Everything but
the hyper-parameters travels in the context, so a new input (one that only some
families read) is a new field here, with a default, and no family signature changes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from assay.data.schema import Schema
from assay.text.checkpoint import BaseCheckpoint
from assay.train.objective import ObjectiveHints

__all__ = ["BuildContext", "TextOptions"]


@dataclass(frozen=True)
class TextOptions:
    """How the families on a pretrained encoder read text (assay.yaml's ``model`` section).

    Attributes:
        base: the checked checkpoint they start from; ``None`` lets a family resolve
            the default (hashing it), which a search does once and passes here.
        max_length: tokens read per text (``None``: 128, capped by the base).
        device: ``cpu`` or ``cuda``; ``None`` picks a GPU when torch sees one.
        cache_dir: where frozen embeddings are kept between fits and runs.
        quantize: ``int8`` (the default): fine-tuned models score with int8 linear layers
            on a CPU; ``none``: in float32.
    """

    base: BaseCheckpoint | None = None
    max_length: int | None = None
    device: str | None = None
    cache_dir: Path | None = None
    quantize: Literal["none", "int8"] = "int8"


@dataclass(frozen=True)
class BuildContext:
    """The data and intent a family's estimator is built for, the same for every trial.

    Attributes:
        task: what is modelled (``binary``, ``multiclass``, ``regression``,
            ``text-classification``).
        schema: the data set's schema; each feature's kind chooses its preprocessing.
        features: the input columns, in order (target, id and other roles removed).
        text_column: the free-text column, or ``None``.
        objective: what the primary metric asks of the model (loss, class balance,
            a tuned decision threshold).
        seed: seeds every random choice of the model.
        text: the pretrained base and how to read text, for the families that use one.

    A field added later takes a default, so families and callers that ignore it are
    left as they are.
    """

    task: str
    schema: Schema
    features: tuple[str, ...]
    text_column: str | None
    objective: ObjectiveHints
    seed: int
    text: TextOptions = field(default_factory=TextOptions)

    def __post_init__(self) -> None:
        # a list passed as features is kept as a tuple: the context stays immutable
        object.__setattr__(self, "features", tuple(self.features))

    @classmethod
    def of(
        cls,
        *,
        task: str,
        schema: Schema,
        features: Sequence[str],
        text_column: str | None,
        objective: ObjectiveHints,
        seed: int,
        text: TextOptions | None = None,
    ) -> BuildContext:
        """A context from any sequence of feature names (kept as a tuple)."""
        return cls(
            task, schema, tuple(features), text_column, objective, seed, text or TextOptions()
        )

    def with_seed(self, seed: int) -> BuildContext:
        """The same context with another seed."""
        return replace(self, seed=seed)

    def with_objective(self, objective: ObjectiveHints) -> BuildContext:
        """The same context with other objective hints (another primary metric)."""
        return replace(self, objective=objective)
