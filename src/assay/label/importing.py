"""Reading annotation files: a long table (CSV, Parquet) or a Label Studio JSON export.

Every reader gives the same rows, one judgement each (item id, annotator, label, time
spent in seconds, when it was made), and counts what was no label: a cancelled (skipped)
Label Studio annotation, an annotation with an empty result, a table row without a label.

- **Long table** (``.csv``, ``.parquet``): columns ``item_id``, ``annotator``, ``label`` and
  optionally ``time_spent`` and ``annotated_at``; :class:`ColumnNames` renames them.
- **Label Studio JSON** (the list of tasks Label Studio exports as "JSON"): each task has
  its ``id``, its ``data`` (the item id under the project's ``data.id`` key, else the
  task ``id`` names the item) and its ``annotations``, each with ``completed_by`` (a user
  id, or a dict with the ``email``), ``result`` (the regions; a classification is a
  ``choices`` region, a ``rating`` region is read too), ``was_cancelled``, ``lead_time``
  and ``created_at``. Predictions are ignored.
- **Label Studio JSON-MIN**: one flat record per annotation, the task's data keys with
  ``id``, ``annotator``, ``lead_time``, ``created_at`` and the choice under the control's
  name (``--label`` names it when it cannot be told from the data keys).

Anything unusable is a :class:`DataError` naming the file and the line, row, task or
record, before anything is stored. :func:`check_annotation_file` then checks the rows
against the project: every item must be a row of the data, every label a class of it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from assay.data.values import label_text
from assay.errors import ConfigError, DataError
from assay.registry.labels import ANNOTATION_ROW_COLUMNS, NewImport

__all__ = [
    "FORMATS",
    "AnnotationFile",
    "ColumnNames",
    "check_annotation_file",
    "file_sha256",
    "read_annotation_file",
]

#: The values of ``--format``.
FORMATS: tuple[str, ...] = ("auto", "table", "label-studio")
_TABLE_SUFFIXES = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
_JSON_SUFFIXES = {".json"}
#: JSON-MIN keys that are no label (Label Studio writes them beside the task's data keys).
_MIN_META = frozenset(
    {"id", "annotator", "annotation_id", "created_at", "updated_at", "lead_time", "agreement"}
)
#: Label Studio result types read as a class label, and the key of their value.
_CLASS_REGIONS = {"choices": "choices", "rating": "rating"}
_SHOWN = 10


@dataclass(frozen=True)
class ColumnNames:
    """Where each part of a judgement is in a file.

    Attributes:
        item: the item id: a table column (default ``item_id``), or the key in a Label
            Studio task's ``data`` (default: the project's ``data.id``, else the task id).
        annotator: the annotator column of a table.
        label: the label: a table column (default ``label``), or the Label Studio control
            (``from_name``) whose choice is the label (default: the only one there is).
        time: the column of seconds spent (optional in the file).
        at: the column of when the judgement was made (optional in the file).
    """

    item: str | None = None
    annotator: str = "annotator"
    label: str | None = None
    time: str = "time_spent"
    at: str = "annotated_at"

    def to_dict(self) -> dict[str, Any]:
        return {
            "item": self.item,
            "annotator": self.annotator,
            "label": self.label,
            "time": self.time,
            "at": self.at,
        }


@dataclass(frozen=True)
class AnnotationFile:
    """An annotation file, read.

    Attributes:
        path: the file.
        sha256: the SHA-256 of its bytes.
        format: ``table``, ``label-studio`` or ``label-studio-min``.
        rows: one judgement per row: the :data:`ANNOTATION_ROW_COLUMNS` and ``where``
            (the line, row, task or record it came from, for messages).
        skipped: annotations that were no label, by reason (``cancelled``, ``empty``,
            ``no label``).
        options: how the file was read (the column names or keys used).
    """

    path: Path
    sha256: str
    format: str
    rows: pd.DataFrame
    skipped: dict[str, int] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def n_labels(self) -> int:
        return int(len(self.rows))

    @property
    def n_skipped(self) -> int:
        return int(sum(self.skipped.values()))

    @property
    def annotators(self) -> tuple[str, ...]:
        return tuple(sorted(set(self.rows["annotator"])))

    def to_new_import(self) -> NewImport:
        """The rows and provenance the store keeps."""
        return NewImport(
            file_name=self.path.name,
            sha256=self.sha256,
            format=self.format,
            rows=self.rows[list(ANNOTATION_ROW_COLUMNS)],
            n_skipped=self.n_skipped,
            options={**self.options, "path": str(self.path), "skipped": dict(self.skipped)},
        )


def file_sha256(path: Path) -> str:
    """The SHA-256 of the file's bytes; a :class:`DataError` when it cannot be read."""
    digest = hashlib.sha256()
    try:
        with path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    except FileNotFoundError:
        raise DataError(
            "the annotation file does not exist",
            path=str(path),
            fix="Check the path (relative paths are read from the working folder).",
        ) from None
    except OSError as exc:
        raise DataError(
            "the annotation file cannot be read",
            path=str(path),
            received=exc.strerror or str(exc),
            fix="Check the file's permissions.",
        ) from None
    return digest.hexdigest()


