"""The result of one monitoring pass: drift, live performance, flagged inputs and alerts."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from assay.monitor.alerts import AlertOutcome
from assay.monitor.attribution_drift import AttributionDrift
from assay.monitor.contract import ContractReport
from assay.monitor.drift import DriftReport
from assay.monitor.performance import LivePerformance

__all__ = ["FlaggedInputs", "MonitorReport"]


@dataclass(frozen=True)
class FlaggedInputs:
    """How many answered requests were flagged by validation, per flag code.

    Attributes:
        n_rows: predictions in the window.
        n_flagged: predictions with at least one flag.
        by_code: flag code -> share of the window's predictions carrying it
            (``unknown_category``, ``out_of_range``, ``unexpected_null``, ``unknown_field``).
        threshold: the share of flagged predictions from which an alert is raised.
        by_field: ``code:field`` -> share of the window's predictions carrying it (every
            flag names its field; the record's own ``truncated`` flag has no field).
    """

    n_rows: int
    n_flagged: int
    by_code: dict[str, float] = field(default_factory=dict)
    threshold: float = 0.05
    by_field: dict[str, float] = field(default_factory=dict)

    @property
    def share(self) -> float:
        """The share of predictions with at least one flag."""
        return self.n_flagged / self.n_rows if self.n_rows else 0.0

    @property
    def alarming(self) -> bool:
        """True when the flagged share reaches the threshold."""
        return self.n_rows > 0 and self.share >= self.threshold

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values."""
        return {
            "n_rows": self.n_rows,
            "n_flagged": self.n_flagged,
            "share": self.share,
            "by_code": dict(self.by_code),
            "by_field": dict(self.by_field),
            "threshold": self.threshold,
            "alarming": self.alarming,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FlaggedInputs:
        """The inverse of :meth:`to_dict`."""
        return cls(
            n_rows=int(data["n_rows"]),
            n_flagged=int(data["n_flagged"]),
            by_code={str(k): float(v) for k, v in data.get("by_code", {}).items()},
            threshold=float(data.get("threshold", 0.05)),
            by_field={str(k): float(v) for k, v in data.get("by_field", {}).items()},
        )


@dataclass(frozen=True)
class MonitorReport:
    """One monitoring pass over a window of traffic of the champion.

    Attributes:
        at: when the pass ran (UTC).
        version: the model version monitored (the champion).
        window: what traffic was read: ``{"kind": "predictions" | "span" | "file",
            "size"/"span"/"source", "first", "last"}``.
        n_rows: the rows in the window.
        drift: the drift of the inputs and the model outputs against the training
            reference.
        performance: live metrics from feedback labels against the registered test metrics.
        flagged: the shares of flagged inputs.
        alerts: the alerts raised, suppressed (already open) and resolved by this pass.
        verdict: ``ok``, ``acceptance_breach``, ``fairness_breach``, ``latency_breach``,
            ``data_drift``, ``concept_drift``, ``performance``, ``attribution_drift``,
            ``flagged_inputs`` or ``insufficient_data``: the main finding, for one-line
            summaries.
        report_id: the row of the stored report (``drift_reports``), None if not stored.
        notes: anything a reader should know (a reference rebuilt from the data, ...).
        contract: every acceptance threshold, fairness limit and the latency objective
            judged on the window (:mod:`assay.monitor.contract`).
        attribution: each input column's share of the mean absolute attribution on the
            window against the training reference (:mod:`assay.monitor.attribution_drift`).
    """

    at: datetime
    version: int
    window: dict[str, Any]
    n_rows: int
    drift: DriftReport
    performance: LivePerformance
    flagged: FlaggedInputs
    alerts: AlertOutcome = field(default_factory=AlertOutcome)
    verdict: str = "ok"
    report_id: int | None = None
    notes: tuple[str, ...] = ()
    contract: ContractReport = field(default_factory=ContractReport)
    attribution: AttributionDrift = field(default_factory=AttributionDrift)

    @property
    def healthy(self) -> bool:
        """True when no condition is alerting (raised now or still open)."""
        return not self.alerts.active

    @property
    def alert_kinds(self) -> tuple[str, ...]:
        """The kinds of the conditions present now, without repeats."""
        return tuple(dict.fromkeys(a.kind for a in self.alerts.active))

    @property
    def new_alert_kinds(self) -> tuple[str, ...]:
        """The kinds of the alerts raised by this pass (not the suppressed ones)."""
        return tuple(dict.fromkeys(a.kind for a in self.alerts.raised))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values."""
        return {
            "at": self.at.isoformat(),
            "version": self.version,
            "window": dict(self.window),
            "n_rows": self.n_rows,
            "verdict": self.verdict,
            "healthy": self.healthy,
            "drift": self.drift.to_dict(),
            "performance": self.performance.to_dict(),
            "flagged": self.flagged.to_dict(),
            "contract": self.contract.to_dict(),
            "attribution": self.attribution.to_dict(),
            "alerts": self.alerts.to_dict(),
            "report_id": self.report_id,
            "notes": list(self.notes),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MonitorReport:
        """The inverse of :meth:`to_dict`."""
        report_id = data.get("report_id")
        return cls(
            at=datetime.fromisoformat(data["at"]),
            version=int(data["version"]),
            window=dict(data["window"]),
            n_rows=int(data["n_rows"]),
            drift=DriftReport.from_dict(data["drift"]),
            performance=LivePerformance.from_dict(data["performance"]),
            flagged=FlaggedInputs.from_dict(data["flagged"]),
            alerts=AlertOutcome.from_dict(data.get("alerts", {})),
            verdict=str(data.get("verdict", "ok")),
            report_id=int(report_id) if report_id is not None else None,
            notes=tuple(data.get("notes", [])),
            contract=ContractReport.from_dict(data.get("contract")),
            attribution=AttributionDrift.from_dict(data.get("attribution")),
        )
