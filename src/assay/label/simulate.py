"""Annotators of known accuracy on items of known class: ground truth for the statistics.

The agreement report and the consensus methods are checked against what was planted here
(which annotator is careless, which label is true), in the tests and in the benchmark.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from assay.label.annotations import Annotations

__all__ = ["Planted", "planted_annotations"]


@dataclass(frozen=True)
class Planted:
    """Simulated judgements and the truth behind them (``truth`` maps item id → class)."""

    annotations: Annotations
    truth: pd.Series
    accuracies: dict[str, float]
    classes: tuple[str, ...]


def planted_annotations(
    n_items: int,
    accuracies: Sequence[float],
    *,
    n_classes: int = 3,
    per_item: tuple[int, int] = (3, 5),
    class_weights: Sequence[float] | None = None,
    near_miss: bool = False,
    seed: int = 0,
) -> Planted:
    """Each item gets a true class, then ``per_item`` (inclusive range) distinct annotators
    chosen at random; annotator ``a{j}`` gives the true class with probability
    ``accuracies[j]``, otherwise a wrong class: uniformly among the others, or with
    ``near_miss`` a neighbour of the true class (ratings off by one)."""
    rng = np.random.default_rng(seed)
    n_annotators = len(accuracies)
    low, high = per_item
    high = min(high, n_annotators)
    weights = np.full(n_classes, 1.0 / n_classes) if class_weights is None else class_weights
    truth = rng.choice(n_classes, size=n_items, p=np.asarray(weights) / np.sum(weights))
    how_many = rng.integers(low, high + 1, size=n_items)
    # a random permutation of the annotators per item; keep the first how_many of each
    order = np.argsort(rng.random((n_items, n_annotators)), axis=1)
    keep = np.arange(n_annotators)[None, :] < how_many[:, None]
    item = np.repeat(np.arange(n_items), how_many)
    annotator = order[keep]
    true = truth[item]
    correct = rng.random(len(item)) < np.asarray(accuracies)[annotator]
    if near_miss:
        step = np.where(rng.random(len(item)) < 0.5, -1, 1)
        wrong = true + step
        wrong = np.where((wrong < 0) | (wrong >= n_classes), true - step, wrong)
    else:
        wrong = (true + rng.integers(1, n_classes, size=len(item))) % n_classes
    label = np.where(correct, true, wrong)
    classes = tuple(str(c) for c in range(1, n_classes + 1))
    item_ids = np.array([f"i{i:06d}" for i in range(n_items)])
    names = [f"a{j}" for j in range(n_annotators)]
    annotations = Annotations.from_records(
        item_ids[item], np.array(names)[annotator], np.array(classes)[label]
    )
    return Planted(
        annotations=annotations,
        truth=pd.Series(np.array(classes)[truth], index=item_ids, name="label"),
        accuracies=dict(zip(names, (float(a) for a in accuracies), strict=True)),
        classes=classes,
    )
