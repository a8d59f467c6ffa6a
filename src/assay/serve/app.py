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
from sqlalchemy.exc import OperationalError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import assay
from assay.errors import AssayError, NotFoundError
from assay.project import Project
from assay.registry import ModelRegistry
from assay.serve import protocols as proto
from assay.serve.auth import TokenVerifier
from assay.serve.lane import PredictLane
from assay.serve.log import Drain, LabelConflict, LabelError, PredictionLog, record_feedback
from assay.serve.metrics import ServerMetrics
from assay.serve.protocols import RequestError, RequestLimits
from assay.serve.retention import LogRetention
from assay.model.loaded import LoadedModel
from assay.serve.runtime import ModelRuntime
from assay.serve.state import ServerState
from assay.serve.scoring import (
    Answer,
    PredictHead,
    answer_predict,
    authorize,
    max_fields,
    not_ready,
    offload,
    read_body,
    request_id_of,
    score_async,
)

__all__ = ["create_app", "create_app_from_env", "model_name"]

logger = logging.getLogger("assay.serve")

_JSON = "application/json"
_ERROR_CODE_KEY = "assay.error"


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
    """
    from assay.registry import open_registry

    registry = registry if registry is not None else open_registry(project)
    limits = limits if limits is not None else RequestLimits()
    if max_records is not None:
        limits = replace(limits, max_records=int(max_records))
    if max_body_bytes is not None:
        limits = replace(limits, max_body_bytes=int(max_body_bytes))
    state = ServerState(
        project=project,
        registry=registry,
        runtime=ModelRuntime(registry, poll_seconds=poll_seconds, seed=seed),
        log=PredictionLog(registry.store, wal_dir if wal_dir is not None else project.state_dir / "wal",
                          drain=log_drain, retention=LogRetention.from_monitoring(project.spec.monitoring),
                          max_string=project.spec.monitoring.log_max_string,
                          max_input_bytes=project.spec.monitoring.log_max_input_bytes),
        verifier=TokenVerifier(registry) if auth else None,
        metrics=ServerMetrics(),
        model_name=model_name(project),
        max_records=limits.max_records,
        max_body_bytes=limits.max_body_bytes,
        limits=limits,
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
    _add_routes(app, state)
    app.openapi = lambda: _openapi(app, state)  # type: ignore[method-assign]
    app.add_middleware(_Observe, metrics=state.metrics)
    return app


def _overwrite_flag(value: str | None) -> bool:
    """The ``overwrite`` query parameter of ``/v1/feedback`` (absent means false)."""
    if value is None:
        return False
    text = value.strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no", ""):
        return False
    raise RequestError(422, "invalid_query", f"query parameter 'overwrite' must be true or false, got {value!r}.",
                       [{"field": "overwrite", "reason": "expected true or false", "code": "type"}])


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
    )


_DESCRIPTION = """Predictions from the champion model (a challenger may answer a canary share, or
score in shadow), every one logged before it is answered. Send `Authorization: Bearer <token>`
(create one with `assay token create NAME --scope predict`). Every 4xx body is
`{"error": code, "message": text, "details": [...]}`."""


# -- responses ---------------------------------------------------------------------------------


def _authorized(state: ServerState, request: Request, scope: str) -> str:
    return authorize(state, request.headers.get("authorization"), scope)


async def _body(state: ServerState, request: Request) -> bytes:
    return await read_body(request.stream(), request.headers.get("content-length"), state.max_body_bytes,
                           state.limits.body_timeout)


def _request_id(request: Request) -> str:
    return request_id_of(request.headers.get("x-request-id"))


def _head(request: Request) -> PredictHead:
    headers = request.headers
    return PredictHead(headers.get("authorization"), headers.get("content-type"),
                       headers.get("content-length"), headers.get("x-request-id"))


def _respond(request: Request, answer: Answer) -> Response:
    if answer.error is not None:
        request.scope[_ERROR_CODE_KEY] = answer.error
    return Response(answer.body, status_code=answer.status, media_type=_JSON, headers=answer.headers or None)


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(proto.dumps(body), status_code=status, media_type=_JSON, headers=headers)


def _error(request: Request, exc: RequestError) -> Response:
    request.scope[_ERROR_CODE_KEY] = exc.code
    return _json(exc.to_dict(), exc.status, exc.headers or None)


# -- routes ------------------------------------------------------------------------------------


def _add_routes(app: FastAPI, state: ServerState) -> None:
    secured: list[dict[str, list[str]]] = [{"bearer": []}] if state.verifier is not None else []
    errors = {str(code): _error_doc(text) for code, text in (
        (401, "Missing, malformed, unknown or revoked token."),
        (403, "The token lacks the scope this endpoint needs."),
        (413, "More records or bytes than one request may carry."),
        (415, "Unsupported Content-Type."),
        (422, "Malformed body or refused records (index, field, reason)."),
        (503, "No verified champion loaded yet."),
    )}

    @app.post(
        "/v1/predict",
        summary="Predict records",
        description="Score each record with the champion (or the canary challenger); every prediction "
        "is logged before the answer. Records that cannot be scored refuse the whole request with 422 "
        "naming index, field and reason; unknown categories and out-of-range values are answered and flagged.",
        tags=["predict"],
        response_class=Response,
        openapi_extra={
            "requestBody": _body_doc("#/components/schemas/PredictRequest"),
            "responses": {"200": _ok_doc("#/components/schemas/PredictResponse"), **errors},
            "security": secured,
        },
    )
    async def predict(request: Request) -> Response:
        # the lane (assay.serve.lane) answers this path first; this route documents it and
        # answers when the app runs without the lane
        answer = await answer_predict(state, _head(request), request.stream())
        return _respond(request, answer)

    @app.post(
        "/v1/feedback",
        summary="Send true labels",
        description="Attach the true label to logged predictions (by the prediction id /v1/predict returned). "
        "Ids of no logged prediction are listed in `unknown_ids`, not stored. A label must be one of the "
        "model's classes (classification) or a finite number (regression), else 422 naming the item and "
        "the allowed values. A prediction has one label: sending the same one again changes nothing "
        "(`unchanged`), a different one is 409 unless the query has `overwrite=true` (recorded in the audit "
        "trail). Nothing is stored when any label is refused.",
        tags=["predict"],
        response_class=Response,
        openapi_extra={
            "requestBody": _body_doc("#/components/schemas/FeedbackRequest"),
            "responses": {"200": _ok_doc("#/components/schemas/FeedbackResponse"), **errors},
            "security": secured,
        },
    )
    async def feedback(request: Request) -> Response:
        try:
            actor = _authorized(state, request, "feedback")
            proto.check_content_type(request.headers.get("content-type"))
            body = await _body(state, request)
            pairs = await offload(len(body), _feedback_pairs, state, body)
            overwrite = _overwrite_flag(request.query_params.get("overwrite"))
            result = await run_in_threadpool(
                record_feedback, state.registry.store, pairs, actor, log=state.log, overwrite=overwrite
            )
        except RequestError as exc:
            return _error(request, exc)
        except LabelError as exc:
            problems = [{k: p.get(k) for k in ("index", "field", "reason", "code", "allowed")}
                        for p in exc.fields.get("problems") or []]
            return _error(request, RequestError(422, "invalid_labels", exc.render(), problems))
        except LabelConflict as exc:
            return _error(request, RequestError(409, "label_conflict", exc.render(),
                                                exc.fields.get("conflicts") or []))
        except OperationalError as exc:  # the store cannot be written (a full disk, a lock held too long)
            logger.error("feedback not stored: %s", exc)
            return _error(request, RequestError(
                503, "store_unavailable", "the labels could not be stored (the store cannot be written "
                "now); nothing was stored. Retry later.", headers={"Retry-After": "5"}))
        return _json(result.to_dict())

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
                _JSON: {"schema": {"$ref": "#/components/schemas/MlflowRequest"}},
                "text/csv": {"schema": {"type": "string"}},
            }},
            "responses": {"200": _ok_doc("#/components/schemas/MlflowResponse"), **errors},
            "security": secured,
        },
    )
    async def invocations(request: Request) -> Response:
        try:
            _authorized(state, request, "predict")
            media = proto.check_content_type(request.headers.get("content-type"), (_JSON, "text/csv"))
            body = await _body(state, request)
            routing = state.runtime.routing
            if routing.champion is None:
                raise not_ready(state)
            records = await offload(len(body), _mlflow_records, state, media, body,
                                    routing.champion.features)
            request_id = _request_id(request)
            scored = await score_async(state, records, request_id, len(body))
        except RequestError as exc:
            return _error(request, exc)
        return _json({"predictions": [p.prediction for p in scored.predictions]},
                     headers={"X-Request-ID": request_id})

    @app.get("/v2", summary="OIP v2 server metadata", tags=["oip-v2"])
    async def oip_server() -> dict[str, Any]:
        return {"name": "assay", "version": assay.__version__, "extensions": ["binary_tensor_data"]}

    @app.get("/v2/health/live", summary="OIP v2 liveness", tags=["oip-v2"])
    async def oip_live() -> dict[str, Any]:
        return {"live": True}

    @app.get("/v2/health/ready", summary="OIP v2 readiness", tags=["oip-v2"], response_class=Response,
             responses={"503": _error_doc("No verified champion loaded yet.")})
    async def oip_ready(request: Request) -> Response:
        if not state.runtime.ready:
            return _error(request, not_ready(state))
        return _json({"ready": True})

    @app.get("/v2/models/{name}", summary="OIP v2 model metadata", tags=["oip-v2"], response_class=Response,
             openapi_extra={"responses": {"200": _ok_doc("#/components/schemas/OipModelMetadata"), **errors},
                            "security": secured})
    async def oip_metadata(name: str, request: Request) -> Response:
        try:
            _authorized(state, request, "predict")
            model = _oip_model(state, name)
        except RequestError as exc:
            return _error(request, exc)
        kinds = {c.name: c.kind for c in model.columns}
        return _json(proto.oip_model_metadata(state.model_name, model.version, task=model.task,
                                              features=model.features, kinds=kinds, classes=model.classes))

    @app.get("/v2/models/{name}/ready", summary="OIP v2 model readiness", tags=["oip-v2"],
             response_class=Response, openapi_extra={"responses": errors, "security": secured})
    async def oip_model_ready(name: str, request: Request) -> Response:
        try:
            _authorized(state, request, "predict")
            _oip_model(state, name)
        except RequestError as exc:
            return _error(request, exc)
        return _json({"name": state.model_name, "ready": True})

    @app.post(
        "/v2/models/{name}/infer",
        summary="OIP v2 inference",
        description="One input tensor per feature (shape [N] or [N, 1]; JSON data or the binary tensor "
        "extension). Outputs: `prediction`, `probabilities` [N, classes] and `confidence` "
        "(classification), `prediction_id`.",
        tags=["oip-v2"],
        response_class=Response,
        openapi_extra={
            "requestBody": _body_doc("#/components/schemas/OipInferRequest"),
            "responses": {"200": _ok_doc("#/components/schemas/OipInferResponse"), **errors},
            "security": secured,
        },
    )
    async def oip_infer(name: str, request: Request) -> Response:
        try:
            _authorized(state, request, "predict")
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
            body = await _body(state, request)
            parsed = await offload(len(body), _oip_request, state, body, header_length)
            request_id = _request_id(request)
            scored = await score_async(state, parsed.records, request_id, len(body))
            model = scored.model
            out = proto.oip_infer_response(state.model_name, model.version, parsed.id,
                                           predictions=scored.predictions, ids=scored.ids, task=model.task,
                                           classes=model.classes, outputs=parsed.outputs)
        except RequestError as exc:
            return _error(request, exc)
        return _json(out, headers={"X-Request-ID": request_id})

    @app.get("/healthz", summary="Liveness", tags=["health"])
    async def healthz() -> dict[str, Any]:
        return {"status": "ok"}

    @app.get("/readyz", summary="Readiness: a verified champion is loaded", tags=["health"],
             response_class=Response,
             responses={"503": _error_doc("No verified champion loaded yet, or the registry's "
                                          "champion failed to load (degraded).")})
    async def readyz(request: Request) -> Response:
        routing = state.runtime.routing
        if not state.runtime.ready or routing.champion is None:
            return _error(request, not_ready(state))
        degraded = state.runtime.degraded
        if degraded is not None:  # an older version serves: traffic works, the release did not
            detail = {"champion": routing.champion.version,
                      "registry_champion": state.runtime.registry_champion}
            return _error(request, RequestError(503, "degraded", f"degraded: {degraded}.", [detail]))
        challenger = routing.challenger.version if routing.challenger is not None else None
        return _json({"status": "ready", "champion": routing.champion.version, "challenger": challenger,
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


def _feedback_pairs(state: ServerState, body: bytes) -> Any:
    # a label is {"prediction_id": ..., "label": ...}: a few values each, plus the envelope
    payload = proto.parse_json(body, proto.json_values_limit(state.max_records, 4))
    return proto.parse_feedback(payload, max_labels=state.max_records)


def _mlflow_records(state: ServerState, media: str, body: bytes, features: list[str]) -> list[Any]:
    if media == "text/csv":
        return proto.parse_csv(body, max_records=state.max_records, max_columns=max_fields(state))
    widest = max_fields(state)
    payload = proto.parse_json(body, proto.json_values_limit(state.max_records, widest))
    return proto.parse_mlflow(payload, features, max_records=state.max_records, max_fields=widest)


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


def _body_doc(ref: str) -> dict[str, Any]:
    return {"required": True, "content": {_JSON: {"schema": {"$ref": ref}}}}


def _ok_doc(ref: str) -> dict[str, Any]:
    return {"description": "Successful response", "content": {_JSON: {"schema": {"$ref": ref}}}}


def _error_doc(description: str) -> dict[str, Any]:
    return {"description": description, "content": {_JSON: {"schema": {"$ref": "#/components/schemas/Error"}}}}


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
            properties[column.name] = _column_schema(column, state.limits.max_string_length)
    required = [c.name for c in champion.columns if not c.nullable] if champion is not None else []
    record = {"type": "object", "properties": properties, "required": required, "additionalProperties": True,
              "maxProperties": max_fields(state),
              "description": "One record: feature name -> value (null for missing; a feature that had "
              "missing values in training may be left out). Examples are placeholders of each "
              "feature's kind, not training values."}
    limit = state.max_records
    rows = {"type": "array", "minItems": 1, "maxItems": limit}
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
        }},
        "PredictResponse": {"type": "object", "required": ["request_id", "predictions"], "properties": {
            "request_id": {"type": "string"},
            "predictions": {"type": "array", "items": {"$ref": "#/components/schemas/Prediction"}}}},
        "FeedbackRequest": {"type": "object", "required": ["labels"], "additionalProperties": False,
                            "properties": {"labels": {**rows, "items": {
                                "type": "object", "required": ["id", "label"], "additionalProperties": False,
                                "properties": {"id": {"type": "string", "minLength": 1, "maxLength": 128},
                                               "label": label}}}}},
        "FeedbackResponse": {"type": "object", "properties": {
            "accepted": {"type": "integer"}, "unknown_ids": {"type": "array", "items": {"type": "string"}},
            "unchanged": {"type": "integer", "description": "labels already stored as sent"},
            "overwritten": {"type": "integer", "description": "labels that replaced another (overwrite=true)"}}},
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


def _column_schema(column: Any, max_length: int) -> dict[str, Any]:
    kind = column.kind
    schema: dict[str, Any]
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
