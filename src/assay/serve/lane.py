"""The predict lane: ``POST /v1/predict`` answered on raw ASGI, ahead of the framework.

A one-record prediction costs the server a few hundred microseconds of Python; a
framework's middleware stack, router, request object and response wrappers add
about as much again, once per request. :class:`PredictLane` takes the one hot
route off that path: it reads the four headers the prediction path needs, the
body chunks from ``receive``, calls :func:`assay.serve.scoring.answer_predict`
(the same function the documented FastAPI route calls, so both answer alike) and
sends the answer in two ASGI messages. Every other request goes to the app.

What the framework did for this route, the lane does itself: it counts the request
in the Prometheus metrics under the route's template (``/v1/predict``), answers an
unexpected exception with the same JSON 500 the app's handler gives (logged with its
traceback), and drops a request whose client disconnected before its body arrived.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from starlette.types import ASGIApp, Receive, Scope, Send

from assay.serve import protocols as proto
from assay.serve.scoring import Answer, PredictHead, answer_predict

if TYPE_CHECKING:
    from assay.serve.state import ServerState

__all__ = ["PREDICT_PATH", "PredictLane"]

logger = logging.getLogger("assay.serve")

#: the route the lane answers (POST only)
PREDICT_PATH = "/v1/predict"

_JSON = b"application/json"
_WANTED = {
    b"authorization": 0,
    b"content-type": 1,
    b"content-length": 2,
    b"x-request-id": 3,
}


class _Disconnected(Exception):
    """The client went away before its body was read."""


class PredictLane:
    """ASGI middleware answering ``POST /v1/predict`` itself and passing on everything else.

    Args:
        app: the application that answers every other request.
        state: the server's shared state (runtime, log, verifier, metrics, limits).
    """

    def __init__(self, app: ASGIApp, state: ServerState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or _path(scope) != PREDICT_PATH:
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        try:
            answer = await answer_predict(self.state, _head(scope), _chunks(receive))
        except _Disconnected:
            self.state.metrics.observe_request(PREDICT_PATH, 499, time.perf_counter() - start,
                                               "client_disconnected")
            return
        except Exception as exc:  # noqa: BLE001 - answered as the app's handler answers it
            logger.error("internal error on POST %s:\n%s", PREDICT_PATH,
                         "".join(traceback.format_exception(exc)))
            answer = Answer(500, proto.dumps({
                "error": "internal_error",
                "message": f"an internal error occurred ({type(exc).__name__}); it was logged on the server",
                "details": [],
            }), error="internal_error")
        headers = [(b"content-type", _JSON), (b"content-length", str(len(answer.body)).encode())]
        headers.extend((name.lower().encode("latin-1"), value.encode("latin-1"))
                       for name, value in answer.headers.items())
        await send({"type": "http.response.start", "status": answer.status, "headers": headers})
        await send({"type": "http.response.body", "body": answer.body})
        self.state.metrics.observe_request(PREDICT_PATH, answer.status, time.perf_counter() - start,
                                           answer.error)


def _path(scope: Scope) -> str:
    path: str = scope["path"]
    root: str = scope.get("root_path") or ""
    if root and path.startswith(root):
        return path[len(root):]
    return path


def _head(scope: Scope) -> PredictHead:
    values: list[str | None] = [None, None, None, None]
    for name, value in scope["headers"]:  # ASGI header names arrive lowercased
        slot = _WANTED.get(name)
        if slot is not None and values[slot] is None:
            values[slot] = value.decode("latin-1")
    return PredictHead(*values)


async def _chunks(receive: Receive) -> AsyncIterator[bytes]:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _Disconnected
        body = message.get("body", b"")
        if body:
            yield body
        if not message.get("more_body", False):
            return
