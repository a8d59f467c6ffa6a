"""The chosen model beside its fairness-mitigated alternatives, on the same rows.

:func:`compare_mitigations` scores each model once on the given rows and records
the primary metric and every fairness measure of the task per protected attribute,
and whether the configured ``fairness.limits`` all hold, so the user weighs accuracy
against fairness with both in view. The models themselves are fitted by
:mod:`assay.train.mitigation`; this module only measures them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from assay.config.metrics import CLASSIFICATION_TASKS, fairness_limits_for
from assay.config.spec import parse_threshold
from assay.evaluate.fairness import fairness_metrics
from assay.evaluate.metrics import compute_metrics

__all__ = ["MitigatedModel", "MitigationComparison", "compare_mitigations"]

#: the method name of the unmitigated (chosen) model in a comparison
UNMITIGATED = "none"


@dataclass(frozen=True)
class MitigatedModel:
    """One model of a comparison: the chosen one (``method='none'``) or a mitigated one.

    Attributes:
        method: ``none``, ``reweight``, ``threshold`` or ``reductions``.
        description: what was fitted, in one line.
        primary: the primary metric on the compared rows.
        fairness: attribute -> fairness measure -> value on the compared rows.
        limits_hold: whether every configured limit holds on every attribute (None
            without limits).
    """

    method: str
    description: str
    primary: float | None
    fairness: dict[str, dict[str, float | None]]
    limits_hold: bool | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable fields."""
        return {
            "method": self.method,
            "description": self.description,
            "primary": self.primary,
            "fairness": {a: dict(v) for a, v in self.fairness.items()},
            "limits_hold": self.limits_hold,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MitigatedModel:
        """Inverse of :meth:`to_dict`."""
        return cls(
            data["method"], data.get("description", ""), data.get("primary"),
            {a: dict(v) for a, v in (data.get("fairness") or {}).items()},
            data.get("limits_hold"),
        )


@dataclass(frozen=True)
class MitigationComparison:
    """Why mitigation ran, on which attribute and constraint, and every model's numbers.

    Attributes:
        reasons: what triggered it (a failing limit, biased labels in the audit).
        attribute: the protected attribute the mitigations target.
        constraint: ``demographic_parity`` or ``equalized_odds`` (what the mitigations enforce).
        rows: the rows compared on (``test``: the sealed test rows the fairness gate judges).
        primary: the primary metric's name.
        limits: the configured ``fairness.limits``.
        models: the chosen model first, then each mitigated alternative.
        skipped: method -> why it was not fitted.
    """

    reasons: tuple[str, ...]
    attribute: str
    constraint: str
    rows: str
    primary: str
    limits: dict[str, str]
    models: tuple[MitigatedModel, ...]
    skipped: dict[str, str] = field(default_factory=dict)

    def best(self, measure: str, attribute: str | None = None) -> MitigatedModel | None:
        """The mitigated model with the best value of ``measure`` (a ratio: highest; else lowest)."""
        attribute = attribute or self.attribute
        scored = [
            m for m in self.models
            if m.method != UNMITIGATED and m.fairness.get(attribute, {}).get(measure) is not None
        ]
        if not scored:
            return None
        sign = -1.0 if measure.endswith("_ratio") else 1.0
        return min(scored, key=lambda m: sign * float(m.fairness[attribute][measure] or 0.0))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable fields."""
        return {
            "reasons": list(self.reasons),
            "attribute": self.attribute,
            "constraint": self.constraint,
            "rows": self.rows,
            "primary": self.primary,
            "limits": dict(self.limits),
            "models": [m.to_dict() for m in self.models],
            "skipped": dict(self.skipped),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MitigationComparison:
        """Inverse of :meth:`to_dict`."""
        return cls(
            reasons=tuple(data.get("reasons", ())),
            attribute=data["attribute"],
            constraint=data.get("constraint", ""),
            rows=data.get("rows", "test"),
            primary=data["primary"],
            limits=dict(data.get("limits") or {}),
            models=tuple(MitigatedModel.from_dict(m) for m in data.get("models", [])),
            skipped=dict(data.get("skipped") or {}),
        )


def compare_mitigations(
    models: Sequence[tuple[str, str, Any]],
    X: pd.DataFrame,
    y: Any,
    protected: pd.DataFrame,
    *,
    task: str,
    primary: str,
    limits: Mapping[str, str],
    reasons: Sequence[str],
    attribute: str,
    constraint: str,
    rows: str = "test",
    skipped: Mapping[str, str] | None = None,
    min_group_size: int = 30,
) -> MitigationComparison:
    """Score each ``(method, description, fitted model)`` on ``X, y`` and compare them."""
    yt = np.asarray(y)
    measures = fairness_limits_for(task)
    parsed = {name: parse_threshold(text) for name, text in limits.items() if name in measures}
    out = []
    for method, description, model in models:
        pred = np.asarray(model.predict(X))
        classes = list(getattr(model, "classes_", [])) or None
        proba = None
        if task in CLASSIFICATION_TASKS and hasattr(model, "predict_proba"):
            proba = np.asarray(model.predict_proba(X), dtype=float)
        primary_value = compute_metrics(task, yt, pred, proba, classes, [primary]).get(primary)
        results = fairness_metrics(task, yt, pred, protected, classes, min_group_size)
        fairness = {r.attribute: {m: r.value(m) for m in measures} for r in results}
        hold = None
        if parsed:
            checks = [(parsed[m], fairness[a].get(m)) for a in fairness for m in parsed]
            hold = bool(checks) and all(v is not None and t.holds(v) for t, v in checks)
        out.append(MitigatedModel(method, description, primary_value, fairness, hold))
    return MitigationComparison(
        reasons=tuple(reasons), attribute=attribute, constraint=constraint, rows=rows,
        primary=primary, limits=dict(limits), models=tuple(out), skipped=dict(skipped or {}),
    )
