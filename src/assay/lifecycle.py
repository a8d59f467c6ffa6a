"""Working with registered versions: list, inspect, promote, roll back, report.

Thin library functions over the registry that the CLI (and later the server)
call; each returns plain typed values and raises assay errors.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from assay.errors import GateFailed, NotFoundError
from assay.evaluate import Evaluation
from assay.project import Project
from assay.registry import ModelRegistry, ModelVersion

__all__ = [
    "evaluation_of",
    "promote_version",
    "registered_test_uses",
    "report_input",
    "rollback_champion",
    "write_version_report",
]


def registered_test_uses(registry: ModelRegistry, fingerprint: str) -> int:
    """How many registered candidates the sealed test set ``fingerprint`` has scored."""
    accesses = registry.test_accesses(fingerprint)
    return len({a.version for a in accesses if a.purpose == "register"})


def evaluation_of(registry: ModelRegistry, version: int) -> Evaluation:
    """The stored evaluation of ``version`` on its sealed test set."""
    record = registry.get(version)
    digest = record.lineage.evaluation
    if not digest:
        raise NotFoundError(
            f"model version {version} has no stored evaluation",
            where=f"model version {version}",
            fix="Register it with 'assay run'.",
        )
    return Evaluation.from_dict(registry.load_json(digest))


def promote_version(
    registry: ModelRegistry, version: int, *, reason: str | None, force: bool, actor: str | None = None
) -> ModelVersion:
    """Make ``version`` champion if its latest gate decision passed (or ``force`` with a reason)."""
    registry.get(version)
    decision = registry.latest_gate(version)
    passed = bool(decision and decision.passed)
    if not passed and not force:
        failed = []
        if decision is not None:
            failed = [g.get("name", "?") for g in decision.gates if not g.get("passed")]
        why = f"failed gates: {', '.join(failed)}" if failed else "no gate decision recorded"
        raise GateFailed(
            f"model version {version} cannot be promoted ({why})",
            where=f"model version {version}",
            fix="See 'assay evaluate " + str(version) + "'; to override, pass --force with --reason "
            "(recorded in the audit trail).",
        )
    return registry.promote(version, actor=actor, reason=reason, force=force, gate_passed=passed)


def rollback_champion(registry: ModelRegistry, *, reason: str | None, actor: str | None = None) -> ModelVersion:
    """Put the previous champion back."""
    return registry.rollback(actor=actor, reason=reason)


def report_input(project: Project, registry: ModelRegistry, version: int) -> Any:
    """Everything the HTML report of ``version`` shows, loaded from the store."""
    from assay.report import ReportInput

    record = registry.get(version)
    lineage = record.lineage
    load = registry.load_json

    def optional(digest: str | None) -> Any:
        return load(digest) if digest else None

    evaluation = optional(lineage.evaluation) or {}
    audit = None
    if lineage.audit_id is not None:
        try:
            audit = registry.get_audit(int(lineage.audit_id)).report
        except NotFoundError:
            audit = None
    search = optional(lineage.search)
    curve = None
    if search and search.get("curve"):
        curve = {**search["curve"], "diagnosis": search.get("diagnosis")}
    decision = registry.latest_gate(version)
    gates = list(decision.gates) if decision else []
    acceptance: list[Any] = next((g.get("evidence", {}).get("criteria", []) for g in gates
                       if g.get("name") == "acceptance"), [])
    fairness: list[Any] = next((g.get("evidence", {}).get("criteria", []) for g in gates
                     if g.get("name") == "fairness"), [])
    spec = record.config
    max_uses = (spec.get("gate") or {}).get("max_test_uses", 5)
    uses = registered_test_uses(registry, record.test_fingerprint) if record.test_fingerprint else 0
    search_summary = None
    if search:
        search_summary = {
            "sampler": search.get("sampler"), "best_family": search.get("best_family"),
            "best_params": search.get("best_params"), "best_value": search.get("best_value"),
            "metric": search.get("primary_metric"), "trials": search.get("trials", []),
            "ensemble": search.get("ensemble"),
            "latency_sla_ms": search.get("latency_sla_ms"),
            "latency_checks": search.get("latency_checks", []),
            "latency_note": search.get("latency_note", ""),
        }
    previous_explanation = _previous_explanation(registry, version)
    return ReportInput(
        version={
            "version": record.version, "family": record.family, "task": record.task,
            "created_at": record.created_at.isoformat(), "user": record.user,
            "data_version": record.data_version, "code_version": record.code_version,
            "params": record.params, "status": record.status,
            "primary": (record.metrics or {}).get("primary") or evaluation.get("primary"),
            "test_fingerprint": record.test_fingerprint, "test_uses": uses,
            "max_test_uses": max_uses, "artifact": record.artifact_digest,
        },
        evaluation=evaluation,
        baseline=optional(lineage.baseline),
        audit=audit,
        split=lineage.split,
        search=search_summary,
        learning_curve=curve,
        explanation=optional(lineage.explanation),
        previous_explanation=previous_explanation,
        previous=_previous_metrics(registry, version, previous_explanation),
        gates=gates,
        acceptance=acceptance,
        fairness_criteria=fairness,
        spec=spec,
    )


def _previous_explanation(registry: ModelRegistry, version: int) -> dict[str, Any] | None:
    """The newest earlier version's explanation, with its number (``{"version", "explanation"}``),
    for the report's side-by-side; None when no earlier version has one."""
    earlier = sorted((r for r in registry.list() if r.version < version and r.lineage.explanation),
                     key=lambda r: r.version)
    if not earlier:
        return None
    record = earlier[-1]
    digest = record.lineage.explanation
    assert digest is not None  # filtered above
    return {"version": record.version, "explanation": registry.load_json(digest)}


def _previous_metrics(
    registry: ModelRegistry, version: int, previous_explanation: dict[str, Any] | None
) -> dict[str, Any] | None:
    """The test metrics of the version the importance side-by-side compares with (else the
    newest earlier version with an evaluation), with the test rows it was scored on."""
    wanted = (previous_explanation or {}).get("version")
    earlier = sorted((r for r in registry.list() if r.version < version and r.lineage.evaluation),
                     key=lambda r: r.version)
    chosen = [r for r in earlier if r.version == wanted] or earlier[-1:]
    if not chosen:
        return None
    record = chosen[0]
    digest = record.lineage.evaluation
    assert digest is not None  # filtered above
    evaluation = registry.load_json(digest) or {}
    return {"version": record.version, "metrics": dict(evaluation.get("metrics") or {}),
            "n_rows": evaluation.get("n_rows"), "test_fingerprint": record.test_fingerprint}


def write_version_report(
    project: Project, registry: ModelRegistry, version: int, path: Path | None = None
) -> Path:
    """Write the HTML report (and model card beside it) of ``version``; return the HTML path."""
    from assay.report import write_report

    target = path or project.state_dir / "reports" / f"v{version}.html"
    target.parent.mkdir(parents=True, exist_ok=True)
    return write_report(report_input(project, registry, version), target)