def read_annotation_file(
    path: str | Path,
    *,
    file_format: str = "auto",
    columns: ColumnNames | None = None,
    id_key: str | None = None,
    data_columns: Iterable[str] = (),
) -> AnnotationFile:
    """Read the judgements of one annotation file (see the module doc for the formats).

    Args:
        path: the file.
        file_format: ``auto`` (by the suffix: ``.json`` is Label Studio, ``.csv`` and
            ``.parquet`` a table), ``table`` or ``label-studio``.
        columns: where the parts of a judgement are (defaults: :class:`ColumnNames`).
        id_key: the project's item id column (``data.id``): the key of the item id in a
            Label Studio task's data.
        data_columns: the project's columns but the target; a JSON-MIN key that is one of
            them is data, not the label.
    """
    path = Path(path)
    names = columns or ColumnNames()
    sha = file_sha256(path)
    kind = _format_of(path, file_format)
    if kind == "table":
        rows, skipped, options = _read_table(path, names)
        fmt = "table"
    else:
        fmt, rows, skipped, options = _read_label_studio(path, names, id_key, set(data_columns))
    return AnnotationFile(path, sha, fmt, rows, skipped, options)


def check_annotation_file(
    file: AnnotationFile,
    *,
    ids: Collection[str],
    classes: Collection[str],
    id_column: str,
    target: str,
    data_label: str,
) -> None:
    """Refuse rows whose item is not in the project data or whose label is not a class.

    Args:
        file: the file read.
        ids: the item ids of the data (text form, :func:`assay.data.values.label_text`).
        classes: the classes the labels must come from (the target's values in the data
            and the labels already imported); empty: any label is taken.
        id_column: the data's item id column (``data.id``), for messages.
        target: the target column, for messages.
        data_label: how the data source is named in messages.
    """
    rows = file.rows
    known = set(ids)
    unknown = rows.loc[~rows["item_id"].isin(known)]
    if len(unknown):
        shown = list(pd.unique(unknown["item_id"]))
        raise DataError(
            f"{len(shown)} item id{'s' if len(shown) != 1 else ''} in {file.path.name} "
            f"{'are' if len(shown) != 1 else 'is'} not in the project data "
            f"(first at {unknown['where'].iloc[0]})",
            path=str(file.path),
            expected=f"values of the id column '{id_column}' (data.id) of {data_label}",
            received=_listing(shown),
            fix="Label rows of the project data only: check that the file names items by "
            f"'{id_column}' (--item names the column or task data key holding the id).",
        )
    if not classes:
        return
    allowed = set(classes)
    outside = rows.loc[~rows["label"].isin(allowed)]
    if len(outside):
        new = sorted(set(outside["label"]))
        first = outside.iloc[0]
        seen = sorted(set(rows["label"]))
        raise DataError(
            f"label '{first['label']}' at {first['where']} is not a class of the target "
            f"'{target}' (labels in the file: {_listing(seen)})",
            path=str(file.path),
            expected="one of: " + _listing(sorted(allowed, key=str)),
            received="new label" + ("s " if len(new) != 1 else " ") + _listing(new),
            fix="Correct the labels in the file; a new class needs labelled rows of it in "
            "the data first (it changes what the model predicts).",
        )


