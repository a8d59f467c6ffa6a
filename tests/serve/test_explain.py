"""``POST /v1/explain`` over real HTTP: contributions that add up to the champion's output,
the predict path's validation and auth, and the refusals (no explainer, bad records)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient

from assay.explain import Explanation
from assay.explain.explainers import split_model
from assay.model.explained import stored_explanation
from assay.pipeline import run_project
from assay.project import Project
from assay.serve.app import create_app
from assay.serve.auth import create_token

from .conftest import ServingProject
from .textmodels import live_server


def _promote(sp: ServingProject, version: int) -> None:
    sp.registry.promote(version, gate_passed=False, force=True, reason="test: explain it")


def _error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "message", "details"} and body["error"] == code
    return body


def test_every_registered_version_carries_its_explanation(serving_template: ServingProject) -> None:
    sp = serving_template
    for version in (sp.champion, sp.second):
        record = sp.registry.get(version)
        explanation = stored_explanation(sp.registry, record)
        assert isinstance(explanation, Explanation)
        assert sorted(explanation.ranking) == sorted(sp.features)
        # the planted logit leans on x1 most (1.2 per unit of a unit normal)
        assert explanation.ranking[0] == "x1"
    lightgbm = stored_explanation(sp.registry, sp.registry.get(sp.second))
    assert lightgbm is not None and lightgbm.method == "tree_shap"
    assert lightgbm.output == "log_odds" and lightgbm.rows > 0


def test_explain_answers_contributions_that_add_up_to_the_log_odds(
    serving_project: ServingProject, tmp_path: Path
) -> None:
    sp = serving_project
    _promote(sp, sp.second)  # the LightGBM version
    records = sp.records(3)
    with live_server(sp.project, tmp_path / "wal") as server:
        response = httpx.post(f"{server.url}/v1/explain", json={"records": records},
                              headers={"X-Request-ID": "why-1"}, timeout=30)
        assert response.status_code == 200, response.text
        body = response.json()
        predicted = httpx.post(f"{server.url}/v1/predict", json={"records": records}, timeout=30).json()
    assert body["request_id"] == "why-1" and body["version"] == sp.second
    model = sp.registry.load_model(sp.second)
    proba = model.predict_proba(sp.frame.iloc[:3][sp.features])[:, 1]
    for row, p, expected, answer in zip(body["explanations"], predicted["predictions"], proba,
                                        predicted["predictions"]):
        assert list(row["contributions"]) == sp.features
        assert row["output_space"] == "log_odds" and row["output_class"] == 1
        total = row["base_value"] + sum(row["contributions"].values())
        assert total == pytest.approx(row["output"], abs=1e-9)
        assert 1.0 / (1.0 + np.exp(-row["output"])) == pytest.approx(expected, abs=1e-9)
        assert row["prediction"] == answer["prediction"]
        assert row["probabilities"] == pytest.approx(p["probabilities"])


def test_explain_refuses_records_the_way_predict_does(
    serving_project: ServingProject, tmp_path: Path
) -> None:
    sp = serving_project
    bad = {**sp.records(1)[0], "x1": "not a number"}
    with live_server(sp.project, tmp_path / "wal") as server:
        refused = httpx.post(f"{server.url}/v1/explain", json={"records": [sp.records(1)[0], bad]},
                             timeout=30)
        empty = httpx.post(f"{server.url}/v1/explain", json={"records": []}, timeout=30)
        shape = httpx.post(f"{server.url}/v1/explain", json={"rows": []}, timeout=30)
    body = _error(refused, 422, "invalid_records")
    assert body["details"][0]["index"] == 1 and body["details"][0]["field"] == "x1"
    _error(empty, 422, "empty_records")
    _error(shape, 422, "invalid_body")


def test_explain_needs_the_explain_or_the_predict_scope(
    serving_project: ServingProject, tmp_path: Path
) -> None:
    sp = serving_project
    predict = create_token(sp.registry, "svc", ["predict"])
    explain = create_token(sp.registry, "reviewer", ["explain"])
    feedback = create_token(sp.registry, "labeller", ["feedback"])
    app = create_app(sp.project, auth=True, wal_dir=tmp_path / "wal")
    with TestClient(app) as client:
        payload = {"records": sp.records(1)}
        _error(client.post("/v1/explain", json=payload), 401, "unauthorized")
        denied = _error(client.post("/v1/explain", json=payload,
                                    headers={"Authorization": f"Bearer {feedback}"}), 403, "forbidden")
        assert "'explain' or 'predict'" in denied["message"]
        assert "--scope explain" in denied["message"]
        ok = client.post("/v1/explain", json=payload, headers={"Authorization": f"Bearer {predict}"})
        assert ok.status_code == 200, ok.text
        scoped = client.post("/v1/explain", json=payload, headers={"Authorization": f"Bearer {explain}"})
        assert scoped.status_code == 200, scoped.text
        assert scoped.json()["explanations"][0]["contributions"]
        # the explain scope does not open the predict route
        _error(client.post("/v1/predict", json=payload,
                           headers={"Authorization": f"Bearer {explain}"}), 403, "forbidden")
        schema = client.get("/openapi.json").json()
    operation = schema["paths"]["/v1/explain"]["post"]
    assert operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/ExplainResponse")
    assert "409" in operation["responses"]
    row = schema["components"]["schemas"]["RowContributions"]
    assert {"output", "output_space", "base_value", "contributions"} <= set(row["properties"])


@pytest.fixture
def svm_champion(serving_project: ServingProject) -> Iterator[ServingProject]:
    sp = serving_project
    spec = sp.project.spec
    svm = spec.model_copy(
        update={"search": spec.search.model_copy(update={"families": ["svm"], "trials": 1})})
    project = Project(root=sp.project.root, config_path=sp.project.config_path, spec=svm)
    result = run_project(project, registry=sp.registry, write_report=False)
    _promote(sp, result.version)
    yield sp


def test_a_champion_without_a_per_row_explainer_is_refused_with_409(
    svm_champion: ServingProject, tmp_path: Path
) -> None:
    sp = svm_champion
    champion = sp.registry.alias("champion")
    assert champion is not None
    stored = stored_explanation(sp.registry, sp.registry.get(champion))
    assert stored is not None and stored.method == "permutation"
    _, final = split_model(sp.registry.load_model(champion))
    with live_server(sp.project, tmp_path / "wal") as server:
        response = httpx.post(f"{server.url}/v1/explain", json={"records": sp.records(1)}, timeout=30)
    body = _error(response, 409, "no_explainer")
    assert "model family 'svm' has no per-row explainer" in body["message"]
    assert body["details"] == [{"version": champion, "family": "svm"}]
    assert type(final).__name__ == "RBFSupportVectorClassifier"


def test_a_tfidf_text_classifier_is_explained_on_its_text_column(
    text_project: Any, tmp_path: Path
) -> None:
    tp = text_project
    record = tp.registry.get(tp.version)
    stored = stored_explanation(tp.registry, record)
    assert record.family == "tfidf_linear" and stored is not None
    assert stored.method == "linear" and stored.ranking == ["review"]
    assert all(len(str(v[0])) <= 80 for v in stored.sample_values)
    texts = [{"review": t} for t in tp.frame["review"].iloc[:2]]
    app = create_app(tp.project, auth=False, wal_dir=tmp_path / "wal")
    with TestClient(app) as client:
        body = client.post("/v1/explain", json={"records": texts}).json()
        empty = client.post("/v1/explain", json={"records": [{"review": "  "}]})
    for row in body["explanations"]:
        assert list(row["contributions"]) == ["review"]
        assert row["base_value"] + row["contributions"]["review"] == pytest.approx(row["output"])
    _error(empty, 422, "invalid_records")
