"""SQL helpers of the registry: alias and status updates, events, and row -> record."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, CursorResult, Row, insert, select, update

from assay.errors import StoreError
from assay.registry.records import (
    MODEL_STATUSES,
    AuditRecord,
    Event,
    GateRecord,
    Lineage,
    ModelVersion,
    Run,
    TestAccess,
)
from assay.store.database import as_utc, utcnow
from assay.store.serialize import to_jsonable
from assay.store.tables import (
    MODEL_VERSION_COUNTER,
    aliases,
    counters,
    events,
    model_versions,
)

#: The events the champion history is derived from.
HISTORY_ACTIONS = ("promote", "rollback")


def new_id(result: CursorResult[Any]) -> int:
    """The primary key of the row an INSERT just wrote."""
    key = result.inserted_primary_key
    if key is None:
        raise StoreError("the database returned no id for the new row")
    return int(key[0])


def lock(conn: Connection) -> None:
    # PostgreSQL row lock; SQLite already holds the write lock (BEGIN IMMEDIATE)
    conn.execute(
        select(counters.c.value).where(counters.c.name == MODEL_VERSION_COUNTER).with_for_update()
    )


def alias(conn: Connection, name: str) -> int | None:
    value = conn.execute(select(aliases.c.version).where(aliases.c.name == name)).scalar()
    return int(value) if value is not None else None


def set_alias(conn: Connection, name: str, version: int) -> None:
    now = utcnow()
    changed = conn.execute(
        update(aliases).where(aliases.c.name == name).values(version=version, updated_at=now)
    )
    if changed.rowcount == 0:
        conn.execute(insert(aliases).values(name=name, version=version, updated_at=now))


def set_status(conn: Connection, version: int, status: str) -> None:
    if status not in MODEL_STATUSES:
        raise StoreError(
            "unknown model status", expected=", ".join(MODEL_STATUSES), received=status
        )
    conn.execute(
        update(model_versions).where(model_versions.c.version == version).values(status=status)
    )


def insert_event(
    conn: Connection,
    action: str,
    actor: str,
    version: int | None,
    reason: str | None,
    details: Mapping[str, Any],
) -> int:
    result = conn.execute(
        insert(events).values(
            at=utcnow(),
            actor=actor,
            action=action,
            version=version,
            reason=reason,
            details=to_jsonable(dict(details), "details"),
        )
    )
    return new_id(result)


def champion_stack(conn: Connection) -> list[int]:
    query = (
        select(events.c.action, events.c.version)
        .where(events.c.action.in_(HISTORY_ACTIONS))
        .order_by(events.c.id)
    )
    stack: list[int] = []
    for action, version in conn.execute(query):
        if action == "promote":
            stack.append(int(version))
        elif stack:
            stack.pop()
    return stack


def to_version(row: Row[Any]) -> ModelVersion:
    m = row._mapping
    return ModelVersion(
        version=int(m["version"]),
        run_id=m["run_id"],
        created_at=as_utc(m["created_at"]),
        user=m["created_by"],
        task=m["task"],
        family=m["family"],
        params=m["params"],
        metrics=m["metrics"],
        data_version=m["data_version"],
        config=m["config"],
        code_version=m["code_version"],
        artifact_digest=m["artifact_digest"],
        artifact_size=int(m["artifact_size"]),
        schema=m["input_schema"],
        lineage=Lineage.from_dict(m["lineage"]),
        status=m["status"],
        test_fingerprint=m["test_fingerprint"],
    )


def to_run(row: Row[Any]) -> Run:
    m = row._mapping
    return Run(
        id=int(m["id"]),
        created_at=as_utc(m["created_at"]),
        finished_at=as_utc(m["finished_at"]),
        status=m["status"],
        config=m["config"],
        data_version=m["data_version"],
        code_version=m["code_version"],
        user=m["created_by"],
        seeds=m["seeds"],
        summary=m["summary"],
        pid=m["pid"],
        host=m["host"],
    )


def to_audit(row: Row[Any]) -> AuditRecord:
    m = row._mapping
    return AuditRecord(
        id=int(m["id"]),
        data_version=m["data_version"],
        created_at=as_utc(m["created_at"]),
        passed=bool(m["passed"]),
        report=m["report"],
    )


def to_gate(row: Row[Any]) -> GateRecord:
    m = row._mapping
    return GateRecord(
        id=int(m["id"]),
        version=int(m["version"]),
        created_at=as_utc(m["created_at"]),
        passed=bool(m["passed"]),
        gates=m["gates"],
    )


def to_access(row: Row[Any]) -> TestAccess:
    m = row._mapping
    return TestAccess(
        id=int(m["id"]),
        test_fingerprint=m["test_fingerprint"],
        version=m["version"],
        run_id=m["run_id"],
        created_at=as_utc(m["created_at"]),
        purpose=m["purpose"],
    )


def to_event(row: Row[Any]) -> Event:
    m = row._mapping
    return Event(
        id=int(m["id"]),
        at=as_utc(m["at"]),
        actor=m["actor"],
        action=m["action"],
        version=m["version"],
        reason=m["reason"],
        details=m["details"],
    )
