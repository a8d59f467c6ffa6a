"""The models being served: loaded, verified, and swapped without dropping a request.

A :class:`ModelRuntime` keeps one immutable :class:`Routing` snapshot (champion,
challenger, how the challenger meets traffic). A request reads the snapshot once
(a single attribute read) and uses it to the end, so a promotion or rollback in
the middle of a request never mixes two models. :meth:`ModelRuntime.refresh`
reads the registry's aliases and the active deployment, loads any new version
(its artifact hash verified) *before* building the next snapshot, and replaces
the snapshot with one assignment. A version that fails to load or verify never
becomes live: the previous one keeps serving and the reason is kept in
``last_error``; :attr:`ModelRuntime.degraded` then says that the registry's champion
is not the one served.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from assay.errors import AssayError, NotFoundError
from assay.model.loaded import LoadedModel

if TYPE_CHECKING:
    from assay.registry import ModelRegistry

__all__ = ["ModelRuntime", "Route", "Routing"]

logger = logging.getLogger("assay.serve")

#: loaded versions kept in memory, so a rollback swaps back without reloading
CACHED_VERSIONS = 4

Route = Literal["champion", "canary"]


@dataclass(frozen=True)
class Routing:
    """An immutable snapshot of what serves traffic; replaced whole, never edited.

    Attributes:
        champion: the model answering requests (None before the first promotion).
        challenger: the deployed challenger, or None.
        mode: ``shadow`` (scored and logged, never returned) or ``canary`` (answers
            a share of traffic); None without a challenger.
        share: the canary share of traffic answered by the challenger (0..1).
    """

    champion: LoadedModel | None
    challenger: LoadedModel | None
    mode: Literal["shadow", "canary"] | None
    share: float

    def to_dict(self) -> dict[str, Any]:
        """The versions and policy, JSON-serialisable."""
        return {
            "champion": self.champion.version if self.champion is not None else None,
            "challenger": self.challenger.version if self.challenger is not None else None,
            "mode": self.mode,
            "share": float(self.share),
        }

    def same_as(self, other: Routing) -> bool:
        """True when both snapshots serve the same objects with the same policy."""
        return (
            self.champion is other.champion
            and self.challenger is other.challenger
            and self.mode == other.mode
            and self.share == other.share
        )


_EMPTY = Routing(champion=None, challenger=None, mode=None, share=0.0)


class ModelRuntime:
    """Serves the registry's champion (and a deployed challenger), swapping them live.

    Args:
        registry: the project's registry.
        poll_seconds: how often the background thread calls :meth:`refresh`.
        seed: seed of the canary draws.

    Attributes:
        last_error: why the last refresh could not load something (None when all loaded);
            it names versions and reasons, never file paths.
        last_refresh: ``time.time()`` of the last completed refresh, or None.
        registry_champion: the champion alias read by the last refresh.
    """

    def __init__(
        self, registry: ModelRegistry, *, poll_seconds: float = 1.0, seed: int = 0
    ) -> None:
        self.registry = registry
        self.poll_seconds = float(poll_seconds)
        self.last_error: str | None = None
        self.last_refresh: float | None = None
        self.registry_champion: int | None = None
        self._routing = _EMPTY
        self._rng = random.Random(seed)
        self._rng_lock = threading.Lock()
        self._refresh_lock = threading.Lock()
        self._cache: OrderedDict[int, LoadedModel] = OrderedDict()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def routing(self) -> Routing:
        """The current snapshot (a plain attribute read: no lock)."""
        return self._routing

    @property
    def ready(self) -> bool:
        """True when a verified champion is loaded."""
        return self._routing.champion is not None

    @property
    def degraded(self) -> str | None:
        """Why the served champion is not the registry's champion, or None when it is."""
        wanted = self.registry_champion
        served = self._routing.champion
        if wanted is None or served is None or served.version == wanted:
            return None
        reason = (
            f"the registry's champion is version {wanted} but version {served.version} is served"
        )
        return f"{reason} ({self.last_error})" if self.last_error else reason

    def refresh(self) -> bool:
        """Read the aliases and the active deployment; swap in what changed. True if swapped.

        New versions are loaded and verified before the swap; one that fails keeps
        the model it would have replaced serving, with the reason in ``last_error``.
        Registry read errors propagate (the background loop records them).
        """
        with self._refresh_lock:
            current = self._routing
            errors: list[str] = []
            champion_version = self.registry.alias("champion")
            challenger_version = self.registry.alias("challenger")
            self.registry_champion = champion_version
            champion = self._resolve(champion_version, current.champion, errors)
            challenger, mode, share = current.challenger, current.mode, current.share
            try:
                deployment = _active_deployment(self.registry)
            except Exception as exc:  # noqa: BLE001 - keep the current challenger policy
                errors.append(f"cannot read the active deployment: {exc}")
            else:
                challenger, mode, share = self._challenger(
                    deployment, champion_version, challenger_version, current, errors
                )
            new = Routing(champion=champion, challenger=challenger, mode=mode, share=share)
            self.last_error = "; ".join(errors) or None
            self.last_refresh = time.time()
            if new.same_as(current):
                return False
            self._routing = new  # the swap: one assignment
            logger.info("serving %s", new.to_dict())
            return True

    def _challenger(
        self,
        deployment: Any,
        champion_version: int | None,
        challenger_version: int | None,
        current: Routing,
        errors: list[str],
    ) -> tuple[LoadedModel | None, Literal["shadow", "canary"] | None, float]:
        if deployment is None:
            return None, None, 0.0
        version = int(deployment.version)
        # the deployment is live only while its version is still the challenger alias
        # (a promotion or rejection moves the alias; the deployment row may lag)
        if version != challenger_version or version == champion_version:
            return None, None, 0.0
        mode = deployment.mode if deployment.mode in ("shadow", "canary") else None
        if mode is None:
            errors.append(f"deployment {deployment.id} has an unknown mode {deployment.mode!r}")
            return current.challenger, current.mode, current.share
        previous = current.challenger
        if previous is not None and previous.version == version:
            loaded: LoadedModel | None = previous
        else:
            loaded = self._resolve(version, None, errors)
        if loaded is None:  # not loadable: whatever served keeps serving
            return current.challenger, current.mode, current.share
        share = min(max(float(deployment.share or 0.0), 0.0), 1.0)
        return loaded, mode, share

    def _resolve(
        self, version: int | None, current: LoadedModel | None, errors: list[str]
    ) -> LoadedModel | None:
        """The model for ``version``: the current one, a cached one, or freshly loaded.

        On a load failure the current model is returned (it keeps serving).
        """
        if version is None:
            return None
        if current is not None and current.version == version:
            return current
        cached = self._cache.get(version)
        if cached is not None:
            self._cache.move_to_end(version)
            return cached
        try:
            loaded = LoadedModel.load(self.registry, version)
        except Exception as exc:  # noqa: BLE001 - any failure keeps the old model serving
            errors.append(f"model version {version} was not loaded: {_reason(exc)}")
            logger.error("model version %s was not loaded: %s", version, exc)
            return current
        self._cache[version] = loaded
        while len(self._cache) > CACHED_VERSIONS:
            self._cache.popitem(last=False)
        return loaded

    def start(self) -> None:
        """Refresh once now, then every ``poll_seconds`` in a background thread."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._safe_refresh()
        self._thread = threading.Thread(target=self._loop, name="assay-model-refresh", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the background thread (waits for a refresh in progress)."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout=self.poll_seconds + 30.0)

    def _loop(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            self._safe_refresh()

    def _safe_refresh(self) -> None:
        try:
            self.refresh()
        except Exception as exc:  # noqa: BLE001 - a store hiccup must not kill the loop
            self.last_error = f"refresh failed: {_reason(exc)}"
            logger.error("refresh failed: %s: %s", type(exc).__name__, exc)

    def choose(self, routing: Routing) -> tuple[LoadedModel, Route, LoadedModel | None]:
        """Which model answers a request: ``(model, its route, model to shadow or None)``.

        In canary mode the challenger answers with probability ``share`` (a seeded
        draw); in shadow mode the champion answers and the challenger is scored
        beside it.

        Raises:
            NotFoundError: there is no champion to serve.
        """
        champion = routing.champion
        if champion is None:
            raise NotFoundError(
                "no model is being served: the project has no champion yet",
                where="model runtime",
                expected="a promoted model version",
                received=self.last_error or "no champion alias",
                fix="Promote a version with `assay promote VERSION` (or run `assay run`).",
            )
        challenger = routing.challenger
        if challenger is None:
            return champion, "champion", None
        if routing.mode == "canary":
            with self._rng_lock:
                draw = self._rng.random()
            if draw < routing.share:
                return challenger, "canary", None
            return champion, "champion", None
        if routing.mode == "shadow":
            return champion, "champion", challenger
        return champion, "champion", None

    def describe(self) -> dict[str, Any]:
        """What is served and the last refresh's outcome, JSON-serialisable (for health endpoints)."""
        routing = self._routing
        body = routing.to_dict()
        body.update(
            ready=routing.champion is not None,
            registry_champion=self.registry_champion,
            degraded=self.degraded,
            last_error=self.last_error,
            last_refresh=self.last_refresh,
            fast_path={
                role: {"fast": model.fast is not None, "reason": model.fast_reason}
                for role, model in (
                    ("champion", routing.champion),
                    ("challenger", routing.challenger),
                )
                if model is not None
            },
        )
        return body


def _reason(exc: Exception) -> str:
    """An error for health endpoints: an assay error without its ``where`` (which may be a file
    path); the log keeps the full text."""
    return exc.what if isinstance(exc, AssayError) else f"{type(exc).__name__}: {exc}"


def _active_deployment(registry: ModelRegistry) -> Any:
    """The active deployment, or None (also when the deployments module is not installed)."""
    try:
        from assay.model.deployments import active_deployment
    except ImportError:
        return None
    return active_deployment(registry)
