"""The call the server makes for one record, for timing a fitted model before it is served.

:func:`served_path` wraps a fitted model the way :class:`~assay.model.loaded.LoadedModel`
loads a registered one (the fast path compiled when the model has one, checked against
the pipeline) and answers one record as the server does: ``predict([record])``. The
search times its finalists with it and the evaluation times the chosen model with it,
so the latency gate judges the path that will serve.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from assay.data.schema import ColumnSchema
from assay.evaluate.latency import ServedPath
from assay.model.loaded import LoadedModel, compile_fast_path
from assay.model.validation import frame_records

__all__ = ["served_path"]


def served_path(
    model: Any,
    *,
    task: str,
    features: Sequence[str],
    columns: Sequence[ColumnSchema],
    classes: Sequence[Any] | None = None,
    text_column: str | None = None,
) -> ServedPath:
    """The one-record call of ``model`` as served: ``fast path (<engine>)`` or ``pipeline``.

    ``prepare`` turns rows into records (feature name -> value), as validation hands
    them to the scorer; ``call`` scores one record.
    """
    fast, _ = compile_fast_path(model, features)
    loaded = LoadedModel(
        version=0, task=task, features=features, classes=classes, columns=columns,
        model=model, fast=fast, text_column=text_column,
    )
    name = "pipeline" if fast is None else f"fast path ({fast.engine})"
    names = list(features)

    def prepare(frame: pd.DataFrame) -> list[dict[str, Any]]:
        return frame_records(frame, names)

    def call(record: dict[str, Any]) -> Any:
        return loaded.predict([record])

    return ServedPath(name, prepare, call)
