"""The prediction path shared by the endpoints: authorize, read, validate, score, log.

Every scoring endpoint goes through :func:`score`: pick the answering model from
the current routing snapshot, validate the records against its schema, score them
(the NumPy fast path when the model has one), score the shadow too when one is
deployed, and append every prediction to the write-ahead log with one call, before
the caller answers. :func:`answer_predict` is the whole of ``POST /v1/predict``
on plain values (header strings and body chunks, bytes out), so the framework's
route and :mod:`assay.serve.lane` answer it with the same code.

Nothing here holds the event loop for long: a body must arrive within the body
timeout (else 408), records over a limit of :class:`~assay.serve.protocols.RequestLimits`
are refused before they are validated, and a body over :data:`INLINE_BODY_BYTES` is
parsed, and a batch over :data:`THREAD_THRESHOLD` records scored, in a worker thread
(:func:`offload`). Small requests, the common case, take no thread hop.

A model that prefers batches (a transformer: ``prefers_batches_`` on its final estimator)
is never called on the event loop: once a request is admitted (:func:`admit`: limits,
routing, validation), its rows wait in :mod:`assay.serve.gather` to be scored in one call
with other requests' rows, and the answer is logged (:func:`answered`) as on the direct path.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import traceback
from collections.abc import AsyncIterable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

from starlette.concurrency import run_in_threadpool

from assay.serve import protocols as proto
from assay.serve.log import LogEntry, LogUnavailable, new_prediction_id
from assay.serve.protocols import RequestError
from assay.serve.runtime import Route
from assay.model.loaded import LoadedModel, Prediction
from assay.model.validation import ValidatedBatch
from assay.store.database import utcnow

if TYPE_CHECKING:
    from assay.serve.state import ServerState

__all__ = [
    "INLINE_BODY_BYTES",
    "THREAD_THRESHOLD",
    "Answer",
    "PredictHead",
    "Scored",
    "admit",
    "answer_predict",
    "answered",
    "authorize",
    "max_fields",
    "not_ready",
    "offload",
    "read_body",
    "request_id_of",
    "score",
    "score_async",
]

logger = logging.getLogger("assay.serve")

#: batches larger than this are scored in a worker thread, so the event loop keeps answering
THREAD_THRESHOLD = 32
#: bodies larger than this are parsed (and their records scored) in a worker thread
INLINE_BODY_BYTES = 64 * 1024
_T = TypeVar("_T")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


class PredictHead(NamedTuple):
    """The request headers the prediction path reads (``None`` when absent)."""

    authorization: str | None
    content_type: str | None
    content_length: str | None
    request_id: str | None


@dataclass(frozen=True)
class Answer:
    """A response on plain values: status, JSON body, extra headers, and the error code (if any)."""

    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    error: str | None = None

    @classmethod
    def of_error(cls, exc: RequestError) -> Answer:
        """The JSON error answer of ``exc`` (its status, body and headers)."""
        return cls(exc.status, proto.dumps(exc.to_dict()), dict(exc.headers or {}), exc.code)


@dataclass(frozen=True)
class Scored:
    """The answer to an admitted request: the model that answered, its predictions (in the
    order of the valid records), their logged ids and flags, and the flagged issues naming
    their fields (``{"field", "code", "reason"}`` per valid record)."""

    model: LoadedModel
    predictions: list[Prediction]
    ids: list[str]
    flags: tuple[tuple[str, ...], ...]
    warnings: tuple[tuple[dict[str, str], ...], ...] = ()


def max_fields(state: ServerState) -> int:
    """Most keys a record (or columns a request) may carry: the widest served model's
    features and declared pass-through columns, plus the limits' ``extra_fields``."""
    routing = state.runtime.routing
    widest = max((len(m.features) + len(m.passthrough)
                  for m in (routing.champion, routing.challenger) if m is not None), default=0)
    return state.limits.max_fields(widest)


def score(state: ServerState, records: Sequence[Any], request_id: str) -> Scored:
    """Check the limits, validate, score, log; raise :class:`RequestError` for refused records."""
    model, route, shadow, batch, at = admit(state, records)
    start = time.perf_counter()
    try:
        predictions = model.predict(batch)
    except Exception:
        state.metrics.observe_scoring_error(model.version, route)
        raise
    seconds = time.perf_counter() - start
    extra = (shadow_entries(state, shadow, model, batch, records, request_id, at)
             if shadow is not None else [])
    return answered(state, model, route, shadow, batch, records, request_id, at, predictions,
                    seconds, extra)


