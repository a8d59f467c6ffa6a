"""A LoRA version served by ``assay serve`` over real HTTP: the JSON and Open Inference BYTES
answers equal the registered model's own, and concurrent requests are gathered into batches."""

from __future__ import annotations

import concurrent.futures
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
import yaml

from assay.pipeline import open_registry, run_project
from assay.project import Project
from assay.serve.app import model_name

GOOD = ["great", "good", "love"]
BAD = ["bad", "awful", "broken"]
FILLER = ["the", "movie", "was", "plot", "acting", "very"]
TEXTS = ["the movie was great great", "awful broken plot", "very good acting", "bad, bad film"]


def _reviews(n: int = 200) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    rows = []
    for i in range(n):
        label = "pos" if i % 2 else "neg"
        words = list(rng.choice(FILLER, 5)) + list(rng.choice(GOOD if label == "pos" else BAD, 2))
        rng.shuffle(words)
        rows.append({"review": " ".join(words), "label": label})
    return pd.DataFrame(rows)


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, tiny_base: Path) -> Iterator[tuple[str, Project]]:
    root = tmp_path_factory.mktemp("lora-served")
    shutil.copytree(tiny_base, root / "encoder")
    _reviews().to_csv(root / "reviews.csv", index=False)
    raw = {
        "task": "text-classification",
        "data": {"source": "reviews.csv", "target": "label", "text": "review"},
        "search": {"families": ["dummy", "lora"], "trials": 2, "ensemble": False},
        "model": {"base": "encoder", "max_length": 32},
        "serving": {"latency_p99_ms": 5000},
        "audit": {"skip": ["text_label_errors"]},
    }
    (root / "assay.yaml").write_text(yaml.safe_dump(raw))
    project = Project.open(root / "assay.yaml")
    result = run_project(project)
    assert result.family == "lora", result
    if not result.promoted:  # serving is under test, not what two trials of a tiny base learn
        registry = open_registry(project)
        registry.promote(result.version, gate_passed=False, force=True, reason="serving test")
        registry.store.close()
    port = _port()
    server = subprocess.Popen(
        [sys.executable, "-m", "assay", "serve", "--config", str(root / "assay.yaml"),
         "--host", "127.0.0.1", "--port", str(port), "--insecure-no-auth",
         "--batch-wait-ms", "20"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**os.environ},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(server.stderr.read().decode() if server.stderr else "")
            time.sleep(0.2)
        yield url, project
    finally:
        server.terminate()
        server.wait(timeout=30)


def _expected(project: Project) -> tuple[list[str], np.ndarray]:
    registry = open_registry(project)
    try:
        champion = registry.champion()
        assert champion is not None
        model = registry.load_model(champion.version)
    finally:
        registry.store.close()
    frame = pd.DataFrame({"review": TEXTS})
    return [str(c) for c in model.predict(frame)], model.predict_proba(frame)


@pytest.mark.slow
def test_json_and_bytes_answers_are_the_models_own(served: tuple[str, Project]) -> None:
    url, project = served
    labels, proba = _expected(project)
    answer = httpx.post(f"{url}/v1/predict", json={"records": [{"review": t} for t in TEXTS]},
                        timeout=60).json()
    got = answer["predictions"]
    assert [p["prediction"] for p in got] == labels
    assert np.allclose([p["probabilities"]["pos"] for p in got], proba[:, 1], atol=1e-6)
    body = {"inputs": [{"name": "review", "datatype": "BYTES", "shape": [len(TEXTS)],
                        "data": TEXTS}]}
    oip = httpx.post(f"{url}/v2/models/{model_name(project)}/infer", json=body, timeout=60)
    assert oip.status_code == 200, oip.text
    outputs = {o["name"]: o for o in oip.json()["outputs"]}
    assert [str(v) for v in outputs["prediction"]["data"]] == labels


@pytest.mark.slow
def test_concurrent_texts_are_answered_each_with_its_own_label(
    served: tuple[str, Project],
) -> None:
    url, project = served
    labels, _ = _expected(project)

    def ask(i: int) -> str:
        text = TEXTS[i % len(TEXTS)]
        response = httpx.post(f"{url}/v1/predict", json={"records": [{"review": text}]}, timeout=60)
        assert response.status_code == 200, response.text
        return str(response.json()["predictions"][0]["prediction"])

    with concurrent.futures.ThreadPoolExecutor(max_workers=12) as pool:
        answers = list(pool.map(ask, range(24)))
    assert answers == [labels[i % len(TEXTS)] for i in range(24)]
    metrics = httpx.get(f"{url}/metrics", timeout=10).text
    lines = metrics.splitlines()
    batches = [line for line in lines if line.startswith("assay_model_batches_total")]
    rows = [line for line in lines if line.startswith("assay_model_batch_rows_sum")]
    assert batches and rows, [m for m in lines if "batch" in m][:8]
    n_batches = sum(float(line.split()[-1]) for line in batches)
    n_rows = sum(float(line.split()[-1]) for line in rows)
    assert n_rows >= 24 and n_batches < n_rows  # several texts shared a call
