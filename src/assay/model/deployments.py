"""Deployments: which challenger the server runs beside the champion, and how.

A deployment puts a registered version in front of traffic as the challenger:

- ``shadow``: every request is also scored by the challenger and logged; the
  client only ever sees the champion's answer (``share`` is 0);
- ``canary``: a share of requests (0 < share <= 1) is answered by the challenger.

At most one deployment is active, and an active deployment always names the
current challenger: :func:`deploy` first ends the previous deployment, then moves
the challenger alias (:meth:`ModelRegistry.set_challenger`, its own transaction),
then records the new deployment after checking the alias in the same transaction.
A failure at any step leaves either the old state or no active deployment (the
champion alone serves), never a deployment of a version that is not the
challenger. A deployment whose version stopped being the challenger later (it was
promoted or rejected) is stale: :func:`active_deployment` does not return it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Literal, get_args

from sqlalchemy import Connection, Row, insert, select, update

from assay.errors import ConfigError, NotFoundError, StoreError
from assay.registry import CHALLENGER, CHAMPION, ModelRegistry, current_user
from assay.store.database import Store, as_utc, utcnow
from assay.store.tables import aliases, deployments

__all__ = [
    "MODES",
    "Deployment",
    "DeploymentMode",
    "active_deployment",
    "deploy",
    "deployment_history",
    "undeploy",
]

#: How a challenger runs: scored and logged only, or answering a share of requests.
DeploymentMode = Literal["shadow", "canary"]
#: The ways a challenger can run beside the champion.
MODES: tuple[str, ...] = get_args(DeploymentMode)


@dataclass(frozen=True)
class Deployment:
    """One deployment of a challenger.

    Attributes:
        id: the deployment number.
        version: the model version deployed as challenger.
        mode: ``shadow`` or ``canary``.
        share: the share of requests the challenger answers (0 in shadow mode).
        created_at: when it was deployed (UTC).
        actor: who deployed it.
        active: False once ended (by a later deployment or :func:`undeploy`).
        ended_at: when it ended.
    """

    id: int
    version: int
    mode: str
    share: float
    created_at: datetime
    actor: str
    active: bool = True
    ended_at: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values (timestamps as ISO strings)."""
        return {
            "id": self.id,
            "version": self.version,
            "mode": self.mode,
            "share": self.share,
            "created_at": self.created_at.isoformat(),
            "actor": self.actor,
            "active": self.active,
            "ended_at": self.ended_at.isoformat() if self.ended_at is not None else None,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Deployment:
        """The inverse of :meth:`to_dict`."""
        ended = data.get("ended_at")
        return cls(
            id=int(data["id"]),
            version=int(data["version"]),
            mode=str(data["mode"]),
            share=float(data["share"]),
            created_at=datetime.fromisoformat(data["created_at"]),
            actor=str(data["actor"]),
            active=bool(data.get("active", True)),
            ended_at=datetime.fromisoformat(ended) if ended is not None else None,
        )


def deploy(
    registry: ModelRegistry,
    version: int,
    *,
    mode: DeploymentMode,
    share: float = 0.0,
    actor: str | None = None,
    reason: str | None = None,
) -> Deployment:
    """Run ``version`` as the challenger in ``mode``; end the previous deployment.

    Args:
        registry: the project's registry.
        version: a registered version that is not the champion.
        mode: ``shadow`` (scored and logged, never returned) or ``canary``.
        share: the share of requests the canary answers, 0 < share <= 1; must be 0
            (the default) in shadow mode.
        actor: who deploys (default: the current user).
        reason: why, kept in the audit trail.

    Raises:
        ConfigError: an unknown mode, a share out of range, or the champion's version.
        NotFoundError: the version does not exist.
    """
    share = _check(mode, share)
    actor = actor or current_user()
    target = registry.get(version)  # NotFoundError listing the versions
    if registry.alias(CHAMPION) == target.version:
        raise ConfigError(
            f"model version {version} is the champion and cannot be deployed as challenger",
            key="version",
            expected="a registered version other than the champion",
            received=version,
            fix="Deploy a newer version, or promote another one first.",
        )
    store = registry.store
    with store.transaction() as conn:
        previous = _end_active(conn)
    registry.set_challenger(target.version, actor=actor, reason=reason)
    now = utcnow()
    with store.transaction() as conn:
        challenger = conn.execute(
            select(aliases.c.version).where(aliases.c.name == CHALLENGER)
        ).scalar()
        if challenger != target.version:
            raise StoreError(
                "the challenger changed while deploying",
                where="deployments",
                expected=f"challenger {target.version}",
                received=f"challenger {challenger}",
                fix="Another change ran at the same time; run the deploy again.",
            )
        # a concurrent deploy may have started a deployment since the first step
        concurrent = _end_active(conn)
        previous = previous or concurrent
        result = conn.execute(
            insert(deployments).values(
                version=target.version,
                mode=mode,
                share=share,
                created_at=now,
                actor=actor,
                active=True,
                ended_at=None,
            )
        )
        key = result.inserted_primary_key
        if key is None:
            raise StoreError("the database returned no id for the new deployment")
        deployment_id = int(key[0])
    try:
        registry.record_event(
            "deploy",
            actor=actor,
            version=target.version,
            reason=reason,
            details={
                "deployment": deployment_id,
                "mode": mode,
                "share": share,
                "previous": previous.to_dict() if previous is not None else None,
            },
        )
    except BaseException:
        # no deployment without its audit event
        with store.transaction() as conn:
            conn.execute(
                update(deployments)
                .where(deployments.c.id == deployment_id)
                .values(active=False, ended_at=utcnow())
            )
        raise
    return _get(store, deployment_id)


def undeploy(registry: ModelRegistry, actor: str | None = None, reason: str | None = None) -> None:
    """End the active deployment: the champion alone serves again.

    The challenger alias stays (reject or promote the version to change it).
    Raises :class:`NotFoundError` when nothing is deployed.
    """
    actor = actor or current_user()
    with registry.store.transaction() as conn:
        ended = _end_active(conn)
    if ended is None:
        raise NotFoundError(
            "no deployment is active",
            where="deployments",
            expected="an active shadow or canary deployment",
            received="none",
            fix="Nothing to undeploy; start one with `assay deploy`.",
        )
    registry.record_event(
        "undeploy",
        actor=actor,
        version=ended.version,
        reason=reason,
        details={"deployment": ended.id, "mode": ended.mode, "share": ended.share},
    )


def active_deployment(registry: ModelRegistry) -> Deployment | None:
    """The active deployment, or None (also when its version is no longer the challenger)."""
    with registry.store.connect() as conn:
        row = conn.execute(
            select(deployments)
            .where(deployments.c.active.is_(True))
            .order_by(deployments.c.id.desc())
            .limit(1)
        ).first()
        if row is None:
            return None
        challenger = conn.execute(
            select(aliases.c.version).where(aliases.c.name == CHALLENGER)
        ).scalar()
    if challenger is None or int(challenger) != int(row.version):
        return None
    return _to_deployment(row)


def deployment_history(registry: ModelRegistry, limit: int | None = None) -> list[Deployment]:
    """Every deployment, newest first."""
    query = select(deployments).order_by(deployments.c.id.desc())
    if limit is not None:
        query = query.limit(limit)
    with registry.store.connect() as conn:
        return [_to_deployment(row) for row in conn.execute(query)]


def _check(mode: str, share: float) -> float:
    if mode not in MODES:
        raise ConfigError(
            "unknown deployment mode",
            key="mode",
            expected="one of: " + ", ".join(MODES),
            received=mode,
            fix="Use shadow (scored and logged only) or canary with a share.",
        )
    try:
        value = float(share)
    except (TypeError, ValueError):
        value = math.nan
    if mode == "canary" and not 0.0 < value <= 1.0:
        raise ConfigError(
            "a canary needs a share of traffic",
            key="share",
            expected="a number with 0 < share <= 1 (0.1 = one request in ten)",
            received=share,
            fix="Pass a share such as 0.1, or use shadow mode to score without answering.",
        )
    if mode == "shadow" and value != 0.0:
        raise ConfigError(
            "a shadow deployment answers no traffic",
            key="share",
            expected="share 0 in shadow mode",
            received=share,
            fix="Leave the share out for shadow mode, or use canary mode to answer a share.",
        )
    return value


def _end_active(conn: Connection) -> Deployment | None:
    """End every active deployment; return the newest of them."""
    rows = conn.execute(
        select(deployments).where(deployments.c.active.is_(True)).order_by(deployments.c.id)
    ).all()
    if not rows:
        return None
    now = utcnow()
    conn.execute(
        update(deployments).where(deployments.c.active.is_(True)).values(active=False, ended_at=now)
    )
    return replace(_to_deployment(rows[-1]), active=False, ended_at=now)


def _get(store: Store, deployment_id: int) -> Deployment:
    with store.connect() as conn:
        row = conn.execute(select(deployments).where(deployments.c.id == deployment_id)).one()
    return _to_deployment(row)


def _to_deployment(record: Row[Any]) -> Deployment:
    row = record._mapping
    return Deployment(
        id=int(row["id"]),
        version=int(row["version"]),
        mode=str(row["mode"]),
        share=float(row["share"]),
        created_at=as_utc(row["created_at"]),
        actor=str(row["actor"]),
        active=bool(row["active"]),
        ended_at=as_utc(row["ended_at"]),
    )
