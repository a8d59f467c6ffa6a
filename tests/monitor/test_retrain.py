"""Retraining: refreshed data, fresh holdout, shadow, promote or reject; crash-safe steps."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from typing import Any

import pytest
from sklearn.metrics import accuracy_score

from assay.errors import StoreError
from assay.monitor.retrain import (
    TERMINAL_STEPS,
    RetrainResult,
    retrain_project,
    retrain_state,
)
from assay.store.lock import ProcessLock
from assay.model.deployments import active_deployment


class Crash(BaseException):
    """Stands for the process dying at a step: nothing after it runs, no cleanup."""


def _crash_at(step: str, kind: type[BaseException] = Crash) -> Any:
    def hook(name: str) -> None:
        if name == step:
            raise kind(f"injected at {step}")

    return hook


def _accuracy(monitored: Any, version: int, frame: Any) -> float:
    model = monitored.model(version)
    answers = model.predict(frame[model.features])
    return float(accuracy_score(frame["y"], [a.prediction for a in answers]))


def _assert_consistent(monitored: Any, champion: int) -> None:
    """The champion serves; no candidate is left half-way (registered or challenger) unless
    its retrain is still in progress."""
    registry = monitored.registry
    assert registry.alias("champion") == champion
    state = retrain_state(registry)
    in_progress = state is not None and not state.finished
    for version in registry.list():
        if version.version == champion or in_progress and version.lineage.retrain_id == (
            state.retrain_id if state else None
        ):
            continue
        if version.lineage.retrain_id:
            assert version.status == "rejected", (version.version, version.status)
    assert all(run.status != "running" for run in registry.runs()) or in_progress


def test_a_retrain_on_drifted_data_shadows_then_promotes_a_better_model(
    monitored: Any, make_frame: Any
) -> None:
    old = monitored.champion
    monitored.send(make_frame(600, 31, concept=True))
    first = retrain_project(monitored.project, reason="concept drift", registry=monitored.registry)
    assert first.status == "shadowing", first.message
    candidate = first.candidate
    assert first.data["traffic_rows"] == 600 and first.data["original_rows"] == 300
    champion_gate = next(g for g in first.gates if g["name"] == "champion")
    assert champion_gate["passed"] and champion_gate["evidence"]["candidate_value"] > (
        champion_gate["evidence"]["champion_value"] + 0.2
    )
    deployment = active_deployment(monitored.registry)
    assert deployment is not None and (deployment.version, deployment.mode) == (candidate, "shadow")
    assert monitored.registry.alias("champion") == old  # the champion serves during the shadow

    monitored.send(make_frame(60, 32, concept=True), shadow=candidate)
    done = retrain_project(monitored.project, registry=monitored.registry)
    assert done.status == "promoted", done.message
    assert done.resumed and done.steps == ("decided", "promoted")
    assert monitored.registry.alias("champion") == candidate
    assert active_deployment(monitored.registry) is None
    assert done.shadow["n_paired"] == 60 and done.shadow["coverage"] == 1.0
    assert {g["name"] for g in done.gates} >= {"champion", "shadow_coverage", "shadow_metrics"}
    recent = make_frame(400, 33, concept=True)
    assert _accuracy(monitored, candidate, recent) > _accuracy(monitored, old, recent) + 0.15
    steps = [s["step"] for s in retrain_state(monitored.registry).steps]
    assert steps == ["started", "data", "training", "registered", "offline", "shadow", "decided",
                     "promoted"]
    assert RetrainResult.from_dict(done.to_dict()) == done


def test_a_retrain_that_cannot_beat_the_champion_is_rejected(monitored: Any, make_frame: Any) -> None:
    old = monitored.champion
    monitored.send(make_frame(300, 41))
    result = retrain_project(monitored.project, reason="scheduled", registry=monitored.registry)
    assert result.status == "rejected"
    assert "not clearly better than champion" in result.message
    record = monitored.registry.get(result.candidate)
    assert record.status == "rejected" and record.lineage.retrain_id == result.retrain_id
    assert monitored.registry.alias("champion") == old
    assert monitored.registry.alias("challenger") is None
    assert active_deployment(monitored.registry) is None
    rejected = monitored.registry.events(action="reject", version=result.candidate)
    assert rejected and "not clearly better" in (rejected[0].reason or "")


def test_a_crash_at_any_step_leaves_the_champion_serving_and_the_next_retrain_completes(
    monitored: Any, make_frame: Any
) -> None:
    registry, project = monitored.registry, monitored.project
    old = monitored.champion
    monitored.send(make_frame(600, 51, concept=True))
    # a kill leaves no trace but the steps recorded; an error is cleaned up at once
    plan = [("started", Crash), ("data", RuntimeError), ("training", Crash),
            ("registered", RuntimeError), ("offline", Crash), ("shadow", Crash)]
    for step, kind in plan:
        with pytest.raises(kind, match=f"injected at {step}"):
            retrain_project(project, registry=registry, on_step=_crash_at(step, kind))
        state = retrain_state(registry)
        assert state.step == (step if kind is Crash else "failed")
        _assert_consistent(monitored, old)
    assert retrain_project(project, registry=registry).status == "shadowing"
    candidate = retrain_state(registry).get("candidate")
    monitored.send(make_frame(60, 52, concept=True), shadow=candidate)
    with pytest.raises(Crash):
        retrain_project(project, registry=registry, on_step=_crash_at("decided"))
    _assert_consistent(monitored, old)
    final = retrain_project(project, registry=registry)
    assert final.status == "promoted" and registry.alias("champion") == candidate
    steps = [e.details["step"] for e in registry.events(action="retrain")]
    outcomes = [step for step in steps if step in TERMINAL_STEPS]
    assert outcomes.count("abandoned") == 2 and outcomes.count("failed") == 2
    assert all(run.status != "running" for run in registry.runs())
    rejected = [v for v in registry.list() if v.lineage.retrain_id and v.status == "rejected"]
    assert len(rejected) == 1  # the candidate of the error at "registered"


def test_a_killed_retrain_process_is_abandoned_and_the_next_one_completes(monitored: Any) -> None:
    script = textwrap.dedent(
        f"""
        import os, signal
        from assay.project import Project
        from assay.monitor.retrain import retrain_project

        def die(step):
            if step == "data":
                os.kill(os.getpid(), signal.SIGKILL)

        retrain_project(Project.open({str(monitored.project.config_path)!r}), on_step=die)
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
    state = retrain_state(monitored.registry)
    assert state.step == "data" and not state.finished
    assert monitored.registry.alias("champion") == 1
    result = retrain_project(monitored.project, registry=monitored.registry)
    assert result.abandoned == state.retrain_id
    assert result.status == "skipped" and "nothing new to learn" in result.message
    assert retrain_state(monitored.registry, state.retrain_id).step == "abandoned"


