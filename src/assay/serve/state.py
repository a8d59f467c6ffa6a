"""What the server's endpoints share, in one object the app factory builds.

The app factory (:mod:`assay.serve.app`), the raw predict lane (:mod:`assay.serve.lane`)
and the scoring path (:mod:`assay.serve.scoring`) all read a :class:`ServerState`; it
lives here so none of them imports another to name it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import Request

from assay.project import Project
from assay.registry import ModelRegistry
from assay.serve.auth import TokenVerifier
from assay.serve.gather import Gatherer
from assay.serve.log import PredictionLog
from assay.serve.metrics import ServerMetrics
from assay.serve.protocols import RequestLimits
from assay.serve.runtime import ModelRuntime

__all__ = ["ServerState", "get_state"]


@dataclass
class ServerState:
    """What the endpoints share: project, registry, runtime, log, verifier, metrics, limits, and
    the gatherer that batches requests to models that prefer batches."""

    project: Project
    registry: ModelRegistry
    runtime: ModelRuntime
    log: PredictionLog
    verifier: TokenVerifier | None
    metrics: ServerMetrics
    model_name: str
    max_records: int
    max_body_bytes: int
    limits: RequestLimits = RequestLimits()
    gatherer: Gatherer = field(default_factory=Gatherer)


def get_state(request: Request) -> ServerState:
    """FastAPI dependency: the :class:`ServerState` of the app serving ``request``."""
    state: ServerState = request.app.state.assay
    return state