# -- tables ---------------------------------------------------------------------


def _read_table(
    path: Path, names: ColumnNames
) -> tuple[pd.DataFrame, dict[str, int], dict[str, Any]]:
    kind = _TABLE_SUFFIXES.get(path.suffix.lower(), "csv")
    frame = _load_table(path, kind)
    frame.columns = [str(c) for c in frame.columns]
    item = names.item or "item_id"
    label = names.label or "label"
    flags = {item: "--item", names.annotator: "--annotator", label: "--label"}
    for column, flag in flags.items():
        if column not in frame.columns:
            raise DataError(
                f"the annotation table has no column '{column}'",
                path=str(path),
                column=column,
                expected=f"columns {item}, {names.annotator}, {label} "
                f"(and optionally {names.time}, {names.at})",
                received="columns " + ", ".join(frame.columns[:30]),
                fix=f"Name the column with {flag} COLUMN, or rename it in the file.",
            )
    offset = 2 if kind == "csv" else 1
    where = [f"{'line' if kind == 'csv' else 'row'} {i + offset}" for i in range(len(frame))]
    for column, role in ((item, "an item id"), (names.annotator, "an annotator")):
        empty = frame[column].isna().to_numpy()
        if empty.any():
            at = where[int(np.flatnonzero(empty)[0])]
            raise DataError(
                f"{at} has no {role.split(' ', 1)[1]}",
                path=str(path),
                column=column,
                expected=f"{role} on every row",
                received=f"{int(empty.sum())} empty value(s)",
                fix=f"Fill in the {role.split(' ', 1)[1]}s, or drop those rows.",
                where=f"{path}, {at}",
            )
    has_label = frame[label].notna().to_numpy()
    kept = frame.loc[has_label]
    spent = (
        pd.to_numeric(kept[names.time], errors="coerce")
        if names.time in kept.columns
        else pd.Series(np.nan, index=kept.index)
    )
    at_times = (
        _timestamps(kept[names.at])
        if names.at in kept.columns
        else pd.Series(pd.NaT, index=kept.index, dtype="datetime64[ns, UTC]")
    )
    rows = _rows(
        items=kept[item],
        annotators=kept[names.annotator],
        labels=kept[label],
        spent=spent.to_numpy(dtype=float),
        at=at_times,
        where=[w for w, keep in zip(where, has_label) if keep],
    )
    skipped = {"no label": int((~has_label).sum())} if (~has_label).any() else {}
    options = {
        "item": item,
        "annotator": names.annotator,
        "label": label,
        "time": names.time if names.time in frame.columns else None,
        "at": names.at if names.at in frame.columns else None,
    }
    return rows, skipped, options


def _load_table(path: Path, kind: str) -> pd.DataFrame:
    try:
        if kind == "parquet":
            return pd.read_parquet(path)
        return pd.read_csv(path)
    except pd.errors.EmptyDataError:
        raise DataError(
            "the annotation table is empty",
            path=str(path),
            expected="a header line and one row per judgement",
            fix="Export the annotations again.",
        ) from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError, OSError) as exc:
        raise DataError(
            f"the annotation table cannot be read as {kind.upper()}",
            path=str(path),
            received=str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__,
            fix="Check that it is a UTF-8 CSV or a Parquet file (or pass --format).",
        ) from None


# -- Label Studio ---------------------------------------------------------------


