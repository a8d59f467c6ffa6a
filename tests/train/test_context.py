"""The build context: one frozen value every family builds from, besides its parameters."""

from __future__ import annotations

import dataclasses
import inspect

import pandas as pd
import pytest

from assay.data.schema import infer_schema
from assay.train.context import BuildContext
from assay.train.families import FAMILIES
from assay.train.objective import objective_for


def _context() -> BuildContext:
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0], "colour": ["a", "b", "a"]})
    return BuildContext.of(
        task="binary",
        schema=infer_schema(frame),
        features=["x", "colour"],
        text_column=None,
        objective=objective_for("binary", "f1"),
        seed=7,
    )


def test_features_are_kept_as_a_tuple_and_the_context_is_frozen() -> None:
    context = _context()
    assert context.features == ("x", "colour")
    with pytest.raises(dataclasses.FrozenInstanceError):
        context.seed = 1  # type: ignore[misc]


def test_with_seed_and_with_objective_change_one_field() -> None:
    context = _context()
    reseeded = context.with_seed(3)
    assert reseeded.seed == 3 and context.seed == 7
    assert dataclasses.replace(reseeded, seed=7) == context
    plain = context.with_objective(objective_for("binary", "roc_auc"))
    assert context.objective.threshold_metric == "f1"
    assert plain.objective.threshold_metric is None
    assert dataclasses.replace(plain, objective=context.objective) == context


def test_every_family_builds_from_params_and_one_context() -> None:
    # the context is the single place to extend: no family takes inputs of its own
    for alias, cls in FAMILIES.items():
        signature = inspect.signature(cls.build)
        assert list(signature.parameters) == ["self", "params", "context"], alias
