"""Labelling tasks as files annotators open: Label Studio import JSON and a plain CSV.

Label Studio imports a JSON list of tasks, each ``{"data": {...}, "meta": {...},
"predictions": [...]}``: ``data`` holds what the annotator sees and, under the project's
``data.id`` column name, the item id that comes back in Label Studio's export (so labels
find their rows); ``meta`` carries the queue's rank and reason; a ``predictions`` entry
pre-fills the model's guess as a ``choices`` result. The pre-fill shows when the labelling
config has ``<Choices name="label" toName="text">`` over an object named ``text`` (the
names are arguments), for example::

    <View>
      <Text name="text" value="$review"/>
      <Choices name="label" toName="text" choice="single">
        <Choice value="great"/><Choice value="other"/>
      </Choices>
    </View>
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from assay.data.values import native
from assay.errors import DataError

__all__ = ["TASK_COLUMNS", "label_studio_tasks", "write_csv", "write_label_studio"]

#: the columns a queue frame has besides the id and the data columns
TASK_COLUMNS = ("rank", "uncertainty", "predicted", "confidence", "stratum", "reason")


def _value(value: Any) -> Any:
    """A cell as a JSON value: NumPy scalars as Python ones, missing as null, times as ISO."""
    out = native(value, missing_as_none=True, iso_timestamps=True)
    if isinstance(out, float) and out != out:  # pragma: no cover - NaN is missing above
        return None
    return out


def label_studio_tasks(
    items: pd.DataFrame,
    *,
    id_column: str,
    data_columns: Sequence[str],
    model_version: str | None = None,
    from_name: str = "label",
    to_name: str = "text",
) -> list[dict[str, Any]]:
    """One Label Studio task per row of ``items``, in the order of ``items``.

    Args:
        items: the queue: ``id_column``, ``data_columns`` and ``rank`` and ``reason``
            (``uncertainty``, ``predicted``, ``confidence``, ``stratum`` when present).
        id_column: the column naming each item (assay.yaml ``data.id``).
        data_columns: what the annotator sees.
        model_version: names the model in the pre-filled prediction; None for no
            prediction (also when ``items`` has no ``predicted`` column).
        from_name, to_name: the control and object names of the labelling config.
    """
    needed = [id_column, *data_columns, "rank", "reason"]
    missing = [c for c in needed if c not in items.columns]
    if missing:
        raise DataError(
            "the queue lacks columns a labelling task needs",
            column=missing[0],
            expected=", ".join(needed),
            received=", ".join(map(str, items.columns)),
        )
    columns = list(dict.fromkeys([id_column, *data_columns]))
    tasks: list[dict[str, Any]] = []
    for row in items.to_dict("records"):
        meta: dict[str, Any] = {
            "assay_rank": int(row["rank"]),
            "assay_reason": str(row["reason"]),
            "assay_id_column": id_column,
        }
        for key in ("uncertainty", "stratum"):
            if key in row:
                meta[f"assay_{key}"] = _value(row[key])
        task: dict[str, Any] = {"data": {c: _value(row[c]) for c in columns}, "meta": meta}
        if model_version is not None and "predicted" in row and row["predicted"] is not None:
            prediction: dict[str, Any] = {
                "model_version": model_version,
                "result": [
                    {
                        "id": f"assay-{int(row['rank'])}",
                        "from_name": from_name,
                        "to_name": to_name,
                        "type": "choices",
                        "value": {"choices": [str(_value(row["predicted"]))]},
                    }
                ],
            }
            if "confidence" in row and _value(row["confidence"]) is not None:
                prediction["score"] = float(row["confidence"])
            task["predictions"] = [prediction]
        tasks.append(task)
    return tasks


def write_label_studio(path: str | Path, tasks: list[dict[str, Any]]) -> Path:
    """Write tasks as a Label Studio import file (a JSON list); the file appears whole."""
    target = Path(path)
    text = json.dumps(tasks, ensure_ascii=False, indent=1, allow_nan=False)
    _write_whole(target, text)
    return target


def write_csv(path: str | Path, frame: pd.DataFrame) -> Path:
    """Write a queue or review frame as CSV (UTF-8, no index); the file appears whole."""
    target = Path(path)
    _write_whole(target, frame.to_csv(index=False))
    return target


def _write_whole(target: Path, text: str) -> None:
    if target.parent and not target.parent.exists():
        raise DataError(
            "the folder to write into does not exist",
            path=str(target),
            fix=f"Create {target.parent} or write elsewhere.",
        )
    partial = target.with_name(f".{target.name}.partial")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, target)
