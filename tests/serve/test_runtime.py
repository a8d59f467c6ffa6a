"""The model runtime: verified loading, atomic hot swaps, champion/challenger routing."""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest

from assay.errors import NotFoundError, StoreError
from assay.serve import runtime as runtime_module
from assay.model.loaded import FAST_MAX_ROWS, LoadedModel, Prediction
from assay.serve.runtime import ModelRuntime, Routing

from .conftest import ServingProject


def fake_deployment(version: int, mode: str = "shadow", share: float = 0.0) -> Any:
    return SimpleNamespace(id=1, version=version, mode=mode, share=share)


def tamper(path: Path) -> bytes:
    original = path.read_bytes()
    path.write_bytes(original[:-1] + bytes([original[-1] ^ 0xFF]))
    return original


# -- LoadedModel ---------------------------------------------------------------


def test_loaded_model_describes_the_version(serving_template: ServingProject) -> None:
    t = serving_template
    model = LoadedModel.load(t.registry, t.second)
    record = t.registry.get(t.second)
    assert model.version == t.second and model.task == "binary" and model.family == "lightgbm"
    assert model.features == t.features and [c.name for c in model.columns] == t.features
    assert model.classes == [0, 1] and model.digest == record.artifact_digest
    assert model.fast is not None and model.fast_reason is None


@pytest.mark.parametrize("which", ["champion", "second"])
def test_predictions_equal_the_pipeline_whatever_the_input(
    serving_template: ServingProject, which: str
) -> None:
    t = serving_template
    model = LoadedModel.load(t.registry, getattr(t, which))
    rows = t.frame.iloc[:30][t.features]
    expected = t.registry.load_model(model.version).predict_proba(rows)
    expected_labels = t.registry.load_model(model.version).predict(rows)
    batch = model.validate(t.records(30))
    for answer in (
        model.predict(batch),
        model.predict(batch.frame),
        model.predict(rows),
        model.predict(list(batch.records)),
        [model.predict([r])[0] for r in batch.records],
    ):
        got = np.array([[p.probabilities["0"], p.probabilities["1"]] for p in answer])
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-9)
        assert [p.prediction for p in answer] == expected_labels.tolist()
        assert all(p.confidence == max(p.probabilities.values()) for p in answer)


def test_large_frames_go_through_the_pipeline_with_equal_answers(
    serving_template: ServingProject,
) -> None:
    t = serving_template
    model = LoadedModel.load(t.registry, t.second)
    rows = pd.concat([t.frame[t.features]] * 2, ignore_index=True)
    assert len(rows) > FAST_MAX_ROWS
    answer = model.predict(rows)
    expected = t.registry.load_model(t.second).predict_proba(rows)[:, 1]
    np.testing.assert_allclose([p.probabilities["1"] for p in answer], expected, atol=1e-12)


def test_without_a_fast_path_the_pipeline_answers(serving_template: ServingProject) -> None:
    t = serving_template
    model = LoadedModel.load(t.registry, t.second)
    model.fast = None
    answer = model.predict(model.validate(t.records(5)))
    expected = t.registry.load_model(t.second).predict_proba(t.frame.iloc[:5][t.features])[:, 1]
    np.testing.assert_allclose([p.probabilities["1"] for p in answer], expected, atol=1e-12)


def test_predictions_are_json_native(serving_template: ServingProject) -> None:
    t = serving_template
    model = LoadedModel.load(t.registry, t.champion)
    (prediction,) = model.predict(model.validate(t.records(1)))
    assert type(prediction.prediction) is int and type(prediction.confidence) is float
    data = json.loads(json.dumps(prediction.to_dict()))
    assert Prediction.from_dict(data) == prediction


def test_a_frame_without_the_features_is_refused(serving_template: ServingProject) -> None:
    model = LoadedModel.load(serving_template.registry, serving_template.champion)
    with pytest.raises(Exception, match="column 'x1'.*lacks feature columns"):
        model.predict(pd.DataFrame({"x2": [1.0]}))


def test_a_tampered_artifact_does_not_load(serving_project: ServingProject) -> None:
    sp = serving_project
    tamper(sp.artifact_path(sp.second))
    with pytest.raises(StoreError, match="corrupted or was modified"):
        LoadedModel.load(sp.registry, sp.second)


def test_an_unknown_version_is_not_found(serving_template: ServingProject) -> None:
    with pytest.raises(NotFoundError, match="model version 99 does not exist"):
        LoadedModel.load(serving_template.registry, 99)


# -- ModelRuntime: swaps -------------------------------------------------------


