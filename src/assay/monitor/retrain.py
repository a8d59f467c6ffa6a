"""``assay retrain``: refresh the model on recent labelled traffic, shadow it, then decide.

A retrain is a sequence of steps, each recorded in the audit trail as a ``retrain``
event with ``details = {"retrain_id", "step", ...}``:

``started`` -> ``data`` -> ``training`` -> ``registered`` -> ``offline`` -> ``shadow``
-> ``decided`` -> ``promoted`` | ``rejected``

(terminal early: ``skipped`` when there is nothing new to learn from, ``blocked`` when
the refreshed data fails its audit, ``failed`` on an error, ``abandoned`` when a run
was interrupted before its candidate could be judged).

1. *data*: the project's data plus the labelled logged traffic of the last
   ``retrain.horizon_days`` (answered predictions only), labels that copy the model's
   own predictions excluded (:func:`assay.monitor.performance.detect_feedback_loop`),
   rows validated against the training schema, traffic rows that duplicate another
   row dropped (:mod:`assay.data.keys`); the result is audited like any data and kept
   as a Parquet artifact (lineage ``training_data``);
2. *training*: the same spec (split, search, evaluation) registers a candidate;
3. *offline*: every promotion gate, the champion gate computed on a fresh holdout:
   the candidate's sealed test rows that the champion never saw (the newest labelled
   traffic among them);
4. *shadow*: the candidate is deployed in shadow until ``retrain.shadow_predictions``
   requests were scored by both models; a later call (``assay retrain`` or the next
   ``assay watch`` iteration) compares them: the candidate must have scored (almost)
   every request and, where labels arrived, not be significantly worse;
5. *decided*: promoted when every gate holds, else rejected with the reasons.

Only one retrain runs at a time (a lock file in ``.assay/``). The champion serves
throughout: nothing changes it before the final step, and promotion is one
transaction. After a crash, the next call resumes a retrain that got past its offline
judgement (shadowing or deciding), and otherwise abandons it (the candidate is
rejected, its run closed) and starts over.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal

from assay.config.metrics import CLASSIFICATION_TASKS
from assay.errors import AssayError, NotFoundError, StoreError
from assay.gate import GateResult
from assay.monitor._candidate import (
    MIN_HOLDOUT,
    _Assembled,
    _assemble,
    assemble_training_data,
    train_candidate,
)
from assay.monitor._shadow import (
    MIN_SHADOW_COVERAGE,
    ShadowComparison,
    shadow_comparison,
    shadow_gates,
)
from assay.project import Project
from assay.registry import ModelRegistry, ModelVersion
from assay.store.database import utcnow

__all__ = [
    "MIN_HOLDOUT",
    "MIN_SHADOW_COVERAGE",
    "STEPS",
    "TERMINAL_STEPS",
    "RetrainResult",
    "RetrainState",
    "RetrainStatus",
    "ShadowComparison",
    "assemble_training_data",
    "retrain_project",
    "retrain_state",
    "shadow_comparison",
    "shadow_gates",
]

#: the steps of a retrain, in order
STEPS = ("started", "data", "training", "registered", "offline", "shadow", "decided")
#: the steps that end a retrain
TERMINAL_STEPS = ("skipped", "blocked", "promoted", "rejected", "failed", "abandoned")

RetrainStatus = Literal["skipped", "blocked", "shadowing", "promoted", "rejected", "failed"]
StepHook = Callable[[str], None]


# -- state in the audit trail ---------------------------------------------------------


@dataclass(frozen=True)
class RetrainState:
    """The steps recorded so far by one retrain (oldest first)."""

    retrain_id: str
    steps: tuple[dict[str, Any], ...]
    reason: str | None = None

    @property
    def step(self) -> str:
        """The last step recorded."""
        return str(self.steps[-1]["step"])

    @property
    def finished(self) -> bool:
        """True once a terminal step is recorded."""
        return self.step in TERMINAL_STEPS

    def get(self, key: str, default: Any = None) -> Any:
        """The latest value of ``key`` among the steps' details."""
        for details in reversed(self.steps):
            if key in details:
                return details[key]
        return default