def admit(
    state: ServerState, records: Sequence[Any]
) -> tuple[LoadedModel, Route, LoadedModel | None, ValidatedBatch, Any]:
    """Check the limits, choose the answering model (and shadow) from the routing snapshot and
    validate: ``(model, route, shadow, batch, at)``; :class:`RequestError` for refused records."""
    routing = state.runtime.routing
    if routing.champion is None:
        raise not_ready(state)
    proto.check_records(records, max_fields(state), state.limits.max_string_length)
    model, route, shadow = state.runtime.choose(routing)
    at = utcnow()
    batch = model.validate(records)
    if batch.errors:
        raise refused(batch)
    return model, route, shadow, batch, at


def answered(
    state: ServerState,
    model: LoadedModel,
    route: Route,
    shadow: LoadedModel | None,
    batch: ValidatedBatch,
    records: Sequence[Any],
    request_id: str,
    at: Any,
    predictions: list[Prediction],
    seconds: float,
    extra: list[LogEntry],
) -> Scored:
    """Count and log the ``predictions`` of an admitted request (with the shadow's ``extra``
    entries) in one append; 503 when the log cannot take them (nothing unlogged is answered)."""
    state.metrics.observe_predictions(model.version, route, len(predictions), seconds)
    state.metrics.observe_flags(model.version, batch.flags)
    latency_ms = seconds * 1000.0
    ids = [new_prediction_id() for _ in predictions]
    shadowed_by = int(shadow.version) if shadow is not None else None
    entries = [
        LogEntry(ids[i], at, model.version, route, request_id, _inputs(records[pos]), p.prediction,
                 p.probabilities, p.confidence, latency_ms, list(batch.flags[i]), shadowed_by)
        for i, (pos, p) in enumerate(zip(batch.valid_index, predictions))
    ]
    entries.extend(extra)
    try:
        state.log.append(entries)
    except LogUnavailable as exc:
        # never answer a prediction that is not logged (see assay.serve.log)
        raise RequestError(503, "log_unavailable", exc.render() + " Retry later.",
                           headers={"Retry-After": "5"}) from exc
    warnings = tuple(
        tuple({"field": w.field, "code": w.code, "reason": w.reason} for w in row)
        for row in batch.warnings
    )
    return Scored(model, predictions, ids, batch.flags, warnings)


def shadow_entries(
    state: ServerState,
    shadow: LoadedModel,
    model: LoadedModel,
    batch: ValidatedBatch,
    records: Sequence[Any],
    request_id: str,
    at: Any,
) -> list[LogEntry]:
    # a failing shadow is counted and logged, never allowed to fail the answer
    try:
        own, positions = _shadow_rows(shadow, model, batch, records)
        if not positions:
            return []
        start = time.perf_counter()
        predictions = shadow.predict(own)
        seconds = time.perf_counter() - start
    except Exception:  # noqa: BLE001 - counted and logged; the answer must not fail
        _shadow_failed(state, shadow)
        return []
    return _shadow_log(state, shadow, own, positions, records, request_id, at, predictions, seconds)


def _shadow_rows(
    shadow: LoadedModel, model: LoadedModel, batch: ValidatedBatch, records: Sequence[Any]
) -> tuple[ValidatedBatch, list[int]]:
    """The shadow's own validated rows of a request, and their positions in it."""
    if (shadow.features == model.features and shadow.columns == model.columns
            and shadow.text_column == model.text_column):
        return batch, list(batch.valid_index)
    subset = [records[i] for i in batch.valid_index]
    own = shadow.validate(subset)
    return own, [batch.valid_index[i] for i in own.valid_index]


def _shadow_failed(state: ServerState, shadow: LoadedModel) -> None:
    state.metrics.observe_scoring_error(shadow.version, "shadow")
    logger.warning("shadow version %s failed:\n%s", shadow.version, traceback.format_exc())


def _shadow_log(
    state: ServerState,
    shadow: LoadedModel,
    own: ValidatedBatch,
    positions: list[int],
    records: Sequence[Any],
    request_id: str,
    at: Any,
    predictions: list[Prediction],
    seconds: float,
) -> list[LogEntry]:
    state.metrics.observe_predictions(shadow.version, "shadow", len(predictions), seconds)
    latency_ms = seconds * 1000.0
    return [
        LogEntry(new_prediction_id(), at, shadow.version, "shadow", request_id, _inputs(records[pos]),
                 p.prediction, p.probabilities, p.confidence, latency_ms, list(own.flags[i]))
        for i, (pos, p) in enumerate(zip(positions, predictions))
    ]


def _inputs(record: Any) -> dict[str, Any]:
    return record if isinstance(record, dict) else {"value": record}