def test_refresh_loads_the_champion_once(serving_project: ServingProject) -> None:
    sp = serving_project
    runtime = ModelRuntime(sp.registry)
    assert not runtime.ready and runtime.routing.champion is None
    assert runtime.refresh() is True
    assert runtime.ready and runtime.routing.champion.version == sp.champion
    assert runtime.routing.challenger is None and runtime.routing.mode is None
    first = runtime.routing
    assert runtime.refresh() is False and runtime.routing is first
    assert runtime.last_error is None and runtime.last_refresh is not None


def test_promotion_and_rollback_swap_whole_snapshots(serving_project: ServingProject) -> None:
    sp = serving_project
    runtime = ModelRuntime(sp.registry)
    runtime.refresh()
    before = runtime.routing
    old_champion = before.champion
    sp.registry.promote(sp.second, gate_passed=True, reason="test")
    assert runtime.refresh() is True
    assert runtime.routing.champion.version == sp.second
    assert before.champion is old_champion and before.champion.version == sp.champion
    sp.registry.rollback(reason="test")
    assert runtime.refresh() is True
    # the previous champion comes back from memory, without reloading
    assert runtime.routing.champion is old_champion


def test_a_tampered_version_never_becomes_live(serving_project: ServingProject) -> None:
    sp = serving_project
    runtime = ModelRuntime(sp.registry)
    runtime.refresh()
    serving = runtime.routing.champion
    sp.registry.promote(sp.second, gate_passed=True, reason="test")  # verified, then damaged
    original = tamper(sp.artifact_path(sp.second))
    assert runtime.refresh() is False
    assert runtime.routing.champion is serving and runtime.ready
    assert runtime.last_error is not None
    assert f"model version {sp.second} was not loaded" in runtime.last_error
    assert "corrupted or was modified" in runtime.last_error
    (answer,) = runtime.routing.champion.predict(serving.validate(sp.records(1)))
    assert answer.prediction in (0, 1)
    sp.artifact_path(sp.second).write_bytes(original)  # repaired: the promotion goes live
    assert runtime.refresh() is True
    assert runtime.routing.champion.version == sp.second and runtime.last_error is None


def test_a_tampered_first_champion_leaves_the_runtime_not_ready(
    serving_project: ServingProject,
) -> None:
    sp = serving_project
    tamper(sp.artifact_path(sp.champion))
    runtime = ModelRuntime(sp.registry)
    assert runtime.refresh() is False and not runtime.ready
    with pytest.raises(NotFoundError, match="no model is being served"):
        runtime.choose(runtime.routing)


