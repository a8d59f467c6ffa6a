"""What a report is made from: :class:`ReportInput`, a bundle of plain dicts.

The renderers read only these dicts (the ``to_dict()`` forms of the stage results),
so a report can be rebuilt from the store without the objects that produced it.
Every part except ``version`` may be missing; the report then says "not available".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["ReportInput"]

_DICTS = (
    "evaluation", "baseline", "audit", "split", "search", "learning_curve", "explanation",
    "previous_explanation", "previous",
)
_LISTS = ("gates", "acceptance", "fairness_criteria")


@dataclass(frozen=True)
class ReportInput:
    """Everything known about one model version, as JSON-like dicts.

    Attributes:
        version: the registry record: ``version``, ``family``, ``task``, ``created_at``,
            ``user``, ``data_version``, ``code_version``, ``params``, ``status``,
            ``primary``, ``test_fingerprint``, ``test_uses``, ``max_test_uses``.
        evaluation: ``Evaluation.to_dict()`` of the model on the sealed test set.
        baseline: ``Evaluation.to_dict()`` of the dummy baseline on the same rows.
        audit: ``AuditReport.to_dict()``.
        split: ``strategy``, ``sizes``, ``class_balance``, ``straddling_removed``,
            ``dropped_for_gap``, ``gap`` (``SplitPlan.to_dict()`` also fits).
        search: ``sampler``, ``best_family``, ``best_params``, ``best_value``, ``metric``
            (or ``primary_metric``) and ``trials`` (``SearchResult.to_dict()`` also fits).
        learning_curve: ``kind``, ``metric``, ``steps``, ``train``, ``validation`` and a
            ``diagnosis`` (``verdict``, ``reason`` or ``evidence``, ``action``).
        explanation: ``Explanation.to_dict()``: what the model leans on over the test rows.
        previous_explanation: ``{"version": n, "explanation": Explanation.to_dict()}`` of the
            newest earlier version that has one, for the side-by-side.
        previous: the earlier version the metrics are compared with: ``version``,
            ``metrics`` (its test metrics), ``test_fingerprint`` and ``n_rows`` (the rows it
            was scored on).
        gates: one dict per gate: ``name``, ``passed``, ``message``, ``evidence``.
        acceptance, fairness_criteria: ``Criterion.to_dict()`` lists.
        spec: ``ProjectSpec.to_dict()``.
    """

    version: dict[str, Any]
    evaluation: dict[str, Any] | None = None
    baseline: dict[str, Any] | None = None
    audit: dict[str, Any] | None = None
    split: dict[str, Any] | None = None
    search: dict[str, Any] | None = None
    learning_curve: dict[str, Any] | None = None
    gates: list[dict[str, Any]] = field(default_factory=list)
    acceptance: list[dict[str, Any]] = field(default_factory=list)
    fairness_criteria: list[dict[str, Any]] = field(default_factory=list)
    spec: dict[str, Any] = field(default_factory=dict)
    explanation: dict[str, Any] | None = None
    previous_explanation: dict[str, Any] | None = None
    previous: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.version, dict):
            raise TypeError(
                f"ReportInput.version must be a dict (the registry record), got "
                f"{type(self.version).__name__}; pass the version record's to_dict()"
            )
        for name in _DICTS:
            value = getattr(self, name)
            if value is not None and not isinstance(value, dict):
                raise TypeError(
                    f"ReportInput.{name} must be a dict or None, got {type(value).__name__}; "
                    "pass the result's to_dict()"
                )
        for name in _LISTS:
            value = getattr(self, name)
            if value is None:
                object.__setattr__(self, name, [])
            elif not isinstance(value, (list, tuple)) or not all(
                isinstance(v, dict) for v in value
            ):
                raise TypeError(
                    f"ReportInput.{name} must be a list of dicts, got {type(value).__name__}; "
                    "pass [item.to_dict() for item in ...]"
                )
            else:
                object.__setattr__(self, name, list(value))
        if self.spec is None:
            object.__setattr__(self, "spec", {})
        elif not isinstance(self.spec, dict):
            raise TypeError(
                f"ReportInput.spec must be a dict, got {type(self.spec).__name__}; "
                "pass ProjectSpec.to_dict()"
            )

    @property
    def primary(self) -> str | None:
        """The primary metric: the version's, else the evaluation's, else the spec's."""
        metrics = self.spec.get("metrics") or {}
        for candidate in (
            self.version.get("primary"),
            (self.evaluation or {}).get("primary"),
            metrics.get("primary") if isinstance(metrics, dict) else None,
        ):
            if candidate:
                return str(candidate)
        return None

    @property
    def task(self) -> str | None:
        """The task: the version's, else the evaluation's, else the spec's."""
        for candidate in (
            self.version.get("task"),
            (self.evaluation or {}).get("task"),
            self.spec.get("task"),
        ):
            if candidate:
                return str(candidate)
        return None

    @property
    def curve(self) -> dict[str, Any] | None:
        """The learning curve, falling back to the one a search result carries."""
        if self.learning_curve:
            return self.learning_curve
        search = self.search or {}
        curve = search.get("curve")
        if isinstance(curve, dict) and curve:
            out = dict(curve)
            if isinstance(search.get("diagnosis"), dict):
                out.setdefault("diagnosis", search["diagnosis"])
            return out
        return None

    def spec_section(self, name: str) -> dict[str, Any]:
        """One section of the spec as a dict ({} when absent)."""
        value = self.spec.get(name)
        return value if isinstance(value, dict) else {}

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable fields."""
        return {
            "version": dict(self.version),
            **{name: getattr(self, name) for name in _DICTS},
            **{name: list(getattr(self, name)) for name in _LISTS},
            "spec": dict(self.spec),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ReportInput:
        """Inverse of :meth:`to_dict`."""
        known = ("version", *_DICTS, *_LISTS, "spec")
        return cls(**{k: data[k] for k in known if k in data and data[k] is not None})
