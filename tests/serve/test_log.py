"""The prediction log: durability through a SIGKILL, replay, batching, feedback and reading back."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest
from alembic import command
from sqlalchemy import func, inspect, select
from sqlalchemy.exc import IntegrityError, OperationalError

import assay.serve.wal as wal_module
from assay.errors import ConfigError, StoreError
from assay.serve.log import (
    DRAINS,
    Drain,
    FeedbackResult,
    LogEntry,
    PredictionLog,
    new_prediction_id,
    record_feedback,
)
from assay.model.predictions import LOG_COLUMNS, read_predictions
from assay.store import Store, alembic_config
from assay.store.migrate import head_revision
from assay.store.serialize import dumps
from assay.store.tables import feedback, predictions
from assay.testing.stores import open_test_store, store_params

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(params=store_params())
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    with open_test_store(request.param, tmp_path) as opened:
        yield opened


def entry(
    i: int = 0,
    *,
    version: int = 1,
    route: str = "champion",
    at: datetime | None = None,
    inputs: dict[str, Any] | None = None,
    **overrides: Any,
) -> LogEntry:
    fields: dict[str, Any] = {
        "id": new_prediction_id(),
        "at": at or T0 + timedelta(seconds=i),
        "version": version,
        "route": route,
        "request_id": f"req-{i}",
        "inputs": inputs if inputs is not None else {"age": 30 + i, "plan": "pro"},
        "prediction": "yes" if i % 2 else "no",
        "probabilities": {"no": 0.25, "yes": 0.75},
        "confidence": 0.75,
        "latency_ms": 1.5 + i,
        "flags": ["unknown_category"] if i % 3 == 0 else [],
    }
    fields.update(overrides)
    return LogEntry(**fields)


def table_ids(store: Store) -> list[str]:
    with store.connect() as conn:
        return list(conn.execute(select(predictions.c.id)).scalars())


def segments(wal: Path) -> list[Path]:
    return sorted(wal.glob("*.wal"))


# -- records ---------------------------------------------------------------------------


def test_records_round_trip_through_json() -> None:
    original = entry(3)
    assert LogEntry.from_dict(json.loads(json.dumps(original.to_dict()))) == original
    result = FeedbackResult(accepted=2, unknown_ids=["x"])
    assert FeedbackResult.from_dict(json.loads(json.dumps(result.to_dict()))) == result


def test_invalid_settings_are_config_errors(store: Store, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="batch size must be positive.*got 0"):
        PredictionLog(store, tmp_path / "wal", batch_size=0)
    with pytest.raises(ConfigError, match="flush interval must be positive"):
        PredictionLog(store, tmp_path / "wal", flush_seconds=0)


# -- writing ----------------------------------------------------------------------------


def test_append_is_in_the_wal_before_the_table_and_flush_moves_it(
    store: Store, tmp_path: Path
) -> None:
    wal = tmp_path / "wal"
    log = PredictionLog(store, wal)
    entries = [entry(i) for i in range(4)]
    log.append(entries[:3])
    log.append(entries[3:])
    assert table_ids(store) == []
    lines = b"".join(p.read_bytes() for p in segments(wal)).splitlines()
    assert [json.loads(line)["id"] for line in lines] == [e.id for e in entries]
    assert log.stats["pending"] == 4
    log.flush()
    assert sorted(table_ids(store)) == sorted(e.id for e in entries)
    assert segments(wal) == []  # flushed segments are removed
    assert log.stats | {"last_error": None} == {
        "appended": 4, "written": 4, "pending": 0, "replayed": 0, "torn": 0,
        "rejected": 0, "errors": 0, "last_error": None,
    }  # fmt: skip
    log.close()
    with pytest.raises(StoreError, match="the prediction log is closed"):
        log.append([entry(9)])


def test_every_field_reads_back(store: Store, tmp_path: Path) -> None:
    written = entry(
        3,
        route="canary",
        version=2,
        inputs={"age": 41, "plan": "basic", "note": None},
        probabilities={"no": 0.1, "yes": 0.9},
        confidence=0.9,
    )
    with PredictionLog(store, tmp_path / "wal") as log:
        log.append([written])
    frame = read_predictions(store)
    assert len(frame) == 1
    row = frame.iloc[0]
    assert row["id"] == written.id and row["request_id"] == "req-3"
    assert row["at"] == pd.Timestamp(written.at)
    assert (row["version"], row["route"], row["prediction"]) == (2, "canary", "yes")
    assert row["probabilities"] == {"no": 0.1, "yes": 0.9}
    assert (row["confidence"], row["latency_ms"], row["flags"]) == (0.9, 4.5, ["unknown_category"])
    assert (row["age"], row["plan"], row["note"]) == (41, "basic", None)


def test_numpy_values_and_nan_are_stored_as_plain_json(store: Store, tmp_path: Path) -> None:
    odd = entry(1, inputs={"x": np.float64("nan"), "n": np.int64(7)}, confidence=np.float32(0.5))
    with PredictionLog(store, tmp_path / "wal") as log:
        log.append([odd])
    with store.connect() as conn:
        inputs, confidence = conn.execute(
            select(predictions.c.inputs, predictions.c.confidence)
        ).one()
    assert inputs == {"x": None, "n": 7} and confidence == 0.5


def test_json_columns_hold_the_canonical_text_of_the_store(store: Store, tmp_path: Path) -> None:
    inputs = {"z": np.float32(1.5), "a": float("inf"), "m": {"y": 1, "b": [np.int64(2), None]}}
    legacy = entry(2, inputs={"k": 1, "c": "é"}, probabilities={"yes": 0.5, "no": 0.5})
    wal = tmp_path / "wal"
    wal.mkdir()  # a line of the stdlib encoder, keys unsorted, replays to the same text
    (wal / "00000000000000000001-1-000001.wal").write_bytes(
        json.dumps(legacy.to_dict(), ensure_ascii=False).encode() + b"\n"
    )
    written = [entry(1, inputs=inputs, prediction=None, probabilities=None), legacy]
    with PredictionLog(store, wal) as log:
        log.append(written[:1])
    query = (
        "SELECT id, CAST(inputs AS TEXT), CAST(prediction AS TEXT), CAST(probabilities AS TEXT),"
        " CAST(flags AS TEXT) FROM predictions"
    )
    with store.connect() as conn:
        stored = {row[0]: tuple(row[1:]) for row in conn.exec_driver_sql(query)}
    assert stored == {
        written[0].id: ('{"a":null,"m":{"b":[2,null],"y":1},"z":1.5}', "null", None, "[]"),
        legacy.id: (dumps(legacy.inputs), '"no"', dumps(legacy.probabilities), "[]"),
    }
    assert dumps(legacy.inputs) == '{"c":"é","k":1}'


def test_prediction_ids_are_hex_unique_and_not_repeated_by_a_forked_child() -> None:
    ids = [new_prediction_id() for _ in range(20_000)]
    assert len(set(ids)) == len(ids)
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)
    if not hasattr(os, "fork"):
        pytest.skip("needs os.fork")
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.write(write, new_prediction_id().encode())
        os._exit(0)
    os.close(write)
    mine = new_prediction_id()  # the parent's next draw: what a child without a reseed repeats
    os.waitpid(pid, 0)
    with os.fdopen(read, "rb") as pipe:
        child = pipe.read().decode()
    assert len(child) == 32 and child != mine


@pytest.mark.parametrize("drain", DRAINS)
def test_background_writer_batches_without_flush(store: Store, tmp_path: Path, drain: Drain) -> None:
    wal = tmp_path / "wal"
    log = PredictionLog(store, wal, batch_size=10, flush_seconds=0.05, drain=drain)
    log.start()
    entries = [entry(i) for i in range(35)]
    for start in range(0, 35, 5):
        log.append(entries[start : start + 5])
    deadline = time.monotonic() + 20
    while log.stats["written"] < 35 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert log.stats["written"] == 35
    assert sorted(table_ids(store)) == sorted(e.id for e in entries)
    log.close()
    assert segments(wal) == []


@pytest.mark.parametrize("drain", DRAINS)
def test_appends_from_many_threads_are_whole_lines_and_all_stored(
    store: Store, tmp_path: Path, drain: Drain
) -> None:
    wal = tmp_path / "wal"
    log = PredictionLog(store, wal, batch_size=64, flush_seconds=0.05, drain=drain)
    log.start()
    per_thread, workers = 150, 6
    made: list[list[str]] = [[] for _ in range(workers)]
    barrier = threading.Barrier(workers)

    def work(k: int) -> None:
        barrier.wait()
        for i in range(per_thread):
            item = entry(i, request_id=f"t{k}-{i}")
            log.append([item])
            made[k].append(item.id)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    log.close()
    expected = sorted(i for ids in made for i in ids)
    assert sorted(table_ids(store)) == expected
    assert log.stats["torn"] == 0 and log.stats["written"] == per_thread * workers


def test_database_error_keeps_entries_for_retry(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wal = tmp_path / "wal"
    log = PredictionLog(store, wal)
    entries = [entry(i) for i in range(5)]
    log.append(entries)
    real = wal_module.insert_batch

    def locked(*args: Any, **kwargs: Any) -> int:
        raise OperationalError("INSERT", {}, Exception("database is locked"))

    monkeypatch.setattr(wal_module, "insert_batch", locked)
    with pytest.raises(OperationalError, match="database is locked"):
        log.flush()
    assert log.stats["errors"] == 1 and "database is locked" in log.stats["last_error"]
    assert log.stats["pending"] == 5 and len(segments(wal)) == 1
    monkeypatch.setattr(wal_module, "insert_batch", real)
    log.append([entry(9)])  # goes to a new segment while the first waits
    log.flush()
    assert len(table_ids(store)) == 6 and segments(wal) == []
    log.close()


def test_a_row_the_database_refuses_is_dropped_alone(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    entries = [entry(i) for i in range(6)]
    poison = entries[2].id
    real = wal_module.insert_batch

    def picky(store_: Store, statement: Any, batch: list[tuple[Any, ...]]) -> int:
        if any(row[0] == poison for row in batch):
            raise IntegrityError("INSERT", {}, Exception("CHECK constraint failed"))
        return real(store_, statement, batch)

    monkeypatch.setattr(wal_module, "insert_batch", picky)
    with PredictionLog(store, tmp_path / "wal", batch_size=4) as log:
        log.append(entries)
    assert sorted(table_ids(store)) == sorted(e.id for e in entries if e.id != poison)
    assert log.stats["rejected"] == 1 and log.stats["written"] == 5


# -- crash safety and replay --------------------------------------------------------------

CHILD = r"""
import sys
from datetime import UTC, datetime
from pathlib import Path
from assay.store import Store
from assay.serve.log import LogEntry, PredictionLog, new_prediction_id

