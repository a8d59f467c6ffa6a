"""The predict lane answers ``POST /v1/predict`` exactly as the FastAPI route does."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from assay.serve.app import create_app
from assay.serve.auth import create_token
from assay.serve.lane import PredictLane
from assay.model.predictions import read_predictions

from .conftest import ServingProject

# volatile parts of an answer: fresh prediction and request ids
_VOLATILE = ("id", "request_id")


@pytest.fixture
def pair(
    serving_project: ServingProject, tmp_path: Path
) -> Iterator[tuple[TestClient, TestClient, str]]:
    """The same project served with the lane and without it (auth on), and a predict token."""
    token = create_token(serving_project.registry, "svc", ["predict"])
    with_lane = create_app(serving_project.project, wal_dir=tmp_path / "wal-lane")
    without = create_app(serving_project.project, wal_dir=tmp_path / "wal-route", lane=False)
    with TestClient(with_lane) as a, TestClient(without) as b:
        yield a, b, token


def _strip(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: "<id>" if k in _VOLATILE else _strip(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def _cases(sp: ServingProject, token: str) -> list[tuple[str, dict[str, str], bytes]]:
    auth = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    good = orjson.dumps({"records": sp.records(3)})
    flagged = orjson.dumps({"records": [{**sp.records(1)[0], "plan": "enterprise", "x1": 1e6}]})
    return [
        ("three records", auth, good),
        ("request id echoed", {**auth, "X-Request-ID": "req-7"}, good),
        ("flags answered", auth, flagged),
        ("no token", {"Content-Type": "application/json"}, good),
        ("basic scheme", {**auth, "Authorization": "Basic abc"}, good),
        ("unknown token", {**auth, "Authorization": "Bearer nope"}, good),
        ("wrong content type", {**auth, "Content-Type": "text/plain"}, good),
        ("not json", auth, b"{records"),
        ("no records key", auth, b'{"rows": []}'),
        ("refused record", auth, orjson.dumps({"records": [{"x1": "abc"}]})),
        ("too large", auth, b"x" * (8 * 1024 * 1024 + 1)),
    ]


def test_lane_and_route_give_the_same_answers(
    pair: tuple[TestClient, TestClient, str], serving_project: ServingProject
) -> None:
    lane, route, token = pair
    seen = set()
    for name, headers, body in _cases(serving_project, token):
        a = lane.post("/v1/predict", content=body, headers=headers)
        b = route.post("/v1/predict", content=body, headers=headers)
        assert a.status_code == b.status_code, name
        assert _strip(a.json()) == _strip(b.json()), name
        for header in ("content-type", "www-authenticate"):
            assert a.headers.get(header) == b.headers.get(header), (name, header)
        assert ("x-request-id" in a.headers) == ("x-request-id" in b.headers), name
        if name == "request id echoed":
            assert a.headers["x-request-id"] == a.json()["request_id"] == "req-7"
        seen.add(a.status_code)
    assert seen == {200, 401, 413, 415, 422}


def test_lane_logs_every_answered_prediction(
    pair: tuple[TestClient, TestClient, str], serving_project: ServingProject
) -> None:
    lane, _, token = pair
    headers = {"Authorization": f"Bearer {token}"}
    ids = []
    for start in range(4):
        body = lane.post(
            "/v1/predict",
            json={"records": serving_project.records(2, start=start)},
            headers=headers,
        ).json()
        ids += [p["id"] for p in body["predictions"]]
    lane.app.state.assay.log.flush()  # type: ignore[attr-defined]
    assert sorted(read_predictions(serving_project.registry.store)["id"]) == sorted(ids)


def _counts(client: TestClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(client.get("/metrics").text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def test_lane_counts_requests_and_errors_under_the_route(
    pair: tuple[TestClient, TestClient, str], serving_project: ServingProject
) -> None:
    lane, _, token = pair
    headers = {"Authorization": f"Bearer {token}"}
    for _ in range(3):
        assert (
            lane.post(
                "/v1/predict", json={"records": serving_project.records(1)}, headers=headers
            ).status_code
            == 200
        )
    assert lane.post("/v1/predict", json={"records": serving_project.records(1)}).status_code == 401
    s = _counts(lane)
    assert s[("assay_http_requests_total", (("endpoint", "/v1/predict"), ("status", "200")))] == 3
    assert s[("assay_http_requests_total", (("endpoint", "/v1/predict"), ("status", "401")))] == 1
    assert (
        s[("assay_http_errors_total", (("code", "unauthorized"), ("endpoint", "/v1/predict")))] == 1
    )
    assert s[("assay_http_request_duration_seconds_count", (("endpoint", "/v1/predict"),))] == 4


def test_other_methods_and_paths_pass_through(pair: tuple[TestClient, TestClient, str]) -> None:
    lane, route, _ = pair
    assert isinstance(lane.app.middleware_stack, PredictLane)  # type: ignore[attr-defined]
    assert not isinstance(route.app.middleware_stack, PredictLane)  # type: ignore[attr-defined]
    response = lane.get("/v1/predict")
    assert response.status_code == 405 and response.json()["error"] == "method_not_allowed"
    assert lane.get("/healthz").json() == {"status": "ok"}
    assert "/v1/predict" in lane.get("/openapi.json").json()["paths"]


def test_an_unexpected_failure_is_a_json_500_and_the_server_goes_on(
    pair: tuple[TestClient, TestClient, str],
    serving_project: ServingProject,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lane, _, token = pair
    runtime = lane.app.state.assay.runtime  # type: ignore[attr-defined]
    original = runtime.choose

    def broken(routing: Any) -> Any:
        raise RuntimeError("planted failure")

    monkeypatch.setattr(runtime, "choose", broken)
    headers = {"Authorization": f"Bearer {token}"}
    response = lane.post(
        "/v1/predict", json={"records": serving_project.records(1)}, headers=headers
    )
    assert response.status_code == 500
    assert (
        response.json()["error"] == "internal_error"
        and "RuntimeError" in response.json()["message"]
    )
    monkeypatch.setattr(runtime, "choose", original)
    assert (
        lane.post(
            "/v1/predict", json={"records": serving_project.records(1)}, headers=headers
        ).status_code
        == 200
    )
    s = _counts(lane)
    assert (
        s[("assay_http_errors_total", (("code", "internal_error"), ("endpoint", "/v1/predict")))]
        == 1
    )


def test_a_client_gone_before_its_body_gets_no_answer(
    pair: tuple[TestClient, TestClient, str],
) -> None:
    lane_client, _, token = pair
    state = lane_client.app.state.assay  # type: ignore[attr-defined]
    passed: list[str] = []

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        passed.append(scope["path"])

    lane = PredictLane(inner, state)
    sent: list[Any] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.disconnect"}

    async def send(message: Any) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/v1/predict",
        "headers": [
            (b"content-type", b"application/json"),
            (b"authorization", f"Bearer {token}".encode()),
        ],
    }
    asyncio.run(lane(scope, receive, send))
    assert sent == [] and passed == []
    asyncio.run(lane({**scope, "path": "/v1/feedback"}, receive, send))
    assert passed == ["/v1/feedback"] and sent == []
