"""The model registry: runs, versions, aliases, gate decisions and the audit trail.

Every change that must hold together (a version number and its row, an alias and
the statuses and event that explain it) happens in one store transaction, so a
failure half-way leaves the store as it was. The champion history is derived from
the ``promote`` and ``rollback`` events: a promotion pushes a version, a rollback
pops one, and the previous champion is the one below the top.
"""

from __future__ import annotations

import builtins
import getpass
import os
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, update

from assay.errors import ConfigError, GateFailed, IntegrityError, NotFoundError, StoreError
from assay.registry import _sql
from assay.registry._process import process_gone, this_host
from assay.registry.records import (
    RUN_STATUSES,
    AuditRecord,
    Event,
    GateRecord,
    Lineage,
    ModelVersion,
    Run,
    RunStatus,
    TestAccess,
)
from assay.store.database import Store, utcnow
from assay.store.serialize import to_jsonable
from assay.store.tables import (
    MODEL_VERSION_COUNTER,
    aliases,
    audits,
    counters,
    events,
    gate_decisions,
    model_versions,
    runs,
    test_accesses,
)

__all__ = ["CHALLENGER", "CHAMPION", "ModelRegistry", "current_user"]

CHAMPION = "champion"
CHALLENGER = "challenger"


def current_user() -> str:
    """Who is acting: ``$ASSAY_USER`` if set, else the login name (``unknown`` if none)."""
    name = os.environ.get("ASSAY_USER", "").strip()
    if name:
        return name
    try:
        return getpass.getuser()
    except (OSError, KeyError, ImportError):  # no login name in some containers
        return "unknown"