async def score_async(state: ServerState, records: Sequence[Any], request_id: str, size: int = 0) -> Scored:
    """:func:`score`, in a worker thread for more than :data:`THREAD_THRESHOLD` records or a
    body (of ``size`` bytes) over :data:`INLINE_BODY_BYTES`; through the gatherer
    (:mod:`assay.serve.gather`) when a served model prefers batches."""
    routing = state.runtime.routing
    champion, challenger = routing.champion, routing.challenger
    if champion is not None and (champion.prefers_batches
                                 or (challenger is not None and challenger.prefers_batches)):
        return await _score_gathered(state, records, request_id, size)
    if len(records) > THREAD_THRESHOLD or size > INLINE_BODY_BYTES:
        return await run_in_threadpool(score, state, records, request_id)
    return score(state, records, request_id)


async def _score_gathered(
    state: ServerState, records: Sequence[Any], request_id: str, size: int
) -> Scored:
    """:func:`score` for a routing where a model prefers batches: each model's rows are scored
    by :attr:`ServerState.gatherer` (off the event loop, with other requests' rows when the
    model prefers batches), the shadow's beside the answer's; admission and the log as in
    :func:`score`."""
    if len(records) > THREAD_THRESHOLD or size > INLINE_BODY_BYTES:
        model, route, shadow, batch, at = await run_in_threadpool(admit, state, records)
    else:
        model, route, shadow, batch, at = admit(state, records)
    shadowing = None
    if shadow is not None:
        shadowing = asyncio.ensure_future(
            _shadow_gathered(state, shadow, model, batch, records, request_id, at))
    start = time.perf_counter()
    try:
        predictions = await state.gatherer.predict(model, batch.records)
    except Exception:
        state.metrics.observe_scoring_error(model.version, route)
        if shadowing is not None:
            shadowing.cancel()
        raise
    seconds = time.perf_counter() - start
    extra = await shadowing if shadowing is not None else []
    return answered(state, model, route, shadow, batch, records, request_id, at, predictions,
                    seconds, extra)


async def _shadow_gathered(
    state: ServerState,
    shadow: LoadedModel,
    model: LoadedModel,
    batch: ValidatedBatch,
    records: Sequence[Any],
    request_id: str,
    at: Any,
) -> list[LogEntry]:
    try:
        own, positions = _shadow_rows(shadow, model, batch, records)
        if not positions:
            return []
        start = time.perf_counter()
        predictions = await state.gatherer.predict(shadow, own.records)
        seconds = time.perf_counter() - start
    except Exception:  # noqa: BLE001 - counted and logged; the answer must not fail
        _shadow_failed(state, shadow)
        return []
    return _shadow_log(state, shadow, own, positions, records, request_id, at, predictions, seconds)


async def offload(size: int, func: Callable[..., _T], *args: Any) -> _T:
    """``func(*args)``: inline for a body of ``size`` bytes up to :data:`INLINE_BODY_BYTES`,
    else in a worker thread, so parsing a large body never holds the event loop."""
    if size > INLINE_BODY_BYTES:
        return await run_in_threadpool(func, *args)
    return func(*args)


def refused(batch: ValidatedBatch) -> RequestError:
    details = [{"index": e.index, "field": e.field, "reason": e.reason, "code": e.code} for e in batch.errors]
    shown = "; ".join(
        f"record {e.index}" + (f" field '{e.field}'" if e.field and e.field != "(record)" else "")
        + f": {e.reason}" for e in batch.errors[:3]
    )
    more = f" (and {len(batch.errors) - 3} more)" if len(batch.errors) > 3 else ""
    records = len({e.index for e in batch.errors})
    return RequestError(
        422, "invalid_records",
        f"{records} record(s) refused, nothing was scored: {shown}{more}. Fix these fields and send again.",
        details,
    )


def not_ready(state: ServerState) -> RequestError:
    reason = getattr(state.runtime, "last_error", None)
    message = "no verified champion model is loaded yet"
    if reason:
        message += f" (last error: {reason})"
    return RequestError(503, "not_ready", message + "; promote a version with `assay promote VERSION`.",
                        [{"last_error": str(reason)}] if reason else [])


