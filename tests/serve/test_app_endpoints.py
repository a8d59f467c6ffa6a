"""The app in process (Starlette's test client): every endpoint, the error shape, auth, logging."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from assay.serve.app import create_app
from assay.serve.auth import create_token, revoke_token
from assay.model.deployments import deploy
from assay.model.predictions import read_predictions

from .conftest import ServingProject


@pytest.fixture
def served(serving_project: ServingProject, tmp_path: Path) -> Iterator[tuple[TestClient, ServingProject]]:
    app = create_app(serving_project.project, auth=False, poll_seconds=0.1, wal_dir=tmp_path / "wal")
    with TestClient(app) as client:
        yield client, serving_project


@pytest.fixture
def secured(serving_project: ServingProject, tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, str]]]:
    tokens = {
        "predict": create_token(serving_project.registry, "svc", ["predict"]),
        "feedback": create_token(serving_project.registry, "labeller", ["feedback"]),
    }
    app = create_app(serving_project.project, auth=True, wal_dir=tmp_path / "wal")
    with TestClient(app) as client:
        yield client, tokens


def _error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "message", "details"} and body["error"] == code
    return body


def test_predict_answers_logs_and_takes_feedback(served: tuple[TestClient, ServingProject]) -> None:
    client, sp = served
    records = sp.records(3)
    response = client.post("/v1/predict", json={"records": records}, headers={"X-Request-ID": "req-42"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["request_id"] == "req-42" and response.headers["x-request-id"] == "req-42"
    predictions = body["predictions"]
    assert len(predictions) == 3
    for p in predictions:
        assert p["version"] == sp.champion and p["prediction"] in (0, 1)
        assert set(p["probabilities"]) == {"0", "1"}
        assert p["confidence"] == pytest.approx(max(p["probabilities"].values()))
    # the answers equal the model's own scoring of the same rows
    expected = sp.registry.load_model(sp.champion).predict_proba(sp.frame.iloc[:3][sp.features])[:, 1]
    assert [p["probabilities"]["1"] for p in predictions] == pytest.approx(expected.tolist(), abs=1e-9)

    labels = [{"id": predictions[0]["id"], "label": 1}, {"id": "no-such-id", "label": 0}]
    response = client.post("/v1/feedback", json={"labels": labels})
    assert response.json() == {"accepted": 1, "unknown_ids": ["no-such-id"], "unchanged": 0, "overwritten": 0, "unknown_keys": [], "by_key": 0}
    logged = read_predictions(sp.registry.store)
    assert sorted(logged["id"]) == sorted(p["id"] for p in predictions)
    assert set(logged["request_id"]) == {"req-42"} and set(logged["route"]) == {"champion"}
    assert logged.set_index("id").loc[predictions[0]["id"], "label"] == 1


def test_flags_are_answered_and_logged(served: tuple[TestClient, ServingProject]) -> None:
    client, sp = served
    record = {**sp.records(1)[0], "plan": "enterprise", "x1": 1e6}
    body = client.post("/v1/predict", json={"records": [record]}).json()
    assert set(body["predictions"][0]["flags"]) == {"unknown_category", "out_of_range"}


def test_invocations_formats_agree_with_predict(served: tuple[TestClient, ServingProject]) -> None:
    client, sp = served
    records = sp.records(4)
    expected = [p["prediction"] for p in client.post("/v1/predict", json={"records": records}).json()["predictions"]]
    split = {"columns": sp.features, "data": [[r[f] for f in sp.features] for r in records]}
    for payload in ({"dataframe_split": split}, {"dataframe_records": records}, {"instances": records},
                    {"inputs": {f: [r[f] for r in records] for f in sp.features}}):
        response = client.post("/invocations", json=payload)
        assert response.status_code == 200, response.text
        assert response.json() == {"predictions": expected}
    header = ",".join(sp.features)
    lines = [",".join("" if r[f] is None else str(r[f]) for f in sp.features) for r in records]
    response = client.post("/invocations", content="\n".join([header, *lines]), headers={"Content-Type": "text/csv"})
    assert response.json() == {"predictions": expected}


def test_refusals_have_one_shape(served: tuple[TestClient, ServingProject]) -> None:
    client, sp = served
    record = sp.records(1)[0]
    body = _error(client.post("/v1/predict", json={"records": [record, {**record, "x1": "abc"}]}),
                  422, "invalid_records")
    assert body["details"] == [{"index": 1, "field": "x1", "reason": body["details"][0]["reason"], "code": "type"}]
    assert "record 1 field 'x1'" in body["message"] and "nothing was scored" in body["message"]
    _error(client.post("/v1/predict", content=b"{", headers={"Content-Type": "application/json"}), 422, "invalid_json")
    _error(client.post("/v1/predict", content=b"records", headers={"Content-Type": "text/plain"}),
           415, "unsupported_media_type")
    _error(client.post("/v1/predict", json={"records": [record] * 1001}), 413, "too_many_records")
    _error(client.get("/v1/predict"), 405, "method_not_allowed")
    _error(client.get("/nowhere"), 404, "not_found")
    _error(client.get("/v2/models/other"), 404, "unknown_model")
    assert not read_predictions(sp.registry.store).shape[0]  # refused requests log nothing


def test_oip_metadata_and_json_infer(served: tuple[TestClient, ServingProject]) -> None:
    client, sp = served
    name = sp.project.root.name
    assert client.get("/v2/health/live").json() == {"live": True}
    assert client.get("/v2/health/ready").json() == {"ready": True}
    meta = client.get(f"/v2/models/{name}").json()
    types = {i["name"]: i["datatype"] for i in meta["inputs"]}
    assert types == {"x1": "FP64", "x2": "FP64", "count": "INT64", "plan": "BYTES", "region": "BYTES",
                     "active": "BOOL", "signup": "BYTES"}
    assert meta["versions"] == [str(sp.champion)]
    records = sp.records(2)
    inputs = [{"name": f, "shape": [2], "datatype": types[f], "data": [r[f] for r in records]} for f in sp.features]
    response = client.post(f"/v2/models/{name}/infer", json={"id": "r1", "inputs": inputs})
    assert response.status_code == 200, response.text
    out = {o["name"]: o for o in response.json()["outputs"]}
    expected = client.post("/v1/predict", json={"records": records}).json()["predictions"]
    assert out["prediction"]["data"] == [p["prediction"] for p in expected]
    assert out["probabilities"]["data"] == pytest.approx(
        [p["probabilities"][k] for p in expected for k in ("0", "1")])


def test_health_readiness_metrics_and_docs(served: tuple[TestClient, ServingProject]) -> None:
    client, sp = served
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz").json()
    assert ready["status"] == "ready" and ready["champion"] == sp.champion
    client.post("/v1/predict", json={"records": sp.records(2)})
    client.post("/v1/predict", json={"records": [{"x1": "bad"}]})
    text = client.get("/metrics").text
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for f in text_string_to_metric_families(text) for s in f.samples}
    assert samples[("assay_predictions_total", (("route", "champion"), ("version", str(sp.champion))))] == 2
    assert samples[("assay_http_errors_total", (("code", "invalid_records"), ("endpoint", "/v1/predict")))] == 1
    assert samples[("assay_ready", ())] == 1
    doc = client.get("/openapi.json").json()
    record = doc["components"]["schemas"]["Record"]["properties"]
    assert record["count"] == {"type": "integer", "examples": [1]}
    assert "bearer" not in str(doc.get("components"))
    assert doc["paths"]["/v1/predict"]["post"]["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/PredictRequest"}
    assert client.get("/docs").status_code == 200


def test_shadow_is_logged_not_returned(served: tuple[TestClient, ServingProject]) -> None:
    client, sp = served
    deploy(sp.registry, sp.second, mode="shadow")
    client.app.state.assay.runtime.refresh()  # type: ignore[attr-defined]
    body = client.post("/v1/predict", json={"records": sp.records(2)}).json()
    assert {p["version"] for p in body["predictions"]} == {sp.champion}
    client.app.state.assay.log.flush()  # type: ignore[attr-defined]
    logged = read_predictions(sp.registry.store)
    assert sorted(logged["route"]) == ["champion", "champion", "shadow", "shadow"]
    assert set(logged.loc[logged["route"] == "shadow", "version"]) == {sp.second}
    assert logged["request_id"].nunique() == 1


def test_not_ready_without_a_champion(serving_project: ServingProject, tmp_path: Path) -> None:
    from sqlalchemy import delete

    from assay.store.tables import aliases

    with serving_project.registry.store.transaction() as conn:
        conn.execute(delete(aliases))
    app = create_app(serving_project.project, auth=False, wal_dir=tmp_path / "wal")
    with TestClient(app) as client:
        assert client.get("/healthz").status_code == 200
        _error(client.get("/readyz"), 503, "not_ready")
        body = _error(client.post("/v1/predict", json={"records": serving_project.records(1)}), 503, "not_ready")
        assert "assay promote" in body["message"]


def test_auth_scopes_and_revocation(secured: tuple[TestClient, dict[str, str]],
                                    serving_project: ServingProject) -> None:
    client, tokens = secured
    payload = {"records": serving_project.records(1)}
    body = _error(client.post("/v1/predict", json=payload), 401, "unauthorized")
    assert "assay token create" in body["message"]
    _error(client.post("/v1/predict", json=payload, headers={"Authorization": "Basic abc"}), 401, "unauthorized")
    _error(client.post("/v1/predict", json=payload, headers={"Authorization": "Bearer nope"}), 401, "invalid_token")
    as_labeller = {"Authorization": f"Bearer {tokens['feedback']}"}
    body = _error(client.post("/v1/predict", json=payload, headers=as_labeller), 403, "forbidden")
    assert "token 'labeller' lacks the 'predict' scope" in body["message"]
    as_service = {"Authorization": f"Bearer {tokens['predict']}"}
    answer = client.post("/v1/predict", json=payload, headers=as_service)
    assert answer.status_code == 200
    _error(client.post("/v1/feedback", json={"labels": [{"id": "x", "label": 1}]}, headers=as_service),
           403, "forbidden")
    pid = answer.json()["predictions"][0]["id"]
    ok = client.post("/v1/feedback", json={"labels": [{"id": pid, "label": 0}]}, headers=as_labeller)
    assert ok.json() == {"accepted": 1, "unknown_ids": [], "unchanged": 0, "overwritten": 0, "unknown_keys": [], "by_key": 0}
    assert client.get("/healthz").status_code == 200  # health needs no token
    revoke_token(serving_project.registry, "svc")
    client.app.state.assay.verifier.reload()  # type: ignore[attr-defined]
    _error(client.post("/v1/predict", json=payload, headers=as_service), 401, "invalid_token")
    doc = client.get("/openapi.json").json()
    assert doc["components"]["securitySchemes"] == {"bearer": {"type": "http", "scheme": "bearer"}}


def test_feedback_actor_is_the_token_name(secured: tuple[TestClient, dict[str, str]],
                                          serving_project: ServingProject) -> None:
    from sqlalchemy import select

    from assay.store.tables import feedback

    client, tokens = secured
    headers = {"Authorization": f"Bearer {tokens['predict']}"}
    pid = client.post("/v1/predict", json={"records": serving_project.records(1)},
                      headers=headers).json()["predictions"][0]["id"]
    client.post("/v1/feedback", content=orjson.dumps({"labels": [{"id": pid, "label": 1}]}),
                headers={"Authorization": f"Bearer {tokens['feedback']}", "Content-Type": "application/json"})
    with serving_project.registry.store.connect() as conn:
        actors = list(conn.execute(select(feedback.c.actor)).scalars())
    assert actors == ["labeller"]


def test_feedback_labels_are_checked_against_the_model_classes(
    served: tuple[TestClient, ServingProject],
) -> None:
    client, sp = served
    pid = client.post("/v1/predict", json={"records": sp.records(1)}).json()["predictions"][0]["id"]
    body = _error(client.post("/v1/feedback", json={"labels": [{"id": pid, "label": "maybe"}]}),
                  422, "invalid_labels")
    assert "labels[0].label" in body["message"] and "one of 0, 1" in body["message"]
    assert body["details"] == [{"index": 0, "field": "label", "code": "unknown_class", "allowed": [0, 1],
                                "reason": "'maybe' is not a class of the model; allowed: 0, 1"}]
    # "1" and 1.0 name the class 1: stored as the class itself
    assert client.post("/v1/feedback", json={"labels": [{"id": pid, "label": "1"}]}).json()["accepted"] == 1
    assert read_predictions(sp.registry.store).set_index("id").loc[pid, "label"] == 1


def test_a_second_label_for_a_prediction_is_a_conflict_unless_overwritten(
    served: tuple[TestClient, ServingProject],
) -> None:
    from sqlalchemy import func, select

    from assay.store.tables import feedback

    client, sp = served
    a, b = (p["id"] for p in client.post("/v1/predict", json={"records": sp.records(2)}).json()["predictions"])
    assert client.post("/v1/feedback", json={"labels": [{"id": a, "label": 0}]}).json()["accepted"] == 1
    again = client.post("/v1/feedback", json={"labels": [{"id": a, "label": 0.0}]})
    assert again.json() == {"accepted": 0, "unknown_ids": [], "unchanged": 1, "overwritten": 0, "unknown_keys": [], "by_key": 0}
    body = _error(client.post("/v1/feedback", json={"labels": [{"id": b, "label": 1}, {"id": a, "label": 1}]}),
                  409, "label_conflict")
    assert "overwrite=true" in body["message"]
    assert body["details"] == [{"index": 1, "id": a, "label": 1, "existing": 0}]
    # two different labels for one id in one request conflict as well
    _error(client.post("/v1/feedback", json={"labels": [{"id": b, "label": 1}, {"id": b, "label": 0}]}),
           409, "label_conflict")
    with sp.registry.store.connect() as conn:
        assert conn.execute(select(func.count()).select_from(feedback)).scalar() == 1  # nothing stored
    _error(client.post("/v1/feedback?overwrite=maybe", json={"labels": [{"id": a, "label": 1}]}),
           422, "invalid_query")
    fixed = client.post("/v1/feedback?overwrite=true", json={"labels": [{"id": a, "label": 1}]})
    assert fixed.json() == {"accepted": 1, "unknown_ids": [], "unchanged": 0, "overwritten": 1, "unknown_keys": [], "by_key": 0}
    assert read_predictions(sp.registry.store).set_index("id").loc[a, "label"] == 1
    (event,) = sp.registry.events(action="feedback_overwrite")
    assert event.actor == "anonymous" and event.details["labels"] == [{"id": a, "previous": 0, "label": 1}]


def test_a_log_that_cannot_be_written_refuses_the_prediction(
    served: tuple[TestClient, ServingProject], monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    import assay.serve.log as log_module

    client, sp = served

    def disk_full(fd: int, data: bytes) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    real = log_module.write_all
    monkeypatch.setattr(log_module, "write_all", disk_full)
    response = client.post("/v1/predict", json={"records": sp.records(1)})
    body = _error(response, 503, "log_unavailable")
    assert "No space left" in body["message"] and response.headers["retry-after"] == "5"
    monkeypatch.setattr(log_module, "write_all", real)
    assert client.post("/v1/predict", json={"records": sp.records(1)}).status_code == 200
