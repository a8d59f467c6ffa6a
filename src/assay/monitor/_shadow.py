"""Comparing a shadowed candidate with the champion on the same live requests.

While a retrain candidate runs in shadow, every request the champion answers is also
scored by the candidate and logged (route ``shadow``, same request id and input).
:func:`shadow_comparison` pairs the two answers record by record and measures how
often the candidate scored what the champion answered (coverage), how often they
agree, and, where feedback labels arrived for the champion's answers, both models'
primary metric with a paired bootstrap. :func:`shadow_gates` turns that into gates.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from assay.config.metrics import CLASSIFICATION_TASKS
from assay.data.values import native, native_array
from assay.errors import AssayError, DataError
from assay.gate import GateResult
from assay.monitor.performance import (
    MIN_LABELS,
    attach_label_sources,
    coerce_labels,
    detect_feedback_loop,
    proba_matrix,
)
from assay.registry import ModelRegistry
from assay.store.database import as_utc

__all__ = ["MIN_SHADOW_COVERAGE", "ShadowComparison", "shadow_comparison", "shadow_gates"]

#: share of the champion's shadowed requests the candidate must have scored
MIN_SHADOW_COVERAGE = 0.99


@dataclass(frozen=True)
class ShadowComparison:
    """Champion and candidate on the same shadowed requests.

    Attributes:
        since: when the shadow deployment started.
        n_champion: records the champion answered since then on a server that ran the
            candidate in shadow (each server picks a deployment up a moment after it is
            recorded; answers before that are not the candidate's to cover).
        n_shadow: shadow predictions of the candidate.
        n_paired: records scored by both (matched by request and input).
        coverage: ``n_paired / n_champion`` (the candidate failing on inputs shows here).
        agreement: share of paired records with the same answer (classification).
        mean_abs_difference: mean absolute difference of the answers (regression).
        n_labelled: paired records with a feedback label (after exclusions).
        comparison: the paired bootstrap of the primary metric, champion = A, when
            enough labels arrived.
        feedback_loop: the feedback-loop check of those labels.
        note: why the metrics were not compared, when so.
    """

    since: str
    n_champion: int
    n_shadow: int
    n_paired: int
    coverage: float | None
    agreement: float | None
    mean_abs_difference: float | None
    n_labelled: int
    comparison: dict[str, Any] | None = None
    feedback_loop: dict[str, Any] | None = None
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values."""
        return {
            "since": self.since,
            "n_champion": self.n_champion,
            "n_shadow": self.n_shadow,
            "n_paired": self.n_paired,
            "coverage": self.coverage,
            "agreement": self.agreement,
            "mean_abs_difference": self.mean_abs_difference,
            "n_labelled": self.n_labelled,
            "comparison": self.comparison,
            "feedback_loop": self.feedback_loop,
            "note": self.note,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ShadowComparison:
        """The inverse of :meth:`to_dict`."""
        return cls(**{k: data.get(k) for k in cls.__dataclass_fields__})  # type: ignore[arg-type]




def shadow_comparison(
    registry: ModelRegistry,
    *,
    champion: int,
    candidate: int,
    since: datetime,
    task: str,
    classes: Sequence[Any] | None,
    primary: str,
    test_accuracy: float | None = None,
    min_labels: int = MIN_LABELS,
    seed: int = 0,
) -> ShadowComparison:
    """Compare the candidate's shadow predictions with the champion's answers since ``since``.

    Each shadow prediction is matched with the champion's answer to the same record
    (same request, same input). Coverage counts the champion answers logged as shadowed
    by the candidate (``shadowed_by``), so the moments before each server picked the
    deployment up do not count against it; for a log written before servers marked
    their answers (no marked answer at all), every champion answer since ``since``
    counts. Labels are those sent for the champion's answers.
    """
    from assay.evaluate import paired_bootstrap
    from assay.model.predictions import read_predictions

    store = registry.store
    shadow = read_predictions(store, since=since, version=candidate, route="shadow")
    champ = read_predictions(
        store, since=since, version=champion, route="champion", shadowed_by=candidate
    )
    if champ.empty and not shadow.empty:  # logged by servers that did not mark their answers
        champ = read_predictions(store, since=since, version=champion, route="champion")
    champ["_key"] = _pair_keys(champ)
    shadow["_key"] = _pair_keys(shadow)
    shadow_cols = shadow[["_key", "prediction", "probabilities"]].rename(
        columns={"prediction": "prediction_b", "probabilities": "probabilities_b"}
    )
    paired = champ.merge(shadow_cols, on="_key", how="inner")
    n_champion, n_paired = int(len(champ)), int(len(paired))
    classification = task in CLASSIFICATION_TASKS
    pred_a, ok_a = coerce_labels(paired["prediction"], task, classes)
    pred_b, ok_b = coerce_labels(paired["prediction_b"], task, classes)
    both = ok_a & ok_b
    agreement = mad = None
    if both.any():
        if classification:
            agreement = float(np.mean([pred_a[i] == pred_b[i] for i in np.flatnonzero(both)]))
        else:
            mad = float(np.mean(np.abs(pred_a[both].astype(float) - pred_b[both].astype(float))))
    base = dict(
        since=as_utc(since).isoformat(), n_champion=n_champion, n_shadow=int(len(shadow)),
        n_paired=n_paired, coverage=n_paired / n_champion if n_champion else None,
        agreement=agreement, mean_abs_difference=mad,
    )
    labelled = paired.loc[paired["label"].notna().to_numpy() & both].reset_index(drop=True)
    loop = None
    if len(labelled):
        labelled = attach_label_sources(store, labelled)
        loop = detect_feedback_loop(
            labelled, task=task, classes=classes, test_accuracy=test_accuracy
        )
        labelled = labelled.loc[~loop.mask(labelled)].reset_index(drop=True)
    y, valid = coerce_labels(labelled["label"], task, classes)
    labelled = labelled.loc[valid].reset_index(drop=True)
    y = y[valid]
    n_labelled = int(len(labelled))
    loop_dict = loop.to_dict() if loop else None
    if n_labelled < min_labels:
        note = f"{n_labelled} labelled shadowed records (needs {min_labels} to compare metrics)"
        return ShadowComparison(**base, n_labelled=n_labelled, feedback_loop=loop_dict, note=note)  # type: ignore[arg-type]
    a, _ = coerce_labels(labelled["prediction"], task, classes)
    b, _ = coerce_labels(labelled["prediction_b"], task, classes)
    y, a, b = native_array(y), native_array(a), native_array(b)
    proba_a = proba_matrix(labelled["probabilities"].tolist(), classes) if classification else None
    proba_b = proba_matrix(labelled["probabilities_b"].tolist(), classes) if classification else None
    fallback = "accuracy" if classification else "mae"
    comparison = None
    note = ""
    for metric in dict.fromkeys([primary, fallback]):
        try:
            comparison = paired_bootstrap(
                task, metric, y, a, proba_a, b, proba_b, classes=list(classes) if classes else None,
                n_boot=1000, seed=seed,
            )
            break
        except (DataError, AssayError) as exc:
            note = exc.render()
    return ShadowComparison(
        **base, n_labelled=n_labelled,  # type: ignore[arg-type]
        comparison=comparison.to_dict() if comparison else None, feedback_loop=loop_dict,
        note="" if comparison else note,
    )


def _pair_keys(frame: pd.DataFrame) -> list[str]:
    """request id + canonical input + occurrence: the same record scored by two models."""
    columns = list(frame.attrs.get("input_columns") or [])
    seen: dict[str, int] = {}
    keys = []
    for request, values in zip(
        frame["request_id"],
        frame[columns].itertuples(index=False, name=None) if columns else [()] * len(frame),
    ):
        record = {
            c: native(v)
            for c, v in zip(columns, values)
            if not (v is None or (isinstance(v, float) and np.isnan(v)))
        }
        base = f"{request}\x1f{json.dumps(record, sort_keys=True, default=str)}"
        seen[base] = seen.get(base, 0) + 1
        keys.append(f"{base}\x1f{seen[base]}")
    return keys


def shadow_gates(shadow: ShadowComparison) -> list[GateResult]:
    """The shadow gates: the candidate scored (almost) every record the champion answered,
    and, where enough labels arrived, is not significantly worse on the primary metric."""
    coverage = shadow.coverage if shadow.coverage is not None else 0.0
    gates = [
        GateResult(
            "shadow_coverage", coverage >= MIN_SHADOW_COVERAGE,
            f"the candidate scored {shadow.n_paired} of the {shadow.n_champion} records the "
            f"champion answered ({coverage:.1%}; needs {MIN_SHADOW_COVERAGE:.0%})"
            + (f"; agreement {shadow.agreement:.1%}" if shadow.agreement is not None else ""),
            {"coverage": coverage, "n_paired": shadow.n_paired, "n_champion": shadow.n_champion,
             "agreement": shadow.agreement, "mean_abs_difference": shadow.mean_abs_difference},
        )
    ]
    c = shadow.comparison
    if c is None:
        gates.append(GateResult(
            "shadow_metrics", True, f"not compared: {shadow.note}", {"n_labelled": shadow.n_labelled}
        ))
    else:
        worse = c["ci_high"] < 0
        gates.append(GateResult(
            "shadow_metrics", not worse,
            f"{c['metric']} on {shadow.n_labelled} labelled shadowed records: candidate "
            f"{c['value_b']:.4g} vs champion {c['value_a']:.4g} (delta {c['delta']:+.4g}, 95% CI "
            f"[{c['ci_low']:+.4g}, {c['ci_high']:+.4g}])"
            + ("; significantly worse" if worse else ""),
            {**c, "n_labelled": shadow.n_labelled},
        ))
    return gates