def authorize(state: ServerState, header: str | None, scope: str | tuple[str, ...]) -> str:
    """The acting token's name, given the ``Authorization`` header's value; 401 without a
    valid token, 403 without ``scope`` (a tuple: without any of its scopes; the first is the
    one the error suggests); ``anonymous`` when auth is off."""
    accepted = (scope,) if isinstance(scope, str) else tuple(scope)
    scope = accepted[0]
    verifier = state.verifier
    if verifier is None:
        return "anonymous"
    challenge = {"WWW-Authenticate": "Bearer"}
    if not header:
        raise RequestError(
            401, "unauthorized",
            "missing 'Authorization: Bearer <token>' header; create a token with "
            f"`assay token create NAME --scope {scope}`.", headers=challenge,
        )
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise RequestError(
            401, "unauthorized",
            f"the Authorization header must be 'Bearer <token>'; got a '{proto._clip(scheme, 20)}' header.",
            headers=challenge,
        )
    info = verifier.verify(token)
    if info is None:
        raise RequestError(
            401, "invalid_token",
            "the token is unknown or revoked; check it, or create a new one with "
            f"`assay token create NAME --scope {scope}`.", headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )
    if not any(info.allows(s) for s in accepted):
        needed = " or ".join(f"'{s}'" for s in accepted)
        raise RequestError(
            403, "forbidden",
            f"token '{info.name}' lacks the {needed} scope (it has: {', '.join(info.scopes) or 'none'}); "
            f"create one with `assay token create NAME --scope {scope}`.",
            [{"token": info.name, "required": scope, "scopes": list(info.scopes)}],
        )
    return info.name


async def read_body(
    chunks: AsyncIterable[bytes], declared: str | None, limit: int, timeout: float | None = None
) -> bytes:
    """The body from its ``chunks``, refused (413) once it passes ``limit`` bytes, or at once
    when the declared ``Content-Length`` does; 408 when it has not all arrived after
    ``timeout`` seconds."""
    length = proto.ascii_int(declared)
    if length is not None and length > limit:
        raise too_large(limit, length)
    if timeout is None:
        return await _collect(chunks, limit)
    try:
        async with asyncio.timeout(timeout):
            return await _collect(chunks, limit)
    except TimeoutError:
        raise body_timeout(timeout) from None


async def _collect(chunks: AsyncIterable[bytes], limit: int) -> bytes:
    parts: list[bytes] = []
    size = 0
    async for chunk in chunks:
        size += len(chunk)
        if size > limit:
            raise too_large(limit, size, streamed=True)
        parts.append(chunk)
    return b"".join(parts)


def too_large(limit: int, got: int, *, streamed: bool = False) -> RequestError:
    """The 413 of a body over ``limit`` bytes (``got``: declared, or read so far if ``streamed``)."""
    return proto.limit_error(
        "body_too_large", "the request body is larger than allowed (bytes)", "max_body_bytes", limit,
        got, ("at least that many were sent; " if streamed else "")
        + "send fewer records per request, or use `assay predict` for files",
    )


def body_timeout(seconds: float) -> RequestError:
    """The 408 of a body that did not arrive within ``seconds`` (the connection is closed)."""
    return RequestError(
        408, "body_timeout",
        f"the request body did not arrive within {seconds:g} s of its headers (limit "
        f"body_timeout={seconds:g}); send the whole body at once (the server sets the limit with "
        "`assay serve --body-timeout`).",
        [{"limit": seconds, "name": "body_timeout"}],
        headers={"Connection": "close"},
    )


def request_id_of(given: str | None) -> str:
    """The client's ``X-Request-ID`` when it is well-formed, else a fresh id."""
    return given if given and _REQUEST_ID.match(given) else new_prediction_id()


async def answer_predict(state: ServerState, head: PredictHead, chunks: AsyncIterable[bytes]) -> Answer:
    """``POST /v1/predict``: one prediction per record with its id, or the error answer."""
    try:
        authorize(state, head.authorization, "predict")
        proto.check_content_type(head.content_type)
        limits = state.limits
        body = await read_body(chunks, head.content_length, limits.max_body_bytes, limits.body_timeout)
        records = await offload(len(body), _predict_records, state, body)
        request_id = request_id_of(head.request_id)
        scored = await score_async(state, records, request_id, len(body))
    except RequestError as exc:
        return Answer.of_error(exc)
    version = scored.model.version
    warnings = scored.warnings or tuple(() for _ in scored.ids)
    out = [
        {"id": pid, "prediction": p.prediction, "probabilities": p.probabilities,
         "confidence": p.confidence, "version": version, "flags": list(f), "warnings": list(w)}
        for pid, p, f, w in zip(scored.ids, scored.predictions, scored.flags, warnings)
    ]
    return Answer(200, proto.dumps({"request_id": request_id, "predictions": out}),
                  {"X-Request-ID": request_id})


def _predict_records(state: ServerState, body: bytes) -> list[Any]:
    limit = state.limits.max_records
    payload = proto.parse_json(body, proto.json_values_limit(limit, max_fields(state)))
    return proto.parse_records(payload, max_records=limit)
