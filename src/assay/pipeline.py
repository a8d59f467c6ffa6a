"""``assay run``: audit -> split -> train/search -> evaluate -> register -> gate.

Each stage is a library call with a typed result; this module strings them
together for one project, records every step in the store, and returns a
:class:`RunResult`. The sealed test set is scored only once a candidate is
chosen, and every scoring of it is recorded as an access.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from assay.candidate import (
    Listener,
    StageEvent,
    build_candidate,
    code_version,
    compare_with_champion,
    cross_validate,
    evaluated_metrics,
    feature_schema,
    metric_summary,
    resolve_text_column,
    search_options,
    split_summary,
)
from assay.config.spec import ProjectSpec
from assay.data.dataset import Dataset
from assay.data_audit import audit_project_data
from assay.errors import ConfigError, GateFailed
from assay.evaluate.calibration import Recalibration
from assay.evaluate.mitigation import MitigationComparison
from assay.gate import GateDecision, decide
from assay.lifecycle import registered_test_uses, write_version_report
from assay.project import Project
from assay.registry import ModelRegistry, RunStatus, open_registry

__all__ = [
    "RunResult",
    "StageEvent",
    "code_version",
    "compare_with_champion",
    "cross_validate",
    "evaluated_metrics",
    "feature_schema",
    "metric_summary",
    "open_registry",
    "resolve_text_column",
    "run_project",
    "search_options",
    "split_summary",
]


@dataclass(frozen=True)
class RunResult:
    """What one ``assay run`` did and decided."""

    run_id: int
    version: int
    family: str
    primary: str
    validation_value: float
    test_value: float | None
    baseline_value: float | None
    test_metrics: dict[str, Any]
    gate: GateDecision
    promoted: bool
    champion: int | None
    test_fingerprint: str
    test_uses: int
    max_test_uses: int
    split: dict[str, Any]
    diagnosis: dict[str, Any] | None
    audit_id: int
    warnings: tuple[str, ...] = ()
    report: str | None = None
    seconds: float = 0.0
    stage_seconds: dict[str, float] = field(default_factory=dict)
    recalibration: Recalibration | None = None
    mitigation: MitigationComparison | None = None
    #: why the gates passed but the version waits for an explicit ``assay promote``
    review: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "version": self.version,
            "family": self.family,
            "primary": self.primary,
            "validation_value": self.validation_value,
            "test_value": self.test_value,
            "baseline_value": self.baseline_value,
            "test_metrics": self.test_metrics,
            "gate": self.gate.to_dict(),
            "promoted": self.promoted,
            "champion": self.champion,
            "test_fingerprint": self.test_fingerprint,
            "test_uses": self.test_uses,
            "max_test_uses": self.max_test_uses,
            "split": self.split,
            "diagnosis": self.diagnosis,
            "audit_id": self.audit_id,
            "warnings": list(self.warnings),
            "report": self.report,
            "seconds": round(self.seconds, 3),
            "stage_seconds": {k: round(v, 3) for k, v in self.stage_seconds.items()},
            "recalibration": self.recalibration.to_dict() if self.recalibration else None,
            "mitigation": self.mitigation.to_dict() if self.mitigation else None,
            "review": list(self.review),
        }


def run_project(
    project: Project,
    *,
    registry: ModelRegistry | None = None,
    listener: Listener | None = None,
    write_report: bool = True,
    accept: Sequence[str] = (),
) -> RunResult:
    """Run the whole path for ``project`` and return what was decided.

    ``accept`` names audit checks whose blocking findings the run goes on despite (they
    are kept in the recorded audit as warnings saying who accepted them).

    Raises:
        GateFailed: the data audit has a blocking finding (nothing is trained).
        ConfigError, DataError: unusable framing or data.
    """
    started = time.perf_counter()
    say = listener or (lambda event: None)
    spec = project.spec
    registry = registry or open_registry(project)
    seconds: dict[str, float] = {}

    def stage(name: str, message: str) -> float:
        say(StageEvent(name, message))
        return time.perf_counter()

    t = stage("load", f"loading {spec.data.source}")
    dataset = project.load_data()
    seconds["load"] = time.perf_counter() - t

    _check_acceptance_computable(spec, dataset)
    t = stage("audit", f"auditing {dataset.n_rows:,} rows")
    report = audit_project_data(project, dataset, accept=accept)
    audit_id = registry.record_audit(report.to_dict(), dataset.version, report.passed)
    seconds["audit"] = time.perf_counter() - t
    if not report.passed:
        blocking = "; ".join(f"{f.check} ({', '.join(f.columns)}): {f.message}" for f in report.blocking)
        raise GateFailed(
            f"the data audit has {len(report.blocking)} blocking finding(s): {blocking}",
            where=project.data_label,
            fix="Fix the data or add the columns to data.drop in assay.yaml; "
            "'assay audit' shows every finding; --accept CHECK goes on despite a finding "
            "you have judged.",
        )

    code = code_version(project)
    run_id = registry.start_run(
        spec.to_dict(), dataset.version, code,
        seeds={"seed": spec.seed, "split": spec.seed, "search": spec.seed},
    )
    try:
        result = _train_and_decide(
            project, registry, dataset, run_id, audit_id, say, seconds, write_report, code
        )
    except BaseException as exc:
        status: RunStatus = "cancelled" if isinstance(exc, KeyboardInterrupt) else "failed"
        try:
            registry.finish_run(run_id, status, {"error": str(exc)})
        except Exception:  # noqa: BLE001 - the original error matters more
            pass
        raise
    return replace(result, seconds=time.perf_counter() - started, stage_seconds=dict(seconds))


def _train_and_decide(
    project: Project,
    registry: ModelRegistry,
    dataset: Dataset,
    run_id: int,
    audit_id: int,
    say: Listener,
    seconds: dict[str, float],
    write_report: bool,
    code: str,
) -> RunResult:
    spec = project.spec
    candidate = build_candidate(
        project, registry, dataset, run_id=run_id, audit_id=audit_id,
        reason=f"assay run {run_id}", code=code, listener=say,
    )
    seconds.update(candidate.seconds)
    warnings = list(candidate.warnings)
    plan, search, evaluation, baseline = (
        candidate.plan, candidate.search, candidate.evaluation, candidate.baseline
    )
    version = candidate.record

    t = time.perf_counter()
    say(StageEvent("gate", "checking the gates"))
    test = plan.take(dataset.frame, "test")
    champion = registry.champion()
    # the whole test rows: the champion scores its own columns, even ones data.drop now
    # keeps out of the candidate's features
    comparison, note = compare_with_champion(
        registry, champion.version if champion else None, candidate.model,
        test.drop(columns=[spec.data.target]), test[spec.data.target], spec, run_id,
        plan.test_fingerprint, features=list(candidate.features),
    )
    dropped = set(spec.data.drop)
    retired = tuple(
        c for c in (champion.lineage.features if champion else ()) if c in dropped
    )
    decision = decide(
        evaluation, spec, comparison=comparison,
        champion_version=champion.version if champion else None, champion_note=note,
        baseline_value=baseline.metrics.get(spec.primary_metric),
        baseline=candidate.baseline_comparison, champion_comparable=not note,
        champion_retired=retired,
    )
    registry.record_gate(version.version, decision.passed, [g.to_dict() for g in decision.gates])
    promoted = False
    if decision.passed and not decision.review:
        registry.promote(
            version.version, gate_passed=True, reason=f"assay run {run_id}: every gate passed"
        )
        promoted = True
    seconds["gate"] = time.perf_counter() - t

    uses = registry.test_access_count(plan.test_fingerprint)
    registered_uses = registered_test_uses(registry, plan.test_fingerprint)
    if registered_uses > spec.gate.max_test_uses:
        warnings.append(
            f"the sealed test set has now scored {registered_uses} registered candidates "
            f"(more than {spec.gate.max_test_uses}): its metrics are optimistically biased; "
            "collect fresh test data or change split.seed"
        )
    report_path = None
    if write_report:
        report_path = str(write_version_report(project, registry, version.version))
    registry.finish_run(
        run_id, "succeeded",
        {"version": version.version, "gate_passed": decision.passed, "promoted": promoted,
         "review": decision.review, "warnings": warnings},
    )
    test_value = evaluation.metrics.get(spec.primary_metric)
    return RunResult(
        run_id=run_id,
        version=version.version,
        family=search.model_family,
        primary=spec.primary_metric,
        validation_value=search.best_value,
        test_value=test_value,
        baseline_value=baseline.metrics.get(spec.primary_metric),
        test_metrics=dict(evaluation.metrics),
        gate=decision,
        promoted=promoted,
        champion=registry.alias("champion"),
        test_fingerprint=plan.test_fingerprint,
        test_uses=uses,
        max_test_uses=spec.gate.max_test_uses,
        split=split_summary(plan),
        diagnosis=search.diagnosis.to_dict() if search.diagnosis else None,
        audit_id=audit_id,
        warnings=tuple(warnings),
        report=report_path,
        recalibration=evaluation.recalibration,
        mitigation=evaluation.mitigation,
        review=tuple(decision.review) if decision.passed else (),
    )


def _check_acceptance_computable(spec: ProjectSpec, dataset: Dataset) -> None:
    """Refuse, before any training, acceptance criteria that cannot be evaluated on this data."""
    target = dataset.frame[spec.data.target].dropna()
    if "mape" in spec.acceptance and (target == 0).any():
        raise ConfigError(
            "MAPE is undefined because the target is 0 in some rows, so this criterion can never "
            "be evaluated",
            key="acceptance.mape",
            received=f"{int((target == 0).sum())} rows with target 0",
            fix="Use mae or rmse in acceptance instead.",
        )
