"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from starlette.responses import Response

from assay.serve import web
from assay.serve.protocols import RequestError
from assay.serve.scoring import not_ready
from assay.serve.state import ServerState

__all__ = ["add_health_routes"]


def add_health_routes(app: FastAPI, state: ServerState) -> None:
    """``/healthz``, ``/readyz`` and the Prometheus ``/metrics``."""
    secured = web.security(state)
    errors = web.error_docs()

    @app.get("/healthz", summary="Liveness", tags=["health"])
    async def healthz() -> dict[str, Any]:
        return {"status": "ok"}

    @app.get("/readyz", summary="Readiness: a verified champion is loaded", tags=["health"],
             response_class=Response,
             responses={"503": web.error_doc("No verified champion loaded yet, or the registry's "
                                          "champion failed to load (degraded).")})
    async def readyz(request: Request) -> Response:
        routing = state.runtime.routing
        if not state.runtime.ready or routing.champion is None:
            return web.error_response(request, not_ready(state))
        degraded = state.runtime.degraded
        if degraded is not None:  # an older version serves: traffic works, the release did not
            detail = {"champion": routing.champion.version,
                      "registry_champion": state.runtime.registry_champion}
            return web.error_response(request, RequestError(503, "degraded", f"degraded: {degraded}.", [detail]))
        challenger = routing.challenger.version if routing.challenger is not None else None
        return web.json_response({"status": "ready", "champion": routing.champion.version, "challenger": challenger,
                      "mode": routing.mode, "share": routing.share})

    @app.get("/metrics", summary="Prometheus metrics", tags=["health"], response_class=Response)
    async def metrics() -> Response:
        routing = state.runtime.routing
        state.metrics.set_models(
            routing.champion.version if routing.champion is not None else None,
            routing.challenger.version if routing.challenger is not None else None,
            state.runtime.ready,
        )
        text, content_type = state.metrics.render()
        return Response(text, media_type=content_type)
