"""The user's own rows over real HTTP: records carrying the declared ``data.id``,
``data.time`` and ``data.drop`` columns are answered without flags and logged whole;
feedback names a prediction by that id; ``assay predict`` logs its rows so feedback and
``assay monitor`` see them; the monitor judges the contract on the joined traffic.

The server is ``python -m assay serve`` as a subprocess (as in test_server_http.py),
on a small project built once per session.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import pandas as pd
import pytest
import yaml

from assay.model.predictions import read_predictions
from assay.pipeline import open_registry, run_project
from assay.project import Project

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ASSAY = [sys.executable, "-m", "assay"]
STARTUP_SECONDS = 90.0
FEATURES = ["x0", "x1", "plan"]


def keyed_frame(n: int, seed: int, start: int = 0) -> pd.DataFrame:
    """Rows with an id (``customer``), an event time (``when``), a dropped note and ``y``."""
    rng = np.random.default_rng(seed)
    x0, x1 = rng.normal(size=n), rng.normal(size=n)
    frame = pd.DataFrame({
        "customer": [f"c{start + i}" for i in range(n)],
        "when": (pd.Timestamp("2024-01-01") + pd.to_timedelta(np.arange(start, start + n), unit="h"))
        .strftime("%Y-%m-%dT%H:%M:%S"),
        "x0": x0,
        "x1": x1,
        "plan": rng.choice(["basic", "pro"], n),
        "note": rng.choice(["called", "emailed"], n),
    })
    frame["y"] = (x0 + 0.3 * rng.normal(size=n) > 0).astype(int)
    return frame


@pytest.fixture(scope="session")
def keyed_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("keyed") / "project"
    root.mkdir(parents=True)
    keyed_frame(300, 0).to_csv(root / "data.csv", index=False)
    raw = {
        "task": "binary",
        "data": {"source": "data.csv", "target": "y", "id": "customer", "time": "when",
                 "drop": ["note"]},
        "search": {"families": ["dummy", "linear"], "trials": 2, "cv_folds": 2},
        "serving": {"latency_p99_ms": 1000},
        "acceptance": {"recall": ">= 0.9"},
        "monitoring": {"window": 500, "min_labels": 30},
    }
    (root / "assay.yaml").write_text(yaml.safe_dump(raw))
    project = Project.open(root / "assay.yaml")
    registry = open_registry(project)
    try:
        result = run_project(project, registry=registry, write_report=False)
        if not result.promoted:
            registry.promote(result.version, gate_passed=False, force=True, reason="test fixture")
    finally:
        registry.store.close()
    return root


@pytest.fixture
def keyed(keyed_template: Path, tmp_path: Path) -> Path:
    root = tmp_path / "project"
    shutil.copytree(keyed_template, root)
    return root


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _assay(root: Path, *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "ASSAY_USER": "tester", "COLUMNS": "200"}
    return subprocess.run([*ASSAY, *args], cwd=root, capture_output=True, input=stdin,
                          env=env, timeout=180, check=False)


@pytest.fixture
def server(keyed: Path) -> Iterator[str]:
    port = _free_port()
    log = keyed / "server.log"
    with open(log, "wb") as handle:
        proc = subprocess.Popen(
            [*ASSAY, "serve", "--port", str(port), "--poll-seconds", "0.2", "--insecure-no-auth"],
            cwd=keyed, stdout=handle, stderr=subprocess.STDOUT,
            env={**os.environ, "ASSAY_USER": "tester"},
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"the server exited:\n{log.read_text(errors='replace')[-3000:]}")
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"the server did not start:\n{log.read_text(errors='replace')[-3000:]}")
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def _records(frame: pd.DataFrame, columns: list[str]) -> list[dict[str, Any]]:
    return [{k: (v.item() if isinstance(v, np.generic) else v) for k, v in row.items()}
            for row in frame[columns].to_dict("records")]


def _logged(root: Path) -> pd.DataFrame:
    project = Project.open(root / "assay.yaml")
    registry = open_registry(project)
    try:
        return read_predictions(registry.store)
    finally:
        registry.store.close()


def test_declared_columns_pass_through_and_feedback_finds_them_by_id(keyed: Path, server: str) -> None:
    frame = keyed_frame(40, 1, start=1000)
    records = _records(frame, ["customer", "when", "note", "y", *FEATURES])
    answer = httpx.post(f"{server}/v1/predict", json={"records": records}, timeout=30)
    assert answer.status_code == 200, answer.text
    predictions = answer.json()["predictions"]
    assert all(p["flags"] == [] and p["warnings"] == [] for p in predictions)
    # a key that is neither a feature nor declared is flagged, by name
    odd = httpx.post(f"{server}/v1/predict", json={"records": [{**records[0], "colour": "red"}]},
                     timeout=30).json()["predictions"][0]
    assert odd["flags"] == ["unknown_field"]
    assert [(w["field"], w["code"]) for w in odd["warnings"]] == [("colour", "unknown_field")]
    assert "'colour'" in odd["warnings"][0]["reason"]
    # labels by the record's own id, and one by prediction id
    by_key = [{"key": r["customer"], "label": int(r["y"])} for r in records[1:]]
    sent = httpx.post(f"{server}/v1/feedback", json={
        "labels": [{"id": predictions[0]["id"], "label": int(records[0]["y"])}, *by_key,
                   {"key": "nobody", "label": 1}]}, timeout=30)
    assert sent.status_code == 200, sent.text
    body = sent.json()
    assert body["unknown_keys"] == ["nobody"] and body["unknown_ids"] == []
    # one label by prediction id, 39 by key (each key carried by one answered record)
    assert body["accepted"] == 40 and body["by_key"] == 39
    logged = _logged(keyed).set_index("id")
    row = logged.loc[predictions[5]["id"]]
    assert row["customer"] == records[5]["customer"] and row["when"] == records[5]["when"]
    assert row["note"] == records[5]["note"] and row["label"] == records[5]["y"]
    assert logged.loc[predictions[0]["id"], "label"] == records[0]["y"]
    # a key item must not also carry an id; the OpenAPI model documents both shapes
    both = httpx.post(f"{server}/v1/feedback", json={"labels": [{"id": "x", "key": "c1", "label": 1}]},
                      timeout=30)
    assert both.status_code == 422 and both.json()["details"][0]["field"] == "key"
    schema = httpx.get(f"{server}/openapi.json", timeout=30).json()["components"]["schemas"]
    item = schema["FeedbackRequest"]["properties"]["labels"]["items"]
    assert set(item["properties"]) == {"id", "key", "label"} and "'customer'" in item["properties"]["key"]["description"]
    assert "warnings" in schema["Prediction"]["properties"]


def test_batch_predictions_are_logged_for_feedback_and_monitoring(keyed: Path, server: str) -> None:
    frame = keyed_frame(120, 2, start=2000)
    frame.drop(columns=["y"]).to_csv(keyed / "in.csv", index=False)
    done = _assay(keyed, "predict", "in.csv", "-o", "out.csv")
    assert done.returncode == 0, done.stderr.decode()
    out = pd.read_csv(keyed / "out.csv")
    assert out["prediction_id"].notna().all()
    # the id, time and dropped columns are the user's own: not flagged
    assert not out["flags"].fillna("").str.contains("unknown_field").any()
    # feedback names batch predictions by their id and by the record's key
    half = len(out) // 2
    labels = [{"id": pid, "label": 1} for pid in out["prediction_id"][:half]]
    labels += [{"key": c, "label": 1} for c in out["customer"][half:]]
    sent = httpx.post(f"{server}/v1/feedback", json={"labels": labels}, timeout=30)
    assert sent.status_code == 200 and sent.json()["accepted"] == 120, sent.text
    logged = _logged(keyed)
    batch = logged[logged["route"] == "batch"]
    assert len(batch) == 120 and batch["label"].notna().all()
    assert set(batch["id"]) == set(out["prediction_id"])
    # every label positive: the model finds about half, far below recall >= 0.9
    report = _assay(keyed, "monitor", "--json")
    assert report.returncode in (0, 1), report.stderr.decode()
    data = orjson.loads(report.stdout)
    checks = {c["metric"]: c for c in data["contract"]["checks"]}
    assert checks["recall"]["status"] == "breach" and checks["recall"]["n"] == 120
    assert checks["latency_p99_ms"]["status"] == "not_judged"  # batch rows are not requests
    kinds = [a["kind"] for a in data["alerts"]["raised"]]
    assert "acceptance_breach" in kinds and "flagged_inputs" not in kinds
    shown = _assay(keyed, "monitor").stdout.decode()
    assert "The contract on live traffic" in shown and "recall >= 0.9" in shown and "breach" in shown
    # --no-log: scored, not logged, no id column
    quiet = _assay(keyed, "predict", "in.csv", "-o", "quiet.csv", "--no-log")
    assert quiet.returncode == 0 and "prediction_id" not in pd.read_csv(keyed / "quiet.csv").columns
    assert len(_logged(keyed)) == len(logged)
    # stdin answers carry their prediction id
    lines = b"\n".join(orjson.dumps(r) for r in _records(frame.head(3), ["customer", *FEATURES]))
    streamed = _assay(keyed, "predict", "--stdin", stdin=lines)
    answers = [orjson.loads(line) for line in streamed.stdout.splitlines()]
    assert len(answers) == 3 and all(a["prediction_id"] and "unknown_field" not in a["flags"]
                                     for a in answers)
    assert set(a["prediction_id"] for a in answers) <= set(_logged(keyed)["id"])
