"""What every route module shares: reading a request, answering in the server's one JSON shape
(``{"error": code, "message": str, "details": [...]}`` for every 4xx), and the OpenAPI fragments
the routes document themselves with."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from starlette.responses import Response

from assay.serve import protocols as proto
from assay.serve.protocols import RequestError
from assay.serve.scoring import Answer, PredictHead, authorize, read_body, request_id_of
from assay.serve.state import ServerState

__all__ = [
    "ERROR_CODE_KEY",
    "JSON",
    "authorized",
    "body_doc",
    "body_of",
    "error_doc",
    "error_docs",
    "error_response",
    "json_response",
    "ok_doc",
    "predict_head",
    "request_id",
    "respond",
    "security",
]

JSON = "application/json"
#: where a route leaves its error code for the request counter (``/metrics``)
ERROR_CODE_KEY = "assay.error"


def authorized(state: ServerState, request: Request, scope: str | tuple[str, ...]) -> str:
    """The actor of the request's bearer token, which must hold ``scope`` (or one of the
    scopes of a tuple; else 401/403)."""
    return authorize(state, request.headers.get("authorization"), scope)


async def body_of(state: ServerState, request: Request) -> bytes:
    """The request body, bounded in bytes and in time by the server's limits."""
    return await read_body(request.stream(), request.headers.get("content-length"), state.max_body_bytes,
                           state.limits.body_timeout)


def request_id(request: Request) -> str:
    """The caller's ``X-Request-ID`` when usable, else a new one."""
    return request_id_of(request.headers.get("x-request-id"))


def predict_head(request: Request) -> PredictHead:
    """The headers the predict path reads."""
    headers = request.headers
    return PredictHead(headers.get("authorization"), headers.get("content-type"),
                       headers.get("content-length"), headers.get("x-request-id"))


def respond(request: Request, answer: Answer) -> Response:
    """The response of an answer computed by :mod:`assay.serve.scoring`."""
    if answer.error is not None:
        request.scope[ERROR_CODE_KEY] = answer.error
    return Response(answer.body, status_code=answer.status, media_type=JSON, headers=answer.headers or None)


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """``body`` as JSON (orjson)."""
    return Response(proto.dumps(body), status_code=status, media_type=JSON, headers=headers)


def error_response(request: Request, exc: RequestError) -> Response:
    """A refusal in the one error shape; its code is counted on ``/metrics``."""
    request.scope[ERROR_CODE_KEY] = exc.code
    return json_response(exc.to_dict(), exc.status, exc.headers or None)


def body_doc(ref: str) -> dict[str, Any]:
    """OpenAPI: a required JSON request body of schema ``ref``."""
    return {"required": True, "content": {JSON: {"schema": {"$ref": ref}}}}


def ok_doc(ref: str) -> dict[str, Any]:
    """OpenAPI: a 200 JSON response of schema ``ref``."""
    return {"description": "Successful response", "content": {JSON: {"schema": {"$ref": ref}}}}


def error_doc(description: str) -> dict[str, Any]:
    """OpenAPI: an error response in the one error shape."""
    return {"description": description, "content": {JSON: {"schema": {"$ref": "#/components/schemas/Error"}}}}


def security(state: ServerState) -> list[dict[str, list[str]]]:
    """OpenAPI: the bearer scheme, when the server requires tokens."""
    return [{"bearer": []}] if state.verifier is not None else []


def error_docs() -> dict[str, Any]:
    """OpenAPI: the refusals every secured endpoint may answer."""
    return {str(code): error_doc(text) for code, text in (
        (401, "Missing, malformed, unknown or revoked token."),
        (403, "The token lacks the scope this endpoint needs."),
        (413, "More records or bytes than one request may carry."),
        (415, "Unsupported Content-Type."),
        (422, "Malformed body or refused records (index, field, reason)."),
        (503, "No verified champion loaded yet."),
    )}
