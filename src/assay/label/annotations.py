"""Judgements of several annotators on the same items: the input of every labelling step.

One row per (item, annotator) judgement. Item ids and labels are kept as text, the form
they have in annotation files and in the store; the class set decides how a label maps to
the project's target values when labels go back into the data.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from assay.data.values import label_text
from assay.errors import DataError

__all__ = [
    "ANNOTATION_COLUMNS",
    "Annotations",
    "class_order",
    "label_text",
    "ordered_by_default",
]

ANNOTATION_COLUMNS = ("item_id", "annotator", "label", "time_spent", "source")


def ordered_by_default(classes: Sequence[str]) -> bool:
    """Labels are ordinal by default when every one of them is a number (ratings, grades)."""
    if len(classes) < 3:
        return False
    try:
        [float(c) for c in classes]
    except ValueError:
        return False
    return True


def class_order(classes: Iterable[str]) -> tuple[str, ...]:
    """Numbers in numeric order, otherwise text order: a stable class order for matrices."""
    unique = sorted(set(classes))
    try:
        return tuple(sorted(unique, key=float))
    except ValueError:
        return tuple(unique)


@dataclass(frozen=True)
class Annotations:
    """Annotator judgements: ``frame`` has the columns of :data:`ANNOTATION_COLUMNS`.

    ``item_id``, ``annotator``, ``label`` and ``source`` are strings; ``time_spent`` is
    seconds (NaN when unknown). An annotator judges an item at most once: when the same
    pair occurs again (a later import), the later judgement replaces the earlier one.
    """

    frame: pd.DataFrame

    @classmethod
    def from_records(
        cls,
        items: Iterable[object],
        annotators: Iterable[object],
        labels: Iterable[object],
        time_spent: Iterable[float | None] | None = None,
        source: str | Iterable[str] = "",
    ) -> Annotations:
        """Build from parallel sequences; later duplicates of an (item, annotator) pair win."""
        frame = pd.DataFrame(
            {
                "item_id": [label_text(v) for v in items],
                "annotator": [label_text(v) for v in annotators],
                "label": [label_text(v) for v in labels],
            }
        )
        n = len(frame)
        spent = list(time_spent) if time_spent is not None else [None] * n
        sources = [source] * n if isinstance(source, str) else list(source)
        if len(spent) != n or len(sources) != n:
            raise DataError(
                "annotation columns have different lengths",
                expected=f"{n} values each",
                received=f"{len(spent)} times, {len(sources)} sources",
            )
        frame["time_spent"] = pd.to_numeric(pd.Series(spent, dtype=object), errors="coerce")
        frame["source"] = [str(s) for s in sources]
        return cls(cls._latest(frame))

    @staticmethod
    def _latest(frame: pd.DataFrame) -> pd.DataFrame:
        kept = frame.drop_duplicates(["item_id", "annotator"], keep="last")
        return kept.reset_index(drop=True)[list(ANNOTATION_COLUMNS)]

    def __len__(self) -> int:
        return len(self.frame)

    def combined(self, other: Annotations) -> Annotations:
        """These judgements followed by ``other``'s (which replace repeated pairs)."""
        return Annotations(self._latest(pd.concat([self.frame, other.frame], ignore_index=True)))

    @property
    def items(self) -> tuple[str, ...]:
        """Item ids in first-seen order."""
        return tuple(pd.unique(self.frame["item_id"]))

    @property
    def annotators(self) -> tuple[str, ...]:
        """Annotator names, sorted."""
        return tuple(sorted(pd.unique(self.frame["annotator"])))

    @property
    def classes(self) -> tuple[str, ...]:
        """The labels used, numbers in numeric order, otherwise sorted."""
        return class_order(self.frame["label"])

    def label_matrix(
        self, classes: Sequence[str] | None = None
    ) -> tuple[np.ndarray, tuple[str, ...], tuple[str, ...]]:
        """Items × annotators matrix of class codes (-1 where an annotator did not judge).

        Returns the matrix, the item ids (rows) and the annotators (columns).
        """
        order = tuple(classes) if classes is not None else self.classes
        code = {c: i for i, c in enumerate(order)}
        items, annotators = self.items, self.annotators
        row = {item: i for i, item in enumerate(items)}
        col = {a: j for j, a in enumerate(annotators)}
        matrix = np.full((len(items), len(annotators)), -1, dtype=np.int64)
        f = self.frame
        codes = f["label"].map(code)
        if codes.isna().any():
            unknown = sorted(set(f.loc[codes.isna(), "label"]))
            raise DataError(
                "annotations use labels outside the class set",
                expected=", ".join(order),
                received=", ".join(unknown[:10]),
                fix="add the classes or correct the labels",
            )
        matrix[f["item_id"].map(row).to_numpy(), f["annotator"].map(col).to_numpy()] = (
            codes.to_numpy(dtype=np.int64)
        )
        return matrix, items, annotators

    def count_matrix(self, classes: Sequence[str] | None = None) -> np.ndarray:
        """Items × classes: how many annotators gave each label to each item (Fleiss' input)."""
        matrix, _, _ = self.label_matrix(classes)
        k = len(tuple(classes) if classes is not None else self.classes)
        counts = np.zeros((matrix.shape[0], k), dtype=np.int64)
        for j in range(matrix.shape[1]):
            given = matrix[:, j] >= 0
            np.add.at(counts, (np.flatnonzero(given), matrix[given, j]), 1)
        return counts
