"""MLflow's scoring protocol: ``POST /invocations`` answers as ``mlflow models serve`` does."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from starlette.responses import Response

from assay.serve import protocols as proto
from assay.serve import web
from assay.serve.protocols import RequestError
from assay.serve.scoring import max_fields, not_ready, offload, score_async
from assay.serve.state import ServerState

__all__ = ["add_mlflow_routes"]


def add_mlflow_routes(app: FastAPI, state: ServerState) -> None:
    """``POST /invocations``, MLflow's scoring-server format (JSON or CSV)."""
    secured = web.security(state)
    errors = web.error_docs()

    @app.post(
        "/invocations",
        summary="Predict (MLflow scoring-server format)",
        description="Compatible with MLflow's scoring server: a JSON body with one of `dataframe_split`, "
        "`dataframe_records`, `instances`, `inputs` (or a CSV body with a header row); the answer is "
        '`{"predictions": [...]}` (class labels or values).',
        tags=["compatibility"],
        response_class=Response,
        openapi_extra={
            "requestBody": {"required": True, "content": {
                web.JSON: {"schema": {"$ref": "#/components/schemas/MlflowRequest"}},
                "text/csv": {"schema": {"type": "string"}},
            }},
            "responses": {"200": web.ok_doc("#/components/schemas/MlflowResponse"), **errors},
            "security": secured,
        },
    )
    async def invocations(request: Request) -> Response:
        try:
            web.authorized(state, request, "predict")
            media = proto.check_content_type(request.headers.get("content-type"), (web.JSON, "text/csv"))
            body = await web.body_of(state, request)
            routing = state.runtime.routing
            if routing.champion is None:
                raise not_ready(state)
            records = await offload(len(body), _mlflow_records, state, media, body,
                                    routing.champion.features, routing.champion.text_column)
            request_id = web.request_id(request)
            scored = await score_async(state, records, request_id, len(body))
        except RequestError as exc:
            return web.error_response(request, exc)
        return web.json_response({"predictions": [p.prediction for p in scored.predictions]},
                     headers={"X-Request-ID": request_id})


def _mlflow_records(state: ServerState, media: str, body: bytes, features: list[str],
                    text_column: str | None) -> list[Any]:
    if media == "text/csv":
        return proto.parse_csv(body, max_records=state.max_records, max_columns=max_fields(state),
                               text_columns=[text_column] if text_column else [])
    widest = max_fields(state)
    payload = proto.parse_json(body, proto.json_values_limit(state.max_records, widest))
    return proto.parse_mlflow(payload, features, max_records=state.max_records, max_fields=widest)
