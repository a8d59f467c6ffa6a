"""Connection deadlines: a client that sends its request slowly is answered 408 and let go.

uvicorn times out a kept-alive connection that stays idle, but not one that sends
part of a request and then waits: each byte restarts nothing, and a few hundred
such connections hold the server's sockets and memory for as long as the clients
like. :class:`DeadlineProtocol` is uvicorn's httptools protocol with two deadlines
per request, armed and cleared as the parser moves along:

* the request line and headers must arrive within ``header_timeout`` seconds (from
  the connection's start, or from the first byte of a next request on a kept-alive
  connection); else the server writes a 408 in the one error shape and closes;
* the body must be complete ``body_timeout`` seconds after the headers, plus a grace
  of :data:`BODY_GRACE_SECONDS`: the endpoints that read a body answer 408 at
  ``body_timeout`` themselves (:func:`assay.serve.scoring.read_body`), so this one
  only closes a connection whose body is still dripping in after its answer (or
  to an endpoint that never read it).

A request whose head and body arrive together arms one timer and cancels it in the
same read. ``assay serve`` passes the protocol to uvicorn (``http=``):
:func:`protocol_class` for one worker; for several, the import string
:data:`PROTOCOL_PATH`, whose class reads its deadlines from ``ASSAY_SERVE_*``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from assay.serve.protocols import RequestLimits

__all__ = ["BODY_GRACE_SECONDS", "PROTOCOL_PATH", "DeadlineProtocol", "EnvDeadlineProtocol",
           "protocol_class"]

#: seconds past the body timeout before a connection whose body is still arriving is closed
BODY_GRACE_SECONDS = 5.0
#: uvicorn's ``http`` setting for workers that read their deadlines from the environment
PROTOCOL_PATH = "assay.serve.connection:EnvDeadlineProtocol"

_IDLE, _HEAD, _BODY, _DONE = range(4)


def _timeout_response(seconds: float) -> bytes:
    body = orjson.dumps({
        "error": "header_timeout",
        "message": f"the request line and headers did not arrive within {seconds:g} s (limit "
        f"header_timeout={seconds:g}); send the whole request head at once (the server sets the "
        "limit with `assay serve --header-timeout`).",
        "details": [{"limit": seconds, "name": "header_timeout"}],
    })
    head = (b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
            b"connection: close\r\ncontent-length: " + str(len(body)).encode() + b"\r\n\r\n")
    return head + body


class DeadlineProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a deadline on each request's head and body."""

    header_timeout: float = RequestLimits().header_timeout
    body_timeout: float = RequestLimits().body_timeout

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._phase = _IDLE
        self._timer: asyncio.TimerHandle | None = None
        self._timer_phase = _IDLE

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._phase = _HEAD  # a new connection owes a request head
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._phase == _IDLE:
            self._phase = _HEAD  # bytes of a next request on a kept-alive connection
        super().data_received(data)
        if self._timer_phase != self._phase:
            self._arm()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._phase = _HEAD

    def on_headers_complete(self) -> None:
        self._phase = _BODY
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._phase = _DONE
        super().on_message_complete()

    def on_response_complete(self) -> None:
        if self._phase == _DONE:
            self._phase = _IDLE  # uvicorn's keep-alive timeout takes over
            self._cancel()
        super().on_response_complete()

    def _arm(self) -> None:
        self._cancel()
        if self._phase == _HEAD:
            self._timer = self.loop.call_later(self.header_timeout, self._head_expired)
        elif self._phase == _BODY:
            self._timer = self.loop.call_later(self.body_timeout + BODY_GRACE_SECONDS, self._close)
        self._timer_phase = self._phase if self._timer is not None else _IDLE

    def _cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_phase = _IDLE

    def _head_expired(self) -> None:
        self._timer = None
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        if self.cycle is None or self.cycle.response_complete:
            transport.write(_timeout_response(self.header_timeout))
        transport.close()

    def _close(self) -> None:
        self._timer = None
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()


def protocol_class(limits: RequestLimits) -> type[DeadlineProtocol]:
    """:class:`DeadlineProtocol` with the deadlines of ``limits``."""
    return type("DeadlineProtocol", (DeadlineProtocol,), {
        "header_timeout": float(limits.header_timeout),
        "body_timeout": float(limits.body_timeout),
    })


class EnvDeadlineProtocol(DeadlineProtocol):
    """:class:`DeadlineProtocol` with the deadlines of ``ASSAY_SERVE_HEADER_TIMEOUT`` and
    ``ASSAY_SERVE_BODY_TIMEOUT`` (read when this module is first imported)."""

    header_timeout = RequestLimits.from_env().header_timeout
    body_timeout = RequestLimits.from_env().body_timeout
