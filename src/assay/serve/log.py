"""The prediction log: every answered (and shadowed) prediction, durable before the reply.

The server calls :meth:`PredictionLog.append` on the request path. It serialises the
entries to JSON lines and writes them with a single ``os.write`` to the current
segment of a write-ahead log (a file opened with ``O_APPEND``). When ``append``
returns, the bytes are in the kernel: killing the process (even with SIGKILL) cannot
lose them; only a machine crash before the page cache reaches the disk can, the same
guarantee as SQLite's ``synchronous=NORMAL``. There is no fsync per request.

The entries reach the ``predictions`` table in batches, drained by a background
thread (``drain="thread"``) or by a drainer process (``drain="process"``,
:mod:`assay.serve.drain`, what ``assay serve`` uses):

1. every ``flush_seconds`` (sooner at ``batch_size`` pending entries) the current
   segment is closed and the next append opens a new one;
2. a closed segment's lines are inserted, one transaction per ``batch_size`` rows,
   skipping ids already in the table (so inserting twice is harmless): one raw
   ``INSERT ... ON CONFLICT (id) DO NOTHING`` executed for the whole batch, its JSON
   columns serialised by orjson (canonical like :func:`assay.store.serialize.dumps`:
   sorted keys, NaN as null) - see :mod:`assay.serve.wal`;
3. the segment is deleted once every line of it is committed.

:meth:`PredictionLog.start` first replays the segments a previous process left
behind (killed before its writer caught up): each line not yet in the table is
inserted and the segment removed. A torn last line (a write cut short by the kill)
is skipped. Each live segment holds an exclusive ``flock``, released by the kernel
when its process dies, so two servers sharing a WAL folder never replay each other's
live segments.

Bounds. What is logged of a record is capped, whatever the request carried: a
string (value or field name) longer than :data:`MAX_LOGGED_STRING` characters is cut
to that length, and the fields of ``inputs`` past :data:`MAX_LOGGED_INPUT_BYTES` bytes
of JSON are left out; such a record carries the flag ``truncated``. Both caps are
settings of assay.yaml's ``monitoring`` section (``log_max_string``,
``log_max_input_bytes``). Old rows are deleted by the retention policy
(``monitoring.log_retention_days`` and ``log_max_rows``, :mod:`assay.serve.retention`),
applied by whoever drains the log; labelled predictions are kept.

A full disk. When a segment cannot be written (``ENOSPC``, an I/O error),
:meth:`PredictionLog.append` cuts the segment back to its last whole line and raises
:class:`LogUnavailable`: the server refuses the request (``503 log_unavailable``)
rather than answer a prediction it could not log - an answer always has a logged
prediction behind it, which feedback and monitoring rely on. The next append tries
again, so serving resumes on its own once space is freed.

Feedback labels (:func:`record_feedback`: checked against the model's classes, one
label per prediction unless overwritten on purpose) live here too. The reading side,
used by monitoring as well, is :func:`assay.model.predictions.read_predictions`.
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import re
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Self

import orjson
from sqlalchemy import Connection, insert, select

from assay.config.metrics import CLASSIFICATION_TASKS
from assay.errors import ConfigError, DataError, StoreError
from assay.serve.drain import DrainerProcess, sweep_status_files
from assay.serve.retention import RETENTION_SECONDS, LogRetention, apply_retention
from assay.serve.wal import (
    CAN_LOCK,
    ORJSON_OPTIONS,
    SEGMENT_SUFFIX,
    DrainCounts,
    describe_error,
    drain_segments,
    insert_rows,
    open_segment,
    parse_lines,
    remove_file,
    write_all,
)
from assay.store.database import Store, as_utc, utcnow
from assay.store.serialize import dumps, to_jsonable
from assay.model.predictions import ROUTES
from assay.store.tables import events, feedback, model_versions, predictions

__all__ = [
    "DRAINS",
    "ROUTES",
    "Drain",
    "MAX_LOGGED_INPUT_BYTES",
    "MAX_LOGGED_STRING",
    "TRUNCATED_FLAG",
    "FeedbackResult",
    "LabelConflict",
    "LabelError",
    "LogEntry",
    "LogUnavailable",
    "PredictionLog",
    "KEYED_ROUTES",
    "new_prediction_id",
    "predictions_by_key",
    "record_feedback",
    "record_feedback_items",
]

#: How a log's entries reach the table: a thread of the serving process, or a drainer process.
DRAINS = ("thread", "process")
Drain = Literal["thread", "process"]

_COUNTERS = ("appended", "written", "replayed", "torn", "rejected", "errors")

#: the longest string (a value or a field name) a logged record keeps, in characters
MAX_LOGGED_STRING = 4096
#: the largest logged ``inputs`` of one record, in bytes of JSON; fields past it are left out
MAX_LOGGED_INPUT_BYTES = 64 * 1024
#: the flag of a record whose logged inputs were cut to the caps
TRUNCATED_FLAG = "truncated"


class LogUnavailable(StoreError):
    """The prediction log cannot be written (disk full, I/O error): the prediction must not
    be answered."""


class LabelError(DataError):
    """Feedback labels that are not values of the model's target; ``problems`` lists them
    (``index``, ``field``, ``reason``, ``code``, ``allowed``)."""


class LabelConflict(DataError):
    """Feedback labels that differ from the label a prediction already has; ``conflicts``
    lists them (``index``, ``id``, ``label``, ``existing``)."""


def _seeded_ids() -> random.Random:
    return random.Random(random.SystemRandom().getrandbits(256))


_ids = _seeded_ids()


def _reseed_ids() -> None:
    global _ids
    _ids = _seeded_ids()


if hasattr(os, "register_at_fork"):  # a forked worker must not repeat its parent's ids
    os.register_at_fork(after_in_child=_reseed_ids)


def new_prediction_id() -> str:
    """A fresh prediction id: 128 random bits as 32 hex characters (the shape of a uuid4 hex).

    The bits come from a Mersenne Twister seeded once per process (and again in a
    forked child) from the operating system's randomness: four times cheaper than
    ``uuid4()``, unique in practice, but predictable from enough earlier ids, so an
    id must never serve as a secret (feedback needs a token, not just an id). One
    ``getrandbits`` call runs in C under the GIL, so concurrent threads never share
    a draw. Ids are not reproducible by design, so there is no seed argument.
    """
    return f"{_ids.getrandbits(128):032x}"


@dataclass(frozen=True)
class LogEntry:
    """One logged prediction of one model for one record.

    Attributes:
        id: the prediction id (:func:`new_prediction_id`), returned to the client.
        at: when the request arrived (aware UTC).
        version: the model version that scored the record.
        route: ``champion``, ``canary`` (answered by the challenger) or ``shadow``
            (scored by the challenger, not returned).
        request_id: the HTTP request the record came in (shared by its shadow entry).
        inputs: the record as received.
        prediction: the class label or the regression value.
        probabilities: class label -> probability (classification), else None.
        confidence: the top probability (classification), else None.
        latency_ms: the time to score the request's batch, in milliseconds.
        flags: codes of problems answered anyway (``unknown_category``, ...).
        shadowed_by: on a champion answer, the challenger version the server scored the
            record with in shadow mode (None without a shadow): the shadow's coverage is
            measured over these answers only, from the moment each server runs the shadow.
    """

    id: str
    at: datetime
    version: int
    route: str
    request_id: str
    inputs: dict[str, Any]
    prediction: Any
    probabilities: dict[str, float] | None
    confidence: float | None
    latency_ms: float
    flags: list[str] = field(default_factory=list)
    shadowed_by: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values (``at`` as an ISO string)."""
        return {
            "id": self.id,
            "at": self.at.isoformat(),
            "version": int(self.version),
            "route": self.route,
            "request_id": self.request_id,
            "inputs": self.inputs,
            "prediction": self.prediction,
            "probabilities": self.probabilities,
            "confidence": self.confidence,
            "latency_ms": float(self.latency_ms),
            "flags": list(self.flags),
            "shadowed_by": self.shadowed_by,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LogEntry:
        """The inverse of :meth:`to_dict`."""
        at = data["at"]
        return cls(
            id=str(data["id"]),
            at=as_utc(datetime.fromisoformat(at) if isinstance(at, str) else at),
            version=int(data["version"]),
            route=str(data["route"]),
            request_id=str(data["request_id"]),
            inputs=dict(data["inputs"]),
            prediction=data.get("prediction"),
            probabilities=data.get("probabilities"),
            confidence=data.get("confidence"),
            latency_ms=float(data["latency_ms"]),
            flags=list(data.get("flags") or []),
            shadowed_by=None if data.get("shadowed_by") is None else int(data["shadowed_by"]),
        )


@dataclass(frozen=True)
class FeedbackResult:
    """What :func:`record_feedback` did: labels stored (``accepted``; ``overwritten`` of them
    replaced a different label), labels already stored as sent (``unchanged``: not stored
    twice), ids no prediction has, and for labels sent by ``key`` (the declared ``data.id``):
    keys no logged record carried (``unknown_keys``) and the predictions they resolved to
    (``by_key``)."""

    accepted: int
    unknown_ids: list[str] = field(default_factory=list)
    unchanged: int = 0
    overwritten: int = 0
    unknown_keys: list[str | int] = field(default_factory=list)
    by_key: int = 0

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values."""
        return {
            "accepted": self.accepted,
            "unknown_ids": list(self.unknown_ids),
            "unchanged": self.unchanged,
            "overwritten": self.overwritten,
            "unknown_keys": list(self.unknown_keys),
            "by_key": self.by_key,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeedbackResult:
        """The inverse of :meth:`to_dict`."""
        return cls(
            accepted=int(data["accepted"]),
            unknown_ids=list(data["unknown_ids"]),
            unchanged=int(data.get("unchanged", 0)),
            overwritten=int(data.get("overwritten", 0)),
            unknown_keys=list(data.get("unknown_keys", [])),
            by_key=int(data.get("by_key", 0)),
        )


@dataclass(frozen=True)
class _Segment:
    path: Path
    fd: int


class PredictionLog:
    """Durable, cheap logging of predictions: a write-ahead log drained into the store.

    Call order: ``start()`` (replay leftovers, start the drain), ``append()`` from any
    thread, ``flush()`` when the table must be current, ``close()``. ``append`` and
    ``flush`` also work without ``start`` (nothing drains in the background).

    Two ways to drain, same guarantees:

    * ``drain="thread"``: a writer thread of this process inserts the pending lines
      (kept in memory, so the WAL is only read back after a crash);
    * ``drain="process"``: this process only appends, and closes its segment every
      ``flush_seconds`` (or at ``batch_size`` entries) in a light thread; a drainer
      process (:mod:`assay.serve.drain`) inserts the closed segments, so inserting
      never takes this process's GIL. It needs ``flock`` (POSIX); elsewhere the
      thread drains.

    Args:
        store: the project store holding the ``predictions`` table.
        wal_dir: the folder of the WAL segments (created if missing); keep it on a
            local disk next to the store.
        batch_size: rows per insert transaction; the writer also wakes early when
            this many entries are pending.
        flush_seconds: how often pending entries are drained.
        drain: ``thread`` or ``process``.
        retention: which old predictions the drain deletes (None: none).
        max_string: the longest logged string (:data:`MAX_LOGGED_STRING`).
        max_input_bytes: the largest logged inputs of a record (:data:`MAX_LOGGED_INPUT_BYTES`).
    """

    def __init__(
        self,
        store: Store,
        wal_dir: Path,
        *,
        batch_size: int = 512,
        flush_seconds: float = 0.2,
        drain: Drain = "thread",
        retention: LogRetention | None = None,
        max_string: int = MAX_LOGGED_STRING,
        max_input_bytes: int = MAX_LOGGED_INPUT_BYTES,
    ) -> None:
        if batch_size < 1:
            raise ConfigError(
                "the prediction log batch size must be positive",
                key="batch_size",
                expected="an integer >= 1",
                received=batch_size,
                fix="Pass batch_size=512 (the default) or another positive number.",
            )
        if not flush_seconds > 0:
            raise ConfigError(
                "the prediction log flush interval must be positive",
                key="flush_seconds",
                expected="a number of seconds > 0",
                received=flush_seconds,
                fix="Pass flush_seconds=0.2 (the default) or another positive number.",
            )
        if drain not in DRAINS:
            raise ConfigError(
                "unknown prediction log drain",
                key="drain",
                expected="one of: " + ", ".join(DRAINS),
                received=drain,
                fix="Pass drain='thread' (the default) or drain='process'.",
            )
        if max_string < 1 or max_input_bytes < 1:
            raise ConfigError(
                "the prediction log caps must be positive",
                key="max_string" if max_string < 1 else "max_input_bytes",
                expected="an integer >= 1",
                received=min(max_string, max_input_bytes),
            )
        self.store = store
        self.wal_dir = Path(wal_dir)
        self.retention = retention if retention is not None and retention.enabled else None
        self.max_string = int(max_string)
        self.max_input_bytes = int(max_input_bytes)
        self._segment_size = 0  # bytes of whole lines in the current segment
        self._next_retention = 0.0
        self.batch_size = int(batch_size)
        self.flush_seconds = float(flush_seconds)
        self.drain: Drain = drain if CAN_LOCK else "thread"
        self._lock = threading.Lock()  # guards the current segment and the pending lines
        self._flush_lock = threading.Lock()  # one drain at a time
        self._segment: _Segment | None = None
        self._pending: list[bytes] = []
        self._pending_count = 0
        # drained but not yet committed (kept for retry after a database error)
        self._unflushed: list[tuple[_Segment, list[bytes], int]] = []
        self._seq = 0
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._drainer: DrainerProcess | None = None
        self._closed = False
        self._counts = dict.fromkeys(_COUNTERS, 0)
        self._dropped = 0  # own lines torn or refused (process drain)
        self._last_error: str | None = None

    # -- public API -------------------------------------------------------------

    @property
    def stats(self) -> dict[str, Any]:
        """Counters: ``appended``, ``written`` (committed from this log's segments),
        ``pending``, ``replayed`` (inserted from leftover segments of other processes),
        ``torn`` (unreadable lines skipped), ``rejected`` (rows the database refused
        alone, dropped so they cannot block the log), ``errors`` (failed drains,
        retried) and ``last_error``; with the process drain, the drainer's counts
        are included as it last wrote them."""
        with self._lock:
            counts = dict(self._counts)
            dropped = self._dropped
            pending = self._pending_count + sum(count for _, _, count in self._unflushed)
            last_error = self._last_error
        if self._drainer is not None:
            status = self._drainer.status()
            dropped += _add_drained(counts, status)
            counts["errors"] += status.errors
            last_error = status.last_error or last_error
        if self.drain == "process":
            pending = max(counts["appended"] - counts["written"] - dropped, 0)
        return {**counts, "pending": pending, "last_error": last_error}

    def start(self) -> None:
        """Replay leftover segments into the table, then start the drain."""
        if self._closed:
            raise StoreError("the prediction log is closed", fix="Create a new PredictionLog.")
        if self._thread is not None:
            return
        self.wal_dir.mkdir(parents=True, exist_ok=True)
        sweep_status_files(self.wal_dir)  # left by servers killed together with their drainer
        self._replay()
        self._stop.clear()
        if self.drain == "process":
            engine_url = self.store.engine.url.render_as_string(hide_password=False)
            self._drainer = DrainerProcess(
                engine_url, str(self.store.artifacts.root), self.wal_dir,
                batch_size=self.batch_size, interval=self.flush_seconds,
                retention=self.retention,
            )  # fmt: skip
            self._drainer.start()
            target = self._run_rotator
        else:
            target = self._run
        self._thread = threading.Thread(target=target, name="assay-prediction-log", daemon=True)
        self._thread.start()

    def append(self, entries: Sequence[LogEntry]) -> None:
        """Write ``entries`` to the WAL with one ``os.write``; durable against a process kill
        when this returns. Thread-safe."""
        if not entries:
            return
        data = b"".join(_encode(entry, self.max_string, self.max_input_bytes) for entry in entries)
        with self._lock:
            if self._closed:
                raise StoreError("the prediction log is closed", fix="Create a new PredictionLog.")
            self._write(data)
            if self.drain == "thread":
                self._pending.append(data)
            self._pending_count += len(entries)
            self._counts["appended"] += len(entries)
            wake = self._pending_count >= self.batch_size
        if wake:
            self._wake.set()

    def _write(self, data: bytes) -> None:
        """Append ``data`` to the current segment (holding ``_lock``); on a failed write the
        segment is cut back to its last whole line and :class:`LogUnavailable` raised."""
        segment = self._segment
        try:
            if segment is None:
                segment = self._open_segment()
                self._segment_size = 0
            write_all(segment.fd, data)
        except OSError as exc:
            if segment is not None:
                with contextlib.suppress(OSError):  # shrinking needs no free space
                    os.ftruncate(segment.fd, self._segment_size)
            self._counts["errors"] += 1
            self._last_error = f"cannot write the prediction log: {exc}"
            raise LogUnavailable(
                "the prediction log cannot be written, so the prediction is not answered",
                where=str(self.wal_dir),
                expected="a writable folder with free space",
                received=f"{type(exc).__name__}: {exc.strerror or exc}",
                fix="Free disk space (or lower monitoring.log_retention_days / log_max_rows); "
                "serving resumes by itself.",
            ) from exc
        self._segment_size += len(data)

    def flush(self) -> None:
        """Write every entry appended so far to the database now (raises on a database error;
        the entries stay in the WAL and are retried)."""
        with self._flush_lock:
            if self.drain == "process":
                self._drain_closed()
            else:
                self._drain()

    def close(self) -> None:
        """Flush, stop the drain and remove the fully flushed WAL segments.

        If the database cannot be reached, the segments stay on disk and the next
        :meth:`start` on the same folder inserts them.
        """
        if self._closed:
            return
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._drainer is not None:
            self._rotate()
            self._drainer.stop()
            self._absorb(self._drainer)
            self._drainer = None
        try:
            self.flush()
        finally:
            with self._lock:
                self._closed = True
                segment, self._segment = self._segment, None
            if segment is not None:
                if self._pending_count == 0:
                    remove_file(segment.path)
                os.close(segment.fd)
            for old, _, _ in self._unflushed:
                os.close(old.fd)
            self._unflushed.clear()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- thread drain -------------------------------------------------------------

    def _run(self) -> None:
        backoff = self.flush_seconds
        while not self._stop.is_set():
            self._wake.wait(self.flush_seconds)
            self._wake.clear()
            if self._stop.is_set():
                break
            try:
                with self._flush_lock:
                    self._drain()
                    self._expire()
                backoff = self.flush_seconds
            except Exception:  # noqa: BLE001 - kept in stats; the writer must outlive it
                # the entries stay in the WAL and in memory; retry later, slower, even
                # when appends keep waking the writer
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 5.0)

    def _drain(self) -> None:
        with self._lock:
            if self._pending:
                segment = self._segment
                lines, count = self._pending, self._pending_count
                self._pending, self._pending_count = [], 0
                self._segment = None  # the next append opens a new segment
                if segment is not None:
                    self._unflushed.append((segment, lines, count))
        while self._unflushed:
            segment, chunks, _ = self._unflushed[0]
            try:
                rows, torn = parse_lines(b"".join(chunks))
                written, rejected = insert_rows(self.store, rows, self.batch_size)
            except Exception as exc:
                with self._lock:
                    self._counts["errors"] += 1
                    self._last_error = describe_error(exc)
                raise
            remove_file(segment.path)
            os.close(segment.fd)
            with self._lock:
                self._unflushed.pop(0)
                self._counts["written"] += written
                self._counts["torn"] += torn
                self._counts["rejected"] += rejected

    def _expire(self) -> None:
        """Apply the retention policy, at most every :data:`RETENTION_SECONDS`."""
        if self.retention is None or time.monotonic() < self._next_retention:
            return
        self._next_retention = time.monotonic() + RETENTION_SECONDS
        try:
            apply_retention(self.store, self.retention)
        except Exception as exc:
            with self._lock:
                self._counts["errors"] += 1
                self._last_error = describe_error(exc)
            raise

    # -- process drain ------------------------------------------------------------

    def _run_rotator(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.flush_seconds)
            self._wake.clear()
            if self._stop.is_set():
                break
            self._rotate()
            drainer = self._drainer
            if drainer is not None and not drainer.alive:
                # a drainer that died (killed, out of memory) is replaced; the segments wait
                self._absorb(drainer)
                with self._lock:
                    self._counts["errors"] += 1
                    self._last_error = "the drainer process exited; restarted"
                drainer.start()

    def _absorb(self, drainer: DrainerProcess) -> None:
        """Take the stopped drainer's final counts into this log's and remove its status file."""
        status = drainer.status()
        with self._lock:
            self._dropped += _add_drained(self._counts, status)
            self._counts["errors"] += status.errors
            self._last_error = status.last_error or self._last_error
        drainer.forget()

    def _rotate(self) -> None:
        """Close the current segment if it holds entries: the drainer may take it now."""
        with self._lock:
            segment = self._segment
            if segment is None or self._pending_count == 0:
                return
            self._segment = None
            self._pending_count = 0
        os.close(segment.fd)  # releases the flock

    def _drain_closed(self) -> None:
        """Insert this process's closed segments here and now (waiting for one the drainer
        is inserting), then any leftovers."""
        self._rotate()
        with self._lock:
            # every segment numbered up to here is closed (an append may have opened the next)
            closed = self._seq if self._segment is None else self._seq - 1
        try:
            counts = drain_segments(
                self.store, self.wal_dir, self.batch_size, own_pid=os.getpid(),
                wait_through=closed,
            )  # fmt: skip
        except Exception as exc:
            with self._lock:
                self._counts["errors"] += 1
                self._last_error = describe_error(exc)
            raise
        with self._lock:
            self._dropped += _add_drained(self._counts, counts)

    # -- segments -------------------------------------------------------------------

    def _open_segment(self) -> _Segment:
        self.wal_dir.mkdir(parents=True, exist_ok=True)
        self._seq += 1
        # time first so that a sorted listing replays oldest first
        name = f"{time.time_ns():020d}-{os.getpid()}-{self._seq:06d}{SEGMENT_SUFFIX}"
        path = self.wal_dir / name
        self._segment = _Segment(path, open_segment(path))
        return self._segment

    def _replay(self) -> None:
        own = {segment.path.name for segment, _, _ in self._unflushed}
        if self._segment is not None:
            own.add(self._segment.path.name)
        counts = drain_segments(self.store, self.wal_dir, self.batch_size, skip=own)
        with self._lock:
            self._counts["replayed"] += counts.others
            self._counts["torn"] += counts.torn
            self._counts["rejected"] += counts.rejected


def _add_drained(counts: dict[str, int], drained: DrainCounts) -> int:
    """Add a drain's rows to the log's counters; returns its own dropped lines."""
    counts["written"] += drained.own
    counts["replayed"] += drained.others
    counts["torn"] += drained.torn
    counts["rejected"] += drained.rejected
    return drained.own_dropped


# -- feedback and reading ---------------------------------------------------------


def record_feedback(
    store: Store,
    labels: Sequence[tuple[str, Any]],
    actor: str,
    *,
    log: PredictionLog | None = None,
    overwrite: bool = False,
) -> FeedbackResult:
    """Store the true label of logged predictions; ids of no prediction are reported, not stored.

    Each label is checked against the model version that made the prediction: one of its
    classes for a classification task (matched by value or text: ``"1"``, ``1`` and
    ``1.0`` all match the class ``1``, stored as the class itself), a finite number for a
    regression. A prediction has one label: the same label sent again is not stored twice
    (``unchanged``), and a different one is refused unless ``overwrite`` - then it
    replaces the old one and the change is written to the audit trail
    (``feedback_overwrite`` event). Nothing is stored when any label is refused.

    Args:
        store: the project store.
        labels: ``(prediction_id, label)`` pairs.
        actor: who sent them (the token name).
        log: the live :class:`PredictionLog`; when some ids are not in the table yet,
            it is flushed and they are looked up again (a label may follow its
            prediction within the writer's interval).
        overwrite: replace labels that differ from the stored ones (audited).

    Raises:
        LabelError: a label is not a value of the model's target (422 over HTTP).
        LabelConflict: a prediction already has a different label, or one request sends
            two different labels for it, without ``overwrite`` (409 over HTTP).
    """
    pairs = [(pid if isinstance(pid, str) else str(pid), label) for pid, label in labels]
    wanted = sorted({pid for pid, _ in pairs})
    with store.connect() as conn:
        known = _prediction_versions(conn, wanted)
    if log is not None and len(known) < len(wanted):
        log.flush()
        with store.connect() as conn:
            known = _prediction_versions(conn, wanted)
    with store.connect() as conn:
        targets = _targets(conn, set(known.values()))
    checked: list[tuple[int, str, Any]] = []  # (index, id, label as the target's value)
    problems: list[dict[str, Any]] = []
    for i, (pid, label) in enumerate(pairs):
        if pid not in known:
            continue
        target = targets.get(known[pid])
        if target is None:  # a version the registry does not hold: nothing to check against
            checked.append((i, pid, label))
            continue
        value, problem = _check_label(label, *target)
        if problem is not None:
            problems.append({"index": i, "field": "label", **problem})
        else:
            checked.append((i, pid, value))
    if problems:
        first = problems[0]
        raise LabelError(
            f"{len(problems)} label(s) are not values of the model's target, nothing was stored",
            where=f"labels[{first['index']}].label",
            expected=first["expected"],
            received=pairs[first["index"]][1],
            fix="Send the true label as one of the allowed values.",
            problems=problems,
        )
    unknown: list[str] = []
    for pid, _ in pairs:
        if pid not in known and pid not in unknown:
            unknown.append(pid)
    with store.transaction() as conn:
        stored = _latest_labels(conn, {pid for _, pid, _ in checked})
        rows, overwrites, conflicts, unchanged = _plan_labels(checked, stored, overwrite)
        if conflicts:
            first = conflicts[0]
            raise LabelConflict(
                f"{len(conflicts)} prediction(s) already have a different label, "
                "nothing was stored",
                where=f"labels[{first['index']}]",
                expected=f"the label {first['existing']!r} already stored for {first['id']}",
                received=first["label"],
                fix="Send each prediction's label once; to correct one, send it again with "
                "overwrite (POST /v1/feedback?overwrite=true), which is audited.",
                conflicts=conflicts,
            )
        if rows:
            now = utcnow()
            conn.execute(
                insert(feedback),
                [{"prediction_id": pid, "label": v, "actor": actor, "at": now} for pid, v in rows],
            )
        if overwrites:
            conn.execute(
                insert(events).values(
                    at=utcnow(), actor=actor, action="feedback_overwrite", version=None,
                    reason="feedback sent with overwrite",
                    details=to_jsonable({"labels": overwrites}, "details"),
                )
            )  # fmt: skip
    return FeedbackResult(
        accepted=len(rows), unknown_ids=unknown, unchanged=unchanged, overwritten=len(overwrites)
    )


#: the routes whose predictions a feedback key labels (a shadow's answer was never given)
KEYED_ROUTES = ("champion", "canary", "batch")


def predictions_by_key(
    store: Store, column: str, keys: Sequence[str | int], *, log: PredictionLog | None = None
) -> dict[str, list[str]]:
    """The answered predictions (routes :data:`KEYED_ROUTES`) whose logged record carried
    each key in ``column`` (the declared ``data.id``), oldest first.

    A key matches by its text: ``"42"`` and ``42`` both match a record logged with ``42``
    or ``"42"``. Returns ``str(key)`` -> prediction ids; a key no record carried is absent.
    ``log`` is flushed first, so a key may follow its prediction within the writer's
    interval.
    """
    if log is not None:
        log.flush()
    texts = list(dict.fromkeys(str(k) for k in keys))
    numbers = list(dict.fromkeys(int(t) for t in texts if re.fullmatch(r"-?\d{1,18}", t)))
    value = predictions.c.inputs[column]
    found: dict[str, list[str]] = {}
    with store.connect() as conn:
        # a key is matched as logged text and, when it reads as a whole number, as a number
        for keyed, read in ((texts, value.as_string()), (numbers, value.as_integer())):
            for start in range(0, len(keyed), 500):
                query = (
                    select(predictions.c.id, read)
                    .where(predictions.c.route.in_(KEYED_ROUTES))
                    .where(read.in_(keyed[start : start + 500]))
                    .order_by(predictions.c.at, predictions.c.id)
                )
                for pid, got in conn.execute(query):
                    ids = found.setdefault(str(got), [])
                    if str(pid) not in ids:
                        ids.append(str(pid))
    return found


def record_feedback_items(
    store: Store,
    items: Sequence[tuple[str | None, str | int | None, Any]],
    actor: str,
    *,
    id_column: str | None,
    log: PredictionLog | None = None,
    overwrite: bool = False,
) -> FeedbackResult:
    """:func:`record_feedback` for items naming a prediction by its id or by the value of
    the declared ``data.id`` column (``(id, key, label)``, one of id and key set).

    A key labels every answered prediction whose logged record carried it (a record
    scored twice is one row, with one truth); keys no logged record carried are listed
    in ``unknown_keys``. Refused labels name the item's position in ``items``.

    Raises:
        LabelError: a key is sent while ``data.id`` is not declared (or as
            :func:`record_feedback`).
        LabelConflict: as :func:`record_feedback`.
    """
    keyed = [(i, key) for i, (pid, key, _) in enumerate(items) if pid is None and key is not None]
    if keyed and not id_column:
        index = keyed[0][0]
        raise LabelError(
            "labels are sent by 'key', but assay.yaml declares no data.id column, nothing was stored",
            where=f"labels[{index}].key",
            expected="data.id naming the record identifier the served records carry",
            received=keyed[0][1],
            fix="Declare data.id in assay.yaml, or send each label with the prediction 'id' "
            "/v1/predict returned.",
            problems=[{"index": i, "field": "key", "code": "no_id_column",
                       "reason": "data.id is not declared in assay.yaml"} for i, _ in keyed],
        )
    by_key = (
        predictions_by_key(store, str(id_column), [k for _, k in keyed], log=log) if keyed else {}
    )
    pairs: list[tuple[str, Any]] = []
    origin: list[int] = []
    unknown_keys: list[str | int] = []
    for i, (pid, key, label) in enumerate(items):
        if pid is not None:
            pairs.append((pid, label))
            origin.append(i)
            continue
        matched = by_key.get(str(key), [])
        if not matched and key not in unknown_keys:
            unknown_keys.append(key)  # type: ignore[arg-type]
        for found in matched:
            pairs.append((found, label))
            origin.append(i)
    try:
        result = record_feedback(store, pairs, actor, log=log, overwrite=overwrite)
    except (LabelError, LabelConflict) as exc:
        for entry in exc.fields.get("problems") or exc.fields.get("conflicts") or []:
            if isinstance(entry.get("index"), int) and entry["index"] < len(origin):
                entry["index"] = origin[entry["index"]]
        raise
    return replace(result, unknown_keys=unknown_keys, by_key=sum(
        len(by_key.get(str(k), [])) for _, k in keyed))


def _prediction_versions(conn: Connection, ids: Sequence[str]) -> dict[str, int]:
    """prediction id -> the model version that made it, for the ids in the table."""
    found: dict[str, int] = {}
    for start in range(0, len(ids), 500):
        chunk = list(ids[start : start + 500])
        query = select(predictions.c.id, predictions.c.version).where(predictions.c.id.in_(chunk))
        found.update({pid: int(version) for pid, version in conn.execute(query)})
    return found


def _targets(conn: Connection, versions: set[int]) -> dict[int, tuple[str, list[Any] | None]]:
    """model version -> (task, its classes or None)."""
    if not versions:
        return {}
    query = select(model_versions.c.version, model_versions.c.task, model_versions.c.lineage)
    out: dict[int, tuple[str, list[Any] | None]] = {}
    for version, task, lineage in conn.execute(query.where(model_versions.c.version.in_(versions))):
        classes = (lineage or {}).get("classes") if isinstance(lineage, dict) else None
        out[int(version)] = (str(task), list(classes) if classes else None)
    return out


def _label_key(value: Any) -> str:
    # as assay.monitor.performance matches labels to classes: 1, 1.0 and "1" are one class
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _check_label(
    label: Any, task: str, classes: list[Any] | None
) -> tuple[Any, dict[str, Any] | None]:
    """(the label as the target's value, None) or (None, the problem)."""
    if task in CLASSIFICATION_TASKS:
        if classes:
            lookup = {_label_key(c): c for c in classes}
            if label is not None and _label_key(label) in lookup:
                return lookup[_label_key(label)], None
            shown = ", ".join(repr(c) for c in classes[:20])
            more = f" (and {len(classes) - 20} more)" if len(classes) > 20 else ""
            return None, {
                "reason": f"{label!r} is not a class of the model; allowed: {shown}{more}",
                "code": "unknown_class", "expected": f"one of {shown}{more}",
                "allowed": list(classes),
            }  # fmt: skip
        if label is None:
            return None, {"reason": "missing; expected the true class", "code": "missing",
                          "expected": "the true class", "allowed": None}  # fmt: skip
        return label, None
    if isinstance(label, (int, float)) and not isinstance(label, bool) and math.isfinite(label):
        return label, None
    return None, {
        "reason": f"expected a finite number (a regression target), got {label!r}",
        "code": "not_a_number", "expected": "a finite number", "allowed": None,
    }  # fmt: skip


def _latest_labels(conn: Connection, ids: set[str]) -> dict[str, Any]:
    """prediction id -> its latest stored label, for the ids that have one."""
    found: dict[str, Any] = {}
    wanted = sorted(ids)
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        query = (
            select(feedback.c.prediction_id, feedback.c.label)
            .where(feedback.c.prediction_id.in_(chunk))
            .order_by(feedback.c.id)
        )
        found.update({pid: label for pid, label in conn.execute(query)})
    return found


def _plan_labels(
    checked: Sequence[tuple[int, str, Any]], stored: Mapping[str, Any], overwrite: bool
) -> tuple[list[tuple[str, Any]], list[dict[str, Any]], list[dict[str, Any]], int]:
    """(rows to insert, overwrites to audit, conflicts, labels already stored as sent)."""
    current = dict(stored)
    rows: list[tuple[str, Any]] = []
    overwrites: list[dict[str, Any]] = []
    conflicts: list[dict[str, Any]] = []
    unchanged = 0
    for index, pid, label in checked:
        if pid not in current:
            current[pid] = label
            rows.append((pid, label))
        elif _label_key(current[pid]) == _label_key(label):
            unchanged += 1
        elif overwrite:
            overwrites.append({"id": pid, "previous": current[pid], "label": label})
            current[pid] = label
            rows.append((pid, label))
        else:
            conflicts.append({"index": index, "id": pid, "label": label, "existing": current[pid]})
    return rows, overwrites, conflicts, unchanged


# -- helpers ------------------------------------------------------------------------


def _encode(
    entry: LogEntry,
    max_string: int = MAX_LOGGED_STRING,
    max_input_bytes: int = MAX_LOGGED_INPUT_BYTES,
) -> bytes:
    """The entry's WAL line, its inputs cut to the caps (and then flagged ``truncated``)."""
    line = _encode_whole(entry)
    # a line this short holds no string and no inputs past the caps: the common case
    if len(line) <= min(max_string, max_input_bytes):
        return line
    record = orjson.loads(line)
    inputs, cut = _cut_strings(record["inputs"], max_string)
    if not isinstance(inputs, dict):
        inputs = {"value": inputs}
    inputs, dropped = _cut_fields(inputs, max_input_bytes)
    if not (cut or dropped):
        return line
    flags = list(record.get("flags") or [])
    record.update(inputs=inputs, flags=[*flags, TRUNCATED_FLAG])
    return orjson.dumps(record, option=ORJSON_OPTIONS | orjson.OPT_APPEND_NEWLINE)


def _cut_strings(value: Any, limit: int) -> tuple[Any, bool]:
    """``value`` with every string (dictionary keys included) cut to ``limit`` characters."""
    if isinstance(value, str):
        return (value[:limit], True) if len(value) > limit else (value, False)
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        cut = False
        for key, item in value.items():
            new_key, key_cut = _cut_strings(key, limit)
            out[new_key], item_cut = _cut_strings(item, limit)
            cut = cut or key_cut or item_cut
        return out, cut
    if isinstance(value, list):
        items = [_cut_strings(item, limit) for item in value]
        return [item for item, _ in items], any(flag for _, flag in items)
    return value, False


def _cut_fields(inputs: dict[str, Any], limit: int) -> tuple[dict[str, Any], bool]:
    """The fields of ``inputs`` that fit in ``limit`` bytes of JSON, in key order (the order of
    the WAL line); True if some were left out."""
    kept: dict[str, Any] = {}
    used = 2  # the braces
    dropped = False
    for key, value in inputs.items():
        size = len(orjson.dumps({key: value}, option=ORJSON_OPTIONS)) - 1  # its comma, no braces
        if used + size > limit:
            dropped = True
            continue
        kept[key] = value
        used += size
    return kept, dropped


def _encode_whole(entry: LogEntry) -> bytes:
    at = entry.at
    if at.tzinfo is not UTC:
        at = as_utc(at)
    record = {
        "id": entry.id,
        "at": at,
        "version": int(entry.version),
        "route": entry.route,
        "request_id": entry.request_id,
        "inputs": entry.inputs,
        "prediction": entry.prediction,
        "probabilities": entry.probabilities,
        "confidence": entry.confidence,
        "latency_ms": float(entry.latency_ms),
        "flags": entry.flags,
        "shadowed_by": entry.shadowed_by,
    }
    try:
        return orjson.dumps(record, option=ORJSON_OPTIONS | orjson.OPT_APPEND_NEWLINE)
    except TypeError:  # non-string keys, huge ints, odd objects: the thorough conversion
        return dumps(to_jsonable(entry.to_dict(), "entry")).encode("utf-8") + b"\n"
