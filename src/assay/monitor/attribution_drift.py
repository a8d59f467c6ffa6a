"""Attribution drift: does the champion lean on the same features as at training?

:func:`attribution_drift` explains a seeded sample of the window's inputs (at most
:data:`MAX_ROWS`) with the version's per-row explainer (:mod:`assay.explain`), takes the
mean absolute attribution per input column and its share of their sum, and compares
these shares with the ones stored in the version's global explanation (computed on the
sealed test rows at registration). A column whose share moved by more than
``monitoring.attribution_shift`` has drifted; the monitor raises an
``attribution_drift`` alert with both rankings.

Not judged (with the reason, never an alert): a version registered without an
explanation, a family with no per-row explainer (permutation importance only), or a
window of fewer than :data:`MIN_ROWS` valid rows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from assay.errors import AssayError
from assay.explain import Explanation, local_explainer, rank_features

__all__ = [
    "MAX_ROWS",
    "MIN_ROWS",
    "AttributionDrift",
    "FeatureShift",
    "attribution_drift",
]

#: window rows explained at most (a seeded sample of larger windows)
MAX_ROWS = 500
#: fewest valid window rows the shares are compared on
MIN_ROWS = 50


@dataclass(frozen=True)
class FeatureShift:
    """One input column's share of the mean |attribution|, at training and on the window.

    Attributes:
        feature: the raw input column.
        reference_share: its share in the version's stored explanation (test rows).
        reference_rank: its rank there (1: the most important).
        live_share: its share on the window's sample.
        live_rank: its rank there.
    """

    feature: str
    reference_share: float
    reference_rank: int
    live_share: float
    live_rank: int

    @property
    def shift(self) -> float:
        """``live_share - reference_share`` (negative: the model leans on it less)."""
        return self.live_share - self.reference_share

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values."""
        return {
            "feature": self.feature,
            "reference_share": self.reference_share,
            "reference_rank": self.reference_rank,
            "live_share": self.live_share,
            "live_rank": self.live_rank,
            "shift": self.shift,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeatureShift:
        """The inverse of :meth:`to_dict`."""
        return cls(
            feature=str(data["feature"]),
            reference_share=float(data["reference_share"]),
            reference_rank=int(data["reference_rank"]),
            live_share=float(data["live_share"]),
            live_rank=int(data["live_rank"]),
        )


@dataclass(frozen=True)
class AttributionDrift:
    """The attribution shares of one window against the training reference.

    Attributes:
        judged: False when the shares could not be compared (``reason`` says why).
        reason: why the window was not judged ("" when judged).
        threshold: ``monitoring.attribution_shift``: the largest allowed change of a share.
        method: how the attributions were computed (``tree_shap``, ``linear``), "" when
            not judged.
        n_rows: the window rows explained.
        features: every input column, in the order of the reference ranking.
    """

    judged: bool = False
    reason: str = "not computed"
    threshold: float = 0.10
    method: str = ""
    n_rows: int = 0
    features: tuple[FeatureShift, ...] = field(default_factory=tuple)

    @property
    def drifted(self) -> tuple[FeatureShift, ...]:
        """The columns whose share moved by more than ``threshold``, largest move first."""
        if not self.judged:
            return ()
        moved = [f for f in self.features if abs(f.shift) > self.threshold]
        return tuple(sorted(moved, key=lambda f: -abs(f.shift)))

    @property
    def largest_shift(self) -> float:
        """The largest absolute change of a share (0 when not judged)."""
        return max((abs(f.shift) for f in self.features), default=0.0) if self.judged else 0.0

    def reference_ranking(self) -> list[dict[str, Any]]:
        """``[{feature, share, rank}]`` at training, most important first."""
        ordered = sorted(self.features, key=lambda f: f.reference_rank)
        return [{"feature": f.feature, "share": f.reference_share, "rank": f.reference_rank}
                for f in ordered]

    def live_ranking(self) -> list[dict[str, Any]]:
        """``[{feature, share, rank}]`` on the window, most important first."""
        ordered = sorted(self.features, key=lambda f: f.live_rank)
        return [{"feature": f.feature, "share": f.live_share, "rank": f.live_rank}
                for f in ordered]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values."""
        return {
            "judged": self.judged,
            "reason": self.reason,
            "threshold": self.threshold,
            "method": self.method,
            "n_rows": self.n_rows,
            "features": [f.to_dict() for f in self.features],
            "drifted": [f.feature for f in self.drifted],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> AttributionDrift:
        """The inverse of :meth:`to_dict`; None (a report stored before attribution drift
        was measured) reads as not judged."""
        if not data:
            return cls(reason="not measured when the report was stored")
        return cls(
            judged=bool(data.get("judged", False)),
            reason=str(data.get("reason", "")),
            threshold=float(data.get("threshold", 0.10)),
            method=str(data.get("method", "")),
            n_rows=int(data.get("n_rows", 0)),
            features=tuple(FeatureShift.from_dict(f) for f in data.get("features", [])),
        )


def attribution_drift(
    model: Any,
    features: Sequence[str],
    explanation: Explanation | None,
    inputs: pd.DataFrame,
    *,
    threshold: float,
    family: str = "",
    version: int | None = None,
    seed: int = 0,
    max_rows: int = MAX_ROWS,
    min_rows: int = MIN_ROWS,
) -> AttributionDrift:
    """The attribution shares of the window ``inputs`` against ``explanation``'s.

    Args:
        model: the version's fitted model.
        features: its input columns.
        explanation: the version's stored global explanation (None: registered without).
        inputs: the window's valid rows (the model's input columns, training dtypes).
        threshold: the largest allowed change of a column's share.
        family: the family alias, named in the reason.
        version: the version number, named in the reason.
        seed: the seed of the sample.
        max_rows: most window rows explained.
        min_rows: fewest window rows judged.
    """
    name = f"model v{version}" if version is not None else "the model"

    def skipped(reason: str) -> AttributionDrift:
        return AttributionDrift(judged=False, reason=reason, threshold=threshold)

    if explanation is None:
        return skipped(f"{name} was registered without an explanation (no training reference "
                       "of its attributions)")
    if explanation.method in ("permutation", "occlusion"):
        what = f"the {family} family" if family else name
        kind = ("permutation importance" if explanation.method == "permutation"
                else "word occlusion on sampled texts")
        return skipped(f"{what} has no per-row explainer (its explanation is {kind})")
    if len(inputs) < min_rows:
        return skipped(f"{len(inputs)} valid row(s) in the window, fewer than the {min_rows} "
                       "needed to compare attributions")
    try:
        explainer = local_explainer(model, features, explanation, family=family, version=version)
        sample = _sample(inputs, max_rows, seed)
        values = explainer.attributions(sample).values
    except AssayError as exc:
        return skipped(f"the window could not be explained: {exc.what}")
    importance = np.abs(values).mean(axis=0).sum(axis=1)
    if not np.isfinite(importance).all() or float(importance.sum()) <= 0.0:
        return skipped("the attributions on the window are all zero (every input at its "
                       "training mean)")
    live = {f.feature: f for f in rank_features(list(explainer.features), importance)}
    reference = {f.feature: f for f in explanation.features}
    order = [f.feature for f in explanation.features] + [f for f in live if f not in reference]
    worst = len(order)
    shifts = tuple(
        FeatureShift(
            feature=feature,
            reference_share=reference[feature].share if feature in reference else 0.0,
            reference_rank=reference[feature].rank if feature in reference else worst,
            live_share=live[feature].share if feature in live else 0.0,
            live_rank=live[feature].rank if feature in live else worst,
        )
        for feature in order
    )
    return AttributionDrift(judged=True, reason="", threshold=threshold,
                            method=explainer.method, n_rows=int(len(sample)), features=shifts)


def _sample(frame: pd.DataFrame, limit: int, seed: int) -> pd.DataFrame:
    if len(frame) <= limit:
        return frame
    rng = np.random.default_rng(seed)
    return frame.iloc[np.sort(rng.choice(len(frame), limit, replace=False))]
