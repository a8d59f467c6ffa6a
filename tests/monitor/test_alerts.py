"""Alerts: stored, deduplicated on their fingerprint, resolved, and POSTed to a webhook."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from assay.errors import NotFoundError
from assay.monitor.alerts import (
    Alert,
    AlertDraft,
    AlertOutcome,
    list_alerts,
    raise_alerts,
    resolve_alert,
)
from assay.monitor.monitor import monitor_project
from assay.store import Store, utcnow


class Hook:
    """A tiny webhook receiver on 127.0.0.1 that keeps every JSON body it gets."""

    def __init__(self, status: int = 200) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.status = status
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                size = int(self.headers.get("Content-Length", 0))
                hook.bodies.append(json.loads(self.rfile.read(size)))
                self.send_response(hook.status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/alerts"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hook() -> Iterator[Hook]:
    receiver = Hook()
    yield receiver
    receiver.close()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path) as opened:
        yield opened


def _drift(*features: str, version: int = 1) -> AlertDraft:
    return AlertDraft(
        kind="data_drift", version=version, severity="warning",
        message=f"drifted: {', '.join(features)}",
        evidence={"features": [{"name": f, "psi": 0.5} for f in features]}, key=tuple(features),
    )


def test_the_same_condition_alerts_once_until_resolved(store: Store) -> None:
    now = utcnow()
    first = raise_alerts(store, [_drift("x0", "x1")], version=1, assessed={"data_drift"}, now=now)
    assert len(first.raised) == 1 and first.suppressed == ()
    again = raise_alerts(
        store, [_drift("x1", "x0")], version=1, assessed={"data_drift"}, now=now + timedelta(hours=1)
    )
    assert again.raised == () and [a.id for a in again.suppressed] == [first.raised[0].id]
    assert len(list_alerts(store)) == 1
    # the condition is gone: resolved; it comes back: a new alert
    gone = raise_alerts(store, [], version=1, assessed={"data_drift"}, now=now + timedelta(hours=2))
    assert [a.id for a in gone.resolved] == [first.raised[0].id]
    back = raise_alerts(store, [_drift("x0", "x1")], version=1, assessed={"data_drift"},
                        now=now + timedelta(hours=3))
    assert len(back.raised) == 1 and back.raised[0].id != first.raised[0].id


def test_a_different_feature_set_is_a_new_condition(store: Store) -> None:
    first = raise_alerts(store, [_drift("x0")], version=1, assessed={"data_drift"})
    second = raise_alerts(store, [_drift("x0", "x3")], version=1, assessed={"data_drift"})
    assert len(second.raised) == 1
    assert [a.id for a in second.resolved] == [first.raised[0].id]
    assert _drift("x0").fingerprint != _drift("x0", "x3").fingerprint
    assert _drift("x0").fingerprint != _drift("x0", version=2).fingerprint


def test_a_reminder_after_the_cooldown_replaces_the_open_alert(store: Store) -> None:
    now = utcnow()
    first = raise_alerts(store, [_drift("x0")], version=1, assessed={"data_drift"}, now=now)
    later = raise_alerts(store, [_drift("x0")], version=1, assessed={"data_drift"},
                         now=now + timedelta(hours=25), cooldown=timedelta(hours=24))
    assert len(later.raised) == 1 and [a.id for a in later.resolved] == [first.raised[0].id]
    assert [a.id for a in list_alerts(store, open_only=True)] == [later.raised[0].id]


def test_kinds_not_assessed_keep_their_alerts_open(store: Store) -> None:
    perf = AlertDraft("performance", 1, "critical", "roc_auc fell", {"live": 0.6}, ("roc_auc",))
    raise_alerts(store, [perf], version=1, assessed={"performance", "data_drift"})
    # no labels this time: performance cannot be judged, so its alert stays open
    quiet = raise_alerts(store, [], version=1, assessed={"data_drift"})
    assert quiet.resolved == ()
    # the champion changed: alerts of the old version are closed
    moved = raise_alerts(store, [], version=2, assessed=set())
    assert [a.kind for a in moved.resolved] == ["performance"]


def test_the_webhook_receives_each_new_alert_as_json(store: Store, hook: Hook) -> None:
    outcome = raise_alerts(store, [_drift("x0")], version=1, assessed={"data_drift"},
                           webhook=hook.url, project="churn")
    assert len(hook.bodies) == 1
    body = hook.bodies[0]
    assert body["project"] == "churn"
    assert body["alert"]["kind"] == "data_drift"
    assert body["alert"]["evidence"]["features"] == [{"name": "x0", "psi": 0.5}]
    assert body["alert"]["fingerprint"] == _drift("x0").fingerprint
    assert outcome.raised[0].delivered and list_alerts(store)[0].delivered
    raise_alerts(store, [_drift("x0")], version=1, assessed={"data_drift"}, webhook=hook.url)
    assert len(hook.bodies) == 1  # deduplicated: not sent again


def test_a_failing_webhook_is_recorded_not_raised_and_retried(store: Store, hook: Hook) -> None:
    hook.status = 500
    failed = raise_alerts(store, [_drift("x0")], version=1, assessed={"data_drift"}, webhook=hook.url)
    alert = failed.raised[0]
    assert not alert.delivered and alert.delivery_error == f"HTTP 500 from {hook.url}"
    unreachable = raise_alerts(store, [_drift("x9")], version=1, assessed=set(),
                               webhook="http://127.0.0.1:9/none", timeout=1.0)
    assert not unreachable.raised[0].delivered and unreachable.raised[0].delivery_error
    hook.status = 200
    retried = raise_alerts(store, [_drift("x0")], version=1, assessed=set(), webhook=hook.url)
    assert retried.raised == () and retried.suppressed[0].delivered
    assert len(hook.bodies) == 2
    assert next(a for a in list_alerts(store) if a.id == alert.id).delivered


def test_alerts_round_trip_and_resolve_by_hand(store: Store) -> None:
    outcome = raise_alerts(store, [_drift("x0")], version=1, assessed=set())
    assert Alert.from_dict(outcome.raised[0].to_dict()) == outcome.raised[0]
    assert AlertOutcome.from_dict(outcome.to_dict()) == outcome
    closed = resolve_alert(store, outcome.raised[0].id)
    assert not closed.open and list_alerts(store, open_only=True) == []
    with pytest.raises(NotFoundError, match="alert 99 does not exist"):
        resolve_alert(store, 99)


def test_monitoring_twice_alerts_once_and_posts_once(monitored: Any, make_frame: Any, hook: Hook) -> None:
    monitored.configure(monitoring={"webhook": hook.url})
    monitored.send(make_frame(300, 21, concept=True))
    first = monitor_project(monitored.project, registry=monitored.registry)
    second = monitor_project(monitored.project, registry=monitored.registry)
    assert [a.kind for a in first.alerts.raised] == ["concept_drift"]
    assert second.alerts.raised == () and [a.kind for a in second.alerts.suppressed] == ["concept_drift"]
    assert len(hook.bodies) == 1
    posted = hook.bodies[0]["alert"]
    assert posted["kind"] == "concept_drift" and posted["evidence"]["n_labelled"] == 300
    assert posted["message"] == first.alerts.raised[0].message
