"""Wire formats: assay's body, MLflow's four JSON formats and CSV, OIP v2 tensors (JSON and binary)."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
import pytest

from assay.serve import protocols as proto
from assay.serve.protocols import RequestError

FEATURES = ["age", "plan", "active"]
ROWS = [{"age": 31, "plan": "basic", "active": True}, {"age": 45.5, "plan": "pro", "active": False}]


def _refused(call: Any, status: int, code: str, match: str) -> RequestError:
    with pytest.raises(RequestError, match=match) as info:
        call()
    assert (info.value.status, info.value.code) == (status, code)
    body = info.value.to_dict()
    assert set(body) == {"error", "message", "details"} and body["error"] == code
    return info.value


# -- assay's own body -------------------------------------------------------------------------


def test_records_are_returned_as_sent() -> None:
    assert proto.parse_records(proto.parse_json(orjson.dumps({"records": ROWS}))) == ROWS


@pytest.mark.parametrize(
    ("body", "status", "code", "match"),
    [
        (b"", 422, "empty_body", "body is empty"),
        (b"{\"records\": [", 422, "invalid_json", "not valid JSON .*unexpected end"),
        (b"{\"records\": [{\"age\": 1e400}]}", 422, "invalid_json", "infinity"),
        (b"{\"records\": [{\"age\": NaN}]}", 422, "invalid_json", "no NaN or Infinity"),
        (b"\xff\xfe", 422, "invalid_json", "not valid JSON"),
    ],
)
def test_bodies_that_are_not_json(body: bytes, status: int, code: str, match: str) -> None:
    _refused(lambda: proto.parse_json(body), status, code, match)


@pytest.mark.parametrize(
    ("payload", "status", "code", "match"),
    [
        ([1, 2], 422, "invalid_body", "expected a JSON object with a 'records' list.*got a list"),
        ({"rows": []}, 422, "invalid_body", "no 'records' key.*got keys: 'rows'"),
        ({"records": {"age": 1}}, 422, "invalid_body", "'records' must be a list.*got an object"),
        ({"records": []}, 422, "empty_records", "'records' is empty"),
        ({"records": ROWS, "extra": 1}, 422, "invalid_body", "unknown key\\(s\\) 'extra'"),
        ({"records": [{}] * 11}, 413, "too_many_records", "more than the 10 records.*got 11"),
    ],
)
def test_malformed_predict_bodies(payload: Any, status: int, code: str, match: str) -> None:
    _refused(lambda: proto.parse_records(payload, max_records=10), status, code, match)


def test_content_type_json_csv_and_refusals() -> None:
    assert proto.check_content_type(None) == "application/json"
    assert proto.check_content_type("application/json; charset=utf-8") == "application/json"
    assert proto.check_content_type("application/vnd.api+json") == "application/vnd.api+json"
    assert proto.check_content_type("text/csv", ("application/json", "text/csv")) == "text/csv"
    error = _refused(lambda: proto.check_content_type("text/plain"), 415, "unsupported_media_type",
                     "Content-Type 'text/plain' is not accepted here; send the body as application/json")
    assert error.details == [{"received": "text/plain", "accepted": ["application/json"]}]


def test_feedback_pairs_and_item_errors() -> None:
    payload = {"labels": [{"id": "a1", "label": 1}, {"id": "b2", "label": "yes"}, {"id": "c3", "label": None}]}
    assert proto.parse_feedback(payload) == [("a1", 1), ("b2", "yes"), ("c3", None)]
    bad = {"labels": [{"id": 5, "label": 1}, {"id": "x"}, {"id": "y", "label": {"a": 1}}, "z"]}
    error = _refused(lambda: proto.parse_feedback(bad), 422, "invalid_labels", "4 problem\\(s\\): label 0 field 'id'")
    assert [(d["index"], d["field"], d["code"]) for d in error.details] == [
        (0, "id", "type"), (1, "label", "missing"), (2, "label", "type"), (3, "", "not_an_object")]


# -- MLflow -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    [
        {"dataframe_split": {"columns": FEATURES, "data": [[31, "basic", True], [45.5, "pro", False]]}},
        {"dataframe_split": {"index": [7, 8], "columns": FEATURES,
                             "data": [[31, "basic", True], [45.5, "pro", False]]}},
        {"dataframe_records": ROWS},
        {"instances": ROWS},
        {"instances": [[31, "basic", True], [45.5, "pro", False]]},
        {"inputs": {"age": [31, 45.5], "plan": ["basic", "pro"], "active": [True, False]}},
        {"inputs": ROWS, "params": {"threshold": 0.5}},
    ],
    ids=["split", "split-index", "records", "instances", "instance-rows", "inputs-columnar", "inputs-params"],
)
def test_every_mlflow_format_gives_the_same_records(payload: dict[str, Any]) -> None:
    assert proto.parse_mlflow(payload, FEATURES) == ROWS


def test_mlflow_single_feature_scalars() -> None:
    assert proto.parse_mlflow({"instances": [1.5, 2]}, ["x"]) == [{"x": 1.5}, {"x": 2}]


@pytest.mark.parametrize(
    ("payload", "status", "code", "match"),
    [
        ({"records": ROWS}, 422, "invalid_body", "exactly one of the keys dataframe_split.*got keys: 'records'"),
        ({"instances": ROWS, "inputs": ROWS}, 422, "invalid_body", "exactly one of the keys"),
        ({"dataframe_split": {"data": [[1]]}}, 422, "invalid_body", "must be an object .*columns"),
        ({"dataframe_split": {"columns": FEATURES, "data": [[1, "a"]]}}, 422, "invalid_records",
         "record 0: expected a list of 3 values .*got 2 values"),
        ({"instances": [[1, "a"]]}, 422, "invalid_records", "a row in feature order needs 3 values"),
        ({"inputs": {"age": [1, 2], "plan": ["a"]}}, 422, "invalid_body", "all of the same length"),
        ({"inputs": {"age": [], "plan": []}}, 422, "empty_records", "columns of 'inputs' are empty"),
        ({"dataframe_records": []}, 422, "empty_records", "'dataframe_records' is empty"),
        ({"instances": [{}] * 3}, 413, "too_many_records", "more than the 2 records"),
    ],
)
def test_malformed_mlflow_bodies(payload: Any, status: int, code: str, match: str) -> None:
    _refused(lambda: proto.parse_mlflow(payload, FEATURES, max_records=2), status, code, match)


def test_mlflow_csv() -> None:
    body = b"age,plan,active\n31,basic,true\n45.5,pro,false\n"
    assert proto.parse_csv(body) == [{"age": 31.0, "plan": "basic", "active": True},
                                     {"age": 45.5, "plan": "pro", "active": False}]
    _refused(lambda: proto.parse_csv(b"a\n1\n2\n3\n", max_records=2), 413, "too_many_records", "more than the 2")
    _refused(lambda: proto.parse_csv(b""), 422, "invalid_csv", "cannot be read")


# -- OIP v2 -----------------------------------------------------------------------------------


def _oip(inputs: list[dict[str, Any]], **extra: Any) -> bytes:
    return orjson.dumps({"inputs": inputs, **extra})


def test_oip_json_tensors_become_records() -> None:
    body = _oip([
        {"name": "age", "shape": [2], "datatype": "FP64", "data": [31, 45.5]},
        {"name": "plan", "shape": [2, 1], "datatype": "BYTES", "data": [["basic"], ["pro"]]},
        {"name": "active", "shape": [2], "datatype": "BOOL", "data": [True, False]},
    ], id="req-1", outputs=[{"name": "prediction"}])
    parsed = proto.parse_oip_infer(body)
    assert parsed.records == ROWS
    assert parsed.id == "req-1" and parsed.outputs == ("prediction",)
    assert proto.OipRequest.from_dict(parsed.to_dict()) == parsed


def _binary_tensors() -> tuple[bytes, int]:
    ages = np.array([31, 45.5], dtype="<f8").tobytes()
    plans = b"".join(struct.pack("<I", len(s)) + s for s in (b"basic", b"pro"))
    active = np.array([True, False], dtype="?").tobytes()
    header = _oip([
        {"name": "age", "shape": [2], "datatype": "FP64", "parameters": {"binary_data_size": len(ages)}},
        {"name": "plan", "shape": [2], "datatype": "BYTES", "parameters": {"binary_data_size": len(plans)}},
        {"name": "active", "shape": [2], "datatype": "BOOL", "parameters": {"binary_data_size": len(active)}},
    ])
    return header + ages + plans + active, len(header)


def test_oip_binary_tensor_extension() -> None:
    body, length = _binary_tensors()
    assert proto.parse_oip_infer(body, header_length=length).records == ROWS


@pytest.mark.parametrize(
    ("inputs", "match"),
    [
        ([{"name": "age", "shape": [2], "datatype": "FP64", "data": [1.0]}], "holds 2 values but 'data' has 1"),
        ([{"name": "age", "shape": [1, 2], "datatype": "FP64", "data": [1.0, 2.0]}], "shape must be \\[N\\] or"),
        ([{"name": "age", "shape": [1], "datatype": "DOUBLE", "data": [1.0]}], "datatype must be one of BOOL"),
        ([{"name": "age", "shape": [1], "datatype": "FP64", "data": [1.0]},
          {"name": "plan", "shape": [2], "datatype": "BYTES", "data": ["a", "b"]}], "same first dimension"),
        ([{"name": "age", "shape": [1], "datatype": "FP64", "data": [1.0]},
          {"name": "age", "shape": [1], "datatype": "FP64", "data": [1.0]}], "given twice"),
        ([{"name": "age", "shape": [1], "datatype": "FP64", "data": [{"x": 1}]}], "nested\\) list of scalars"),
        ([{"name": "age", "shape": [1], "datatype": "FP64"}], "has no 'data'"),
        ([{"shape": [1], "datatype": "FP64", "data": [1]}], "'name' must be the feature name"),
    ],
)
def test_malformed_oip_tensors(inputs: list[dict[str, Any]], match: str) -> None:
    _refused(lambda: proto.parse_oip_infer(_oip(inputs)), 422, "invalid_tensor", match)


def test_oip_body_level_refusals() -> None:
    _refused(lambda: proto.parse_oip_infer(b'{"x": 1}'), 422, "invalid_body", "expected an OIP v2 inference request")
    _refused(lambda: proto.parse_oip_infer(_oip([])), 422, "empty_records", "'inputs' is empty")
    zero = _oip([{"name": "age", "shape": [0], "datatype": "FP64", "data": []}])
    _refused(lambda: proto.parse_oip_infer(zero), 422, "empty_records", "no rows")
    big = _oip([{"name": "age", "shape": [3], "datatype": "FP64", "data": [1, 2, 3]}])
    _refused(lambda: proto.parse_oip_infer(big, max_records=2), 413, "too_many_records", "more than the 2")
    body, length = _binary_tensors()
    _refused(lambda: proto.parse_oip_infer(body, header_length=len(body) + 5), 422, "invalid_body",
             "Inference-Header-Content-Length is")
    _refused(lambda: proto.parse_oip_infer(body[:-1], header_length=length), 422, "invalid_tensor",
             "binary_data_size 2 does not fit")


@dataclass(frozen=True)
class _Pred:
    prediction: Any
    probabilities: dict[str, float] | None
    confidence: float | None


def test_oip_response_and_metadata() -> None:
    preds = [_Pred(1, {"0": 0.2, "1": 0.8}, 0.8), _Pred(0, {"0": 0.9, "1": 0.1}, 0.9)]
    body = proto.oip_infer_response("churn", 3, "req-1", predictions=preds, ids=["a", "b"], task="binary",
                                    classes=[0, 1])
    outputs = {o["name"]: o for o in body["outputs"]}
    assert body["model_name"] == "churn" and body["model_version"] == "3" and body["id"] == "req-1"
    assert outputs["prediction"] == {"name": "prediction", "datatype": "INT64", "shape": [2], "data": [1, 0]}
    assert outputs["probabilities"]["shape"] == [2, 2] and outputs["probabilities"]["data"] == [0.2, 0.8, 0.9, 0.1]
    assert outputs["prediction_id"]["data"] == ["a", "b"]
    only = proto.oip_infer_response("churn", 3, None, predictions=preds, ids=["a", "b"], task="binary",
                                    classes=[0, 1], outputs=["prediction"])
    assert [o["name"] for o in only["outputs"]] == ["prediction"] and "id" not in only
    _refused(lambda: proto.oip_infer_response("m", 1, None, predictions=preds, ids=["a", "b"], task="binary",
                                              classes=[0, 1], outputs=["logits"]),
             422, "unknown_output", "unknown output\\(s\\) 'logits'; this model has: prediction, probabilities")
    meta = proto.oip_model_metadata("churn", 3, task="regression", features=FEATURES,
                                    kinds={"age": "numeric", "plan": "categorical", "active": "boolean"},
                                    classes=None)
    assert [(i["name"], i["datatype"]) for i in meta["inputs"]] == [("age", "FP64"), ("plan", "BYTES"),
                                                                    ("active", "BOOL")]
    assert [o["name"] for o in meta["outputs"]] == ["prediction", "prediction_id"]
    assert meta["outputs"][0]["datatype"] == "FP64" and meta["versions"] == ["3"]
    assert proto.label_datatype("multiclass", ["a", "b"]) == "BYTES"
    assert proto.label_datatype("binary", [False, True]) == "BOOL"


def test_dumps_handles_numpy_and_nan() -> None:
    assert orjson.loads(proto.dumps({"a": np.float64(0.5), "b": np.int64(3), "c": float("nan")})) == {
        "a": 0.5, "b": 3, "c": None}
