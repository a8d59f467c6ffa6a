"""Alerts: stored, deduplicated, sent to a webhook.

A monitoring pass produces :class:`AlertDraft` objects (a condition it found);
:func:`raise_alerts` turns them into stored :class:`Alert` rows:

1. a draft whose *fingerprint* (kind, model version, and the condition's key, e.g.
   the set of drifted features) matches an open alert raised less than
   ``cooldown`` ago is *suppressed*: the same condition does not alert every
   interval;
2. any other draft is stored and, when a webhook is configured, POSTed to it as
   JSON with a short timeout; a failed delivery is recorded on the row
   (``delivered`` false, ``delivery_error``) and retried on the next pass while the
   condition lasts, never raised;
3. open alerts of a kind the pass could assess whose condition is gone are
   resolved (``resolved_at``), as are open alerts of other model versions (the
   champion changed). A condition that comes back after resolution alerts again.

A reminder after the cool-down is a new row; the older open row with the same
fingerprint is resolved by it.
"""

from __future__ import annotations

import hashlib
import json
import urllib.error
import urllib.request
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal, get_args

from sqlalchemy import Row, insert, select, update

from assay.errors import NotFoundError
from assay.store.database import Store, as_utc, utcnow
from assay.store.serialize import to_jsonable
from assay.store.tables import alerts

__all__ = [
    "ALERT_KINDS",
    "DEFAULT_COOLDOWN",
    "WEBHOOK_TIMEOUT",
    "Alert",
    "AlertDraft",
    "AlertKind",
    "AlertOutcome",
    "Severity",
    "Transport",
    "list_alerts",
    "post_json",
    "raise_alerts",
    "resolve_alert",
]

AlertKind = Literal[
    "data_drift",
    "performance",
    "concept_drift",
    "flagged_inputs",
    "acceptance_breach",
    "fairness_breach",
    "latency_breach",
    "attribution_drift",
]
#: every kind of alert
ALERT_KINDS: tuple[str, ...] = get_args(AlertKind)
Severity = Literal["warning", "critical"]
#: how long an open alert silences the same condition
DEFAULT_COOLDOWN = timedelta(hours=24)
#: seconds a webhook may take before the delivery counts as failed
WEBHOOK_TIMEOUT = 5.0

#: sends one JSON payload to a URL; returns None on success, else the error text
Transport = Callable[[str, Mapping[str, Any], float], "str | None"]