store = Store.open(Path(sys.argv[1]))
log = PredictionLog(store, Path(sys.argv[2]), batch_size=int(sys.argv[5]),
                    flush_seconds=float(sys.argv[4]), drain=sys.argv[3])
log.start()
i = 0
while True:
    e = LogEntry(new_prediction_id(), datetime.now(UTC), 1, "champion", f"r{i}",
                 {"x": i, "text": "é" * (i % 7)}, i % 2, {"0": 0.4, "1": 0.6}, 0.6, 0.1, [])
    log.append([e])
    sys.stdout.write(e.id + "\n")
    sys.stdout.flush()
    i += 1
"""


def _kill_after_acks(
    project: Path, wal: Path, drain: str, flush_seconds: float, batch_size: int, count: int
) -> tuple[list[str], list[int]]:
    """Run CHILD until it has acknowledged ``count`` entries, then SIGKILL it at once; returns
    the acknowledged ids and the pids of its drainer processes (found by their --parent)."""
    Store.open(project).close()
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(project), str(wal), drain, str(flush_seconds),
         str(batch_size)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    acked: list[str] = []
    try:
        assert child.stdout is not None
        while len(acked) < count:
            line = child.stdout.readline()
            if not line:
                break
            acked.append(line.strip())
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    assert len(acked) == count, child.stderr.read() if child.stderr else ""
    marker = f"--parent {child.pid} "
    drainers = [
        int(pid)
        for pid in os.listdir("/proc")
        if pid.isdigit() and "assay.serve.drain" in (line := _cmdline(int(pid))) and marker in line
    ]
    return acked, drainers


def test_acknowledged_entries_survive_sigkill(tmp_path: Path) -> None:
    project, wal = tmp_path / "project", tmp_path / "wal"
    # nothing drains before the kill: the acknowledged entries are in the WAL only
    acked, _ = _kill_after_acks(project, wal, "thread", 3600, 10**9, 300)
    with Store.open(project) as store:
        before = set(table_ids(store))
        assert not set(acked) <= before  # some acknowledged entries were only in the WAL
        log = PredictionLog(store, wal)
        log.start()
        stored = table_ids(store)
        assert set(acked) <= set(stored)
        assert len(stored) == len(set(stored))
        assert log.stats["replayed"] == len(stored) - len(before)
        log.close()
        assert segments(wal) == []


def _wait_for(condition: Any, seconds: float = 30.0) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie (exited, not yet reaped by its parent) counts as gone
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    return True


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")
def test_the_orphaned_drainer_stores_what_a_killed_server_acknowledged(tmp_path: Path) -> None:
    """SIGKILL the serving process: its drainer process takes the last segment (unlocked by
    the kernel at the death) into the table and exits by itself, before any restart."""
    project, wal = tmp_path / "project", tmp_path / "wal"
    acked, drainers = _kill_after_acks(project, wal, "process", 0.05, 40, 400)
    assert len(drainers) == 1
    assert _wait_for(lambda: not _alive(drainers[0])), "the drainer outlived its parent"
    with Store.open(project) as store:
        stored = table_ids(store)
    assert set(acked) <= set(stored) and len(stored) == len(set(stored))
    assert segments(wal) == []
    assert list(wal.glob("drainer-*")) == []  # the orphan removed its status file


def test_an_empty_segment_of_an_exited_writer_is_removed_at_once(tmp_path: Path) -> None:
    """A writer killed right after opening a segment leaves it empty; once its drainer knows
    the writer has exited, the segment goes at once (a young empty segment of a live writer
    is kept: the writer may be about to lock it)."""
    wal = tmp_path / "wal"
    wal.mkdir()
    with Store.open(tmp_path / "project") as store:
        mine = wal / f"01-{4242}-000003{wal_module.SEGMENT_SUFFIX}"
        other = wal / f"01-{4343}-000001{wal_module.SEGMENT_SUFFIX}"
        mine.touch()
        other.touch()
        wal_module.drain_segments(store, wal, 100, own_pid=4242)
        assert mine.exists() and other.exists()
        wal_module.drain_segments(store, wal, 100, own_pid=4242, owner_gone=True)
        assert not mine.exists()
        assert other.exists()


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def test_process_drain_inserts_off_the_process_and_flush_waits_for_it(
    store: Store, tmp_path: Path
) -> None:
    wal = tmp_path / "wal"
    log = PredictionLog(store, wal, batch_size=8, flush_seconds=0.05, drain="process")
    log.start()
    try:
        drainer = log._drainer
        assert drainer is not None and drainer.alive and drainer.pid != os.getpid()
        first = [entry(i) for i in range(30)]
        for item in first:
            log.append([item])
        # the drainer process, not this one, moves them into the table
        assert _wait_for(lambda: set(table_ids(store)) == {e.id for e in first})
        # its counts arrive in its status file just after the commit
        assert _wait_for(lambda: log.stats["written"] == 30)
        assert log._counts["written"] == 0
        # flush: everything appended so far is in the table when it returns
        second = [entry(i, request_id=f"b{i}") for i in range(17)]
        log.append(second)
        log.flush()
        assert set(table_ids(store)) == {e.id for e in first + second}
        assert log.stats["pending"] == 0
    finally:
        log.close()
    assert not drainer.alive
    assert log.stats["written"] == 47 and log.stats["torn"] == 0
    assert sorted(p.name for p in wal.iterdir()) == []  # no segment, no status file left


def test_a_dead_drainer_is_replaced_and_nothing_is_lost(store: Store, tmp_path: Path) -> None:
    wal = tmp_path / "wal"
    log = PredictionLog(store, wal, batch_size=8, flush_seconds=0.05, drain="process")
    log.start()
    try:
        drainer = log._drainer
        assert drainer is not None and drainer.pid is not None
        old = drainer.pid
        made = [entry(i) for i in range(10)]
        log.append(made[:5])
        os.kill(old, signal.SIGKILL)
        log.append(made[5:])
        assert _wait_for(lambda: drainer.alive and drainer.pid != old)
        assert _wait_for(lambda: set(table_ids(store)) == {e.id for e in made})
        assert log.stats["errors"] >= 1 and "drainer" in str(log.stats["last_error"])
    finally:
        log.close()
    # the killed drainer may have committed rows it had no time to count: the table is the truth
    assert set(table_ids(store)) == {e.id for e in made} and segments(wal) == []


def test_torn_last_line_is_skipped_and_replay_is_idempotent(store: Store, tmp_path: Path) -> None:
    wal = tmp_path / "wal"
    wal.mkdir()
    entries = [entry(i) for i in range(3)]
    lines = [json.dumps(e.to_dict()).encode() + b"\n" for e in entries]
    torn = lines[2][: len(lines[2]) // 2]
    (wal / "00000000000000000001-1-000001.wal").write_bytes(lines[0] + lines[1] + torn)
    with PredictionLog(store, wal) as log:
        assert log.stats["replayed"] == 2 and log.stats["torn"] == 1
    assert sorted(table_ids(store)) == sorted(e.id for e in entries[:2])
    # a segment whose entries are already stored (a kill between commit and delete)
    (wal / "00000000000000000002-1-000001.wal").write_bytes(lines[0] + lines[1] + lines[2])
    with PredictionLog(store, wal) as log:
        assert log.stats["replayed"] == 1
    assert sorted(table_ids(store)) == sorted(e.id for e in entries)
    assert segments(wal) == []


def test_live_segment_of_another_log_is_not_replayed(store: Store, tmp_path: Path) -> None:
    wal = tmp_path / "wal"
    first = PredictionLog(store, wal)
    mine = entry(1)
    first.append([mine])
    live = segments(wal)
    with PredictionLog(store, wal) as second:
        assert second.stats["replayed"] == 0
        assert segments(wal) == live
    first.close()
    assert table_ids(store) == [mine.id]


def test_store_created_before_serving_is_upgraded(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    command.upgrade(alembic_config(url=url), "0001")
    with Store.open(url=url) as store:
        assert store.schema_revisions() == (head_revision(),)
        with store.connect() as conn:
            names = set(inspect(conn).get_table_names())
        assert {"predictions", "feedback", "tokens", "deployments"} <= names


# -- feedback ----------------------------------------------------------------------------


def test_feedback_stores_known_ids_and_reports_unknown(store: Store, tmp_path: Path) -> None:
    entries = [entry(i) for i in range(3)]
    with PredictionLog(store, tmp_path / "wal") as log:
        log.append(entries)
    result = record_feedback(
        store,
        [(entries[0].id, "no"), ("nope", "yes"), (entries[0].id, "no"), (entries[1].id, 1)],
        actor="crm",
    )
    # the same label twice for one prediction is stored once
    assert result == FeedbackResult(accepted=2, unknown_ids=["nope"], unchanged=1)
    with store.connect() as conn:
        rows = conn.execute(select(feedback.c.prediction_id, feedback.c.actor)).all()
        assert conn.execute(select(func.count()).select_from(feedback)).scalar() == 2
    assert {actor for _, actor in rows} == {"crm"}
    labels = read_predictions(store).set_index("id")["label"]
    assert labels[entries[0].id] == "no"
    assert labels[entries[1].id] == 1
    assert pd.isna(labels[entries[2].id])


def test_feedback_flushes_the_log_for_a_prediction_not_written_yet(
    store: Store, tmp_path: Path
) -> None:
    log = PredictionLog(store, tmp_path / "wal", flush_seconds=3600)
    fresh = entry(1)
    log.append([fresh])
    assert record_feedback(store, [(fresh.id, "yes")], actor="a").unknown_ids == [fresh.id]
    result = record_feedback(store, [(fresh.id, "yes")], actor="a", log=log)
    assert result == FeedbackResult(accepted=1, unknown_ids=[])
    log.close()


# -- reading -----------------------------------------------------------------------------


def test_read_predictions_filters(store: Store, tmp_path: Path) -> None:
    entries = [
        entry(0, version=1),
        entry(1, version=1, route="shadow"),
        entry(2, version=2, route="canary"),
        entry(3, version=2),
        entry(4, version=1),
    ]
    with PredictionLog(store, tmp_path / "wal") as log:
        log.append(entries[::-1])
    ids = [e.id for e in entries]
    assert read_predictions(store)["id"].tolist() == ids  # oldest first
    assert read_predictions(store, version=2)["id"].tolist() == ids[2:4]
    assert read_predictions(store, route="shadow")["id"].tolist() == [ids[1]]
    assert read_predictions(store, since=T0 + timedelta(seconds=3))["id"].tolist() == ids[3:]
    assert read_predictions(store, limit=2)["id"].tolist() == ids[3:]
    assert read_predictions(store, version=1, limit=1)["id"].tolist() == [ids[4]]
    with pytest.raises(ConfigError, match="unknown prediction route.*one of: champion, canary"):
        read_predictions(store, route="blue")


def test_read_predictions_expands_inputs_and_keeps_log_columns(
    store: Store, tmp_path: Path
) -> None:
    empty = read_predictions(store)
    assert list(empty.columns) == list(LOG_COLUMNS) and len(empty) == 0
    with PredictionLog(store, tmp_path / "wal") as log:
        log.append([
            entry(0, inputs={"age": 30, "label": "clash"}),
            entry(1, inputs={"age": 31, "city": "Oslo"}),
        ])  # fmt: skip
    frame = read_predictions(store)
    assert list(frame.columns) == [*LOG_COLUMNS, "age", "input.label", "city"]
    assert frame.attrs["input_columns"] == ["age", "input.label", "city"]
    assert frame["age"].tolist() == [30, 31]
    assert frame["input.label"].iloc[0] == "clash" and pd.isna(frame["input.label"].iloc[1])
    assert pd.isna(frame["label"]).all()
    assert str(frame["at"].dt.tz) == "UTC"


def test_times_in_other_zones_are_stored_as_utc(store: Store, tmp_path: Path) -> None:
    plus_two = T0.astimezone(ZoneInfo("Europe/Berlin"))
    with PredictionLog(store, tmp_path / "wal") as log:
        log.append([entry(0, at=plus_two)])
    assert read_predictions(store)["at"].iloc[0] == pd.Timestamp(T0)
    assert len(read_predictions(store, since=T0 - timedelta(microseconds=1))) == 1
    assert len(read_predictions(store, since=T0 + timedelta(microseconds=1))) == 0


# -- bounds ------------------------------------------------------------------------------


def test_long_strings_and_big_inputs_are_cut_and_flagged(store: Store, tmp_path: Path) -> None:
    from assay.serve.log import MAX_LOGGED_STRING, TRUNCATED_FLAG

    huge = "x" * (8 * 1024 * 1024)
    long_name = "k" * 10_000
    plain = entry(1, inputs={"age": 31, "plan": "pro"})
    cut = entry(2, inputs={"age": 32, "plan": huge, long_name: 1, "nested": {"a": [huge]}})
    many = entry(3, inputs={f"f{i}": "y" * 1000 for i in range(200)})
    with PredictionLog(store, tmp_path / "wal") as log:
        log.append([plain, cut, many])
    frame = read_predictions(store).set_index("id")
    assert frame.loc[plain.id, "flags"] == [] and frame.loc[plain.id, "plan"] == "pro"
    assert frame.loc[cut.id, "flags"] == [TRUNCATED_FLAG]
    assert frame.loc[cut.id, "plan"] == "x" * MAX_LOGGED_STRING and frame.loc[cut.id, "age"] == 32
    assert frame.loc[cut.id, "k" * MAX_LOGGED_STRING] == 1
    assert frame.loc[cut.id, "nested"] == {"a": ["x" * MAX_LOGGED_STRING]}
    # past the input cap, the later fields are left out
    names = sorted(f"f{i}" for i in range(200))  # the WAL line's key order
    kept = [c for c in names if c in frame.columns and pd.notna(frame.loc[many.id, c])]
    assert 0 < len(kept) < 200 and kept == names[: len(kept)]
    assert TRUNCATED_FLAG in frame.loc[many.id, "flags"]  # its own flag is kept beside it
    assert "unknown_category" in frame.loc[many.id, "flags"]
    with store.connect() as conn:
        texts = conn.exec_driver_sql("SELECT inputs FROM predictions").scalars()
        sizes = [len(text) for text in texts]
    assert max(sizes) <= 64 * 1024 + MAX_LOGGED_STRING


def test_the_caps_are_settings(store: Store, tmp_path: Path) -> None:
    with PredictionLog(store, tmp_path / "wal", max_string=20, max_input_bytes=1024) as log:
        log.append([entry(1, inputs={"plan": "p" * 50})])
    frame = read_predictions(store)
    assert frame["plan"].iloc[0] == "p" * 20 and frame["flags"].iloc[0] == ["truncated"]
    with pytest.raises(ConfigError, match="max_string"):
        PredictionLog(store, tmp_path / "wal", max_string=0)


def test_a_full_disk_refuses_the_append_and_keeps_the_segment_whole(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    import assay.serve.log as log_module
    from assay.serve.log import LogUnavailable

    wal = tmp_path / "wal"
    log = PredictionLog(store, wal, flush_seconds=3600)
    first, lost, after = entry(1), entry(2), entry(3)
    log.append([first])
    real_write = log_module.write_all

    def disk_full(fd: int, data: bytes) -> None:
        os.write(fd, data[: len(data) // 2])  # a short write, then no space left
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(log_module, "write_all", disk_full)
    with pytest.raises(LogUnavailable, match="cannot be written.*Free disk space"):
        log.append([lost])
    assert log.stats["errors"] == 1 and "No space left" in str(log.stats["last_error"])
    # the half-written line was cut off: the segment holds whole lines only
    (segment,) = segments(wal)
    assert segment.read_bytes().count(b"\n") == 1 and segment.read_bytes().endswith(b"\n")
    monkeypatch.setattr(log_module, "write_all", real_write)
    log.append([after])  # space is back: logging resumes by itself
    log.close()
    assert set(table_ids(store)) == {first.id, after.id}


# -- retention -----------------------------------------------------------------------------


def test_retention_deletes_old_and_excess_rows_and_keeps_labelled_ones(
    store: Store, tmp_path: Path
) -> None:
    from assay.serve.retention import LogRetention, apply_retention

    now = T0 + timedelta(days=100)
    old = [entry(i, at=T0 + timedelta(hours=i)) for i in range(5)]
    recent = [entry(i, at=now - timedelta(hours=10 - i)) for i in range(10)]
    with PredictionLog(store, tmp_path / "wal") as log:
        log.append(old + recent)
    record_feedback(store, [(old[0].id, "yes"), (recent[0].id, "no")], actor="crm")
    result = apply_retention(store, LogRetention(max_age_days=30), now=now)
    assert result.deleted == 4
    assert set(table_ids(store)) == {old[0].id} | {e.id for e in recent}
    result = apply_retention(store, LogRetention(max_age_days=30, max_rows=3), now=now)
    assert result.deleted == 6
    # the 3 newest unlabelled rows and both labelled ones stay
    assert set(table_ids(store)) == {old[0].id, recent[0].id} | {e.id for e in recent[-3:]}
    assert apply_retention(store, LogRetention(max_rows=3), now=now).deleted == 0
    with pytest.raises(ConfigError, match="log_retention_days"):
        LogRetention(max_age_days=0)


def test_retention_compacts_the_sqlite_file(tmp_path: Path) -> None:
    from assay.serve.retention import LogRetention, apply_retention

    with Store.open(tmp_path / "project") as store:
        with PredictionLog(store, tmp_path / "wal", max_input_bytes=8192) as log:
            for batch in range(8):
                log.append([entry(i, inputs={"blob": f"{batch}-{i}-" + "z" * 4000})
                            for i in range(500)])
        db = tmp_path / "project" / ".assay" / "assay.db"
        with store.connect() as conn:  # fold SQLite's own WAL into the file before measuring
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        before = db.stat().st_size
        result = apply_retention(store, LogRetention(max_rows=100))
        assert result.deleted == 3900 and result.compacted and result.freed_bytes > 8 * 1024 * 1024
        assert db.stat().st_size < before / 4
        assert len(table_ids(store)) == 100


def test_the_drainer_process_applies_retention(tmp_path: Path) -> None:
    from assay.serve.retention import LogRetention

    with Store.open(tmp_path / "project") as store:
        log = PredictionLog(store, tmp_path / "wal", flush_seconds=0.05, drain="process",
                            retention=LogRetention(max_rows=5))
        log.start()
        try:
            log.append([entry(i, at=T0 + timedelta(seconds=i)) for i in range(20)])
            assert _wait_for(lambda: len(table_ids(store)) == 5)
        finally:
            log.close()


# -- drainer status files -------------------------------------------------------------------


def test_status_files_of_dead_servers_are_removed_at_the_next_start(
    store: Store, tmp_path: Path
) -> None:
    wal = tmp_path / "wal"
    wal.mkdir()
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    dead = [wal / f"drainer-{gone.pid}.json", wal / f"drainer-{gone.pid}.tmp"]
    live = wal / f"drainer-{os.getppid()}.json"
    for path in [*dead, live]:
        path.write_text("{}")
    with PredictionLog(store, wal):
        assert not any(path.exists() for path in dead)
        assert live.exists()