def _read_label_studio(
    path: Path, names: ColumnNames, id_key: str | None, data_columns: set[str]
) -> tuple[str, pd.DataFrame, dict[str, int], dict[str, Any]]:
    tasks = _load_json(path)
    if not tasks:
        return "label-studio", _rows([], [], [], [], [], []), {}, {"item": id_key or "task id"}
    first = tasks[0]
    if isinstance(first, Mapping) and "annotator" in first and "annotations" not in first:
        rows, skipped, options = _read_min(path, tasks, names, id_key, data_columns)
        return "label-studio-min", rows, skipped, options
    rows, skipped, options = _read_tasks(path, tasks, names, id_key)
    return "label-studio", rows, skipped, options


def _load_json(path: Path) -> list[Any]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(
            "the annotation file is not UTF-8 text",
            path=str(path),
            received=f"byte {exc.start}",
            fix="Export the annotations from Label Studio again as JSON.",
        ) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(
            f"the annotation file is not valid JSON: {exc.msg}",
            path=str(path),
            where=f"{path}, line {exc.lineno} column {exc.colno}",
            expected="a Label Studio JSON or JSON-MIN export",
            fix="Export the annotations from Label Studio again (Export > JSON); "
            "a file cut short or edited by hand does not parse.",
        ) from None
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list):
        raise DataError(
            "the annotation file does not hold a list of tasks",
            path=str(path),
            expected="a Label Studio export: a JSON list of tasks",
            received=type(data).__name__,
            fix="Export the annotations from Label Studio as JSON or JSON-MIN.",
        )
    return data


def _read_tasks(
    path: Path, tasks: list[Any], names: ColumnNames, id_key: str | None
) -> tuple[pd.DataFrame, dict[str, int], dict[str, Any]]:
    items: list[str] = []
    annotators: list[str] = []
    labels: list[str] = []
    spent: list[float] = []
    at: list[Any] = []
    where: list[str] = []
    skipped = {"cancelled": 0, "empty": 0}
    other_regions: set[str] = set()
    controls: set[str] = set()
    for index, task in enumerate(tasks):
        if not isinstance(task, Mapping):
            raise _task_error(path, f"task #{index + 1}", "is not a JSON object", "a task object")
        name = f"task {task.get('id', f'#{index + 1}')}"
        annotations = task.get("annotations", task.get("completions"))
        if not isinstance(annotations, list):
            raise _task_error(
                path, name, "has no annotations list", "a list under 'annotations'",
                received=type(annotations).__name__ if annotations is not None else "nothing",
            )
        item = _task_item(path, task, name, names.item, id_key)
        for number, annotation in enumerate(annotations):
            ident = annotation.get("id", number + 1) if isinstance(annotation, Mapping) else None
            here = f"{name}, annotation {ident if ident is not None else number + 1}"
            if not isinstance(annotation, Mapping):
                raise _task_error(path, here, "is not a JSON object", "an annotation object")
            if annotation.get("was_cancelled") or annotation.get("skipped"):
                skipped["cancelled"] += 1
                continue
            result = annotation.get("result") or []
            if not isinstance(result, list):
                raise _task_error(path, here, "has a result that is not a list", "a list")
            label = _choice(path, here, result, names.label, other_regions, controls)
            if label is None:
                skipped["empty"] += 1
                continue
            items.append(item)
            annotators.append(_annotator(path, here, annotation.get("completed_by")))
            labels.append(label)
            spent.append(_seconds(annotation.get("lead_time")))
            at.append(annotation.get("created_at"))
            where.append(here)
    if not items and other_regions:
        raise DataError(
            "no annotation in the file holds a class label (a choices or rating result)",
            path=str(path),
            expected="classification results: {'type': 'choices', 'value': {'choices': [...]}}"
            + (f" from the control '{names.label}'" if names.label else ""),
            received="results of type " + ", ".join(sorted(other_regions)),
            fix="Export a classification project, or name its control with --label.",
        )
    rows = _rows(items, annotators, labels, spent, _timestamps(pd.Series(at, dtype=object)), where)
    options = {"item": names.item or id_key or "task id", "label": names.label,
               "controls": sorted(controls)}
    return rows, {k: v for k, v in skipped.items() if v}, options