def test_labels_copying_the_model_are_excluded_and_reported(monitored: Any, make_frame: Any) -> None:
    accuracy = monitored.registry.champion().metrics["test"]["accuracy"]
    assert accuracy < 0.95
    monitored.send(make_frame(200, 61), label=lambda prediction, y: prediction, actor="auto")
    result = retrain_project(monitored.project, registry=monitored.registry)
    assert result.data["excluded_feedback_loop"] == 200
    assert result.data["feedback_loop"]["excluded_sources"] == ["auto"]
    assert result.status == "skipped"
    assert "feedback loop: 'auto' agrees with the model on 100.0% of 200 labels" in result.message


def test_two_retrains_never_run_at_once(monitored: Any) -> None:
    holder = ProcessLock(monitored.project.state_dir / "retrain.lock", "retraining this project")
    holder.acquire()
    try:
        with pytest.raises(StoreError, match=f"already retraining this project \\(pid {os.getpid()}"):
            retrain_project(monitored.project, registry=monitored.registry)
    finally:
        holder.release()
    assert retrain_project(monitored.project, registry=monitored.registry).status == "skipped"


def test_retraining_needs_a_champion(fresh_project: Any) -> None:
    from assay.errors import NotFoundError

    with pytest.raises(NotFoundError, match="there is no champion to retrain.*assay run"):
        retrain_project(fresh_project)
