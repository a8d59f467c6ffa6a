"""The prediction log's write-ahead segments: writing, parsing, claiming and inserting them.

A segment is a file of JSON lines (one logged prediction each) in the log's folder,
named ``<time_ns>-<pid>-<seq>.wal`` so that a sorted listing is oldest first and the
writing process is known. The process writing a segment holds an exclusive
``flock`` on it; the kernel releases it when the process closes the file or dies,
and only then may a segment be drained: its lines inserted into the ``predictions``
table (an id already there is skipped, so inserting twice is harmless) and the file
removed. :func:`drain_segments` is that step, shared by the server's writer thread,
the drainer process (:mod:`assay.serve.drain`) and the replay at start-up.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Connection, Dialect, select
from sqlalchemy.exc import DataError, IntegrityError, OperationalError, StatementError

from assay.store.database import Store, as_utc
from assay.store.serialize import dumps
from assay.store.tables import predictions

try:  # POSIX; elsewhere live segments are protected by name only (one server per folder)
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "CAN_LOCK",
    "ORJSON_OPTIONS",
    "SEGMENT_SUFFIX",
    "DrainCounts",
    "claim",
    "describe_error",
    "drain_segments",
    "existing_ids",
    "insert_batch",
    "insert_rows",
    "open_segment",
    "parse_lines",
    "read_fd",
    "remove_file",
    "segment_id",
    "write_all",
]

SEGMENT_SUFFIX = ".wal"
# seconds after which an empty leftover segment is surely not a live one being opened
EMPTY_SEGMENT_AGE = 60.0
# SQLite allows 32766 bound parameters; an IN list of 500 stays far below on every backend
_IN_CHUNK = 500
# NaN and infinities become null, as assay.store.serialize.dumps writes them
ORJSON_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NAIVE_UTC
# the predictions table's columns in the order of a row tuple (_row)
_COLUMNS = (
    "id", "at", "version", "route", "request_id", "inputs", "prediction", "probabilities",
    "confidence", "latency_ms", "flags", "shadowed_by",
)  # fmt: skip
_JSON_COLUMNS = frozenset({"inputs", "prediction", "probabilities", "flags"})
_Row = tuple[Any, ...]


def _json(value: Any) -> str:
    """A JSON column's text, as :func:`assay.store.serialize.dumps` would write it."""
    try:
        return orjson.dumps(value, option=ORJSON_OPTIONS).decode("utf-8")
    except TypeError:  # only a line not written by _encode (stdlib JSON reads huge ints)
        return dumps(value)


def write_all(fd: int, data: bytes) -> None:
    # one write in practice; a short write (disk full, signal) continues where it stopped
    view = memoryview(data)
    while view:
        done = os.write(fd, view)
        view = view[done:]


def parse_lines(data: bytes) -> tuple[list[_Row], int]:
    """Rows for the table from JSON lines; a torn or unreadable line is counted and skipped."""
    rows: list[_Row] = []
    torn = 0
    for line in data.split(b"\n"):
        if not line.strip():
            continue
        try:
            rows.append(_row(orjson.loads(line)))
        except (ValueError, TypeError, KeyError):  # orjson.JSONDecodeError is a ValueError
            torn += 1
    return rows, torn


def _row(record: Mapping[str, Any]) -> _Row:
    """A table row in :data:`_COLUMNS` order, JSON columns as text (``probabilities``
    None as SQL NULL, the other JSON columns' None as ``null``, like their column types)."""
    entry_id = record["id"]
    if not isinstance(entry_id, str) or not 0 < len(entry_id) <= 36:
        raise ValueError("a log line without a valid id")
    probabilities = record.get("probabilities")
    confidence = record.get("confidence")
    shadowed_by = record.get("shadowed_by")  # absent from lines written before revision 0004
    return (
        entry_id,
        as_utc(datetime.fromisoformat(record["at"])),
        int(record["version"]),
        str(record["route"])[:16],
        str(record["request_id"])[:64],
        _json(record["inputs"]),
        _json(record.get("prediction")),
        None if probabilities is None else _json(probabilities),
        None if confidence is None else float(confidence),
        float(record["latency_ms"]),
        _json(record.get("flags") or []),
        None if shadowed_by is None else int(shadowed_by),
    )


def _insert_sql(dialect: Dialect) -> str:
    """One INSERT of a row in :data:`_COLUMNS` order, skipping an id already stored."""
    quote = dialect.identifier_preparer.quote
    mark = "?" if dialect.paramstyle == "qmark" else "%s"
    # PostgreSQL would read the text as varchar, which it does not cast to json on its own
    json_mark = f"CAST({mark} AS JSON)" if dialect.name == "postgresql" else mark
    marks = ", ".join(json_mark if name in _JSON_COLUMNS else mark for name in _COLUMNS)
    sql = (
        f"INSERT INTO {quote(predictions.name)} ({', '.join(quote(c) for c in _COLUMNS)}) "
        f"VALUES ({marks})"
    )
    if dialect.name in ("sqlite", "postgresql"):
        sql += f" ON CONFLICT ({quote('id')}) DO NOTHING"
    return sql