def _task_item(
    path: Path, task: Mapping[str, Any], name: str, item_key: str | None, id_key: str | None
) -> str:
    data = task.get("data")
    data = data if isinstance(data, Mapping) else {}
    if item_key is not None:
        if item_key not in data or _blank(data[item_key]):
            raise _task_error(
                path, name, f"has no item id under '{item_key}' in its data",
                f"data.{item_key}", received=", ".join(map(str, list(data)[:20])) or "no data",
                fix="Name the data key holding the item id with --item.",
            )
        return label_text(data[item_key])
    if id_key is not None and id_key in data and not _blank(data[id_key]):
        return label_text(data[id_key])
    if _blank(task.get("id")):
        raise _task_error(
            path, name, "has neither an item id in its data nor a task id",
            f"data.{id_key}" if id_key else "an 'id'",
            fix="Export the tasks with their data (the item id column), or pass --item.",
        )
    return label_text(task["id"])


def _choice(
    path: Path,
    here: str,
    result: list[Any],
    control: str | None,
    other_regions: set[str],
    controls: set[str],
) -> str | None:
    """The class label of one annotation's result, or None when it holds none."""
    found: dict[str, str] = {}
    for region in result:
        if not isinstance(region, Mapping):
            raise _task_error(path, here, "has a result region that is not an object", "objects")
        kind = str(region.get("type", "")).lower()
        source = str(region.get("from_name", ""))
        if kind not in _CLASS_REGIONS or (control is not None and source != control):
            other_regions.add(f"{kind or '?'} ({source or '?'})")
            continue
        value = region.get("value")
        picked = value.get(_CLASS_REGIONS[kind]) if isinstance(value, Mapping) else None
        if isinstance(picked, list):
            if len(picked) > 1:
                raise _task_error(
                    path, here, f"chooses several classes ({', '.join(map(str, picked))})",
                    "one choice per annotation (single-label classification)",
                    fix="Use a single-choice control (choice=\"single\") for the labels.",
                )
            picked = picked[0] if picked else None
        if picked is None or _blank(picked):
            continue
        controls.add(source)
        found[source] = label_text(picked)
    if len(found) > 1:
        raise _task_error(
            path, here, "holds choices of several controls (" + ", ".join(sorted(found)) + ")",
            "one control whose choice is the label",
            fix="Name the control that holds the label with --label NAME.",
        )
    return next(iter(found.values()), None)


def _read_min(
    path: Path,
    records: list[Any],
    names: ColumnNames,
    id_key: str | None,
    data_columns: set[str],
) -> tuple[pd.DataFrame, dict[str, int], dict[str, Any]]:
    item_key: str = names.item or "id"
    if names.item is None and id_key is not None:
        if any(isinstance(r, Mapping) and id_key in r for r in records):
            item_key = id_key
    label_key = names.label or _min_label_key(path, records, item_key, data_columns)
    items: list[str] = []
    annotators: list[str] = []
    labels: list[str] = []
    spent: list[float] = []
    at: list[Any] = []
    where: list[str] = []
    empty = 0
    for index, record in enumerate(records):
        here = f"record {index + 1}" + (
            f" (task {record.get('id')})" if isinstance(record, Mapping) and "id" in record else ""
        )
        if not isinstance(record, Mapping):
            raise _task_error(path, here, "is not a JSON object", "one object per annotation")
        value = record.get(label_key)
        if isinstance(value, list):
            if len(value) > 1:
                raise _task_error(
                    path, here, f"chooses several classes ({', '.join(map(str, value))})",
                    "one choice per annotation (single-label classification)",
                )
            value = value[0] if value else None
        if value is None or _blank(value):
            empty += 1
            continue
        if isinstance(value, Mapping):
            raise _task_error(
                path, here, f"holds no class under '{label_key}'", "a choice (text or number)",
                received=json.dumps(value)[:80], fix="Name the control with --label NAME.",
            )
        if item_key not in record or _blank(record[item_key]):
            raise _task_error(path, here, f"has no item id under '{item_key}'", item_key,
                              fix="Name the key holding the item id with --item.")
        items.append(label_text(record[item_key]))
        annotators.append(_annotator(path, here, record.get("annotator")))
        labels.append(label_text(value))
        spent.append(_seconds(record.get("lead_time")))
        at.append(record.get("created_at"))
        where.append(here)
    rows = _rows(items, annotators, labels, spent, _timestamps(pd.Series(at, dtype=object)), where)
    options = {"item": item_key, "label": label_key}
    return rows, ({"empty": empty} if empty else {}), options