def retrain_state(registry: ModelRegistry, retrain_id: str | None = None) -> RetrainState | None:
    """The newest retrain (or ``retrain_id``) as recorded in the audit trail; None if none."""
    events = registry.events(action="retrain", limit=500)
    if not events:
        return None
    wanted = retrain_id or str(events[0].details.get("retrain_id"))
    mine = [e for e in reversed(events) if str(e.details.get("retrain_id")) == wanted]
    if not mine:
        return None
    return RetrainState(wanted, tuple(dict(e.details) for e in mine), mine[0].reason)


# -- results ------------------------------------------------------------------------


@dataclass(frozen=True)
class RetrainResult:
    """What one call of :func:`retrain_project` did.

    Attributes:
        retrain_id: the retrain the call worked on.
        status: ``skipped``, ``blocked``, ``shadowing`` (waiting for shadow traffic; call
            again later), ``promoted``, ``rejected`` or ``failed``.
        reason: why the retrain was started.
        message: why it ended this way, in one line.
        champion: the champion when it started.
        candidate: the registered candidate, if any.
        steps: the steps this call recorded.
        resumed: True when the call continued a retrain started earlier.
        abandoned: an interrupted retrain this call cleaned up first, if any.
        data: rows used (original, traffic, excluded, duplicates) and the data version.
        gates: every gate result (offline and shadow).
        shadow: the shadow comparison, once computed.
    """

    retrain_id: str
    status: RetrainStatus
    reason: str
    message: str
    champion: int | None = None
    candidate: int | None = None
    steps: tuple[str, ...] = ()
    resumed: bool = False
    abandoned: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    gates: tuple[dict[str, Any], ...] = ()
    shadow: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values."""
        return {
            "retrain_id": self.retrain_id,
            "status": self.status,
            "reason": self.reason,
            "message": self.message,
            "champion": self.champion,
            "candidate": self.candidate,
            "steps": list(self.steps),
            "resumed": self.resumed,
            "abandoned": self.abandoned,
            "data": dict(self.data),
            "gates": [dict(g) for g in self.gates],
            "shadow": self.shadow,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RetrainResult:
        """The inverse of :meth:`to_dict`."""
        return cls(
            retrain_id=str(data["retrain_id"]),
            status=data["status"],
            reason=str(data["reason"]),
            message=str(data["message"]),
            champion=data.get("champion"),
            candidate=data.get("candidate"),
            steps=tuple(data.get("steps", [])),
            resumed=bool(data.get("resumed", False)),
            abandoned=data.get("abandoned"),
            data=dict(data.get("data", {})),
            gates=tuple(dict(g) for g in data.get("gates", [])),
            shadow=data.get("shadow"),
        )


# -- the steps ----------------------------------------------------------------------


def retrain_project(
    project: Project,
    *,
    reason: str = "manual",
    registry: ModelRegistry | None = None,
    actor: str | None = None,
    on_step: StepHook | None = None,
    lock_wait: float | None = 0.0,
    now: datetime | None = None,
) -> RetrainResult:
    """Start a retrain, or continue the one in progress (see the module doc).

    Args:
        project: the project.
        reason: why (kept in the audit trail); ignored when a retrain is resumed.
        registry: the project's registry (default: opened from the project).
        actor: who acts (default: the current user).
        on_step: called with each step's name right after it is recorded.
        lock_wait: seconds to wait for another retrain to finish (None: forever).
        now: the time used for the traffic horizon (default: now).

    Raises:
        NotFoundError: there is no champion to retrain.
        StoreError: another retrain holds the lock.
    """
    if registry is None:
        from assay.registry import open_registry

        registry = open_registry(project)
    from assay.store.lock import ProcessLock

    lock = ProcessLock(project.state_dir / "retrain.lock", "retraining this project")
    lock.acquire(wait=lock_wait)
    try:
        return _Retrain(project, registry, actor, on_step, now or utcnow()).run(reason)
    finally:
        lock.release()


class _Retrain:
    """One call of :func:`retrain_project`: the steps, with what they record."""

    def __init__(
        self,
        project: Project,
        registry: ModelRegistry,
        actor: str | None,
        on_step: StepHook | None,
        now: datetime,
    ) -> None:
        self.project = project
        self.spec = project.spec
        self.registry = registry
        self.actor = actor
        self.on_step = on_step
        self.now = now
        self.done: list[str] = []
        self.abandoned: str | None = None

    # -- plumbing ---------------------------------------------------------------

    def step(self, rid: str, name: str, version: int | None, reason: str | None, **details: Any) -> None:
        self.registry.record_event(
            "retrain", actor=self.actor, version=version, reason=reason,
            details={"retrain_id": rid, "step": name, **details},
        )
        self.done.append(name)
        if self.on_step is not None:
            self.on_step(name)

    def result(self, state: RetrainState, status: RetrainStatus, message: str) -> RetrainResult:
        gates = [*state.get("gates", []), *state.get("shadow_gates", [])]
        return RetrainResult(
            retrain_id=state.retrain_id,
            status=status,
            reason=state.reason or "",
            message=message,
            champion=state.get("champion"),
            candidate=state.get("candidate"),
            steps=tuple(self.done),
            resumed=bool(state.steps) and state.steps[0]["step"] == "started"
            and "started" not in self.done,
            abandoned=self.abandoned,
            data=dict(state.get("data", {})),
            gates=tuple(gates),
            shadow=state.get("shadow"),
        )

    def state(self, rid: str) -> RetrainState:
        found = retrain_state(self.registry, rid)
        if found is None:  # pragma: no cover - a recorded step always reads back
            raise StoreError(f"retrain {rid} has no recorded steps", where="events")
        return found

    # -- entry --------------------------------------------------------------------

    def run(self, reason: str) -> RetrainResult:
        state = retrain_state(self.registry)
        try:
            if state is not None and not state.finished:
                resumed = self.resume(state)
                if resumed is not None:
                    return resumed
            return self.start(reason)
        except Exception as exc:
            current = retrain_state(self.registry)
            if current is not None and not current.finished:
                self.close(current, "failed", f"{type(exc).__name__}: {exc}")
            raise

    def resume(self, state: RetrainState) -> RetrainResult | None:
        step = state.step
        if step == "offline" and state.get("passed"):
            return self.shadow_start(state)
        if step == "offline":
            return self.decide(state, False, state.get("why", "the offline gates failed"), [])
        if step == "shadow":
            return self.shadow_check(state)
        if step == "decided":
            return self.apply(state)
        self.close(state, "abandoned", f"interrupted at step '{step}'; started over")
        self.abandoned = state.retrain_id
        return None

    # -- offline ------------------------------------------------------------------

    def start(self, reason: str) -> RetrainResult:
        champion = self.registry.champion()
        if champion is None:
            raise NotFoundError(
                "there is no champion to retrain",
                where=self.registry.store.url,
                expected="a promoted model version",
                received="no champion",
                fix="Run `assay run` first; retraining refreshes a model that is serving.",
            )
        rid = uuid.uuid4().hex[:12]
        self.step(rid, "started", champion.version, reason, champion=champion.version)
        data = _assemble(self.project, self.registry, champion, self.now)
        summary = data.summary
        self.step(rid, "data", champion.version, reason, data=summary)
        if summary["traffic_rows"] == 0 and summary["original_version"] == champion.data_version:
            loop = data.feedback_loop
            why = "no labelled recent traffic and the project data is unchanged: nothing new to learn"
            if loop is not None and loop.detected:
                why += f" ({loop.message})"
            self.step(rid, "skipped", champion.version, reason, why=why)
            return self.result(self.state(rid), "skipped", why)
        return self.train(rid, reason, champion, data)

    def train(self, rid: str, reason: str, champion: ModelVersion, data: _Assembled) -> RetrainResult:
        from assay.audit.runner import audit
        from assay.data.dataset import Dataset

        source = f"retrain {rid}: {self.project.data_label} + {data.summary['traffic_rows']} logged rows"
        dataset = Dataset.from_frame(data.frame, source=source, label_version=data.label_version)
        report = audit(dataset, self.spec, root=self.project.root)
        audit_id = self.registry.record_audit(report.to_dict(), dataset.version, report.passed)
        if not report.passed:
            blocking = "; ".join(
                f"{f.check} ({', '.join(f.columns)}): {f.message}" for f in report.blocking
            )
            why = f"the refreshed data fails its audit ({audit_id}): {blocking}"
            self.step(rid, "blocked", champion.version, reason, why=why, audit_id=audit_id)
            return self.result(self.state(rid), "blocked", why)
        run_id = self.registry.start_run(
            self.spec.to_dict(), dataset.version, _code_version(self.project),
            seeds={"seed": self.spec.seed, "split": self.spec.seed, "search": self.spec.seed},
        )
        self.step(rid, "training", champion.version, reason, run_id=run_id, audit_id=audit_id,
                  data_version=dataset.version)
        try:
            candidate = train_candidate(
                self.project, self.registry, dataset, data, champion, rid, reason, run_id, audit_id
            )
        except Exception as exc:
            self.registry.finish_run(run_id, "failed", {"error": str(exc), "retrain_id": rid})
            raise
        self.step(rid, "registered", candidate.version, reason, candidate=candidate.version)
        self.registry.finish_run(
            run_id, "succeeded",
            {"version": candidate.version, "retrain_id": rid, "gate_passed": candidate.decision.passed},
        )
        failed = [g.name for g in candidate.decision.failed]
        why = (
            "every offline gate passed" if not failed
            else "failed offline gates: " + "; ".join(
                f"{g.name}: {g.message}" for g in candidate.decision.failed
            )
        )
        self.step(
            rid, "offline", candidate.version, reason, candidate=candidate.version,
            passed=candidate.decision.passed,
            gates=[g.to_dict() for g in candidate.decision.gates],
            holdout=candidate.holdout, why=why,
        )
        state = self.state(rid)
        if not candidate.decision.passed:
            return self.decide(state, False, why, [])
        return self.shadow_start(state)

    # -- shadow -------------------------------------------------------------------

    def shadow_start(self, state: RetrainState) -> RetrainResult:
        from assay.model.deployments import active_deployment, deploy

        rid, candidate = state.retrain_id, int(state.get("candidate"))
        if self.spec.retrain.shadow_predictions == 0:
            return self.decide(state, True, "every offline gate passed (no shadow configured)", [])
        current = active_deployment(self.registry)
        if current is not None and current.version == candidate and current.mode == "shadow":
            deployment = current
        else:
            deployment = deploy(
                self.registry, candidate, mode="shadow", actor=self.actor,
                reason=f"retrain {rid}: shadow before promotion",
            )
        self.step(
            rid, "shadow", candidate, state.reason, candidate=candidate,
            deployment=deployment.id, since=deployment.created_at.isoformat(),
            needed=self.spec.retrain.shadow_predictions,
        )
        return self.shadow_check(self.state(rid))

    def shadow_check(self, state: RetrainState) -> RetrainResult:
        from assay.model.deployments import active_deployment

        rid, candidate = state.retrain_id, int(state.get("candidate"))
        champion = int(state.get("champion"))
        current = self.registry.alias("champion")
        if current == candidate:
            self.step(rid, "promoted", candidate, state.reason, candidate=candidate,
                      why="the candidate was promoted outside the retrain")
            return self.result(self.state(rid), "promoted", "the candidate is already the champion")
        if current != champion:
            why = f"the champion changed from v{champion} to v{current} during the shadow"
            self.close(state, "rejected", why)
            return self.result(self.state(rid), "rejected", why)
        deployment = active_deployment(self.registry)
        if deployment is None or deployment.version != candidate:
            why = f"the shadow deployment of v{candidate} was ended or replaced"
            self.close(state, "rejected", why)
            return self.result(self.state(rid), "rejected", why)
        record = self.registry.get(candidate)
        test = (self.registry.get(champion).metrics or {}).get("test") or {}
        accuracy = test.get("accuracy")
        shadow = shadow_comparison(
            self.registry, champion=champion, candidate=candidate,
            since=datetime.fromisoformat(state.get("since")), task=record.task,
            classes=(
                list(record.lineage.classes) or None
                if record.task in CLASSIFICATION_TASKS else None
            ),
            primary=self.spec.primary_metric,
            test_accuracy=float(accuracy) if accuracy is not None else None, seed=self.spec.seed,
        )
        needed = int(state.get("needed", self.spec.retrain.shadow_predictions))
        if shadow.n_paired < needed:
            message = (
                f"v{candidate} is in shadow: {shadow.n_paired} of {needed} shadowed predictions "
                "so far; run again later"
            )
            return replace(self.result(state, "shadowing", message), shadow=shadow.to_dict())
        gates = shadow_gates(shadow)
        passed = all(g.passed for g in gates)
        why = (
            "every offline and shadow gate passed" if passed
            else "failed shadow gates: " + "; ".join(f"{g.name}: {g.message}" for g in gates if not g.passed)
        )
        return self.decide(state, passed, why, gates, shadow)

    # -- decision -----------------------------------------------------------------

    def decide(
        self,
        state: RetrainState,
        passed: bool,
        why: str,
        shadow_gates: Sequence[GateResult],
        shadow: ShadowComparison | None = None,
    ) -> RetrainResult:
        rid, candidate = state.retrain_id, int(state.get("candidate"))
        gates = [*state.get("gates", []), *[g.to_dict() for g in shadow_gates]]
        all_passed = passed and all(g.get("passed") for g in gates)
        if shadow_gates:
            self.registry.record_gate(candidate, all_passed, gates)
        self.step(
            rid, "decided", candidate, state.reason, candidate=candidate, passed=all_passed,
            why=why, shadow_gates=[g.to_dict() for g in shadow_gates],
            shadow=shadow.to_dict() if shadow else None,
        )
        return self.apply(self.state(rid))

    def apply(self, state: RetrainState) -> RetrainResult:
        from assay.model.deployments import active_deployment, undeploy

        rid, candidate = state.retrain_id, int(state.get("candidate"))
        passed, why = bool(state.get("passed")), str(state.get("why", ""))
        deployment = active_deployment(self.registry)
        if deployment is not None and deployment.version == candidate:
            undeploy(self.registry, actor=self.actor, reason=f"retrain {rid}: {why}")
        if passed:
            if self.registry.alias("champion") != candidate:
                self.registry.promote(
                    candidate, actor=self.actor, gate_passed=True,
                    reason=f"retrain {rid} ({state.reason}): {why}",
                )
            self.step(rid, "promoted", candidate, state.reason, candidate=candidate, why=why)
            return self.result(self.state(rid), "promoted", f"v{candidate} promoted: {why}")
        self._reject(candidate, f"retrain {rid}: {why}")
        self.step(rid, "rejected", candidate, state.reason, candidate=candidate, why=why)
        return self.result(self.state(rid), "rejected", f"v{candidate} rejected: {why}")

    def close(self, state: RetrainState, step: str, why: str) -> None:
        """End ``state`` as ``step`` (abandoned, failed, rejected): reject its candidates,
        end their deployment, close its run; the champion is never touched."""
        from assay.model.deployments import active_deployment, undeploy

        rid = state.retrain_id
        champion = self.registry.alias("champion")
        run_id = state.get("run_id")
        if run_id is not None:
            try:
                if self.registry.get_run(int(run_id)).status == "running":
                    self.registry.finish_run(int(run_id), "failed", {"error": why, "retrain_id": rid})
            except AssayError:
                pass
        candidates = [
            v.version for v in self.registry.list() if v.lineage.retrain_id == rid
        ]
        for version in candidates:
            if version == champion:
                self.step(rid, "promoted", version, state.reason, candidate=version,
                          why="the candidate was promoted before the retrain could record it")
                return
            deployment = active_deployment(self.registry)
            if deployment is not None and deployment.version == version:
                undeploy(self.registry, actor=self.actor, reason=f"retrain {rid}: {why}")
            self._reject(version, f"retrain {rid} {step}: {why}")
        self.step(rid, step, state.get("champion"), state.reason, why=why, candidates=candidates)

    def _reject(self, version: int, reason: str) -> None:
        record = self.registry.get(version)
        if record.status not in ("rejected", "champion"):
            self.registry.reject(version, actor=self.actor, reason=reason)


def _code_version(project: Project) -> str:
    from assay.pipeline import code_version

    return code_version(project)
