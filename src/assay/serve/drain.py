"""The drainer process: moves a server's closed WAL segments into the store.

With ``PredictionLog(..., drain="process")`` (what ``assay serve`` uses) the server
process only appends to the write-ahead log and closes a segment every flush
interval; this separate process inserts the closed segments into the
``predictions`` table and removes them (:func:`assay.serve.wal.drain_segments`).
The inserting - parsing JSON, binding parameters, committing - then never holds
the server's GIL, so it cannot stretch the tail latency of requests.

It runs as ``python -m assay.serve.drain --wal-dir DIR --parent PID ...`` with the
database URL in the ``ASSAY_DRAIN_STORE_URL`` environment variable (never on the
command line, where ``ps`` shows it). It exits after one last pass when told to
(SIGTERM or SIGINT) or when its parent process is gone - after a crash of the
server included, whose last segment the kernel unlocks at its death. After each
pass that did something it writes its cumulative counts to
``drainer-<parent pid>.json`` in the WAL folder, which :attr:`PredictionLog.stats`
reads.

A status file outlives no server: the drainer of a server that died removes its own
after its last pass (nobody is left to read it), and :func:`sweep_status_files` - run
by every drainer every :data:`SWEEP_SECONDS` and by :meth:`PredictionLog.start` -
removes those of servers that are gone while their drainer was killed too.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from assay.serve.retention import RETENTION_SECONDS, LogRetention, apply_retention
from assay.serve.wal import DrainCounts, describe_error, drain_segments

__all__ = [
    "STORE_URL_ENV",
    "SWEEP_SECONDS",
    "DrainerProcess",
    "DrainerStatus",
    "main",
    "status_path",
    "sweep_status_files",
]

#: the environment variable carrying the database URL to the drainer
STORE_URL_ENV = "ASSAY_DRAIN_STORE_URL"
_ARTIFACTS_ENV = "ASSAY_DRAIN_ARTIFACTS"
# the longest wait between passes after a database error
_MAX_BACKOFF = 5.0
#: seconds between two sweeps of the status files of servers that are gone
SWEEP_SECONDS = 30.0
_STATUS_PREFIX = "drainer-"


@dataclass
class DrainerStatus(DrainCounts):
    """The drainer's cumulative counts (:class:`assay.serve.wal.DrainCounts`), its failed
    passes and the last error."""

    errors: int = 0
    last_error: str | None = None


def status_path(wal_dir: Path, parent: int) -> Path:
    """Where the drainer of the server process ``parent`` writes its counts."""
    return Path(wal_dir) / f"{_STATUS_PREFIX}{parent}.json"


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    except OSError:
        return False
    return True


def sweep_status_files(wal_dir: Path) -> list[Path]:
    """Remove the status files (and half-written ``.tmp`` ones) of server processes that no
    longer run; returns the removed paths."""
    removed: list[Path] = []
    try:
        candidates = list(Path(wal_dir).glob(f"{_STATUS_PREFIX}*"))
    except OSError:
        return removed
    for path in candidates:
        if path.suffix not in (".json", ".tmp"):
            continue
        pid = path.stem.removeprefix(_STATUS_PREFIX)
        if not pid.isdigit() or _process_alive(int(pid)):
            continue
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            removed.append(path)
    return removed


def read_status(wal_dir: Path, parent: int) -> DrainerStatus:
    """The counts the drainer of ``parent`` wrote last (zeros before its first pass)."""
    try:
        data = json.loads(status_path(wal_dir, parent).read_text())
    except (OSError, ValueError):
        return DrainerStatus()
    fields = DrainerStatus.__dataclass_fields__
    return DrainerStatus(**{k: v for k, v in data.items() if k in fields})


class DrainerProcess:
    """A handle on the drainer process of this server process.

    Args:
        database_url: the store's database URL (password included).
        artifacts: the store's artifact folder.
        wal_dir: the WAL folder.
        batch_size: rows per insert transaction.
        interval: seconds between passes.
        retention: the log's retention policy, applied every
            :data:`assay.serve.retention.RETENTION_SECONDS` (None: keep everything).
    """

    def __init__(
        self,
        database_url: str,
        artifacts: str,
        wal_dir: Path,
        *,
        batch_size: int,
        interval: float,
        retention: LogRetention | None = None,
    ) -> None:
        self.retention = retention
        self.database_url = database_url
        self.artifacts = artifacts
        self.wal_dir = Path(wal_dir)
        self.batch_size = batch_size
        self.interval = interval
        self.parent = os.getpid()
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the process (a no-op while it runs)."""
        if self.alive:
            return
        env = {**os.environ, STORE_URL_ENV: self.database_url, _ARTIFACTS_ENV: self.artifacts}
        command = [
            sys.executable, "-m", "assay.serve.drain", "--wal-dir", str(self.wal_dir),
            "--parent", str(self.parent), "--batch-size", str(self.batch_size),
            "--interval", repr(self.interval),
            *(self.retention.to_args() if self.retention is not None else []),
        ]  # fmt: skip
        self._process = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL)

    @property
    def alive(self) -> bool:
        """True while the process runs."""
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        """The process id (None before :meth:`start`)."""
        return self._process.pid if self._process is not None else None

    def status(self) -> DrainerStatus:
        """Its cumulative counts, as last written."""
        return read_status(self.wal_dir, self.parent)

    def forget(self) -> None:
        """Remove the status file (once its counts have been read after :meth:`stop`)."""
        status_path(self.wal_dir, self.parent).unlink(missing_ok=True)

    def stop(self, timeout: float = 30.0) -> None:
        """Ask for a last pass and exit; kill it if it has not exited within ``timeout``."""
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _parent_alive(parent: int) -> bool:
    return os.getppid() == parent


