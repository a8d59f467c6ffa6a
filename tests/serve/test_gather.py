"""Dynamic batching: concurrent requests to a model that prefers batches share its calls.

The model is the project's fitted ``tfidf_linear`` pipeline wrapped in
:class:`~.textmodels.CountingTextModel` (``prefers_batches_ = True``; it counts its
``predict_proba`` calls and their rows, and breaks on a text holding ``kaboom``), registered
and promoted like any version. Requests go over real HTTP from threads released together;
every answer is compared with the wrapped pipeline's own answer for that request's rows alone.

Gathering is made deterministic without timing: ``max_rows`` is the total of all the requests'
rows and the wait is long (and not adaptive: the first request always waits), so the batch is
scored the moment the last request has queued.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from assay.model.deployments import deploy
from assay.model.loaded import LoadedModel, prefers_batches
from assay.model.predictions import read_predictions
from assay.serve.app import create_app
from assay.serve.gather import BatchPolicy, Gatherer

from .conftest import ServingProject, TextProject
from .textmodels import POISON, CountingTextModel, live_server, register_like

#: long enough never to expire: a batch goes when its rows reach max_rows
LONG_WAIT_MS = 10_000.0


def _requests(n: int) -> list[list[str]]:
    """``n`` requests of one to three texts each, all different."""
    words = ["great love", "rude slow", "friendly fast staff", "broken refund",
             "the order was awful", "excellent service"]
    return [[f"{words[(i + k) % len(words)]} {i}-{k}" for k in range(1 + i % 3)] for i in range(n)]


def _post_together(url: str, requests: Sequence[list[str]]) -> list[httpx.Response]:
    """POST every request's texts to ``/v1/predict`` at once, each from its own thread and
    connection."""
    bodies = [{"records": [{"review": t} for t in texts]} for texts in requests]
    gate = threading.Barrier(len(bodies))

    def post(body: dict[str, Any]) -> httpx.Response:
        with httpx.Client(timeout=60) as client:
            gate.wait()
            return client.post(f"{url}/v1/predict", json=body)

    with ThreadPoolExecutor(len(bodies)) as pool:
        return list(pool.map(post, bodies))


def _metric(url: str, name: str) -> float:
    text = httpx.get(f"{url}/metrics", timeout=10).text
    families = text_string_to_metric_families(text)
    return sum(s.value for f in families for s in f.samples if s.name == name)


def _wrapped(tp: TextProject) -> tuple[int, Any]:
    """Register and promote the project's pipeline wrapped to count calls; (version, pipeline)."""
    pipeline = tp.registry.load_model(tp.version)
    return register_like(tp.registry, tp.version, CountingTextModel(pipeline)), pipeline


def _probabilities(got: list[dict[str, Any]]) -> list[list[float]]:
    return [[p["probabilities"]["neg"], p["probabilities"]["pos"]] for p in got]


def _alone(pipeline: Any, texts: list[str]) -> np.ndarray:
    proba: np.ndarray = pipeline.predict_proba(pd.DataFrame({"review": texts}))
    return proba


async def _submit(gatherer: Gatherer, model: LoadedModel, texts: list[str]) -> Any:
    return await gatherer.predict(model, model.validate([{"review": t} for t in texts]).records)


def test_the_flag_is_read_from_the_final_estimator(text_project: TextProject) -> None:
    version, pipeline = _wrapped(text_project)
    assert prefers_batches(CountingTextModel(pipeline)) and not prefers_batches(pipeline)
    loaded = LoadedModel.load(text_project.registry, version)
    assert loaded.prefers_batches and loaded.text_column == "review"
    wrapped = loaded.model
    loaded.predict(pd.DataFrame({"review": ["great love", "rude slow"]}))
    assert wrapped.calls == [2]  # one call: the label is read from the probabilities


def test_concurrent_requests_share_calls_and_get_their_own_answers(text_project: TextProject,
                                                                   tmp_path: Path) -> None:
    tp = text_project
    version, pipeline = _wrapped(tp)
    requests = _requests(12)
    rows = sum(len(r) for r in requests)
    policy = BatchPolicy(wait_ms=LONG_WAIT_MS, max_rows=rows, adaptive=False)
    with live_server(tp.project, tmp_path / "wal", batching=policy) as server:
        model = server.champion_model()
        assert isinstance(model, CountingTextModel) and model.calls == []
        responses = _post_together(server.url, requests)
        calls = list(model.calls)
        batches = _metric(server.url, "assay_model_batches_total")
        ids = {}
        for texts, response in zip(requests, responses):
            assert response.status_code == 200, response.text
            got = response.json()["predictions"]
            assert [p["version"] for p in got] == [version] * len(texts)
            proba = _alone(pipeline, texts)
            np.testing.assert_allclose(_probabilities(got), proba, rtol=0, atol=1e-12)
            assert [p["prediction"] for p in got] == list(np.where(proba[:, 1] > 0.5, "pos", "neg"))
            ids[response.json()["request_id"]] = ([p["id"] for p in got], texts)
    assert len(calls) < len(requests)  # gathered: fewer model calls than requests
    assert sum(calls) == rows and max(calls) <= rows  # every row scored once
    assert batches == len(calls)
    logged = read_predictions(tp.registry.store)  # the server has stopped: its log is drained
    assert len(logged) == rows
    for request_id, (pids, texts) in ids.items():
        mine = logged[logged["request_id"] == request_id]
        assert dict(zip(mine["id"], mine["review"])) == dict(zip(pids, texts))