def test_readers_never_see_a_half_swapped_snapshot(
    serving_project: ServingProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    sp = serving_project
    sp.registry.set_challenger(sp.second, reason="test")
    deployed = {"now": None}
    monkeypatch.setattr(runtime_module, "_active_deployment", lambda registry: deployed["now"])
    runtime = ModelRuntime(sp.registry)
    runtime.refresh()
    seen: list[tuple[Any, ...]] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            r = runtime.routing
            seen.append(
                (r.champion.version, r.challenger and r.challenger.version, r.mode, r.share)
            )

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for i in range(40):
            deployed["now"] = fake_deployment(sp.second, "canary", 0.5) if i % 2 == 0 else None
            runtime.refresh()
    finally:
        stop.set()
        reader.join()
    assert set(seen) <= {(sp.champion, None, None, 0.0), (sp.champion, sp.second, "canary", 0.5)}


# -- ModelRuntime: routing -------------------------------------------------------


def test_shadow_deployment_scores_the_challenger_beside(
    serving_project: ServingProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    sp = serving_project
    sp.registry.set_challenger(sp.second, reason="test")
    monkeypatch.setattr(runtime_module, "_active_deployment", lambda r: fake_deployment(sp.second))
    runtime = ModelRuntime(sp.registry)
    assert runtime.refresh() is True
    routing = runtime.routing
    assert routing.mode == "shadow" and routing.challenger.version == sp.second
    model, route, shadow = runtime.choose(routing)
    assert (model.version, route, shadow.version) == (sp.champion, "champion", sp.second)


def test_canary_share_is_a_seeded_draw(
    serving_project: ServingProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    sp = serving_project
    sp.registry.set_challenger(sp.second, reason="test")
    monkeypatch.setattr(
        runtime_module, "_active_deployment", lambda r: fake_deployment(sp.second, "canary", 0.3)
    )
    first, second = ModelRuntime(sp.registry, seed=5), ModelRuntime(sp.registry, seed=5)
    first.refresh()
    second.refresh()
    routes = [first.choose(first.routing)[1] for _ in range(2000)]
    again = [second.choose(second.routing)[1] for _ in range(2000)]
    assert routes == again
    assert 0.25 < routes.count("canary") / len(routes) < 0.35
    model, route, shadow = first.choose(first.routing)
    assert shadow is None and model.version == (sp.second if route == "canary" else sp.champion)


def test_a_deployment_of_a_version_that_is_not_the_challenger_is_ignored(
    serving_project: ServingProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    sp = serving_project
    monkeypatch.setattr(runtime_module, "_active_deployment", lambda r: fake_deployment(sp.second))
    runtime = ModelRuntime(sp.registry)
    runtime.refresh()
    assert runtime.routing.challenger is None and runtime.routing.mode is None


def test_a_tampered_challenger_is_not_deployed(
    serving_project: ServingProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    sp = serving_project
    sp.registry.set_challenger(sp.second, reason="test")
    tamper(sp.artifact_path(sp.second))
    monkeypatch.setattr(
        runtime_module, "_active_deployment", lambda r: fake_deployment(sp.second, "canary", 1.0)
    )
    runtime = ModelRuntime(sp.registry)
    runtime.refresh()
    assert runtime.routing.challenger is None and runtime.routing.mode is None
    assert "corrupted" in (runtime.last_error or "")
    assert runtime.choose(runtime.routing)[1] == "champion"


def test_without_the_deployments_module_there_is_no_deployment(
    serving_project: ServingProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "assay.model.deployments", None)  # import raises ImportError
    assert runtime_module._active_deployment(serving_project.registry) is None


def test_real_deployments_are_followed(serving_project: ServingProject) -> None:
    deployments = pytest.importorskip("assay.model.deployments")
    sp = serving_project
    runtime = ModelRuntime(sp.registry)
    runtime.refresh()
    deployments.deploy(sp.registry, sp.second, mode="canary", share=0.25)
    assert runtime.refresh() is True
    assert runtime.routing.to_dict() == {
        "champion": sp.champion,
        "challenger": sp.second,
        "mode": "canary",
        "share": 0.25,
    }
    deployments.deploy(sp.registry, sp.second, mode="shadow")
    assert runtime.refresh() is True and runtime.routing.mode == "shadow"
    deployments.undeploy(sp.registry)
    assert runtime.refresh() is True
    assert runtime.routing.challenger is None and runtime.routing.mode is None
    deployments.deploy(sp.registry, sp.second, mode="canary", share=1.0)
    runtime.refresh()
    sp.registry.promote(sp.second, gate_passed=True, reason="canary won")
    assert runtime.refresh() is True
    assert runtime.routing.to_dict() == {
        "champion": sp.second,
        "challenger": None,
        "mode": None,
        "share": 0.0,
    }


def test_routing_snapshots_are_frozen() -> None:
    routing = Routing(champion=None, challenger=None, mode=None, share=0.0)
    with pytest.raises(AttributeError):
        routing.share = 1.0  # type: ignore[misc]


# -- ModelRuntime: background thread ---------------------------------------------


def test_the_background_thread_follows_promotions(serving_project: ServingProject) -> None:
    sp = serving_project
    runtime = ModelRuntime(sp.registry, poll_seconds=0.05)
    runtime.start()
    try:
        assert runtime.ready  # the first refresh happens before start() returns
        sp.registry.promote(sp.second, gate_passed=True, reason="test")
        deadline = time.monotonic() + 20
        while runtime.routing.champion.version != sp.second and time.monotonic() < deadline:
            time.sleep(0.02)
        assert runtime.routing.champion.version == sp.second
    finally:
        runtime.stop()
    assert runtime._thread is None


def test_the_background_thread_survives_store_errors(
    serving_project: ServingProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    sp = serving_project
    runtime = ModelRuntime(sp.registry, poll_seconds=0.05)
    runtime.refresh()

    def broken(name: str) -> int:
        raise StoreError("the store database cannot be opened")

    monkeypatch.setattr(sp.registry, "alias", broken)
    runtime._safe_refresh()
    assert runtime.last_error is not None and "refresh failed" in runtime.last_error
    assert runtime.ready  # the loaded champion keeps serving
    monkeypatch.undo()
    runtime.refresh()
    assert runtime.last_error is None


def test_describe_reports_what_is_served(serving_project: ServingProject) -> None:
    runtime = ModelRuntime(serving_project.registry)
    runtime.refresh()
    body = json.loads(json.dumps(runtime.describe()))
    assert body["ready"] is True and body["champion"] == serving_project.champion
    assert body["fast_path"]["champion"]["fast"] is True


def test_the_package_imports_light_and_resolves_names_lazily() -> None:
    import subprocess

    code = (
        "import sys, assay.serve as s\n"
        "heavy = [m for m in ('pandas', 'sklearn', 'lightgbm', 'fastapi') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "assert s.ModelRuntime.__module__ == 'assay.serve.runtime'\n"
        "assert s.validate_records.__module__ == 'assay.model.validation'\n"
        "assert s.compile_fast.__module__ == 'assay.model.fastpath'\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
