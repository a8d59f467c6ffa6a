"""``assay watch``: monitor -> alert -> retrain (per ``retrain.policy``) -> shadow -> decide.

Each iteration (:func:`watch_iteration`) runs one monitoring pass over the
champion's recent traffic, then:

- continues the retrain in progress, if any (its candidate is shadowing: once enough
  shadowed predictions arrived it is promoted or rejected);
- else starts a retrain when an alert *raised by this pass* matches the policy
  (``on_drift``: data or concept drift; ``on_performance_drop``: a performance drop
  or concept drift; ``on_either``: any of them; ``manual``: never). Alerts that are
  already open are deduplicated, so a condition that persists does not start a
  retrain every interval.

:func:`watch_project` loops every ``interval`` seconds while holding a lock file in
``.assay/``: a second watcher of the same project stops at once with a message naming
the first (or waits for it with ``lock_wait``). Retraining takes its own lock, so a
manual ``assay retrain`` never runs beside the watcher's.
"""

from __future__ import annotations

import threading
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from assay.errors import AssayError, StoreError
from assay.monitor.monitor import monitor_project
from assay.monitor.report import MonitorReport
from assay.monitor.retrain import RetrainResult, retrain_project, retrain_state
from assay.project import Project
from assay.registry import ModelRegistry
from assay.store.database import utcnow
from assay.store.lock import ProcessLock

__all__ = [
    "POLICY_TRIGGERS",
    "WatchIteration",
    "retrain_trigger",
    "watch_iteration",
    "watch_project",
]

#: the alert kinds that start a retrain under each ``retrain.policy``
POLICY_TRIGGERS: dict[str, tuple[str, ...]] = {
    "manual": (),
    "on_drift": ("data_drift", "concept_drift"),
    "on_performance_drop": ("performance", "concept_drift"),
    "on_either": ("data_drift", "performance", "concept_drift"),
}


@dataclass(frozen=True)
class WatchIteration:
    """One iteration of the watch loop.

    Attributes:
        at: when it started (UTC).
        monitor: the monitoring report (None if monitoring failed).
        trigger: why a retrain was started or continued, else None.
        retrain: what the retrain call did, if one ran.
        error: what failed, in one line (the loop goes on).
    """

    at: datetime
    monitor: MonitorReport | None = None
    trigger: str | None = None
    retrain: RetrainResult | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values."""
        return {
            "at": self.at.isoformat(),
            "monitor": self.monitor.to_dict() if self.monitor else None,
            "trigger": self.trigger,
            "retrain": self.retrain.to_dict() if self.retrain else None,
            "error": self.error,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> WatchIteration:
        """The inverse of :meth:`to_dict`."""
        monitor, retrain = data.get("monitor"), data.get("retrain")
        return cls(
            at=datetime.fromisoformat(data["at"]),
            monitor=MonitorReport.from_dict(monitor) if monitor else None,
            trigger=data.get("trigger"),
            retrain=RetrainResult.from_dict(retrain) if retrain else None,
            error=data.get("error"),
        )


def retrain_trigger(report: MonitorReport, policy: str) -> str | None:
    """The reason to start a retrain under ``policy``: the first alert raised by this pass
    whose kind the policy acts on; None when none does."""
    kinds = POLICY_TRIGGERS.get(policy, ())
    for alert in report.alerts.raised:
        if alert.kind in kinds:
            return f"{alert.kind} alert {alert.id}: {alert.message}"
    return None


def watch_iteration(
    project: Project,
    *,
    registry: ModelRegistry | None = None,
    retrain_options: Mapping[str, Any] | None = None,
    monitor_options: Mapping[str, Any] | None = None,
) -> WatchIteration:
    """Monitor once, then start or continue a retrain as the policy says (see the module doc).

    Errors do not escape: an iteration that fails says why in ``error``.

    Args:
        project: the project.
        registry: its registry (default: opened from the project).
        retrain_options: extra keyword arguments of :func:`retrain_project`.
        monitor_options: extra keyword arguments of :func:`monitor_project`.
    """
    if registry is None:
        from assay.registry import open_registry

        registry = open_registry(project)
    at = utcnow()
    try:
        report = monitor_project(project, registry=registry, **dict(monitor_options or {}))
    except AssayError as exc:
        return WatchIteration(at=at, error=f"monitoring: {exc.render()}")
    except Exception as exc:  # noqa: BLE001 - the loop must outlive one bad pass
        return WatchIteration(at=at, error=f"monitoring: {_describe(exc)}")
    state = retrain_state(registry)
    trigger = None
    if state is not None and not state.finished:
        trigger = f"continuing retrain {state.retrain_id} ({state.step})"
    else:
        trigger = retrain_trigger(report, project.spec.retrain.policy)
    if trigger is None:
        return WatchIteration(at=at, monitor=report)
    try:
        result = retrain_project(
            project, reason=trigger, registry=registry, **dict(retrain_options or {})
        )
    except AssayError as exc:
        return WatchIteration(at=at, monitor=report, trigger=trigger, error=f"retrain: {exc.render()}")
    except Exception as exc:  # noqa: BLE001
        return WatchIteration(at=at, monitor=report, trigger=trigger, error=f"retrain: {_describe(exc)}")
    return WatchIteration(at=at, monitor=report, trigger=trigger, retrain=result)


def watch_project(
    project: Project,
    *,
    interval: float = 60.0,
    once: bool = False,
    iterations: int | None = None,
    on_iteration: Callable[[WatchIteration], None] | None = None,
    stop: threading.Event | None = None,
    lock_wait: float | None = 0.0,
    registry: ModelRegistry | None = None,
    retrain_options: Mapping[str, Any] | None = None,
    monitor_options: Mapping[str, Any] | None = None,
) -> list[WatchIteration]:
    """Run the watch loop while holding the project's watch lock.

    Args:
        project: the project.
        interval: seconds between iterations.
        once: run one iteration and return.
        iterations: stop after this many iterations (None: until ``stop`` is set).
        on_iteration: called with each iteration as it ends (the CLI prints it).
        stop: set it to end the loop (between iterations).
        lock_wait: seconds to wait for another watcher to stop (None: forever; 0: fail
            at once).
        registry: the project's registry (default: opened from the project).
        retrain_options, monitor_options: passed to each iteration.

    Returns:
        The iterations run (only the last ones are kept past 100).

    Raises:
        StoreError: another watcher holds the lock.
        ConfigError: ``interval`` is not positive.
    """
    from assay.errors import ConfigError

    if not interval > 0:
        raise ConfigError(
            "the watch interval must be positive",
            key="--interval",
            expected="a number of seconds > 0",
            received=interval,
            fix="Pass --interval 60 (the default) or another positive number.",
        )
    if registry is None:
        from assay.registry import open_registry

        registry = open_registry(project)
    stop = stop or threading.Event()
    limit = 1 if once else iterations
    done: list[WatchIteration] = []
    lock = ProcessLock(project.state_dir / "watch.lock", "watching this project")
    lock.acquire(wait=lock_wait)
    try:
        count = 0
        while not stop.is_set():
            iteration = watch_iteration(
                project, registry=registry, retrain_options=retrain_options,
                monitor_options=monitor_options,
            )
            done.append(iteration)
            del done[:-100]
            count += 1
            if on_iteration is not None:
                on_iteration(iteration)
            if limit is not None and count >= limit:
                break
            stop.wait(interval)
    finally:
        lock.release()
    return done


def _describe(exc: BaseException) -> str:
    frame = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
    where = f" ({Path(frame.filename).name}:{frame.lineno})" if frame else ""
    return f"{type(exc).__name__}: {exc}{where}"
