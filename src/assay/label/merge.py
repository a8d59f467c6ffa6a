"""From stored annotations to a label version: the consensus table that goes into the data.

The annotations of every import are read back (a later judgement of the same item and
annotator replaces the earlier), one consensus label per item is chosen with its
confidence, and the items less sure than ``labelling.min_confidence`` are marked held
out for adjudication. :func:`assay.data.labels.apply_label_version` (re-exported here)
writes the table into the project's target column when the data is loaded.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from assay.config.spec import LabellingSpec
from assay.data.labels import LABEL_TABLE_COLUMNS, LabelMerge, apply_label_version
from assay.label.annotations import Annotations
from assay.label.consensus import Consensus, consensus_labels
from assay.registry.labels import LabelStore, LabelTable

__all__ = [
    "LABEL_TABLE_COLUMNS",
    "LabelMerge",
    "annotations_from_rows",
    "apply_label_version",
    "build_label_table",
    "label_table",
    "stored_annotations",
]


def annotations_from_rows(rows: pd.DataFrame) -> Annotations:
    """Stored annotation rows (:meth:`LabelStore.annotation_rows`, in import order) as
    :class:`Annotations`: one judgement per item and annotator, the latest import's."""
    return Annotations.from_records(
        rows["item_id"],
        rows["annotator"],
        rows["label"],
        rows["time_spent"],
        source=[str(s) for s in rows["source"]],
    )


def stored_annotations(labels: LabelStore) -> Annotations:
    """Every annotation of the store, all imports in import order."""
    return annotations_from_rows(labels.annotation_rows())


def _consensus(annotations: Annotations, spec: LabellingSpec, classes: Sequence[str]) -> Consensus:
    return consensus_labels(annotations, spec.consensus, classes)


def label_table(consensus: Consensus, min_confidence: float) -> pd.DataFrame:
    """The consensus as a label version's table: held out where less sure than the minimum."""
    frame = consensus.frame.reset_index(drop=True)
    table = pd.DataFrame(
        {
            "item_id": frame["item_id"].astype(str),
            "label": frame["label"].astype(str),
            "confidence": frame["confidence"].astype(float),
            "n_annotations": frame["n_annotations"].astype(int),
        }
    )
    table["held_out"] = (table["confidence"] < min_confidence).to_numpy()
    return table[list(LABEL_TABLE_COLUMNS)]


def build_label_table(
    rows: pd.DataFrame, spec: LabellingSpec, classes: Sequence[str]
) -> LabelTable:
    """The next label version from all stored annotation rows, under ``spec``.

    ``classes`` is the class order (:func:`assay.label.annotations.class_order` of the
    target's classes and every label imported).
    """
    consensus = _consensus(annotations_from_rows(rows), spec, classes)
    return LabelTable(
        method=consensus.method,
        min_confidence=spec.min_confidence,
        frame=label_table(consensus, spec.min_confidence),
    )
