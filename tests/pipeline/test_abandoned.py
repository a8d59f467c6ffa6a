"""Runs whose process died mid-way are marked ``abandoned`` the next time the project opens."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from assay.pipeline import open_registry
from assay.registry import ModelRegistry
from assay.registry._process import this_host

from .conftest import classification_frame


def _dead_pid() -> int:
    """The id of a process that has exited and been reaped."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _start(registry: ModelRegistry, **process: Any) -> int:
    return registry.start_run(
        {"task": "binary"}, "data-v1", "assay test", seeds={"seed": 1}, **process
    )


def test_a_run_whose_process_is_gone_is_abandoned_with_an_event(make_project) -> None:
    project = make_project()
    registry = open_registry(project)
    pid = _dead_pid()
    dead = _start(registry, pid=pid)
    alive = _start(registry)  # this process
    elsewhere = _start(registry, pid=pid, host="another-host")
    legacy = _start(registry, pid=None)
    with registry.store.transaction() as conn:  # a run recorded before runs kept their process
        conn.exec_driver_sql(f"UPDATE runs SET pid = NULL, host = NULL WHERE id = {legacy}")

    reopened = open_registry(project)
    run = reopened.get_run(dead)
    assert run.status == "abandoned" and run.finished_at is not None
    assert run.summary is not None
    assert run.summary["error"] == (
        f"run {dead}: its process {pid} on {this_host()} ended without closing it "
        "(killed or crashed)"
    )
    assert (run.pid, run.host) == (pid, this_host())
    events = reopened.events(action="abandon")
    assert len(events) == 1
    assert events[0].details == {"run_id": dead, "pid": pid, "host": this_host()}
    assert events[0].reason == run.summary["error"] and events[0].version is None
    assert [reopened.get_run(i).status for i in (alive, elsewhere, legacy)] == ["running"] * 3

    open_registry(project)  # a second open finds nothing new to mark
    assert len(reopened.events(action="abandon")) == 1


def test_a_reused_process_id_does_not_keep_a_run_alive(make_project) -> None:
    project = make_project()
    registry = open_registry(project)
    # pid 1 is alive, but it started long before this run was recorded "now"
    run_id = _start(registry, pid=1)
    with registry.store.transaction() as conn:
        conn.exec_driver_sql(
            f"UPDATE runs SET created_at = '2999-01-01 00:00:00' WHERE id = {run_id}"
        )
    assert open_registry(project).get_run(run_id).status == "running"
    with registry.store.transaction() as conn:
        conn.exec_driver_sql(
            f"UPDATE runs SET created_at = '2000-01-01 00:00:00' WHERE id = {run_id}"
        )
    if not Path("/proc/1/stat").exists():
        pytest.skip("no /proc: process start times cannot be read")
    assert open_registry(project).get_run(run_id).status == "abandoned"


def test_a_finished_run_is_never_touched(make_project) -> None:
    project = make_project()
    registry = open_registry(project)
    pid = _dead_pid()
    finished = _start(registry, pid=pid)
    registry.finish_run(finished, "succeeded", {"version": 1})
    reopened = open_registry(project)
    run = reopened.get_run(finished)
    assert run.status == "succeeded" and run.summary == {"version": 1}
    assert reopened.events(action="abandon") == []


@pytest.mark.slow
def test_a_run_killed_with_sigkill_shows_as_abandoned(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    classification_frame().to_csv(tmp_path / "data.csv", index=False)
    raw = {
        "task": "binary",
        "data": {"source": "data.csv", "target": "y"},
        # a budget far beyond the time the test waits: the run is still searching when killed
        "search": {"families": ["linear", "lightgbm"], "trials": 100_000, "minutes": 10},
        "serving": {"latency_p99_ms": 1000},
    }
    (tmp_path / "assay.yaml").write_text(yaml.safe_dump(raw))
    proc = subprocess.Popen(
        [sys.executable, "-m", "assay", "run"], cwd=tmp_path, env=cli_env,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        run_id = _wait_for_running_run(tmp_path / ".assay" / "assay.db", proc)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL

    history = subprocess.run(
        [sys.executable, "-m", "assay", "history", "--json"], cwd=tmp_path, env=cli_env,
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert history.returncode == 0, history.stderr
    events = json.loads(history.stdout)
    assert [e["action"] for e in events] == ["abandon"]
    assert events[0]["details"] == {"run_id": run_id, "pid": proc.pid, "host": this_host()}
    with sqlite3.connect(tmp_path / ".assay" / "assay.db") as conn:
        status, summary = conn.execute(
            "SELECT status, summary FROM runs WHERE id = ?", (run_id,)
        ).fetchone()
    assert status == "abandoned"
    assert f"its process {proc.pid}" in json.loads(summary)["error"]


def _wait_for_running_run(db: Path, proc: subprocess.Popen[bytes], timeout: float = 120) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            err = proc.stderr.read() if proc.stderr else b""
            raise AssertionError(f"assay run ended early: {err!r}")
        if db.exists():
            try:
                with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
                    row = conn.execute(
                        "SELECT id FROM runs WHERE status = 'running' AND pid = ?", (proc.pid,)
                    ).fetchone()
            except sqlite3.OperationalError:
                row = None  # the schema is still being created
            if row is not None:
                return int(row[0])
        time.sleep(0.05)
    raise AssertionError("assay run did not start a run in time")


@pytest.fixture
def cli_env() -> dict[str, str]:
    """The environment of a real ``assay`` process importing this source tree."""
    src = str(Path(__file__).resolve().parents[2] / "src")
    return {**os.environ, "PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", "")}
