"""The result objects of the search: trials, progress and the search result."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from assay.data.values import native
from assay.train.curves import Diagnosis, LearningCurve
from assay.train.objective import ObjectiveHints

__all__ = [
    "EnsembleMember",
    "EnsembleRecord",
    "LatencyCheck",
    "SamplerName",
    "SearchResult",
    "Selection",
    "TrialInfo",
    "TrialRecord",
    "TrialState",
]

SamplerName = Literal["tpe", "random", "grid"]
TrialState = Literal["complete", "pruned", "failed"]
Selection = Literal["validation", "cross_validation"]


@dataclass(frozen=True)
class TrialRecord:
    """One finished trial.

    Attributes:
        number: position in the whole search (0-based, across families).
        family: the family alias.
        params: the parameters drawn (search-space names).
        value: the primary metric on validation (``None`` unless complete).
        state: ``complete``, ``pruned`` or ``failed``.
        seconds: wall time of the trial.
        error: for a failed trial, the exception it raised.
        rejected: why a completed trial was refused as a finalist (e.g. its
            single-row p99 over ``serving.latency_p99_ms``), else ``None``.
    """

    number: int
    family: str
    params: dict[str, Any]
    value: float | None
    state: TrialState
    seconds: float
    error: str | None = None
    rejected: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict."""
        return {
            "number": self.number,
            "family": self.family,
            "params": {k: native(v, sequences=True) for k, v in self.params.items()},
            "value": self.value,
            "state": self.state,
            "seconds": self.seconds,
            "error": self.error,
            "rejected": self.rejected,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrialRecord:
        """The inverse of :meth:`to_dict`."""
        return cls(**{**data, "params": dict(data["params"])})


@dataclass(frozen=True)
class LatencyCheck:
    """A finalist's single-row latency, measured in the search against the SLA.

    Attributes:
        family, params, value: the configuration and its validation score (``family``
            is ``ensemble`` for a blend of candidates).
        p99_ms, p50_ms: the judged p99 (median round, re-measured when over) and p50.
        path: what was timed (the fast path or the pipeline).
        attempts: how many times it was measured.
        passed: within the SLA; a finalist that is not was rejected.
        reason: why it was rejected (or why it was kept anyway), else empty.
    """

    family: str
    params: dict[str, Any]
    value: float | None
    p99_ms: float | None
    p50_ms: float | None
    path: str
    attempts: int
    passed: bool
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict."""
        return {
            "family": self.family,
            "params": {k: native(v, sequences=True) for k, v in self.params.items()},
            "value": self.value,
            "p99_ms": self.p99_ms,
            "p50_ms": self.p50_ms,
            "path": self.path,
            "attempts": self.attempts,
            "passed": self.passed,
            "reason": self.reason,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LatencyCheck:
        """The inverse of :meth:`to_dict`."""
        return cls(**{**data, "params": dict(data["params"])})


@dataclass(frozen=True)
class EnsembleMember:
    """One member of a chosen ensemble.

    Attributes:
        family, params: the configuration (search-space names).
        weight: its share of the average (the weights sum to one).
        cv_value: its own cross-validated score.
        refit_params: what its refit on training + validation rows fixed.
    """

    family: str
    params: dict[str, Any]
    weight: float
    cv_value: float
    refit_params: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict."""
        return {
            "family": self.family,
            "params": {k: native(v, sequences=True) for k, v in self.params.items()},
            "weight": self.weight,
            "cv_value": self.cv_value,
            "refit_params": {k: native(v, sequences=True) for k, v in self.refit_params.items()},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EnsembleMember:
        """The inverse of :meth:`to_dict`."""
        return cls(
            family=data["family"],
            params=dict(data["params"]),
            weight=float(data["weight"]),
            cv_value=float(data["cv_value"]),
            refit_params=dict(data.get("refit_params", {})),
        )


@dataclass(frozen=True)
class EnsembleRecord:
    """The ensemble the search returned instead of a single model (small data).

    Attributes:
        members: the averaged configurations, heaviest first.
        cv_value: the ensemble's out-of-fold score (mean over the folds).
        single_value: the best single candidate's out-of-fold score, scored alike.
        threshold: a binary ensemble's decision threshold (``None``: argmax).
        fold_values: the ensemble's score on each fold (its weights were chosen
            on these predictions, so they lean optimistic).
    """

    members: tuple[EnsembleMember, ...]
    cv_value: float
    single_value: float
    threshold: float | None = None
    fold_values: tuple[float, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict."""
        return {
            "members": [m.to_dict() for m in self.members],
            "cv_value": self.cv_value,
            "single_value": self.single_value,
            "threshold": self.threshold,
            "fold_values": list(self.fold_values),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EnsembleRecord:
        """The inverse of :meth:`to_dict`."""
        return cls(
            members=tuple(EnsembleMember.from_dict(m) for m in data["members"]),
            cv_value=float(data["cv_value"]),
            single_value=float(data["single_value"]),
            threshold=None if data.get("threshold") is None else float(data["threshold"]),
            fold_values=tuple(float(v) for v in data.get("fold_values", ())),
        )


@dataclass(frozen=True)
class TrialInfo:
    """Progress after a trial: the trial, the best so far, and how many are planned."""

    trial: TrialRecord
    best_family: str | None
    best_value: float | None
    done: int
    planned: int | None


@dataclass(frozen=True)
class SearchResult:
    """The outcome of :func:`run_search`.

    Attributes:
        task, primary_metric, higher_is_better: what was optimised, and which way.
        sampler, seed: how.
        objective: the hints every family was built with.
        best_family, best_params, best_value: the winner and its validation score
            (the score of the searched model, fitted on the training rows); with an
            ensemble, its best single candidate.
        baseline_value: the dummy baseline's validation score.
        trials: every trial of every family, in order.
        curve, diagnosis: the searched model's learning curve and its verdict.
        skipped: families not searched, with the reason (e.g. task not supported).
        seconds: wall time of the whole search.
        selection: how the winning family was chosen: on the ``validation`` rows, or
            by ``cross_validation`` over training + validation rows (small data).
        cv_values: with cross-validation, each candidate family's mean fold score.
        refitted: the returned estimator was refitted on training + validation rows.
        refit_params: what the refit fixed (e.g. ``n_estimators``, ``max_epochs``).
        fit_rows: the rows the returned estimator was fitted on.
        ensemble: the members and weights when the returned estimator is an
            ensemble of cross-validated candidates, else ``None``.
        latency_sla_ms: the single-row p99 the finalists were held to (``None``: not
            checked in the search).
        latency_checks: each finalist's measured latency; those over the SLA were
            rejected (their trials carry the reason) and the next best was taken.
        latency_note: what happened when no finalist was within the SLA.
        estimator: the fitted best model (refitted when ``refitted``); not serialised.
        baseline: the fitted dummy model; not serialised.
        searched: the best model as fitted in the search (training rows, validation
            for early stopping and the threshold); not serialised.
    """

    task: str
    primary_metric: str
    higher_is_better: bool
    sampler: SamplerName
    seed: int
    objective: ObjectiveHints
    best_family: str
    best_params: dict[str, Any]
    best_value: float
    baseline_value: float
    trials: tuple[TrialRecord, ...]
    curve: LearningCurve | None
    diagnosis: Diagnosis | None
    skipped: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    selection: Selection = "validation"
    cv_values: dict[str, float] = field(default_factory=dict)
    refitted: bool = False
    refit_params: dict[str, Any] = field(default_factory=dict)
    fit_rows: int = 0
    ensemble: EnsembleRecord | None = None
    latency_sla_ms: float | None = None
    latency_checks: tuple[LatencyCheck, ...] = ()
    latency_note: str = ""
    estimator: Any = field(default=None, compare=False, repr=False)
    baseline: Any = field(default=None, compare=False, repr=False)
    searched: Any = field(default=None, compare=False, repr=False)

    @property
    def model_family(self) -> str:
        """What ``estimator`` is: the chosen family, or ``ensemble (a, b, ...)`` by weight."""
        if self.ensemble is None:
            return self.best_family
        names = dict.fromkeys(m.family for m in self.ensemble.members)
        return f"ensemble ({', '.join(names)})"

    @property
    def model_params(self) -> dict[str, Any]:
        """The parameters of ``estimator``: the chosen ones, or each member's with its weight."""
        if self.ensemble is None:
            return dict(self.best_params)
        return {
            "members": [
                {"family": m.family, "weight": m.weight, "params": dict(m.params)}
                for m in self.ensemble.members
            ]
        }

    def trials_of(self, family: str) -> list[TrialRecord]:
        """The trials of one family."""
        return [t for t in self.trials if t.family == family]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (without the fitted estimators)."""
        return {
            "task": self.task,
            "primary_metric": self.primary_metric,
            "higher_is_better": self.higher_is_better,
            "sampler": self.sampler,
            "seed": self.seed,
            "objective": self.objective.to_dict(),
            "best_family": self.best_family,
            "best_params": {k: native(v, sequences=True) for k, v in self.best_params.items()},
            "best_value": self.best_value,
            "baseline_value": self.baseline_value,
            "trials": [t.to_dict() for t in self.trials],
            "curve": None if self.curve is None else self.curve.to_dict(),
            "diagnosis": None if self.diagnosis is None else self.diagnosis.to_dict(),
            "skipped": dict(self.skipped),
            "seconds": self.seconds,
            "selection": self.selection,
            "cv_values": {k: float(v) for k, v in self.cv_values.items()},
            "refitted": self.refitted,
            "refit_params": {k: native(v, sequences=True) for k, v in self.refit_params.items()},
            "fit_rows": self.fit_rows,
            "ensemble": None if self.ensemble is None else self.ensemble.to_dict(),
            "latency_sla_ms": self.latency_sla_ms,
            "latency_checks": [c.to_dict() for c in self.latency_checks],
            "latency_note": self.latency_note,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SearchResult:
        """The inverse of :meth:`to_dict` (the fitted models are ``None``)."""
        return cls(
            task=data["task"],
            primary_metric=data["primary_metric"],
            higher_is_better=data["higher_is_better"],
            sampler=data["sampler"],
            seed=data["seed"],
            objective=ObjectiveHints.from_dict(data["objective"]),
            best_family=data["best_family"],
            best_params=dict(data["best_params"]),
            best_value=data["best_value"],
            baseline_value=data["baseline_value"],
            trials=tuple(TrialRecord.from_dict(t) for t in data["trials"]),
            curve=None if data.get("curve") is None else LearningCurve.from_dict(data["curve"]),
            diagnosis=(
                None if data.get("diagnosis") is None else Diagnosis.from_dict(data["diagnosis"])
            ),
            skipped=dict(data.get("skipped", {})),
            seconds=data.get("seconds", 0.0),
            selection=data.get("selection", "validation"),
            cv_values=dict(data.get("cv_values", {})),
            refitted=bool(data.get("refitted", False)),
            refit_params=dict(data.get("refit_params", {})),
            fit_rows=int(data.get("fit_rows", 0)),
            ensemble=(
                None
                if data.get("ensemble") is None
                else EnsembleRecord.from_dict(data["ensemble"])
            ),
            latency_sla_ms=data.get("latency_sla_ms"),
            latency_checks=tuple(
                LatencyCheck.from_dict(c) for c in data.get("latency_checks", ())
            ),
            latency_note=str(data.get("latency_note", "")),
        )
