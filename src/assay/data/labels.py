"""Consensus labels back into the data: a label version applied to the project's rows.

A label version is a table with one row per annotated item (:data:`LABEL_TABLE_COLUMNS`):
the consensus label, its confidence, how many annotators judged the item, and whether
the item is held out for adjudication (its confidence is under the project's minimum).
:func:`apply_label_version` writes it into the target column of the source frame by
the rule its docstring states. The project applies it every time it loads its data, so
the labelled frame, not the file on disk, is what is audited, split and trained on, and
its content hash is a new data version.

It sits with the data, below the labelling stage, because loading the project's data
applies it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from assay.data.dataset import Dataset
from assay.data.values import label_text, native, parse_bool
from assay.errors import DataError

__all__ = [
    "LABEL_TABLE_COLUMNS",
    "LabelMerge",
    "apply_label_version",
    "labelled_dataset",
    "to_target_values",
]

#: The columns of a label version's table, in order.
LABEL_TABLE_COLUMNS = ("item_id", "label", "confidence", "n_annotations", "held_out")


@dataclass(frozen=True)
class LabelMerge:
    """What applying a label version changed in the data.

    Attributes:
        labelled: rows that had no label and now carry the consensus label.
        relabelled: rows whose label in the source the consensus replaced with another.
        confirmed: rows whose label in the source equals the consensus.
        held_out: the items held out for adjudication, least sure first (all of them).
        kept_source: held-out items that keep the label they have in the source.
        unknown_items: items of the table with no row in the data (rows removed since).
    """

    labelled: int = 0
    relabelled: int = 0
    confirmed: int = 0
    held_out: tuple[str, ...] = ()
    kept_source: tuple[str, ...] = ()
    unknown_items: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "labelled": self.labelled,
            "relabelled": self.relabelled,
            "confirmed": self.confirmed,
            "held_out": list(self.held_out),
            "kept_source": list(self.kept_source),
            "unknown_items": self.unknown_items,
        }


def apply_label_version(
    frame: pd.DataFrame, id_column: str, target: str, table: pd.DataFrame
) -> tuple[pd.DataFrame, LabelMerge]:
    """``frame`` with the consensus labels of ``table`` in its ``target`` column.

    The rule, per item of the table (matched to rows by the text of ``id_column``,
    see :func:`assay.data.values.label_text`):

    - a *confident* item (``held_out`` false) gets the consensus label, converted to
      the target column's type (:func:`to_target_values`), whether the row had a label
      or not: annotators who agree overrule the label in the source;
    - an item *held out* for adjudication is not changed: a row without a label stays
      unlabelled (it is not trained on until someone adjudicates it), and a row that
      has a label in the source keeps it, since uncertain annotators are no reason to
      drop it; such items are listed in :attr:`LabelMerge.kept_source`.

    Rows that no item names are left as they are. Returns a new frame (``frame`` is not
    changed) and what changed.
    """
    _check_table(table)
    out = frame.copy()
    if id_column not in out.columns or target not in out.columns:
        missing = id_column if id_column not in out.columns else target
        raise DataError(
            "the data has no column for the labels to go into",
            column=missing,
            expected=f"columns '{id_column}' (items) and '{target}' (target)",
            received=", ".join(map(str, out.columns[:20])),
            fix="Check data.id and data.target in assay.yaml.",
        )
    ids = out[id_column]
    keys = pd.Series(
        [label_text(v) if not _missing(v) else None for v in ids], index=out.index, dtype=object
    )
    present = set(keys.dropna())
    items = table["item_id"].astype(str)
    held = table["held_out"].astype(bool).to_numpy()
    unknown = int((~items.isin(present)).sum())

    confident = table.loc[~held]
    wanted = dict(zip(confident["item_id"].astype(str), confident["label"].astype(str)))
    rows = keys.isin(list(wanted)).to_numpy()
    before = out[target]
    had = before.notna().to_numpy()
    new_text = keys[rows].map(wanted)
    old_text = before[rows].map(lambda v: label_text(v) if not _missing(v) else None)
    same = (new_text.to_numpy() == old_text.to_numpy()) & had[rows]
    if rows.any():
        values = to_target_values(new_text.reset_index(drop=True), before)
        out[target] = _assign(before, rows, values)

    held_items = table.loc[held].sort_values(["confidence", "item_id"])
    held_ids = tuple(str(i) for i in held_items["item_id"])
    kept = set(keys[had & keys.isin(list(held_ids)).to_numpy()])
    merge = LabelMerge(
        labelled=int((~had[rows]).sum()),
        relabelled=int((had[rows] & ~same).sum()),
        confirmed=int(same.sum()),
        held_out=held_ids,
        kept_source=tuple(i for i in held_ids if i in kept),
        unknown_items=unknown,
    )
    return out, merge


def labelled_dataset(
    dataset: Dataset, id_column: str, target: str, table: pd.DataFrame, version: int
) -> tuple[Dataset, LabelMerge]:
    """``dataset`` with the label version ``version`` (its ``table``) applied: a new data
    version that records which label version it carries."""
    frame, merge = apply_label_version(dataset.frame, id_column, target, table)
    labelled = Dataset.from_frame(
        frame, source=dataset.source, unparsed=dataset.unparsed, label_version=version
    )
    return labelled, merge


def to_target_values(labels: pd.Series, like: pd.Series) -> list[Any]:
    """Label texts as values of the target column ``like``: ints stay ints, flags stay flags.

    A label that already occurs in ``like`` becomes that very value (``"3"`` becomes the
    ``3`` of an integer column, or the ``3.0`` of a float column with missing values).
    Otherwise it is converted by the column's type: a number for a numeric column, a
    boolean for a boolean one (:func:`assay.data.values.parse_bool`), else the text.
    """
    known: dict[str, Any] = {}
    for value in like.dropna().unique():
        known.setdefault(label_text(value), native(value))
    kind = _kind(like)
    return [known[text] if text in known else _convert(text, kind) for text in labels]


def _kind(like: pd.Series) -> str:
    present = like.dropna()
    if pd.api.types.is_bool_dtype(like.dtype) or (
        len(present) and all(isinstance(v, (bool, np.bool_)) for v in present)
    ):
        return "bool"
    if pd.api.types.is_integer_dtype(like.dtype):
        return "int"
    if pd.api.types.is_float_dtype(like.dtype):
        return "float"
    return "text"


def _convert(text: str, kind: str) -> Any:
    if kind == "bool":
        flag = parse_bool(text)
        return text if flag is None else flag
    if kind in ("int", "float"):
        try:
            number = float(text)
        except ValueError:
            return text
        if kind == "int" and number.is_integer():
            return int(number)
        return number
    return text


def _assign(before: pd.Series, rows: np.ndarray, values: list[Any]) -> pd.Series:
    """``before`` with ``values`` at ``rows``, widened to ``object`` when its type cannot
    hold them (a float column that only held missing values receiving text labels)."""
    after = before.copy()
    try:
        candidate = pd.Series(values, dtype=before.dtype)
        if [label_text(v) for v in candidate] != [label_text(v) for v in values]:
            raise ValueError("the column's type changes the labels")
        after.iloc[np.flatnonzero(rows)] = candidate.to_numpy()
        return after
    except (TypeError, ValueError):
        widened = after.astype(object)
        widened.iloc[np.flatnonzero(rows)] = pd.Series(values, dtype=object).to_numpy()
        return _narrow(widened)


def _narrow(series: pd.Series) -> pd.Series:
    """An ``object`` column back to a numeric or boolean type when all its values allow it."""
    present = series.dropna()
    if len(present) and all(isinstance(v, (bool, np.bool_)) for v in present):
        return series if series.isna().any() else series.astype(bool)
    if len(present) and all(
        isinstance(v, (int, float, np.number)) and not isinstance(v, bool) for v in present
    ):
        return pd.to_numeric(series)
    return series


def _missing(value: Any) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _check_table(table: pd.DataFrame) -> None:
    missing = [c for c in LABEL_TABLE_COLUMNS if c not in table.columns]
    if missing:
        raise DataError(
            "the label version's table lacks columns",
            expected=", ".join(LABEL_TABLE_COLUMNS),
            received=", ".join(map(str, table.columns)),
            fix="Record label versions through assay.registry.labels.LabelStore.",
        )