def test_a_failing_row_fails_only_its_own_request(text_project: TextProject,
                                                  tmp_path: Path) -> None:
    tp = text_project
    _, pipeline = _wrapped(tp)
    requests = _requests(6)
    requests[2] = ["fine words", f"this one says {POISON}"]
    rows = sum(len(r) for r in requests)
    policy = BatchPolicy(wait_ms=LONG_WAIT_MS, max_rows=rows, adaptive=False)
    with live_server(tp.project, tmp_path / "wal", batching=policy) as server:
        model = server.champion_model()
        responses = _post_together(server.url, requests)
        fallbacks = _metric(server.url, "assay_model_batch_fallbacks_total")
        calls = list(model.calls)
    for i, (texts, response) in enumerate(zip(requests, responses)):
        if i == 2:
            assert response.status_code == 500 and response.json()["error"] == "internal_error"
            continue
        assert response.status_code == 200, response.text
        got = response.json()["predictions"]
        np.testing.assert_allclose(_probabilities(got), _alone(pipeline, texts), rtol=0, atol=1e-12)
    # one gathered call failed; then each request was scored alone
    assert fallbacks == 1 and calls[0] == rows
    assert sorted(calls[1:]) == sorted(len(r) for r in requests)  # in arrival order
    logged = read_predictions(tp.registry.store)
    assert len(logged) == rows - 2  # every answered prediction, and none of the failed request


def test_shadow_and_canary_gather_per_model(text_project: TextProject, tmp_path: Path) -> None:
    tp = text_project
    champion, pipeline = _wrapped(tp)
    challenger = register_like(tp.registry, tp.version, CountingTextModel(pipeline), promote=False)
    deploy(tp.registry, challenger, mode="shadow")
    requests = _requests(8)
    rows = sum(len(r) for r in requests)
    policy = BatchPolicy(wait_ms=LONG_WAIT_MS, max_rows=rows, adaptive=False)
    with live_server(tp.project, tmp_path / "wal", batching=policy) as server:
        routing = server.state.runtime.routing
        assert routing.mode == "shadow" and routing.challenger.version == challenger
        main_model, shadow_model = routing.champion.model, routing.challenger.model
        responses = _post_together(server.url, requests)
        assert all(r.status_code == 200 for r in responses)
        assert {p["version"] for r in responses for p in r.json()["predictions"]} == {champion}
        assert len(main_model.calls) < len(requests) and sum(main_model.calls) == rows
        assert len(shadow_model.calls) < len(requests) and sum(shadow_model.calls) == rows

        deploy(tp.registry, challenger, mode="canary", share=0.5)
        server.state.runtime.refresh()
        assert server.state.runtime.routing.mode == "canary"
        before = sum(main_model.calls) + sum(shadow_model.calls)
        server.state.gatherer.policy = BatchPolicy(wait_ms=50, max_rows=rows)
        responses = _post_together(server.url, requests)
        assert all(r.status_code == 200 for r in responses)
        versions = {p["version"] for r in responses for p in r.json()["predictions"]}
        assert versions <= {champion, challenger}
        # each row scored once, by the model that answered it
        assert sum(main_model.calls) + sum(shadow_model.calls) - before == rows
    logged = read_predictions(tp.registry.store)
    shadowed = logged["route"] == "shadow"
    assert shadowed.sum() == rows and (~shadowed).sum() == 2 * rows


def test_whole_requests_fill_batches_up_to_max_rows(text_project: TextProject) -> None:
    version, pipeline = _wrapped(text_project)
    model = LoadedModel.load(text_project.registry, version)
    counting = model.model
    sizes = [1, 2, 3, 1, 2, 4, 1]  # the request of 4 reaches max_rows: it is scored alone
    requests = [[f"great love {i}-{k}" if i % 2 else f"rude slow {i}-{k}" for k in range(n)]
                for i, n in enumerate(sizes)]
    gatherer = Gatherer(BatchPolicy(wait_ms=50, max_rows=4))

    async def all_at_once() -> list[Any]:
        return await asyncio.gather(*(_submit(gatherer, model, texts) for texts in requests))

    answers = asyncio.run(all_at_once())
    # queued in arrival order: [1, 2] (3 would pass 4), [3, 1], [2, 1]
    assert sorted(counting.calls) == [3, 3, 4, 4]
    for texts, got in zip(requests, answers):
        np.testing.assert_allclose([p.probabilities["pos"] for p in got],
                                   _alone(pipeline, texts)[:, 1], rtol=0, atol=1e-12)
    assert gatherer.waiting == 0 and not gatherer._queues