def _write_status(path: Path, status: DrainerStatus) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(status)))
    os.replace(tmp, path)


def run(
    store: Any,
    wal_dir: Path,
    parent: int,
    *,
    batch_size: int,
    interval: float,
    stop: threading.Event,
    retention: LogRetention | None = None,
) -> DrainerStatus:
    """Drain ``wal_dir`` every ``interval`` seconds until ``stop`` is set or ``parent`` is
    gone, then once more; returns the cumulative counts. ``retention`` is applied every
    :data:`assay.serve.retention.RETENTION_SECONDS`. The status files of servers that
    are gone are swept every :data:`SWEEP_SECONDS`; an orphaned drainer removes its own
    status file before returning."""
    status = DrainerStatus()
    path = status_path(wal_dir, parent)
    wait = interval
    next_sweep = next_retention = 0.0
    while True:
        orphaned = not _parent_alive(parent)
        last = stop.is_set() or orphaned
        if time.monotonic() >= next_sweep:
            sweep_status_files(wal_dir)
            next_sweep = time.monotonic() + SWEEP_SECONDS
        try:
            counts = drain_segments(store, wal_dir, batch_size, own_pid=parent, owner_gone=orphaned)
        except Exception as exc:  # noqa: BLE001 - counted and retried; the segments stay on disk
            status.errors += 1
            status.last_error = describe_error(exc)
            _write_status(path, status)
            wait = min(wait * 2, _MAX_BACKOFF)
        else:
            wait = interval
            if counts.segments:
                status.add(counts)
                _write_status(path, status)
        if retention is not None and not last and time.monotonic() >= next_retention:
            next_retention = time.monotonic() + RETENTION_SECONDS
            try:
                apply_retention(store, retention)
            except Exception as exc:  # noqa: BLE001 - counted; tried again next time
                status.errors += 1
                status.last_error = describe_error(exc)
                _write_status(path, status)
        if last:
            if orphaned:  # its server is gone: nobody will read the counts
                path.unlink(missing_ok=True)
                path.with_suffix(".tmp").unlink(missing_ok=True)
            return status
        stop.wait(wait)


def main(argv: Sequence[str] | None = None) -> int:
    """The drainer's entry point (``python -m assay.serve.drain``)."""
    parser = argparse.ArgumentParser(description="Drain a server's WAL segments into its store.")
    parser.add_argument("--wal-dir", type=Path, required=True)
    parser.add_argument("--parent", type=int, required=True)
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--interval", type=float, default=0.2)
    parser.add_argument("--retention-days", type=float, default=None)
    parser.add_argument("--max-rows", type=int, default=None)
    args = parser.parse_args(argv)
    retention = LogRetention(max_age_days=args.retention_days, max_rows=args.max_rows)
    url = os.environ.get(STORE_URL_ENV)
    if not url:
        print(f"assay drainer: {STORE_URL_ENV} is not set", file=sys.stderr)
        return 2
    from assay.store.database import Store

    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    store = Store.open(url=url, artifacts=os.environ.get(_ARTIFACTS_ENV) or None)
    try:
        run(
            store,
            args.wal_dir,
            args.parent,
            batch_size=args.batch_size,
            interval=args.interval,
            stop=stop,
            retention=retention if retention.enabled else None,
        )
    finally:
        with contextlib.suppress(Exception):
            store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
