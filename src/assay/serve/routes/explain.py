"""``POST /v1/explain``: the champion's predictions with each feature's contribution.

The records are read, limited and validated exactly as ``/v1/predict`` reads them, with
the ``explain`` or the ``predict`` token scope. Each answer carries the prediction and its
contributions, which add up with the base value to the model's output in the space
``output_space`` names (a binary classifier's log-odds, a multiclass classifier's raw
score of the explained class, a forest's probability, a regressor's prediction). Explanations are not logged as
predictions: a label sent back to ``/v1/feedback`` needs a ``/v1/predict`` id.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from assay.errors import AssayError
from assay.model.explained import VersionExplainer
from assay.model.loaded import LoadedModel
from assay.serve import protocols as proto
from assay.serve import web
from assay.serve.protocols import RequestError
from assay.serve.scoring import THREAD_THRESHOLD, max_fields, not_ready, offload, refused
from assay.serve.state import ServerState

__all__ = ["ExplainResponse", "RowContributions", "add_explain_routes"]


class RowContributions(BaseModel):
    """One record's prediction and the contribution of each feature to it."""

    prediction: str | float | int | bool = Field(description="class label or value")
    probabilities: dict[str, float] | None = Field(
        None, description="class -> probability (classification)")
    confidence: float | None = Field(None, description="the largest class probability")
    output: float = Field(description="the model's output that the contributions add up to, "
                          "in output_space")
    output_space: str = Field(description="log_odds (binary: of the second class), raw_score "
                              "(multiclass: of output_class), probability (extra trees: of "
                              "output_class), or prediction (regression)")
    output_class: str | float | int | bool | None = Field(
        None, description="the class whose score is explained (classification)")
    base_value: float = Field(description="the expected output: output = base_value + "
                              "sum(contributions)")
    contributions: dict[str, float] = Field(description="input feature -> its contribution")
    flags: list[str] = Field(default_factory=list,
                             description="answered but flagged: unknown_category, out_of_range, ...")


class ExplainResponse(BaseModel):
    """The answer of ``POST /v1/explain``."""

    request_id: str
    version: int = Field(description="the model version explained (the champion)")
    explanations: list[RowContributions]


class _Explainers:
    """The champion's explainer, built once per loaded version (a swap builds the next)."""

    def __init__(self, state: ServerState) -> None:
        self.state = state
        self._cached: tuple[int, str, VersionExplainer] | None = None

    def of(self, model: LoadedModel) -> VersionExplainer:
        cached = self._cached
        if cached is not None and cached[0] == model.version and cached[1] == model.digest:
            return cached[2]
        try:
            explainer = VersionExplainer.load(self.state.registry, model)
        except AssayError as exc:  # NoExplainer, or a stored explanation that does not read
            raise RequestError(409, "no_explainer", exc.render(),
                               [{"version": model.version, "family": model.family}]) from None
        self._cached = (model.version, model.digest, explainer)
        return explainer


def add_explain_routes(app: FastAPI, state: ServerState) -> None:
    """``POST /v1/explain``."""
    explainers = _Explainers(state)

    @app.post(
        "/v1/explain",
        summary="Explain predictions",
        description="Score each record with the champion and split each prediction into per-feature "
        "contributions: `base_value + sum(contributions) == output`, in the model's output space "
        "(`output_space`: log-odds of the second class for a binary classifier, the raw score of "
        "`output_class` for a multiclass one, the probability of `output_class` for extra trees, the "
        "prediction for a regressor). Exact: tree SHAP for LightGBM and extra trees, coefficient x "
        "(value - training mean) for linear models. The body and the "
        "validation are those of /v1/predict (422 naming index, field and reason); the token needs "
        "the `explain` or the `predict` scope. A champion whose family has no per-row explainer is refused with 409 `no_explainer`. "
        "Explanations are not logged as predictions.",
        tags=["predict"],
        response_class=Response,
        response_model=ExplainResponse,
        openapi_extra={
            "requestBody": web.body_doc("#/components/schemas/PredictRequest"),
            "responses": {
                "200": web.ok_doc("#/components/schemas/ExplainResponse"),
                **web.error_docs(),
                "409": web.error_doc("The champion's model family has no per-row explainer."),
            },
            "security": web.security(state),
        },
    )
    async def explain(request: Request) -> Response:
        try:
            web.authorized(state, request, ("explain", "predict"))
            proto.check_content_type(request.headers.get("content-type"))
            body = await web.body_of(state, request)
            records = await offload(len(body), _records, state, body)
            if len(records) > THREAD_THRESHOLD:
                answer = await run_in_threadpool(_explain, state, explainers, records)
            else:
                answer = _explain(state, explainers, records)
        except RequestError as exc:
            return web.error_response(request, exc)
        return web.json_response({"request_id": web.request_id(request), **answer})


def _records(state: ServerState, body: bytes) -> list[Any]:
    payload = proto.parse_json(body, proto.json_values_limit(state.max_records, max_fields(state)))
    return proto.parse_records(payload, max_records=state.max_records)


def _explain(state: ServerState, explainers: _Explainers, records: list[Any]) -> dict[str, Any]:
    """The champion's explained answers to ``records`` (validated as for a prediction)."""
    model = state.runtime.routing.champion
    if model is None:
        raise not_ready(state)
    proto.check_records(records, max_fields(state), state.limits.max_string_length)
    explainer = explainers.of(model)
    batch = explainer.validate(records)
    if batch.errors:
        raise refused(batch)
    rows = explainer.explain(batch)
    return {
        "version": model.version,
        "explanations": [{**row.to_dict(), "flags": list(flags)}
                         for row, flags in zip(rows, batch.flags)],
    }
