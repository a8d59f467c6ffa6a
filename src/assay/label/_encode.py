"""Judgements as parallel integer codes: the long form the statistics are vectorised over.

A dense items × annotators matrix grows with the product of the two (a crowd of thousands of
annotators over 10^5 items would not fit); the long form grows with the judgements only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from assay.errors import DataError
from assay.label.annotations import Annotations, label_text

if TYPE_CHECKING:
    from scipy import sparse

__all__ = ["Encoded", "encode"]


@dataclass(frozen=True)
class Encoded:
    """One entry per judgement: ``item``, ``annotator`` and ``label`` are integer codes into
    ``items`` (first-seen order), ``annotators`` (sorted) and ``classes``."""

    item: np.ndarray
    annotator: np.ndarray
    label: np.ndarray
    items: tuple[str, ...]
    annotators: tuple[str, ...]
    classes: tuple[str, ...]

    @property
    def k(self) -> int:
        return len(self.classes)

    def recoded(self, annotators: tuple[str, ...]) -> Encoded:
        """The same judgements with annotator codes into ``annotators`` (a superset)."""
        code = pd.Index(annotators).get_indexer(list(self.annotators))
        return Encoded(
            self.item, code[self.annotator], self.label, self.items, annotators, self.classes
        )

    def counts(self) -> np.ndarray:
        """Items × classes: how many annotators gave each label to each item."""
        flat = np.bincount(self.item * self.k + self.label, minlength=len(self.items) * self.k)
        return flat.reshape(len(self.items), self.k)

    def design(self) -> sparse.csr_matrix:
        """Items × (annotator, label) indicator: row i has a 1 at ``j * k + l`` when annotator
        j gave label l to item i, so sums over an item's judgements become one product."""
        from scipy import sparse

        columns = self.annotator * self.k + self.label
        ones = np.ones(len(self.item))
        shape = (len(self.items), len(self.annotators) * self.k)
        return sparse.csr_matrix((ones, (self.item, columns)), shape=shape)


def encode(annotations: Annotations, classes: Sequence[str] | None = None) -> Encoded:
    """The judgements as codes; a label outside ``classes`` is a :class:`DataError`."""
    order = tuple(label_text(c) for c in classes) if classes is not None else annotations.classes
    if len(set(order)) != len(order):
        raise DataError(
            "the class set names a class twice",
            expected="distinct classes",
            received=", ".join(order),
            fix="list each class once (3, 3.0 and '3' are one class)",
        )
    frame = annotations.frame
    items, annotators = annotations.items, annotations.annotators
    label = pd.Index(order).get_indexer(frame["label"])
    if (label < 0).any():
        unknown = sorted(set(frame.loc[label < 0, "label"]))
        raise DataError(
            "annotations use labels outside the class set",
            column="label",
            expected=", ".join(order),
            received=", ".join(unknown[:10]),
            fix="add the classes or correct the labels",
        )
    return Encoded(
        item=pd.Index(items).get_indexer(frame["item_id"]).astype(np.int64),
        annotator=pd.Index(annotators).get_indexer(frame["annotator"]).astype(np.int64),
        label=label.astype(np.int64),
        items=items,
        annotators=annotators,
        classes=order,
    )
