"""A file lock held by one process at a time: one watch loop, one retrain per project."""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from assay.errors import StoreError
from assay.store.database import utcnow

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["ProcessLock"]


class ProcessLock:
    """An exclusive lock on a file, held by one open file (so one process) at a time.

    The kernel releases it when the holder exits, even when killed, so a crash never
    leaves a stale lock. The file records who holds it, for the message a second
    process gets.
    """

    def __init__(self, path: Path, purpose: str) -> None:
        self.path = Path(path)
        self.purpose = purpose
        self._fd: int | None = None

    def acquire(self, wait: float | None = 0.0) -> None:
        """Take the lock; wait up to ``wait`` seconds (None: forever) for a holder to finish.

        Raises:
            StoreError: another process holds it (named with its pid and start time).
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        deadline = None if wait is None else time.monotonic() + wait
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                if fcntl is not None:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read_holder(fd)
                os.close(fd)
                if deadline is not None and time.monotonic() >= deadline:
                    raise self._busy(holder) from None
                time.sleep(0.2)
                continue
            except BaseException:
                os.close(fd)
                raise
            break
        info = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "purpose": self.purpose,
            "since": utcnow().isoformat(timespec="seconds"),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        self._fd = fd

    def release(self) -> None:
        """Let the lock go (idempotent)."""
        fd, self._fd = self._fd, None
        if fd is not None:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    @property
    def held(self) -> bool:
        """True while this object holds the lock."""
        return self._fd is not None

    def _busy(self, holder: Mapping[str, Any]) -> StoreError:
        who = (
            f"pid {holder.get('pid')} on {holder.get('host')}, since {holder.get('since')}"
            if holder
            else "another process"
        )
        return StoreError(
            f"another process is already {self.purpose} ({who})",
            where=str(self.path),
            expected="no other process holding the lock",
            fix="Wait for it to finish or stop that process; the lock frees itself when "
            "its holder exits.",
        )

    def __enter__(self) -> ProcessLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _read_holder(fd: int) -> dict[str, Any]:
    try:
        data = os.pread(fd, 4096, 0)
        parsed = json.loads(data.decode() or "{}")
    except (OSError, ValueError):
        return {}
    return parsed if isinstance(parsed, dict) else {}