@dataclass(frozen=True)
class AlertDraft:
    """A condition found by one monitoring pass, before dedupe and storage.

    Attributes:
        kind: data_drift | performance | concept_drift | flagged_inputs |
            acceptance_breach | fairness_breach | latency_breach (a criterion of the contract
            failed on live traffic beyond noise, :mod:`assay.monitor.contract`) |
            attribution_drift (the model leans on other features than at training,
            :mod:`assay.monitor.attribution_drift`).
        version: the model version concerned.
        severity: warning | critical.
        message: one line for people.
        evidence: the numbers behind it (JSON values).
        key: what makes two conditions the same (e.g. the drifted features).
    """

    kind: AlertKind
    version: int | None
    severity: Severity
    message: str
    evidence: dict[str, Any] = field(default_factory=dict)
    key: tuple[str, ...] = ()

    @property
    def fingerprint(self) -> str:
        """A stable hash of kind, version and key (the dedupe identity)."""
        text = json.dumps([self.kind, self.version, sorted(self.key)], separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:32]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values."""
        return {
            "kind": self.kind,
            "version": self.version,
            "severity": self.severity,
            "message": self.message,
            "evidence": to_jsonable(self.evidence, "evidence"),
            "key": list(self.key),
            "fingerprint": self.fingerprint,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AlertDraft:
        """The inverse of :meth:`to_dict`."""
        version = data.get("version")
        return cls(
            kind=data["kind"],
            version=int(version) if version is not None else None,
            severity=data["severity"],
            message=str(data["message"]),
            evidence=dict(data.get("evidence", {})),
            key=tuple(data.get("key", [])),
        )


@dataclass(frozen=True)
class Alert:
    """A stored alert."""

    id: int
    at: datetime
    kind: str
    version: int | None
    fingerprint: str
    severity: str
    message: str
    evidence: dict[str, Any]
    delivered: bool
    delivery_error: str | None = None
    resolved_at: datetime | None = None

    @property
    def open(self) -> bool:
        """True until the condition is resolved."""
        return self.resolved_at is None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values (timestamps as ISO strings)."""
        return {
            "id": self.id,
            "at": self.at.isoformat(),
            "kind": self.kind,
            "version": self.version,
            "fingerprint": self.fingerprint,
            "severity": self.severity,
            "message": self.message,
            "evidence": self.evidence,
            "delivered": self.delivered,
            "delivery_error": self.delivery_error,
            "resolved_at": self.resolved_at.isoformat() if self.resolved_at else None,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Alert:
        """The inverse of :meth:`to_dict`."""
        resolved = data.get("resolved_at")
        version = data.get("version")
        return cls(
            id=int(data["id"]),
            at=datetime.fromisoformat(data["at"]),
            kind=str(data["kind"]),
            version=int(version) if version is not None else None,
            fingerprint=str(data["fingerprint"]),
            severity=str(data["severity"]),
            message=str(data["message"]),
            evidence=dict(data.get("evidence", {})),
            delivered=bool(data["delivered"]),
            delivery_error=data.get("delivery_error"),
            resolved_at=datetime.fromisoformat(resolved) if resolved else None,
        )


@dataclass(frozen=True)
class AlertOutcome:
    """What :func:`raise_alerts` did.

    Attributes:
        raised: alerts stored (and sent) by this pass.
        suppressed: open alerts that already cover a condition found again.
        resolved: alerts closed by this pass.
    """

    raised: tuple[Alert, ...] = ()
    suppressed: tuple[Alert, ...] = ()
    resolved: tuple[Alert, ...] = ()

    @property
    def active(self) -> tuple[Alert, ...]:
        """Every condition present now: raised or suppressed."""
        return self.raised + self.suppressed

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values."""
        return {
            "raised": [a.to_dict() for a in self.raised],
            "suppressed": [a.to_dict() for a in self.suppressed],
            "resolved": [a.to_dict() for a in self.resolved],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AlertOutcome:
        """The inverse of :meth:`to_dict`."""
        return cls(
            raised=tuple(Alert.from_dict(a) for a in data.get("raised", [])),
            suppressed=tuple(Alert.from_dict(a) for a in data.get("suppressed", [])),
            resolved=tuple(Alert.from_dict(a) for a in data.get("resolved", [])),
        )


def post_json(url: str, payload: Mapping[str, Any], timeout: float = WEBHOOK_TIMEOUT) -> str | None:
    """POST ``payload`` as JSON to ``url``; None on a 2xx answer, else what went wrong."""
    body = json.dumps(to_jsonable(dict(payload), "payload")).encode("utf-8")
    request = urllib.request.Request(
        url, data=body, method="POST",
        headers={"Content-Type": "application/json", "User-Agent": "assay-monitor"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - configured URL
            status = int(response.status)
    except urllib.error.HTTPError as exc:
        return f"HTTP {exc.code} from {url}"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return f"{type(exc).__name__}: {reason}"
    return None if 200 <= status < 300 else f"HTTP {status} from {url}"


def raise_alerts(
    store: Store,
    drafts: Sequence[AlertDraft],
    *,
    version: int | None,
    assessed: Collection[str],
    webhook: str | None = None,
    cooldown: timedelta = DEFAULT_COOLDOWN,
    project: str | None = None,
    now: datetime | None = None,
    transport: Transport | None = None,
    timeout: float = WEBHOOK_TIMEOUT,
) -> AlertOutcome:
    """Store, dedupe, deliver and resolve alerts for one monitoring pass (see the module doc).

    Args:
        store: the project store.
        drafts: the conditions found by the pass.
        version: the model version the pass looked at.
        assessed: the kinds the pass could judge (a kind it could not, e.g. live
            performance without labels, keeps its open alerts).
        webhook: the URL to POST each new alert to (``monitoring.webhook``).
        cooldown: how long an open alert silences the same condition.
        project: the project name, included in the webhook payload.
        now: the time of the pass (default: now).
        transport: the sender (default: :func:`post_json`); tests pass their own.
        timeout: seconds per webhook call.
    """
    now = now or utcnow()
    send = transport or post_json
    raised: list[Alert] = []
    suppressed: list[Alert] = []
    resolved: list[Alert] = []
    wanted: dict[str, AlertDraft] = {}
    for draft in drafts:
        wanted.setdefault(draft.fingerprint, draft)
    with store.transaction() as conn:
        open_rows = [
            _to_alert(row)
            for row in conn.execute(
                select(alerts).where(alerts.c.resolved_at.is_(None)).order_by(alerts.c.id)
            )
        ]
        newest: dict[str, Alert] = {}
        for alert in open_rows:
            newest[alert.fingerprint] = alert
        to_close: list[Alert] = []
        for alert in open_rows:
            other_version = version is not None and alert.version != version
            gone = alert.kind in assessed and alert.fingerprint not in wanted
            if other_version or gone:
                to_close.append(alert)
        for fingerprint, draft in wanted.items():
            current = newest.get(fingerprint)
            if current is not None and now - current.at < cooldown:
                suppressed.append(current)
                continue
            if current is not None:
                to_close.extend(a for a in open_rows if a.fingerprint == fingerprint)
            result = conn.execute(
                insert(alerts).values(
                    at=now,
                    kind=draft.kind,
                    version=draft.version,
                    fingerprint=fingerprint,
                    severity=draft.severity,
                    message=draft.message,
                    evidence=to_jsonable(draft.evidence, "evidence"),
                    delivered=False,
                    delivery_error=None if webhook else "no webhook configured",
                    resolved_at=None,
                )
            )
            key = result.inserted_primary_key
            new_id = int(key[0]) if key is not None else 0
            raised.append(_to_alert(conn.execute(select(alerts).where(alerts.c.id == new_id)).one()))
        for alert in {a.id: a for a in to_close}.values():
            conn.execute(update(alerts).where(alerts.c.id == alert.id).values(resolved_at=now))
            resolved.append(_replace(alert, resolved_at=now))
    if webhook:
        retry = [a for a in suppressed if not a.delivered]
        delivered = {a.id: _deliver(store, a, webhook, project, send, timeout) for a in raised + retry}
        raised = [delivered[a.id] for a in raised]
        suppressed = [delivered.get(a.id, a) for a in suppressed]
    return AlertOutcome(tuple(raised), tuple(suppressed), tuple(resolved))


def list_alerts(
    store: Store, *, open_only: bool = False, kind: str | None = None, limit: int | None = None
) -> list[Alert]:
    """Stored alerts, newest first (only unresolved ones with ``open_only``)."""
    query = select(alerts).order_by(alerts.c.id.desc())
    if open_only:
        query = query.where(alerts.c.resolved_at.is_(None))
    if kind is not None:
        query = query.where(alerts.c.kind == kind)
    if limit is not None:
        query = query.limit(limit)
    with store.connect() as conn:
        return [_to_alert(row) for row in conn.execute(query)]


def resolve_alert(store: Store, alert_id: int, *, now: datetime | None = None) -> Alert:
    """Close alert ``alert_id`` by hand (the same condition may then alert again)."""
    now = now or utcnow()
    with store.transaction() as conn:
        row = conn.execute(select(alerts).where(alerts.c.id == alert_id)).first()
        if row is None:
            raise NotFoundError(
                f"alert {alert_id} does not exist",
                where="alerts",
                received=alert_id,
                fix="List the alerts with `assay monitor --json`.",
            )
        alert = _to_alert(row)
        if alert.resolved_at is None:
            conn.execute(update(alerts).where(alerts.c.id == alert_id).values(resolved_at=now))
            alert = _replace(alert, resolved_at=now)
    return alert


def _deliver(
    store: Store,
    alert: Alert,
    webhook: str,
    project: str | None,
    send: Transport,
    timeout: float,
) -> Alert:
    payload = {"project": project, "alert": alert.to_dict()}
    try:
        error = send(webhook, payload, timeout)
    except Exception as exc:  # noqa: BLE001 - a delivery failure is recorded, never raised
        error = f"{type(exc).__name__}: {exc}"
    delivered = error is None
    with store.transaction() as conn:
        conn.execute(
            update(alerts)
            .where(alerts.c.id == alert.id)
            .values(delivered=delivered, delivery_error=error)
        )
    return _replace(alert, delivered=delivered, delivery_error=error)


def _replace(alert: Alert, **changes: Any) -> Alert:
    from dataclasses import replace

    return replace(alert, **changes)


def _to_alert(record: Row[Any]) -> Alert:
    row = record._mapping
    version = row["version"]
    return Alert(
        id=int(row["id"]),
        at=as_utc(row["at"]),
        kind=str(row["kind"]),
        version=int(version) if version is not None else None,
        fingerprint=str(row["fingerprint"]),
        severity=str(row["severity"]),
        message=str(row["message"]),
        evidence=dict(row["evidence"] or {}),
        delivered=bool(row["delivered"]),
        delivery_error=row["delivery_error"],
        resolved_at=as_utc(row["resolved_at"]),
    )
