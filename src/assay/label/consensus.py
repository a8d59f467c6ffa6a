"""One label per item from the judgements of several annotators, each with a confidence."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from assay.label.annotations import Annotations

__all__ = ["Consensus", "majority_vote"]


@dataclass(frozen=True)
class Consensus:
    """Consensus labels: ``frame`` has ``item_id``, ``label``, ``confidence``, ``n_annotations``.

    ``confidence`` is the method's probability that the label is right (for a majority
    vote, the share of annotators who gave it).
    """

    method: str
    frame: pd.DataFrame

    def held_out(self, min_confidence: float) -> pd.DataFrame:
        """Items too uncertain to train on: listed for adjudication, least sure first."""
        low = self.frame[self.frame["confidence"] < min_confidence]
        return low.sort_values(["confidence", "item_id"]).reset_index(drop=True)

    def to_dict(self) -> dict[str, object]:
        return {"method": self.method, "labels": self.frame.to_dict(orient="records")}


def majority_vote(annotations: Annotations, classes: Sequence[str] | None = None) -> Consensus:
    """The most frequent label per item; ties go to the class first in the class order."""
    order = tuple(classes) if classes is not None else annotations.classes
    counts = annotations.count_matrix(order)
    n = counts.sum(axis=1)
    winner = counts.argmax(axis=1)
    share = counts[np.arange(len(counts)), winner] / np.maximum(n, 1)
    frame = pd.DataFrame(
        {
            "item_id": list(annotations.items),
            "label": [order[i] for i in winner],
            "confidence": share.astype(float),
            "n_annotations": n.astype(int),
        }
    )
    return Consensus("majority", frame)