class ModelRegistry:
    """The registry API the CLI, the server and the pipeline use, over one :class:`Store`."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # -- audits ---------------------------------------------------------------

    def record_audit(self, report: Mapping[str, Any] | Any, data_version: str, passed: bool) -> int:
        """Store a data audit report (a dict or an object with ``to_dict()``); return its id."""
        with self.store.transaction() as conn:
            result = conn.execute(
                insert(audits).values(
                    data_version=data_version,
                    created_at=utcnow(),
                    passed=bool(passed),
                    report=_plain(report, "report"),
                )
            )
            return _sql.new_id(result)

    def get_audit(self, audit_id: int) -> AuditRecord:
        """The stored audit ``audit_id``."""
        with self.store.connect() as conn:
            row = conn.execute(select(audits).where(audits.c.id == audit_id)).first()
        if row is None:
            raise NotFoundError(
                f"audit {audit_id} does not exist", where=self.store.url, received=audit_id
            )
        return _sql.to_audit(row)

    def latest_audit(self, data_version: str | None = None) -> AuditRecord | None:
        """The newest audit (of ``data_version`` if given), or None."""
        query = select(audits).order_by(audits.c.id.desc()).limit(1)
        if data_version is not None:
            query = query.where(audits.c.data_version == data_version)
        with self.store.connect() as conn:
            row = conn.execute(query).first()
        return _sql.to_audit(row) if row is not None else None

    # -- runs -----------------------------------------------------------------

    def start_run(
        self,
        config: Mapping[str, Any] | Any,
        data_version: str,
        code_version: str,
        user: str | None = None,
        seeds: Mapping[str, Any] | None = None,
        *,
        pid: int | None = None,
        host: str | None = None,
    ) -> int:
        """Record a run as ``running`` by this process (or ``pid`` on ``host``); return its id."""
        with self.store.transaction() as conn:
            result = conn.execute(
                insert(runs).values(
                    created_at=utcnow(),
                    finished_at=None,
                    status="running",
                    config=_plain(config, "config"),
                    data_version=data_version,
                    code_version=code_version,
                    created_by=user or current_user(),
                    seeds=_plain(seeds or {}, "seeds"),
                    summary=None,
                    pid=os.getpid() if pid is None else pid,
                    host=this_host() if host is None else host,
                )
            )
            return _sql.new_id(result)

    def abandon_dead_runs(self, *, actor: str | None = None) -> builtins.list[Run]:
        """Mark ``abandoned`` the running runs of this host whose process is gone.

        A process killed outright (SIGKILL, power loss) cannot close its run, which would
        otherwise stay ``running`` for ever. Runs of other hosts are left alone: their
        processes cannot be checked from here. Each run marked gets an ``abandon`` event
        in the audit trail. Returns the runs marked.
        """
        host = this_host()
        query = select(runs).where(runs.c.status == "running", runs.c.host == host)
        with self.store.connect() as conn:
            candidates = [_sql.to_run(row) for row in conn.execute(query)]
        marked: builtins.list[Run] = []
        for run in candidates:
            if run.pid is None or not process_gone(run.pid, run.created_at):
                continue
            why = (
                f"run {run.id}: its process {run.pid} on {host} ended without closing it "
                "(killed or crashed)"
            )
            with self.store.transaction() as conn:
                done = conn.execute(
                    update(runs)
                    .where(runs.c.id == run.id, runs.c.status == "running")
                    .values(
                        status="abandoned",
                        finished_at=utcnow(),
                        summary={"error": why, "pid": run.pid, "host": host},
                    )
                )
                if done.rowcount != 1:
                    continue  # another process closed or marked it first
                _sql.insert_event(
                    conn, "abandon", actor or current_user(), None, why,
                    {"run_id": run.id, "pid": run.pid, "host": host},
                )
                marked.append(self._run(conn, run.id))
        return marked

    def finish_run(
        self, run_id: int, status: RunStatus, summary: Mapping[str, Any] | None = None
    ) -> Run:
        """Close a running run with its final status and summary."""
        if status not in RUN_STATUSES or status == "running":
            raise StoreError(
                "a run must finish with a final status",
                where=f"run {run_id}",
                expected="one of: " + ", ".join(s for s in RUN_STATUSES if s != "running"),
                received=status,
            )
        with self.store.transaction() as conn:
            run = self._run(conn, run_id)
            if run.status != "running":
                raise StoreError(
                    f"run {run_id} already finished ({run.status})",
                    where=f"run {run_id}",
                    expected="a running run",
                    received=run.status,
                    fix="Start a new run.",
                )
            conn.execute(
                update(runs)
                .where(runs.c.id == run_id)
                .values(
                    status=status,
                    finished_at=utcnow(),
                    summary=_plain(summary, "summary") if summary is not None else None,
                )
            )
            return self._run(conn, run_id)

    def get_run(self, run_id: int) -> Run:
        """The run ``run_id``."""
        with self.store.connect() as conn:
            return self._run(conn, run_id)

    def runs(self, limit: int | None = None) -> builtins.list[Run]:
        """Runs, newest first."""
        query = select(runs).order_by(runs.c.id.desc())
        if limit is not None:
            query = query.limit(limit)
        with self.store.connect() as conn:
            return [_sql.to_run(row) for row in conn.execute(query)]

    # -- model versions -------------------------------------------------------

    def register(
        self,
        run_id: int | None,
        *,
        model_obj: Any,
        task: str,
        family: str,
        params: Mapping[str, Any],
        metrics: Mapping[str, Any],
        data_version: str,
        config: Mapping[str, Any] | Any,
        code_version: str,
        schema: Mapping[str, Any] | Any,
        lineage: Lineage | Mapping[str, Any] | None = None,
        user: str | None = None,
        test_fingerprint: str | None = None,
    ) -> ModelVersion:
        """Store the model artifact and register a new version (number allocated atomically)."""
        digest = self.store.artifacts.save_model(model_obj)
        size = self.store.artifacts.size(digest)
        actor = user or current_user()
        row = {
            "run_id": run_id,
            "created_by": actor,
            "task": task,
            "family": family,
            "params": _plain(params, "params"),
            "metrics": _plain(metrics, "metrics"),
            "data_version": data_version,
            "config": _plain(config, "config"),
            "code_version": code_version,
            "artifact_digest": digest,
            "artifact_size": size,
            "input_schema": _plain(schema, "schema"),
            "lineage": _plain(
                lineage.to_dict() if isinstance(lineage, Lineage) else dict(lineage or {}), "lineage"
            ),
            "status": "registered",
            "test_fingerprint": test_fingerprint,
        }
        with self.store.transaction() as conn:
            if run_id is not None:
                self._run(conn, run_id)
            # the counter row is the lock: a concurrent registration waits for this commit
            conn.execute(
                update(counters)
                .where(counters.c.name == MODEL_VERSION_COUNTER)
                .values(value=counters.c.value + 1)
            )
            version = int(
                conn.execute(
                    select(counters.c.value).where(counters.c.name == MODEL_VERSION_COUNTER)
                ).scalar_one()
            )
            conn.execute(insert(model_versions).values(version=version, created_at=utcnow(), **row))
            _sql.insert_event(
                conn,
                action="register",
                actor=actor,
                version=version,
                reason=None,
                details={"family": family, "run_id": run_id, "artifact": digest},
            )
            return self._version(conn, version)

    def get(self, version: int) -> ModelVersion:
        """The model version ``version``; a :class:`NotFoundError` listing existing ones."""
        with self.store.connect() as conn:
            return self._version(conn, version)

    def list(self) -> builtins.list[ModelVersion]:
        """Every model version, oldest first."""
        with self.store.connect() as conn:
            rows = conn.execute(select(model_versions).order_by(model_versions.c.version))
            return [_sql.to_version(row) for row in rows]

    def alias(self, name: str) -> int | None:
        """The version the alias ``name`` (champion, challenger) points to, or None."""
        with self.store.connect() as conn:
            return _sql.alias(conn, name)

    def champion(self) -> ModelVersion | None:
        """The champion version, or None before the first promotion."""
        version = self.alias(CHAMPION)
        return self.get(version) if version is not None else None

    def challenger(self) -> ModelVersion | None:
        """The challenger version, or None."""
        version = self.alias(CHALLENGER)
        return self.get(version) if version is not None else None

    def champion_history(self) -> builtins.list[int]:
        """The champion stack derived from the events: oldest first, current champion last."""
        with self.store.connect() as conn:
            return _sql.champion_stack(conn)

    def promote(
        self,
        version: int,
        *,
        actor: str | None = None,
        reason: str | None = None,
        force: bool = False,
        gate_passed: bool,
    ) -> ModelVersion:
        """Make ``version`` the champion, in one transaction.

        Refused (:class:`GateFailed`) unless ``gate_passed`` or ``force``; ``force``
        needs a ``reason`` and writes an ``override`` event beside the ``promote``.
        The previous champion becomes ``archived``; a promoted challenger leaves the
        challenger alias.

        ``force`` overrides gates, never integrity: the artifact's signature and hash
        are verified first, and an :class:`IntegrityError` leaves the champion as it was.
        """
        actor = actor or current_user()
        reason = (reason or "").strip() or None
        if not gate_passed and not force:
            raise GateFailed(
                f"model version {version} did not pass the promotion gate",
                where=f"model version {version}",
                expected="a passed gate",
                received="gate failed",
                fix="Fix the failing gates, or promote with --force and a --reason "
                "(the override is recorded).",
            )
        if force and reason is None:
            raise ConfigError(
                "a forced promotion needs a reason",
                key="reason",
                expected="a non-empty reason",
                received="nothing",
                fix="Pass --reason '...' with --force; it is kept in the audit trail.",
            )
        digest = self.get(version).artifact_digest
        self._verify_artifact(version, digest, "promoted")
        with self.store.transaction() as conn:
            _sql.lock(conn)
            target = self._version(conn, version)
            if target.artifact_digest != digest:  # changed while it was being verified
                self._verify_artifact(version, target.artifact_digest, "promoted")
            current = _sql.alias(conn, CHAMPION)
            if current == version:
                raise StoreError(
                    f"model version {version} is already the champion",
                    where=f"model version {version}",
                    fix="Nothing to do.",
                )
            _sql.set_alias(conn, CHAMPION, version)
            if current is not None:
                _sql.set_status(conn, current, "archived")
            if _sql.alias(conn, CHALLENGER) == version:
                conn.execute(delete(aliases).where(aliases.c.name == CHALLENGER))
            _sql.set_status(conn, version, "champion")
            details = {
                "from": current,
                "to": version,
                "previous_status": target.status,
                "gate_passed": bool(gate_passed),
                "forced": bool(force),
            }
            if force and not gate_passed:
                _sql.insert_event(conn, "override", actor, version, reason, details)
            _sql.insert_event(conn, "promote", actor, version, reason, details)
            return self._version(conn, version)

    def rollback(self, *, actor: str | None = None, reason: str | None = None) -> ModelVersion:
        """Put the previous champion back (exactly the one before the current reign).

        Raises :class:`NotFoundError` when there is no previous champion, and
        :class:`IntegrityError` when its artifact fails verification; the store is
        unchanged on any error.
        """
        actor = actor or current_user()
        with self.store.transaction() as conn:
            _sql.lock(conn)
            current = _sql.alias(conn, CHAMPION)
            stack = _sql.champion_stack(conn)
            if current is None or len(stack) < 2:
                raise NotFoundError(
                    "there is no previous champion to roll back to",
                    where=self.store.url,
                    expected="at least two promotions in the history",
                    received=f"champion history: {stack or 'empty'}",
                    fix=(
                        "Nothing earlier was ever champion. List the versions with 'assay models' "
                        "and promote one with 'assay promote N' (a version whose gates failed "
                        "needs --force --reason)."
                        if current is not None else
                        "No version is champion yet. Run 'assay run', or promote a registered "
                        "version with 'assay promote N'."
                    ),
                )
            if stack[-1] != current:
                raise StoreError(
                    "the champion alias disagrees with the promotion history",
                    where=self.store.url,
                    expected=f"champion {stack[-1]} (from the events)",
                    received=f"champion {current}",
                    fix="Promote the intended version explicitly.",
                )
            previous = stack[-2]
            self._verify_artifact(
                previous, self._version(conn, previous).artifact_digest, "rolled back to"
            )
            _sql.set_alias(conn, CHAMPION, previous)
            _sql.set_status(conn, current, "archived")
            if _sql.alias(conn, CHALLENGER) == previous:
                conn.execute(delete(aliases).where(aliases.c.name == CHALLENGER))
            _sql.set_status(conn, previous, "champion")
            details = {"from": current, "to": previous}
            _sql.insert_event(conn, "rollback", actor, previous, reason, details)
            return self._version(conn, previous)

    def set_challenger(
        self, version: int, *, actor: str | None = None, reason: str | None = None
    ) -> ModelVersion:
        """Point the challenger alias at ``version``; the former challenger becomes registered."""
        actor = actor or current_user()
        with self.store.transaction() as conn:
            _sql.lock(conn)
            self._version(conn, version)
            if _sql.alias(conn, CHAMPION) == version:
                raise StoreError(
                    f"model version {version} is the champion and cannot also be the challenger",
                    where=f"model version {version}",
                    fix="Choose another version as challenger.",
                )
            former = _sql.alias(conn, CHALLENGER)
            if former is not None and former != version:
                _sql.set_status(conn, former, "registered")
            _sql.set_alias(conn, CHALLENGER, version)
            _sql.set_status(conn, version, "challenger")
            _sql.insert_event(conn, "challenger", actor, version, reason, {"from": former})
            return self._version(conn, version)

    def reject(
        self, version: int, *, actor: str | None = None, reason: str | None = None
    ) -> ModelVersion:
        """Mark ``version`` rejected (it leaves the challenger alias); the champion cannot be."""
        actor = actor or current_user()
        with self.store.transaction() as conn:
            _sql.lock(conn)
            self._version(conn, version)
            if _sql.alias(conn, CHAMPION) == version:
                raise StoreError(
                    f"model version {version} is the champion and cannot be rejected",
                    where=f"model version {version}",
                    fix="Roll back or promote another version first.",
                )
            if _sql.alias(conn, CHALLENGER) == version:
                conn.execute(delete(aliases).where(aliases.c.name == CHALLENGER))
            _sql.set_status(conn, version, "rejected")
            _sql.insert_event(conn, "reject", actor, version, reason, {})
            return self._version(conn, version)

    # -- gates and the sealed test set ----------------------------------------

    def record_gate(
        self, version: int, passed: bool, gates: Iterable[Mapping[str, Any]]
    ) -> GateRecord:
        """Store the gate verdict of ``version`` (and a ``gate`` event)."""
        plain = _plain([dict(g) for g in gates], "gates")
        with self.store.transaction() as conn:
            self._version(conn, version)
            result = conn.execute(
                insert(gate_decisions).values(
                    version=version, created_at=utcnow(), passed=bool(passed), gates=plain
                )
            )
            decision_id = _sql.new_id(result)
            failed = [g.get("name") for g in plain if isinstance(g, dict) and not g.get("passed")]
            _sql.insert_event(
                conn,
                "gate",
                current_user(),
                version,
                None,
                {"passed": bool(passed), "decision": decision_id, "failed": failed},
            )
            row = conn.execute(
                select(gate_decisions).where(gate_decisions.c.id == decision_id)
            ).one()
            return _sql.to_gate(row)

    def gate_decisions(self, version: int) -> builtins.list[GateRecord]:
        """The gate verdicts of ``version``, oldest first."""
        query = select(gate_decisions).where(gate_decisions.c.version == version)
        with self.store.connect() as conn:
            return [_sql.to_gate(row) for row in conn.execute(query.order_by(gate_decisions.c.id))]

    def latest_gate(self, version: int) -> GateRecord | None:
        """The newest gate verdict of ``version``, or None if it was never gated."""
        decisions = self.gate_decisions(version)
        return decisions[-1] if decisions else None

    def record_test_access(
        self,
        fingerprint: str,
        version: int | None = None,
        run_id: int | None = None,
        purpose: str = "evaluate",
    ) -> TestAccess:
        """Count one scoring of the sealed test set ``fingerprint``."""
        with self.store.transaction() as conn:
            if version is not None:
                self._version(conn, version)
            if run_id is not None:
                self._run(conn, run_id)
            result = conn.execute(
                insert(test_accesses).values(
                    test_fingerprint=fingerprint,
                    version=version,
                    run_id=run_id,
                    created_at=utcnow(),
                    purpose=purpose,
                )
            )
            row = conn.execute(
                select(test_accesses).where(test_accesses.c.id == _sql.new_id(result))
            ).one()
            return _sql.to_access(row)

    def test_access_count(self, fingerprint: str) -> int:
        """How many times the test set ``fingerprint`` was scored."""
        query = select(func.count()).where(test_accesses.c.test_fingerprint == fingerprint)
        with self.store.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def test_accesses(self, fingerprint: str) -> builtins.list[TestAccess]:
        """Every scoring of the test set ``fingerprint``, oldest first."""
        query = (
            select(test_accesses)
            .where(test_accesses.c.test_fingerprint == fingerprint)
            .order_by(test_accesses.c.id)
        )
        with self.store.connect() as conn:
            return [_sql.to_access(row) for row in conn.execute(query)]

    # -- audit trail ----------------------------------------------------------

    def record_event(
        self,
        action: str,
        *,
        actor: str | None = None,
        version: int | None = None,
        reason: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> Event:
        """Append an event (``deploy``, ``token``, ...) to the audit trail."""
        if not action or not action.strip():
            raise StoreError("an event needs an action", expected="a word such as 'deploy'")
        if action in _sql.HISTORY_ACTIONS:
            raise StoreError(
                f"'{action}' events are written by promote() and rollback() only",
                where="events",
                fix="Call ModelRegistry.promote or ModelRegistry.rollback.",
            )
        with self.store.transaction() as conn:
            if version is not None:
                self._version(conn, version)
            event_id = _sql.insert_event(
                conn, action, actor or current_user(), version, reason, dict(details or {})
            )
            return _sql.to_event(conn.execute(select(events).where(events.c.id == event_id)).one())

    def events(
        self,
        limit: int | None = None,
        *,
        action: str | None = None,
        version: int | None = None,
    ) -> builtins.list[Event]:
        """The audit trail, newest first (optionally one action or one version)."""
        query = select(events).order_by(events.c.id.desc())
        if action is not None:
            query = query.where(events.c.action == action)
        if version is not None:
            query = query.where(events.c.version == version)
        if limit is not None:
            query = query.limit(limit)
        with self.store.connect() as conn:
            return [_sql.to_event(row) for row in conn.execute(query)]

    # -- artifacts ------------------------------------------------------------

    def load_model(self, version: int) -> Any:
        """The model object of ``version``, unpickled only after its signature and hash verify.

        Raises:
            IntegrityError: the artifact is unsigned, signed with another key, or its
                bytes do not match the recorded hash (nothing is unpickled).
        """
        return self.store.artifacts.load_model(self.get(version).artifact_digest)

    def verify(self, version: int) -> ModelVersion:
        """Check the artifact of ``version`` (signature and hash) without loading it.

        Raises:
            IntegrityError: naming the version and what failed.
        """
        record = self.get(version)
        self._verify_artifact(version, record.artifact_digest, "loaded")
        return record

    def sign(self, version: int, *, reason: str, actor: str | None = None) -> ModelVersion:
        """Sign the artifact of ``version`` with this machine's key, recorded as a ``sign`` event.

        For a store written before artifacts were signed, by someone who knows its
        files are genuine: a signature is what lets a pickle be loaded. The bytes
        must still match the recorded hash.
        """
        reason = (reason or "").strip()
        if not reason:
            raise ConfigError(
                "signing an artifact needs a reason",
                key="reason",
                expected="a non-empty reason",
                received="nothing",
                fix="Pass --reason '...'; it is kept in the audit trail.",
            )
        record = self.get(version)
        try:
            key_id = self.store.artifacts.sign(record.artifact_digest)
        except (StoreError, NotFoundError) as exc:
            raise _integrity_error(exc, version, "signed") from exc
        self.record_event(
            "sign",
            actor=actor,
            version=version,
            reason=reason,
            details={"artifact": record.artifact_digest, "key_id": key_id},
        )
        return record

    def _verify_artifact(self, version: int, digest: str, action: str) -> None:
        try:
            self.store.artifacts.verify_model(digest)
        except (StoreError, NotFoundError) as exc:
            raise _integrity_error(exc, version, action, digest=digest) from exc

    def store_json(self, obj: Any) -> str:
        """Keep a large report (evaluation, audit, search history) as a JSON artifact."""
        return self.store.artifacts.put_json(obj)

    def load_json(self, digest: str) -> Any:
        """A JSON artifact written by :meth:`store_json`, verified."""
        return self.store.artifacts.get_json(digest)

    # -- helpers --------------------------------------------------------------

    def _version(self, conn: Connection, version: int) -> ModelVersion:
        row = conn.execute(
            select(model_versions).where(model_versions.c.version == version)
        ).first()
        if row is None:
            existing = [
                int(v)
                for v in conn.execute(
                    select(model_versions.c.version).order_by(model_versions.c.version)
                ).scalars()
            ]
            raise NotFoundError(
                f"model version {version} does not exist",
                where=self.store.url,
                expected="one of: " + _listing(existing) if existing else "a registered version",
                received=version,
                fix="List the versions with `assay models`."
                if existing
                else "No model is registered yet; run `assay run` first.",
            )
        return _sql.to_version(row)

    def _run(self, conn: Connection, run_id: int) -> Run:
        row = conn.execute(select(runs).where(runs.c.id == run_id)).first()
        if row is None:
            raise NotFoundError(
                f"run {run_id} does not exist",
                where=self.store.url,
                received=run_id,
                fix="Start the run with ModelRegistry.start_run first.",
            )
        return _sql.to_run(row)


def _listing(values: builtins.list[int], limit: int = 20) -> str:
    shown = ", ".join(str(v) for v in values[-limit:])
    return shown if len(values) <= limit else f"..., {shown} ({len(values)} in all)"


def _plain(value: Any, name: str) -> Any:
    return to_jsonable(value, name)


def _integrity_error(
    exc: StoreError | NotFoundError, version: int, action: str, **fields: Any
) -> IntegrityError:
    """``exc`` (an artifact that failed to sign or verify) as the refusal of ``action`` on
    ``version``, keeping its where, expected, received and fix."""
    return IntegrityError(
        f"model version {version} cannot be {action}: {exc.what}",
        where=exc.where,
        expected=exc.expected,
        received=exc.received,
        fix=exc.fix,
        version=version,
        **fields,
    )