def insert_rows(store: Store, rows: list[_Row], batch_size: int) -> tuple[int, int]:
    """Insert ``rows`` (one transaction per batch), skipping ids already stored.

    Returns (rows inserted, rows refused). A batch the database refuses for its
    content (not for being unreachable) is retried row by row, and only the rows
    refused alone are dropped: one bad row must not block the log forever.
    """
    if not rows:
        return 0, 0
    unique: dict[str, _Row] = {}
    for row in rows:
        unique.setdefault(row[0], row)
    ordered = list(unique.values())
    dialect = store.engine.dialect
    # the driver gets the values as they are, so the column's own conversion runs here
    # (SQLite keeps timestamps as text in SQLAlchemy's format)
    convert_at = predictions.c.at.type.dialect_impl(dialect).bind_processor(dialect)
    if convert_at is not None:
        ordered = [(row[0], convert_at(row[1]), *row[2:]) for row in ordered]
    statement = _insert_sql(dialect)
    inserted = rejected = 0
    for start in range(0, len(ordered), batch_size):
        batch = ordered[start : start + batch_size]
        try:
            inserted += insert_batch(store, statement, batch)
        except (IntegrityError, DataError, StatementError) as exc:
            if isinstance(exc, OperationalError):
                raise
            for row in batch:
                try:
                    inserted += insert_batch(store, statement, [row])
                except (IntegrityError, DataError):
                    rejected += 1
    return inserted, rejected


def insert_batch(store: Store, statement: str, batch: list[_Row]) -> int:
    with store.transaction() as conn:
        if store.dialect not in ("sqlite", "postgresql"):
            present = existing_ids(conn, [row[0] for row in batch])
            batch = [row for row in batch if row[0] not in present]
            if not batch:
                return 0
        result = conn.exec_driver_sql(statement, batch)
        return max(int(result.rowcount), 0)


def existing_ids(conn: Connection, ids: Iterable[str]) -> set[str]:
    wanted = list(ids)
    found: set[str] = set()
    for start in range(0, len(wanted), _IN_CHUNK):
        chunk = wanted[start : start + _IN_CHUNK]
        found.update(
            conn.execute(select(predictions.c.id).where(predictions.c.id.in_(chunk))).scalars()
        )
    return found


#: segments can be locked (``flock``), so a drainer process can tell live ones from closed
CAN_LOCK = fcntl is not None


def open_segment(path: Path) -> int:
    """A new segment at ``path``, open for appending and exclusively locked while open."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    if fcntl is not None:
        with contextlib.suppress(OSError):  # a file system without flock
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return fd


@contextlib.contextmanager
def claim(path: Path, *, wait: bool = False) -> Iterator[int | None]:
    """An fd on a segment, exclusively locked; None if it is gone, or locked by another
    writer or drainer (with ``wait``: once that lock is released)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        yield None
        return
    try:
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield None
                return
            except OSError:  # a file system without flock: proceed unlocked
                pass
        yield fd
    finally:
        os.close(fd)


def read_fd(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 1 << 20):
        chunks.append(chunk)
    return b"".join(chunks)


def describe_error(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}"


def remove_file(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


@dataclass
class DrainCounts:
    """What a drain did: rows inserted from the given process's segments (``own``) and from
    others' (leftovers of dead processes), lines skipped as torn, rows the database refused
    alone (``own_dropped``: the torn and refused of ``own`` segments), and segments removed."""

    own: int = 0
    own_dropped: int = 0
    others: int = 0
    torn: int = 0
    rejected: int = 0
    segments: int = 0

    def add(self, other: DrainCounts) -> None:
        """Add ``other``'s counts to these."""
        self.own += other.own
        self.own_dropped += other.own_dropped
        self.others += other.others
        self.torn += other.torn
        self.rejected += other.rejected
        self.segments += other.segments


def segment_id(path: Path) -> tuple[int, int] | None:
    """``(process id, sequence number)`` of the segment at ``path``, read from its name."""
    parts = path.name.removesuffix(SEGMENT_SUFFIX).split("-")
    if len(parts) != 3 or not (parts[1].isdigit() and parts[2].isdigit()):
        return None
    return int(parts[1]), int(parts[2])


def drain_segments(
    store: Store,
    wal_dir: Path,
    batch_size: int,
    *,
    own_pid: int | None = None,
    skip: Iterable[str] = (),
    wait_through: int | None = None,
    owner_gone: bool = False,
) -> DrainCounts:
    """Insert every closed segment of ``wal_dir`` into the table and remove it, oldest first.

    Segments locked by a live writer are left alone; so are the names in ``skip``
    (the caller's own open segments). A segment of ``own_pid`` numbered up to
    ``wait_through`` (closed by the caller) that is locked - another drainer is
    inserting it - is waited for, so that on return each of them is in the table. Rows from segments of ``own_pid`` count
    as ``own``, the others' as ``others``. An empty segment is removed only once it
    is old enough not to be one a live writer is opening, or at once when it is of
    ``own_pid`` and ``owner_gone`` says that process has exited.

    Raises:
        sqlalchemy.exc.SQLAlchemyError: the database cannot be written; the segment
            being drained stays on disk for the next drain.
    """
    counts = DrainCounts()
    skipped = set(skip)
    for path in sorted(wal_dir.glob(f"*{SEGMENT_SUFFIX}")):
        if path.name in skipped:
            continue
        ident = segment_id(path)
        mine = own_pid is not None and ident is not None and ident[0] == own_pid
        wait = mine and wait_through is not None and ident is not None and ident[1] <= wait_through
        with claim(path, wait=wait) as fd:
            if fd is None:  # live, or being drained by another process
                continue
            if os.fstat(fd).st_nlink == 0:  # drained by another process while we waited
                continue
            data = read_fd(fd)
            if not data:
                if (mine and owner_gone) or time.time() - os.fstat(fd).st_mtime > EMPTY_SEGMENT_AGE:
                    remove_file(path)
                continue
            rows, torn = parse_lines(data)
            inserted, rejected = insert_rows(store, rows, batch_size)
            remove_file(path)
        if mine:
            counts.own += inserted
            counts.own_dropped += torn + rejected
        else:
            counts.others += inserted
        counts.torn += torn
        counts.rejected += rejected
        counts.segments += 1
    return counts
