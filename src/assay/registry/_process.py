"""Whether the process that started a run still runs on this host."""

from __future__ import annotations

import os
import socket
from datetime import datetime
from pathlib import Path

__all__ = ["process_gone", "this_host"]

#: clock and rounding slack between a process's start and the run row it writes
_START_SLACK_SECONDS = 5.0


def this_host() -> str:
    """The host name recorded with a run."""
    return socket.gethostname()


def process_gone(pid: int, started_at: datetime) -> bool:
    """True when no process ``pid`` that began before ``started_at`` is alive on this host.

    A zombie (exited, not yet reaped) is gone; so is a live process with the same id
    that started after the run did, because ids are reused. When it cannot be decided
    (not a POSIX system), the answer is False: a run is never abandoned on a guess.
    """
    if os.name != "posix" or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass  # alive, owned by another user
    stat = _proc_stat(pid)
    if stat is None:
        return False
    state, start_ticks = stat
    if state == "Z":
        return True
    began = _boot_time()
    if began is None:
        return False
    process_start = began + start_ticks / os.sysconf("SC_CLK_TCK")
    return process_start > started_at.timestamp() + _START_SLACK_SECONDS


def _proc_stat(pid: int) -> tuple[str, int] | None:
    """State letter and start time (clock ticks after boot) from ``/proc/PID/stat``."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name is in parentheses and may itself hold spaces or parentheses
    fields = text[text.rfind(")") + 2 :].split()
    try:
        return fields[0], int(fields[19])
    except (IndexError, ValueError):
        return None


def _boot_time() -> float | None:
    try:
        for line in Path("/proc/stat").read_text().splitlines():
            if line.startswith("btime "):
                return float(line.split()[1])
    except (OSError, ValueError):
        return None
    return None
