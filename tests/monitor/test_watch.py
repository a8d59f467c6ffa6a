"""``assay watch``: monitor -> alert -> retrain per policy -> shadow -> decide, under a lock."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from assay.cli.monitor import register_monitor_commands
from assay.errors import StoreError
from assay.monitor.watch import WatchIteration, retrain_trigger, watch_project
from assay.store.lock import ProcessLock


def _cli() -> typer.Typer:
    app = typer.Typer()
    register_monitor_commands(app)
    return app


def test_a_second_watcher_exits_with_a_message_naming_the_first(monitored: Any) -> None:
    lock_path = monitored.project.state_dir / "watch.lock"
    script = textwrap.dedent(
        f"""
        import sys, time
        from pathlib import Path
        from assay.store.lock import ProcessLock

        lock = ProcessLock(Path({str(lock_path)!r}), "watching this project")
        lock.acquire()
        print("held", flush=True)
        sys.stdin.readline()
        """
    )
    holder = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(StoreError, match=rf"already watching this project \(pid {holder.pid} on "):
            watch_project(monitored.project, once=True, registry=monitored.registry)
        with pytest.raises(StoreError, match="the lock frees itself when its holder exits"):
            watch_project(monitored.project, once=True, registry=monitored.registry, lock_wait=0.3)
    finally:
        holder.communicate("\n", timeout=30)
    done = watch_project(monitored.project, once=True, registry=monitored.registry)
    assert len(done) == 1 and done[0].monitor is not None
    assert done[0].monitor.verdict == "insufficient_data" and done[0].retrain is None


def test_the_lock_is_exclusive_within_a_process_too(tmp_path: Any) -> None:
    first = ProcessLock(tmp_path / "x.lock", "doing x")
    second = ProcessLock(tmp_path / "x.lock", "doing x")
    first.acquire()
    with pytest.raises(StoreError, match="another process is already doing x"):
        second.acquire()
    first.release()
    second.acquire()
    assert second.held and not first.held
    second.release()


def test_watch_retrains_on_drift_shadows_and_promotes(monitored: Any, make_frame: Any) -> None:
    old = monitored.champion
    monitored.send(make_frame(600, 71, concept=True))
    (first,) = watch_project(monitored.project, once=True, registry=monitored.registry)
    assert first.error is None
    assert first.trigger is not None and first.trigger.startswith("concept_drift alert")
    assert first.retrain is not None and first.retrain.status == "shadowing"
    candidate = first.retrain.candidate
    monitored.send(make_frame(60, 72, concept=True), shadow=candidate)
    (second,) = watch_project(monitored.project, once=True, registry=monitored.registry)
    assert second.trigger is not None and second.trigger.startswith("continuing retrain")
    assert second.retrain is not None and second.retrain.status == "promoted"
    assert monitored.registry.alias("champion") == candidate != old
    # the new champion has no traffic yet; the old champion's alerts are closed
    (third,) = watch_project(monitored.project, once=True, registry=monitored.registry)
    assert third.monitor.version == candidate and third.retrain is None
    assert {a.kind for a in third.monitor.alerts.resolved} == {"concept_drift"}
    assert WatchIteration.from_dict(second.to_dict()).retrain == second.retrain


def test_the_manual_policy_alerts_but_never_retrains(monitored: Any, make_frame: Any) -> None:
    monitored.configure(retrain={"policy": "manual"})
    monitored.send(make_frame(300, 73, concept=True))
    (iteration,) = watch_project(monitored.project, once=True, registry=monitored.registry)
    assert [a.kind for a in iteration.monitor.alerts.raised] == ["concept_drift"]
    assert iteration.trigger is None and iteration.retrain is None
    assert retrain_trigger(iteration.monitor, "on_performance_drop") is not None
    assert retrain_trigger(iteration.monitor, "manual") is None


def test_a_persisting_condition_does_not_retrain_every_interval(monitored: Any, make_frame: Any) -> None:
    monitored.configure(retrain={"policy": "on_drift"})
    monitored.send(make_frame(300, 74, shift=3.0), label=False)
    done = watch_project(monitored.project, interval=0.01, iterations=3, registry=monitored.registry)
    assert [it.trigger is not None for it in done] == [True, False, False]
    assert done[0].retrain is not None and done[0].retrain.status == "skipped"
    assert [a.kind for a in done[1].monitor.alerts.suppressed] == ["data_drift"]
    assert len(monitored.registry.events(action="retrain")) == 3  # started, data, skipped


def test_cli_monitor_retrain_and_watch(monitored: Any, make_frame: Any) -> None:
    runner = CliRunner()
    config = str(monitored.project.config_path)
    healthy = runner.invoke(_cli(), ["monitor", "--config", config])
    assert healthy.exit_code == 0, healthy.output
    assert "verdict insufficient_data" in healthy.output and "No alert." in healthy.output
    monitored.send(make_frame(300, 75, concept=True))
    alerting = runner.invoke(_cli(), ["monitor", "--config", config, "--json"])
    assert alerting.exit_code == 1
    payload = json.loads(alerting.output)
    assert payload["verdict"] == "concept_drift"
    assert [a["kind"] for a in payload["alerts"]["raised"]] == ["concept_drift"]
    file_path = monitored.root / "recent.csv"
    make_frame(200, 76).to_csv(file_path, index=False)
    from_file = runner.invoke(_cli(), ["monitor", "--config", config, "--current", str(file_path)])
    assert "over a file of 200 rows" in from_file.output
    monitored.configure(retrain={"policy": "manual"})
    watched = runner.invoke(_cli(), ["watch", "--config", config, "--once", "--json"])
    assert watched.exit_code == 0, watched.output
    line = json.loads(watched.output.strip().splitlines()[-1])
    assert line["monitor"]["verdict"] == "concept_drift" and line["retrain"] is None
    holder = ProcessLock(monitored.project.state_dir / "retrain.lock", "retraining this project")
    holder.acquire()
    try:
        busy = runner.invoke(_cli(), ["retrain", "--config", config])
    finally:
        holder.release()
    assert isinstance(busy.exception, StoreError)
    assert "another process is already retraining this project" in str(busy.exception)
