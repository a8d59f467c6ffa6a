"""One settings object for a server process: what ``assay serve`` passes to each worker.

``assay serve --workers N`` starts its workers through uvicorn's app factory, so everything a
worker needs travels in ``ASSAY_SERVE_*`` environment variables. :class:`ServeSettings` is the
one place that names them: :meth:`ServeSettings.to_env` writes them, :meth:`ServeSettings.from_env`
reads them back and refuses a malformed value with the variable's name.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path


from assay.errors import ConfigError
from assay.serve.gather import BatchPolicy
from assay.serve.log import Drain
from assay.serve.protocols import RequestLimits

__all__ = ["ENV_PREFIX", "ServeSettings"]

ENV_PREFIX = "ASSAY_SERVE_"



@dataclass(frozen=True)
class ServeSettings:
    """How one server process runs.

    Attributes:
        config: the project's assay.yaml (None: found from the working folder).
        auth: require a bearer token on prediction and feedback endpoints.
        poll_seconds: how often the runtime re-reads aliases and the active deployment.
        log_drain: who inserts the prediction log into the store (a drainer ``process`` or a
            ``thread`` of the server).
        limits: what one request may carry and how long it may take to arrive.
        batching: how requests to a model that prefers batches are gathered
            (``ASSAY_SERVE_BATCH_WAIT_MS``, ``ASSAY_SERVE_MAX_BATCH``).
    """

    config: Path | None = None
    auth: bool = True
    poll_seconds: float = 1.0
    log_drain: Drain = "thread"
    limits: RequestLimits = field(default_factory=RequestLimits)
    batching: BatchPolicy = field(default_factory=BatchPolicy)

    def to_env(self) -> dict[str, str]:
        """The ``ASSAY_SERVE_*`` variables that :meth:`from_env` reads back."""
        env = {
            ENV_PREFIX + "AUTH": "1" if self.auth else "0",
            ENV_PREFIX + "POLL_SECONDS": repr(float(self.poll_seconds)),
            ENV_PREFIX + "LOG_DRAIN": self.log_drain,
            **self.limits.to_env(),
            **self.batching.to_env(),
        }
        if self.config is not None:
            env[ENV_PREFIX + "CONFIG"] = str(self.config)
        return env

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ServeSettings:
        """The settings in ``environ`` (default: the process environment); unset means default."""
        env = os.environ if environ is None else environ
        config = env.get(ENV_PREFIX + "CONFIG") or None
        auth = _choice(env, "AUTH", {"1": True, "0": False}, default=True)
        drain = _choice(env, "LOG_DRAIN", {"process": "process", "thread": "thread"},
                        default="thread")
        poll = env.get(ENV_PREFIX + "POLL_SECONDS") or ""
        seconds = 1.0
        if poll:
            try:
                seconds = float(poll)
            except ValueError:
                seconds = float("nan")
            if not seconds > 0 or seconds == float("inf"):
                raise ConfigError(
                    "the server's poll interval is not a positive number of seconds",
                    key=ENV_PREFIX + "POLL_SECONDS", expected="a positive number such as 1.0",
                    received=poll, fix=f"Unset {ENV_PREFIX}POLL_SECONDS for the default (1 s).",
                )
        return cls(config=Path(config) if config else None, auth=bool(auth), poll_seconds=seconds,
                   log_drain=drain,  # type: ignore[arg-type]
                   limits=RequestLimits.from_env(env), batching=BatchPolicy.from_env(env))


def _choice(env: Mapping[str, str], name: str, allowed: Mapping[str, object], *,
            default: object) -> object:
    raw = env.get(ENV_PREFIX + name)
    if raw is None or raw == "":
        return default
    if raw not in allowed:
        raise ConfigError(
            "a server setting has a value it does not take",
            key=ENV_PREFIX + name, expected=" or ".join(allowed), received=raw,
            fix=f"Set {ENV_PREFIX}{name} to one of {', '.join(allowed)}, or unset it.",
        )
    return allowed[raw]
