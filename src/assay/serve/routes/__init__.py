"""The server's routes, one module per protocol: assay's own (``predict``, ``explain``),
MLflow's (``mlflow``), the Open Inference Protocol v2 (``oip``) and health (``health``)."""

from __future__ import annotations

from fastapi import FastAPI

from assay.serve.routes.explain import add_explain_routes
from assay.serve.routes.health import add_health_routes
from assay.serve.routes.mlflow import add_mlflow_routes
from assay.serve.routes.oip import add_oip_routes
from assay.serve.routes.predict import add_predict_routes
from assay.serve.state import ServerState

__all__ = ["add_routes"]


def add_routes(app: FastAPI, state: ServerState) -> None:
    """Every route of the server, documented in its OpenAPI schema."""
    add_predict_routes(app, state)
    add_explain_routes(app, state)
    add_mlflow_routes(app, state)
    add_oip_routes(app, state)
    add_health_routes(app, state)
