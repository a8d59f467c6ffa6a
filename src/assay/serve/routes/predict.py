"""assay's own routes: predictions and the true labels sent back for them."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from sqlalchemy.exc import OperationalError
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from assay.serve import protocols as proto
from assay.serve import web
from assay.serve.log import LabelConflict, LabelError, record_feedback_items
from assay.serve.protocols import RequestError
from assay.serve.scoring import answer_predict, offload
from assay.serve.state import ServerState

logger = logging.getLogger("assay.serve")

__all__ = ["add_predict_routes"]


def add_predict_routes(app: FastAPI, state: ServerState) -> None:
    """``POST /v1/predict`` (documented here; the raw-ASGI lane answers it first) and ``POST /v1/feedback``."""
    secured = web.security(state)
    errors = web.error_docs()

    @app.post(
        "/v1/predict",
        summary="Predict records",
        description="Score each record with the champion (or the canary challenger); every prediction "
        "is logged before the answer. Records that cannot be scored refuse the whole request with 422 "
        "naming index, field and reason; unknown categories and out-of-range values are answered and flagged.",
        tags=["predict"],
        response_class=Response,
        openapi_extra={
            "requestBody": web.body_doc("#/components/schemas/PredictRequest"),
            "responses": {"200": web.ok_doc("#/components/schemas/PredictResponse"), **errors},
            "security": secured,
        },
    )
    async def predict(request: Request) -> Response:
        # the lane (assay.serve.lane) answers this path first; this route documents it and
        # answers when the app runs without the lane
        answer = await answer_predict(state, web.predict_head(request), request.stream())
        return web.respond(request, answer)

    @app.post(
        "/v1/feedback",
        summary="Send true labels",
        description="Attach the true label to logged predictions: each item names its prediction by `id` (the "
        "prediction id /v1/predict or `assay predict` returned) or by `key` (the value of the declared `data.id` "
        "column the scored record carried; it labels every answered prediction of that record). "
        "Ids of no logged prediction are listed in `unknown_ids`, keys no logged record carried in `unknown_keys`; "
        "neither is stored. A label must be one of the "
        "model's classes (classification) or a finite number (regression), else 422 naming the item and "
        "the allowed values. A prediction has one label: sending the same one again changes nothing "
        "(`unchanged`), a different one is 409 unless the query has `overwrite=true` (recorded in the audit "
        "trail). Nothing is stored when any label is refused.",
        tags=["predict"],
        response_class=Response,
        openapi_extra={
            "requestBody": web.body_doc("#/components/schemas/FeedbackRequest"),
            "responses": {"200": web.ok_doc("#/components/schemas/FeedbackResponse"), **errors},
            "security": secured,
        },
    )
    async def feedback(request: Request) -> Response:
        try:
            actor = web.authorized(state, request, "feedback")
            proto.check_content_type(request.headers.get("content-type"))
            body = await web.body_of(state, request)
            items = await offload(len(body), _feedback_items, state, body)
            overwrite = _overwrite_flag(request.query_params.get("overwrite"))
            result = await run_in_threadpool(
                lambda: record_feedback_items(
                    state.registry.store, items, actor, id_column=state.project.spec.data.id,
                    log=state.log, overwrite=overwrite))
        except RequestError as exc:
            return web.error_response(request, exc)
        except LabelError as exc:
            problems = [{k: p.get(k) for k in ("index", "field", "reason", "code", "allowed")}
                        for p in exc.fields.get("problems") or []]
            return web.error_response(request, RequestError(422, "invalid_labels", exc.render(), problems))
        except LabelConflict as exc:
            return web.error_response(request, RequestError(409, "label_conflict", exc.render(),
                                                exc.fields.get("conflicts") or []))
        except OperationalError as exc:  # the store cannot be written (a full disk, a lock held too long)
            logger.error("feedback not stored: %s", exc)
            return web.error_response(request, RequestError(
                503, "store_unavailable", "the labels could not be stored (the store cannot be written "
                "now); nothing was stored. Retry later.", headers={"Retry-After": "5"}))
        return web.json_response(result.to_dict())


def _feedback_items(state: ServerState, body: bytes) -> list[tuple[str | None, str | int | None, Any]]:
    # a label is {"id" | "key": ..., "label": ...}: a few values each, plus the envelope
    payload = proto.parse_json(body, proto.json_values_limit(state.max_records, 4))
    return [(item.id, item.key, item.label)
            for item in proto.parse_feedback_items(payload, max_labels=state.max_records)]


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
