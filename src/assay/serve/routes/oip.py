"""The Open Inference Protocol v2 (KServe, Triton): ``/v2/health/*``, ``/v2/models/{name}``, ``infer``."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from starlette.responses import Response

import assay
from assay.model.loaded import LoadedModel
from assay.serve import protocols as proto
from assay.serve import web
from assay.serve.protocols import RequestError
from assay.serve.scoring import max_fields, not_ready, offload, score_async
from assay.serve.state import ServerState

__all__ = ["add_oip_routes"]


def add_oip_routes(app: FastAPI, state: ServerState) -> None:
    """The Open Inference Protocol v2: server and model metadata, health, ``infer``."""
    secured = web.security(state)
    errors = web.error_docs()

    @app.get("/v2", summary="OIP v2 server metadata", tags=["oip-v2"])
    async def oip_server() -> dict[str, Any]:
        return {"name": "assay", "version": assay.__version__, "extensions": ["binary_tensor_data"]}

    @app.get("/v2/health/live", summary="OIP v2 liveness", tags=["oip-v2"])
    async def oip_live() -> dict[str, Any]:
        return {"live": True}

    @app.get("/v2/health/ready", summary="OIP v2 readiness", tags=["oip-v2"], response_class=Response,
             responses={"503": web.error_doc("No verified champion loaded yet.")})
    async def oip_ready(request: Request) -> Response:
        if not state.runtime.ready:
            return web.error_response(request, not_ready(state))
        return web.json_response({"ready": True})

    @app.get("/v2/models/{name}", summary="OIP v2 model metadata", tags=["oip-v2"], response_class=Response,
             openapi_extra={"responses": {"200": web.ok_doc("#/components/schemas/OipModelMetadata"), **errors},
                            "security": secured})
    async def oip_metadata(name: str, request: Request) -> Response:
        try:
            web.authorized(state, request, "predict")
            model = _oip_model(state, name)
        except RequestError as exc:
            return web.error_response(request, exc)
        kinds = {c.name: c.kind for c in model.columns}
        return web.json_response(proto.oip_model_metadata(state.model_name, model.version, task=model.task,
                                              features=model.features, kinds=kinds, classes=model.classes))

    @app.get("/v2/models/{name}/ready", summary="OIP v2 model readiness", tags=["oip-v2"],
             response_class=Response, openapi_extra={"responses": errors, "security": secured})
    async def oip_model_ready(name: str, request: Request) -> Response:
        try:
            web.authorized(state, request, "predict")
            _oip_model(state, name)
        except RequestError as exc:
            return web.error_response(request, exc)
        return web.json_response({"name": state.model_name, "ready": True})

    @app.post(
        "/v2/models/{name}/infer",
        summary="OIP v2 inference",
        description="One input tensor per feature (shape [N] or [N, 1]; JSON data or the binary tensor "
        "extension). Outputs: `prediction`, `probabilities` [N, classes] and `confidence` "
        "(classification), `prediction_id`.",
        tags=["oip-v2"],
        response_class=Response,
        openapi_extra={
            "requestBody": web.body_doc("#/components/schemas/OipInferRequest"),
            "responses": {"200": web.ok_doc("#/components/schemas/OipInferResponse"), **errors},
            "security": secured,
        },
    )
    async def oip_infer(name: str, request: Request) -> Response:
        try:
            web.authorized(state, request, "predict")
            _oip_model(state, name)
            header = request.headers.get("inference-header-content-length")
            header_length = proto.ascii_int(header)
            if header is None:
                proto.check_content_type(request.headers.get("content-type"))
            elif header_length is None:
                raise RequestError(
                    400, "invalid_header",
                    f"Inference-Header-Content-Length must be a whole number of bytes in the digits 0-9; "
                    f"got '{proto._clip(header, 40)}'.",
                    [{"field": "Inference-Header-Content-Length", "received": proto._clip(header, 40)}],
                )
            body = await web.body_of(state, request)
            parsed = await offload(len(body), _oip_request, state, body, header_length)
            request_id = web.request_id(request)
            scored = await score_async(state, parsed.records, request_id, len(body))
            model = scored.model
            out = proto.oip_infer_response(state.model_name, model.version, parsed.id,
                                           predictions=scored.predictions, ids=scored.ids, task=model.task,
                                           classes=model.classes, outputs=parsed.outputs)
        except RequestError as exc:
            return web.error_response(request, exc)
        return web.json_response(out, headers={"X-Request-ID": request_id})


def _oip_request(state: ServerState, body: bytes, header_length: int | None) -> proto.OipRequest:
    widest = max_fields(state)
    values = proto.json_values_limit(state.max_records, widest)
    return proto.parse_oip_infer(body, header_length=header_length, max_records=state.max_records,
                                 max_fields=widest, max_values=values)


def _oip_model(state: ServerState, name: str) -> LoadedModel:
    if name != state.model_name:
        raise RequestError(
            404, "unknown_model",
            f"no model named '{proto._clip(name, 60)}' is served here; this server serves "
            f"'{state.model_name}' (GET /v2/models/{state.model_name}).",
        )
    champion = state.runtime.routing.champion
    if champion is None:
        raise not_ready(state)
    return champion