def test_gathering_off_scores_each_request_alone(text_project: TextProject) -> None:
    version, _ = _wrapped(text_project)
    model = LoadedModel.load(text_project.registry, version)
    gatherer = Gatherer(BatchPolicy(max_rows=1))

    async def all_at_once() -> list[Any]:
        texts = ["great", "rude", "fast"]
        return await asyncio.gather(*(_submit(gatherer, model, [t]) for t in texts))

    asyncio.run(all_at_once())
    assert model.model.calls == [1, 1, 1]


def test_tabular_models_never_touch_the_gatherer(serving_project: ServingProject, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    async def refuse(*args: Any) -> Any:
        raise AssertionError("a tabular model went through the gatherer")

    monkeypatch.setattr(Gatherer, "predict", refuse)
    app = create_app(serving_project.project, auth=False, wal_dir=tmp_path / "wal")
    with TestClient(app) as client:
        assert not app.state.assay.runtime.routing.champion.prefers_batches
        for n in (1, 40):  # inline, and in a worker thread
            response = client.post("/v1/predict", json={"records": serving_project.records(n)})
            assert response.status_code == 200 and len(response.json()["predictions"]) == n
        families = text_string_to_metric_families(client.get("/metrics").text)
        samples = [s.name for f in families for s in f.samples]
        assert [n for n in samples if n.startswith("assay_model_batch")] == []


def test_a_batch_never_mixes_two_model_objects(text_project: TextProject) -> None:
    """A hot swap loads a new model object; requests queued for the old one finish on it."""
    version, _ = _wrapped(text_project)
    old, new = (LoadedModel.load(text_project.registry, version) for _ in range(2))
    gatherer = Gatherer(BatchPolicy(wait_ms=20, max_rows=100))

    async def interleaved() -> list[Any]:
        return await asyncio.gather(*(_submit(gatherer, model, [f"great {i}"] * (i + 1))
                                      for i, model in enumerate([old, new, old, new])))

    answers = asyncio.run(interleaved())
    assert [len(a) for a in answers] == [1, 2, 3, 4]
    assert old.model.calls == [1 + 3] and new.model.calls == [2 + 4]


def test_a_lone_request_in_sequential_traffic_does_not_wait(text_project: TextProject) -> None:
    """One client sending one text at a time never pays the gathering wait."""
    version, pipeline = _wrapped(text_project)
    model = LoadedModel.load(text_project.registry, version)
    gatherer = Gatherer(BatchPolicy(wait_ms=LONG_WAIT_MS, max_rows=32))

    async def one_after_another() -> list[Any]:
        answers = []
        for text in ["great love", "rude slow", "friendly fast staff"]:
            async with asyncio.timeout(LONG_WAIT_MS / 1000 / 2):  # a wait would run out
                answers.append(await _submit(gatherer, model, [text]))
        return answers

    answers = asyncio.run(one_after_another())
    assert model.model.calls == [1, 1, 1]
    got = [a[0].probabilities["pos"] for a in answers]
    np.testing.assert_allclose(got, _alone(pipeline, ["great love", "rude slow",
                                                      "friendly fast staff"])[:, 1], atol=1e-12)
    # the same with the adaptive rule off: the first request waits out the whole wait
    patient = Gatherer(BatchPolicy(wait_ms=LONG_WAIT_MS, max_rows=32, adaptive=False))

    async def lone_patient() -> bool:
        try:
            async with asyncio.timeout(0.5):
                await _submit(patient, model, ["great love"])
        except TimeoutError:
            return True
        return False

    assert asyncio.run(lone_patient())


def test_after_overlapping_requests_a_lone_request_waits_for_company(
    text_project: TextProject,
) -> None:
    version, _ = _wrapped(text_project)
    model = LoadedModel.load(text_project.registry, version)
    gatherer = Gatherer(BatchPolicy(wait_ms=20, max_rows=32))

    async def scenario() -> tuple[bool, bool, bool]:
        loop = asyncio.get_running_loop()
        sequential = gatherer.concurrent(loop.time())
        await asyncio.gather(*(_submit(gatherer, model, [f"great {i}"]) for i in range(3)))
        concurrent = gatherer.concurrent(loop.time())
        task = asyncio.ensure_future(_submit(gatherer, model, ["rude slow"]))
        await asyncio.sleep(0)  # the request has queued; its batch has not been taken
        waits = not gatherer._queues[model].alone
        await task
        return sequential, concurrent, waits

    sequential, concurrent, waits = asyncio.run(scenario())
    assert not sequential and concurrent and waits
    assert model.model.calls == [3, 1]  # the three overlapping requests shared one call