def _min_label_key(
    path: Path, records: list[Any], item_key: str, data_columns: set[str]
) -> str:
    keys: set[str] = set()
    for record in records:
        if isinstance(record, Mapping):
            keys.update(str(k) for k in record)
    candidates = sorted(keys - _MIN_META - {item_key} - data_columns)
    if "label" in keys:
        return "label"
    if len(candidates) == 1:
        return candidates[0]
    raise DataError(
        "cannot tell which key of the JSON-MIN records holds the label",
        path=str(path),
        expected="one key besides the task data and Label Studio's own keys",
        received="candidates: " + (", ".join(candidates) or "none"),
        fix="Name the labelling control with --label NAME.",
    )


def _annotator(path: Path, here: str, who: Any) -> str:
    if isinstance(who, Mapping):
        who = who.get("email") or who.get("id")
    if who is None or _blank(who):
        raise _task_error(
            path, here, "names no annotator (completed_by)", "a user id or email",
            fix="Export from Label Studio with the annotators (the raw JSON export keeps them).",
        )
    return label_text(who)


def _task_error(
    path: Path, here: str, what: str, expected: str, *, received: Any = None,
    fix: str | None = None,
) -> DataError:
    return DataError(
        f"{here} {what}",
        path=str(path),
        where=f"{path}, {here}",
        expected=expected,
        received=received,
        fix=fix or "Export the annotations from Label Studio again (JSON or JSON-MIN).",
    )


# -- shared ---------------------------------------------------------------------


def _format_of(path: Path, file_format: str) -> str:
    if file_format not in FORMATS:
        raise ConfigError(
            f"unknown annotation file format '{file_format}'",
            key="--format",
            expected=", ".join(FORMATS),
            received=file_format,
        )
    if file_format == "table":
        return "table"
    if file_format == "label-studio":
        return "label-studio"
    suffix = path.suffix.lower()
    if suffix in _JSON_SUFFIXES:
        return "label-studio"
    if suffix in _TABLE_SUFFIXES:
        return "table"
    raise ConfigError(
        f"cannot tell the format of '{path.name}' from its suffix",
        key="--format",
        expected=".json (Label Studio), .csv or .parquet (a long table)",
        received=suffix or "no suffix",
        fix="Pass --format table or --format label-studio.",
    )


def _rows(
    items: Iterable[Any],
    annotators: Iterable[Any],
    labels: Iterable[Any],
    spent: Iterable[float],
    at: Iterable[Any],
    where: Iterable[str],
) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "item_id": [label_text(v) for v in items],
            "annotator": [label_text(v) for v in annotators],
            "label": [label_text(v) for v in labels],
            "time_spent": np.asarray(list(spent), dtype=float),
        }
    )
    frame["annotated_at"] = pd.Series(list(at), dtype="datetime64[ns, UTC]")
    frame["where"] = list(where)
    return frame


def _timestamps(values: pd.Series) -> pd.Series:
    """When the judgements were made, as UTC timestamps (NaT when missing or unreadable)."""
    parsed = pd.to_datetime(values, errors="coerce", utc=True, format="mixed")
    return pd.Series(parsed.to_numpy(), index=values.index, dtype="datetime64[ns, UTC]")


def _seconds(value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return float("nan")
    return number if number >= 0 else float("nan")


def _blank(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and np.isnan(value):
        return True
    return isinstance(value, str) and not value.strip()


def _listing(values: list[Any], limit: int = _SHOWN) -> str:
    shown = ", ".join(str(v) for v in values[:limit])
    return shown if len(values) <= limit else f"{shown}, ... ({len(values)} in all)"
