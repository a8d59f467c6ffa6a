"""The REST server: an app factory over the runtime, the prediction log and the token verifier.

>>> from assay.project import Project
>>> from assay.serve.app import create_app
>>> app = create_app(Project.open("assay.yaml"))        # doctest: +SKIP
>>> # uvicorn.run(app, host="127.0.0.1", port=8000)

Endpoints: ``POST /v1/predict`` and ``POST /v1/feedback`` (assay's own format),
``POST /invocations`` (MLflow's scoring server), the Open Inference Protocol v2
(``/v2/health/*``, ``/v2/models/{name}``, ``/v2/models/{name}/infer``),
``GET /healthz``, ``/readyz`` and ``/metrics``. Every 4xx has one shape,
``{"error": code, "message": str, "details": [...]}``.

The prediction endpoints share one path: authorize, read the body (bounded),
parse it with orjson, pick the answering model from the current routing
snapshot, validate, score (NumPy fast path), append every prediction (and the
shadow's) to the write-ahead log with one call, and only then answer
(:mod:`assay.serve.scoring`). ``POST /v1/predict``, the hot route, is answered on a
raw-ASGI lane ahead of the framework (:mod:`assay.serve.lane`); its FastAPI route
documents it and gives the same answers when the lane is off.

No request stalls the server: every request is held to the
:class:`~assay.serve.protocols.RequestLimits` (body bytes, records, fields per
record, string length, CSV columns: 413 naming the limit; a body that does not
arrive in time: 408; a request head that does not: 408 and the connection closed,
:mod:`assay.serve.connection`), and a large body is parsed and scored in a worker
thread, so ``/healthz`` keeps answering.

``/openapi.json`` and ``/docs`` are public (no token), so they show no value of the
training data: the record schema names the features and their kinds, and its
examples are synthetic placeholders of each kind (``0.5``, ``1``, ``true``,
``"text"``, a fixed date), never a category, minimum or maximum seen in training.
The served model's real input metadata stays behind a token
(``GET /v2/models/{name}``).
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import assay
from assay.errors import AssayError, NotFoundError
from assay.project import Project
from assay.registry import ModelRegistry
from assay.serve import protocols as proto
from assay.serve.auth import TokenVerifier
from assay.serve.gather import BatchPolicy, Gatherer
from assay.serve.lane import PredictLane
from assay.serve.log import Drain, PredictionLog
from assay.serve.metrics import ServerMetrics
from assay.serve.protocols import RequestError, RequestLimits
from assay.serve.retention import LogRetention
from assay.model.loaded import LoadedModel
from assay.serve.runtime import ModelRuntime
from assay.serve.state import ServerState
from assay.serve.routes import add_routes
from assay.serve.scoring import max_fields
from assay.serve.web import ERROR_CODE_KEY as _ERROR_CODE_KEY
from assay.serve.web import error_response as _error
from assay.serve.web import json_response as _json

__all__ = ["create_app", "create_app_from_env", "model_name"]

logger = logging.getLogger("assay.serve")



def model_name(project: Project) -> str:
    """The name the model is served under (OIP v2 ``/v2/models/{name}``): assay.yaml's ``name`` or the folder's."""
    return project.spec.name or project.root.name or "model"


def create_app(
    project: Project,
    *,
    auth: bool = True,
    poll_seconds: float = 1.0,
    wal_dir: Path | None = None,
    max_records: int | None = None,
    max_body_bytes: int | None = None,
    limits: RequestLimits | None = None,
    seed: int = 0,
    registry: ModelRegistry | None = None,
    lane: bool = True,
    log_drain: Drain = "thread",
    batching: BatchPolicy | None = None,
) -> FastAPI:
    """The server of ``project``.

    Args:
        project: the project whose registry is served.
        auth: require ``Authorization: Bearer <token>`` on the prediction and feedback
            endpoints (the CLI allows ``False`` only on a loopback address).
        poll_seconds: how often the runtime re-reads aliases and the active deployment.
        wal_dir: the prediction log's write-ahead folder (default ``.assay/wal``).
        max_records: most records one request may carry (more -> 413); overrides ``limits``.
        max_body_bytes: largest request body (more -> 413); overrides ``limits``.
        limits: what one request may carry and how long its body may take
            (default :class:`RequestLimits`' defaults).
        seed: the seed of the canary draws.
        registry: the registry to use (default: the project's store).
        lane: answer ``POST /v1/predict`` on the raw-ASGI lane (:mod:`assay.serve.lane`)
            ahead of the framework's middleware and router; ``False`` leaves it to the
            FastAPI route, which gives the same answers more slowly.
        log_drain: who inserts the prediction log into the store: a ``thread`` of this
            process, or a drainer ``process`` (``assay serve``'s choice: the inserts never
            take the server's GIL).
        batching: how requests to a model that prefers batches are gathered into one call
            (:mod:`assay.serve.gather`; default :class:`BatchPolicy`' defaults). Models
            that do not prefer batches never wait.
    """
    from assay.registry import open_registry

    registry = registry if registry is not None else open_registry(project)
    limits = limits if limits is not None else RequestLimits()
    if max_records is not None:
        limits = replace(limits, max_records=int(max_records))
    if max_body_bytes is not None:
        limits = replace(limits, max_body_bytes=int(max_body_bytes))
    metrics = ServerMetrics()
    state = ServerState(
        project=project,
        registry=registry,
        runtime=ModelRuntime(registry, poll_seconds=poll_seconds, seed=seed),
        log=PredictionLog(registry.store, wal_dir if wal_dir is not None else project.state_dir / "wal",
                          drain=log_drain, retention=LogRetention.from_monitoring(project.spec.monitoring),
                          max_string=project.spec.monitoring.log_max_string,
                          max_input_bytes=project.spec.monitoring.log_max_input_bytes),
        verifier=TokenVerifier(registry) if auth else None,
        metrics=metrics,
        model_name=model_name(project),
        max_records=limits.max_records,
        max_body_bytes=limits.max_body_bytes,
        limits=limits,
        gatherer=Gatherer(batching, observe=lambda model, requests, rows, fell_back:
                          metrics.observe_batch(model.version, requests, rows, fell_back)),
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state.log.start()
        state.runtime.start()  # loads the champion now; the poller retries and /readyz says why not
        try:
            yield
        finally:
            state.runtime.stop()
            state.log.close()

    app = _AssayAPI(
        title=f"assay: {state.model_name}",
        version=assay.__version__,
        description=_DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.assay = state
    app.lane = lane
    _add_error_handlers(app)
    add_routes(app, state)
    app.openapi = lambda: _openapi(app, state)  # type: ignore[method-assign]
    app.add_middleware(_Observe, metrics=state.metrics)
    return app




class _AssayAPI(FastAPI):
    """FastAPI with the predict lane as the outermost layer of its middleware stack."""

    lane: bool = True

    def build_middleware_stack(self) -> ASGIApp:
        stack = super().build_middleware_stack()
        return PredictLane(stack, self.state.assay) if self.lane else stack


def create_app_from_env() -> FastAPI:
    """The app for each worker of ``assay serve --workers N`` (uvicorn's factory), configured by
    the ``ASSAY_SERVE_*`` variables of :class:`assay.serve.settings.ServeSettings`."""
    from assay.serve.settings import ServeSettings

    settings = ServeSettings.from_env()
    return create_app(
        Project.open(settings.config),
        auth=settings.auth,
        poll_seconds=settings.poll_seconds,
        limits=settings.limits,
        log_drain=settings.log_drain,
        batching=settings.batching,
    )


_DESCRIPTION = """Predictions from the champion model (a challenger may answer a canary share, or
score in shadow), every one logged before it is answered. Send `Authorization: Bearer <token>`
(create one with `assay token create NAME --scope predict`). Every 4xx body is
`{"error": code, "message": text, "details": [...]}`."""


# -- errors ------------------------------------------------------------------------------------


def _add_error_handlers(app: FastAPI) -> None:
    async def request_error(request: Request, exc: Exception) -> Response:
        if not isinstance(exc, RequestError):  # registered for this type only
            raise exc
        return _error(request, exc)

    async def http_error(request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 500)
        code = {404: "not_found", 405: "method_not_allowed"}.get(status, f"http_{status}")
        detail = getattr(exc, "detail", None)
        message = {404: f"no endpoint at {request.url.path}; see /docs for the endpoints.",
                   405: f"{request.method} is not allowed on {request.url.path}; see /docs."}.get(
            status, str(detail or "request refused"))
        headers = dict(getattr(exc, "headers", None) or {})
        return _error(request, RequestError(status, code, message, headers=headers))

    async def validation_error(request: Request, exc: Exception) -> Response:
        errors = exc.errors() if isinstance(exc, RequestValidationError) else []
        details = [{"field": ".".join(str(p) for p in e.get("loc", ())), "reason": str(e.get("msg", "")),
                    "code": str(e.get("type", ""))} for e in errors[:20]]
        shown = "; ".join(f"{d['field']}: {d['reason']}" for d in details[:3])
        return _error(request, RequestError(422, "invalid_request", f"the request is invalid: {shown}.", details))

    async def assay_error(request: Request, exc: Exception) -> Response:
        status = 404 if isinstance(exc, NotFoundError) else 503
        body = exc.to_dict() if isinstance(exc, AssayError) else {}
        return _error(request, RequestError(status, "not_found" if status == 404 else "unavailable",
                                            str(exc), [body]))

    async def internal_error(request: Request, exc: Exception) -> Response:
        logger.error("internal error on %s %s:\n%s", request.method, request.url.path,
                     "".join(traceback.format_exception(exc)))
        request.scope[_ERROR_CODE_KEY] = "internal_error"
        body = {"error": "internal_error", "message": f"an internal error occurred ({type(exc).__name__}); "
                "it was logged on the server", "details": []}
        return _json(body, 500)

    app.add_exception_handler(RequestError, request_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(AssayError, assay_error)
    app.add_exception_handler(Exception, internal_error)


class _Observe:
    """ASGI middleware: count every HTTP request by route template, status and error code."""

    def __init__(self, app: ASGIApp, metrics: ServerMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def observe(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, observe)
        finally:
            route = scope.get("route")
            endpoint = getattr(route, "path", None) or "unmatched"
            self.metrics.observe_request(endpoint, status, time.perf_counter() - start, scope.get(_ERROR_CODE_KEY))


# -- OpenAPI -----------------------------------------------------------------------------------


def _openapi(app: FastAPI, state: ServerState) -> dict[str, Any]:
    """The OpenAPI document; the record schema follows the current champion's features."""
    if app.openapi_schema is None:
        app.openapi_schema = get_openapi(title=app.title, version=app.version, description=app.description,
                                         routes=app.routes)
    import copy

    doc = copy.deepcopy(app.openapi_schema)
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    schemas.update(_schemas(state))
    if state.verifier is not None:
        doc["components"]["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
    return doc


def _schemas(state: ServerState) -> dict[str, Any]:
    champion = state.runtime.routing.champion
    properties: dict[str, Any] = {}
    if champion is not None:
        for column in champion.columns:
            properties[column.name] = _column_schema(column, state.limits.max_string_length,
                                                     text=column.name == champion.text_column)
    required = ([c.name for c in champion.columns
                 if not c.nullable or c.name == champion.text_column]
                if champion is not None else [])
    record = {"type": "object", "properties": properties, "required": required, "additionalProperties": True,
              "maxProperties": max_fields(state),
              "description": "One record: feature name -> value (null for missing; a feature that had "
              "missing values in training may be left out). The columns assay.yaml declares with "
              "another role (data.id, data.time, data.group, data.drop, the target) may be sent too: "
              "they are logged with the record, not scored and not flagged (send data.id to label "
              "by key with /v1/feedback). Any other key is answered with the flag unknown_field. "
              "Examples are placeholders of each feature's kind, not training values."}
    limit = state.max_records
    rows = {"type": "array", "minItems": 1, "maxItems": limit}
    id_column = state.project.spec.data.id
    label = {"type": ["string", "number", "boolean"]}
    return {
        "Error": proto.ERROR_SCHEMA,
        "Record": record,
        "PredictRequest": {"type": "object", "required": ["records"], "additionalProperties": False,
                           "properties": {"records": {**rows, "items": {"$ref": "#/components/schemas/Record"}}},
                           "example": {"records": [_example(champion)]}},
        "Prediction": {"type": "object", "required": ["id", "prediction", "version", "flags"], "properties": {
            "id": {"type": "string", "description": "the prediction id (send it back with /v1/feedback)"},
            "prediction": {**label, "description": "class label or value"},
            "probabilities": {"type": ["object", "null"], "additionalProperties": {"type": "number"}},
            "confidence": {"type": ["number", "null"]},
            "version": {"type": "integer", "description": "the model version that answered"},
            "flags": {"type": "array", "items": {"type": "string"},
                      "description": "answered but flagged: unknown_category, out_of_range, ..."},
            "warnings": {"type": "array", "description": "each flag with the field it concerns",
                         "items": {"type": "object", "required": ["field", "code", "reason"],
                                   "properties": {"field": {"type": "string"}, "code": {"type": "string"},
                                                  "reason": {"type": "string"}}}},
        }},
        "PredictResponse": {"type": "object", "required": ["request_id", "predictions"], "properties": {
            "request_id": {"type": "string"},
            "predictions": {"type": "array", "items": {"$ref": "#/components/schemas/Prediction"}}}},
        "FeedbackRequest": {"type": "object", "required": ["labels"], "additionalProperties": False,
                            "properties": {"labels": {**rows, "items": {
                                "type": "object", "required": ["label"], "additionalProperties": False,
                                "description": "the true label of a prediction named by `id`, or of the "
                                "record named by `key` (exactly one of the two)",
                                "oneOf": [{"required": ["id"]}, {"required": ["key"]}],
                                "properties": {
                                    "id": {"type": "string", "minLength": 1, "maxLength": 128,
                                           "description": "the prediction id /v1/predict returned"},
                                    "key": {"type": ["string", "integer"], "maxLength": 128,
                                            "description": "the value of the declared data.id column "
                                            "the scored record carried" + (f" ('{id_column}')" if id_column
                                                                          else " (data.id is not declared)")},
                                    "label": label}}}},
                            "example": {"labels": [{"id": "3f1c0e9a2b7d4c5e8f9a0b1c2d3e4f5a", "label": 1}]
                                        + ([{"key": "row-42", "label": 0}] if id_column else [])}},
        "FeedbackResponse": {"type": "object", "properties": {
            "accepted": {"type": "integer"}, "unknown_ids": {"type": "array", "items": {"type": "string"}},
            "unchanged": {"type": "integer", "description": "labels already stored as sent"},
            "overwritten": {"type": "integer", "description": "labels that replaced another (overwrite=true)"},
            "unknown_keys": {"type": "array", "items": {"type": ["string", "integer"]},
                             "description": "keys no logged record carried (not stored)"},
            "by_key": {"type": "integer", "description": "predictions the keys resolved to"}}},
        "MlflowRequest": {"type": "object", "description": "exactly one of the four formats", "oneOf": [
            {"required": ["dataframe_split"], "properties": {"dataframe_split": {
                "type": "object", "required": ["columns", "data"],
                "properties": {"columns": {"type": "array", "items": {"type": "string"}},
                               "data": {**rows, "items": {"type": "array"}}}}}},
            {"required": ["dataframe_records"], "properties": {
                "dataframe_records": {**rows, "items": {"$ref": "#/components/schemas/Record"}}}},
            {"required": ["instances"], "properties": {"instances": {**rows}}},
            {"required": ["inputs"], "properties": {"inputs": {"type": ["array", "object"]}}},
        ]},
        "MlflowResponse": {"type": "object", "required": ["predictions"],
                           "properties": {"predictions": {"type": "array", "items": label}}},
        "OipTensor": {"type": "object", "required": ["name", "shape", "datatype"], "properties": {
            "name": {"type": "string"}, "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
            "datatype": {"type": "string", "enum": list(proto.OIP_DATATYPES)},
            "data": {"type": "array"}, "parameters": {"type": "object"}}},
        "OipInferRequest": {"type": "object", "required": ["inputs"], "properties": {
            "id": {"type": "string"},
            "inputs": {"type": "array", "items": {"$ref": "#/components/schemas/OipTensor"}},
            "outputs": {"type": "array", "items": {"type": "object", "required": ["name"],
                                                   "properties": {"name": {"type": "string"}}}}}},
        "OipInferResponse": {"type": "object", "required": ["model_name", "outputs"], "properties": {
            "model_name": {"type": "string"}, "model_version": {"type": "string"}, "id": {"type": "string"},
            "outputs": {"type": "array", "items": {"$ref": "#/components/schemas/OipTensor"}}}},
        "OipModelMetadata": {"type": "object", "required": ["name", "inputs", "outputs"], "properties": {
            "name": {"type": "string"}, "versions": {"type": "array", "items": {"type": "string"}},
            "platform": {"type": "string"},
            "inputs": {"type": "array", "items": {"type": "object"}},
            "outputs": {"type": "array", "items": {"type": "object"}}}},
    }


#: the example value of each column kind: placeholders, never values seen in training
_PLACEHOLDERS: dict[str, Any] = {
    "numeric": 0.5,
    "integer": 1,
    "boolean": True,
    "datetime": "2024-01-01T00:00:00Z",
    "categorical": "text",
    "text": "text",
}


def _column_schema(column: Any, max_length: int, *, text: bool = False) -> dict[str, Any]:
    kind = column.kind
    schema: dict[str, Any]
    if text:  # the text a text-classification model reads: a non-blank string, never null
        return {"type": "string", "minLength": 1, "maxLength": max_length, "pattern": r"\S",
                "examples": ["text"], "description": "the text to classify"}
    if kind in ("numeric", "integer"):
        schema = {"type": "number" if kind == "numeric" else "integer"}
    elif kind == "boolean":
        schema = {"type": "boolean"}
    elif kind == "datetime":
        schema = {"type": "string", "format": "date-time"}
    else:
        schema = {"type": "string", "maxLength": max_length}
    schema["examples"] = [_PLACEHOLDERS.get(kind, "text")]
    if column.nullable:
        schema["type"] = [schema["type"], "null"]
    return schema


def _example(champion: LoadedModel | None) -> dict[str, Any]:
    if champion is None:
        return {"feature": 0.5}
    return {column.name: _PLACEHOLDERS.get(column.kind, "text") for column in champion.columns}
