"""Request limits: refused before the work they bound, with 413 naming the limit and the value."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from assay.errors import ConfigError
from assay.serve import protocols as proto
from assay.serve.app import create_app
from assay.serve.protocols import RequestError, RequestLimits
from assay.serve.scoring import read_body

from .conftest import ServingProject


def _refused(call: Any, status: int, code: str, match: str) -> RequestError:
    with pytest.raises(RequestError, match=match) as info:
        call()
    assert (info.value.status, info.value.code) == (status, code)
    assert set(info.value.to_dict()) == {"error", "message", "details"}
    return info.value


@pytest.mark.parametrize(("value", "expected"), [
    ("12", 12), ("0", 0), ("²", None), ("١٢", None), ("+1", None), ("-1", None), (" 1", None),
    ("1.0", None), ("", None), (None, None), ("9" * 19, None),
])
def test_ascii_int_reads_ascii_digits_only(value: str | None, expected: int | None) -> None:
    assert proto.ascii_int(value) == expected


def test_record_limits_name_the_limit_and_the_value() -> None:
    wide = [{"a": 1}, {f"k{i}": i for i in range(11)}]
    error = _refused(lambda: proto.check_records(wide, 10, 100), 413, "too_many_fields",
                     "record 1 has too many fields: got 11, over the limit max_fields=10")
    assert error.details == [{"limit": 10, "name": "max_fields", "received": 11, "index": 1}]
    assert "assay serve --extra-fields" in error.message
    _refused(lambda: proto.check_records([{"a": "x" * 101}], 10, 100), 413, "string_too_long",
             "field 'a': the value is too long .*got 101, over the limit max_string_length=100")
    _refused(lambda: proto.check_records([{"k" * 101: 1}], 10, 100), 413, "string_too_long",
             "the field name is too long")
    proto.check_records([{"a": "x" * 100, "b": [1] * 500}, "not a record"], 2, 100)


def test_csv_header_columns_are_counted_on_the_bytes() -> None:
    assert proto.csv_header_columns(b"a,b,c\n1,2,3\n") == 3
    assert proto.csv_header_columns(b'"a,1","b ""x,y""",c\n1,2,3') == 3
    assert proto.csv_header_columns(b"only") == 1
    header = ",".join(f"c{i}" for i in range(700_000)).encode() + b"\n1\n"
    _refused(lambda: proto.parse_csv(header, max_columns=30), 413, "too_many_columns",
             "the CSV header line has too many columns: got 700,000, over the limit max_columns=30")
    assert proto.parse_csv(b"a,b\n1,x\n", max_columns=2) == [{"a": 1, "b": "x"}]
    # a newline inside quotes does not end the header: its columns are all counted
    hidden = b'"x\ny",' + ",".join(f"c{i}" for i in range(100)).encode() + b"\n1\n"
    _refused(lambda: proto.parse_csv(hidden, max_columns=30), 413, "too_many_columns", "got 101,")
    assert proto.csv_record_fields(b'a,"b\n,c"\n1,2\n') == (2, 9)
    # a first record longer than the header would become a pandas index of one level per value
    long_row = b"a,b,c\n" + b",".join([b"1"] * 700_000) + b"\n"
    _refused(lambda: proto.parse_csv(long_row, max_columns=30), 422, "invalid_csv",
             "more values than the 3 columns its header names")


def test_json_values_are_counted_before_decoding() -> None:
    keys = orjson.dumps({"records": [{f"k{i}": 1 for i in range(5000)}]})
    _refused(lambda: proto.parse_json(keys, max_values=1000), 413, "too_many_values",
             "too many values .*over the limit max_values=1,000")
    # commas and colons inside strings are not values: counted exactly once over the cheap bound
    text = orjson.dumps({"records": [{"t": "a,b:c," * 2000, "d": "2024-01-01T00:00:00"}]})
    assert proto.parse_json(text, max_values=20)["records"][0]["d"] == "2024-01-01T00:00:00"
    escaped = b'{"records": [{"t": "q\\",:,:,:,:,:,:,:,:"}]}'
    assert proto.parse_json(escaped, max_values=3) == {"records": [{"t": 'q",:,:,:,:,:,:,:,:'}]}
    assert proto.json_values_limit(1000, 36) == 72_256


def test_mlflow_and_oip_columns_are_counted_before_rows_are_built() -> None:
    split = {"dataframe_split": {"columns": [f"c{i}" for i in range(50)], "data": [[0] * 50]}}
    _refused(lambda: proto.parse_mlflow(split, ["c0"], max_fields=10), 413, "too_many_columns",
             "'dataframe_split.columns' has too many columns: got 50")
    columnar = {"inputs": {f"c{i}": [1] for i in range(50)}}
    _refused(lambda: proto.parse_mlflow(columnar, ["c0"], max_fields=10), 413, "too_many_columns",
             "'inputs' \\(an object of columns\\) has too many columns: got 50")
    tensors = orjson.dumps({"inputs": [{"name": f"c{i}", "shape": [1], "datatype": "FP64", "data": [1]}
                                       for i in range(50)]})
    _refused(lambda: proto.parse_oip_infer(tensors, max_fields=10), 413, "too_many_columns",
             "'inputs' \\(one tensor per feature\\) has too many columns: got 50")
    rows = orjson.dumps({"inputs": [{"name": "a", "shape": [5000], "datatype": "BYTES",
                                     "parameters": {"binary_data_size": 4}}]})
    _refused(lambda: proto.parse_oip_infer(rows + b"\0\0\0\0", header_length=len(rows), max_records=10),
             413, "too_many_records", "got 5,000")


def test_limits_from_the_environment() -> None:
    limits = RequestLimits(max_records=5, extra_fields=0, body_timeout=1.5)
    assert RequestLimits.from_env(limits.to_env()) == limits
    assert RequestLimits.from_env({}) == RequestLimits()
    with pytest.raises(ConfigError, match="ASSAY_SERVE_MAX_RECORDS: a request limit .* got many"):
        RequestLimits.from_env({"ASSAY_SERVE_MAX_RECORDS": "many"})
    with pytest.raises(ConfigError, match="ASSAY_SERVE_BODY_TIMEOUT"):
        RequestLimits.from_env({"ASSAY_SERVE_BODY_TIMEOUT": "-1"})


def test_read_body_deadline_and_declared_length() -> None:
    async def slow() -> AsyncIterator[bytes]:
        yield b"{"
        await asyncio.sleep(5)
        yield b"}"

    with pytest.raises(RequestError, match="did not arrive within 0.05 s .*body_timeout=0.05") as info:
        asyncio.run(read_body(slow(), None, 100, timeout=0.05))
    assert info.value.status == 408 and info.value.headers == {"Connection": "close"}

    async def one() -> AsyncIterator[bytes]:
        yield b"x" * 10

    assert asyncio.run(read_body(one(), "²", 100, timeout=1.0)) == b"x" * 10  # the parser's length rules
    with pytest.raises(RequestError, match="got 101, over the limit max_body_bytes=100"):
        asyncio.run(read_body(one(), "101", 100))


# -- in the app ---------------------------------------------------------------------------------


@pytest.fixture
def client(serving_project: ServingProject, tmp_path: Path) -> Iterator[tuple[TestClient, ServingProject]]:
    limits = RequestLimits(extra_fields=3, max_string_length=50)
    app = create_app(serving_project.project, auth=False, wal_dir=tmp_path / "wal", limits=limits)
    with TestClient(app) as test_client:
        yield test_client, serving_project


def test_every_endpoint_holds_the_limits(client: tuple[TestClient, ServingProject]) -> None:
    http, sp = client
    record = sp.records(1)[0]
    # 7 features + the declared target 'y' (a record may carry it) + 3 allowed
    wide = {**record, **{f"extra{i}": 1 for i in range(5)}}
    for path, body in (("/v1/predict", {"records": [wide]}), ("/invocations", {"instances": [wide]})):
        response = http.post(path, json=body)
        assert response.status_code == 413, response.text
        assert response.json()["error"] == "too_many_fields"
        assert "got 12, over the limit max_fields=11" in response.json()["message"]
    assert http.post("/v1/predict", json={"records": [{**record, "extra": 1}]}).status_code == 200
    carried = http.post("/v1/predict", json={"records": [{**record, "y": 1, "extra0": 1, "extra1": 1,
                                                          "extra2": 1}]})
    assert carried.status_code == 200 and carried.json()["predictions"][0]["flags"] == ["unknown_field"]
    long = http.post("/v1/predict", json={"records": [{**record, "plan": "p" * 51}]})
    assert long.status_code == 413 and "got 51, over the limit max_string_length=50" in long.json()["message"]
    csv = ",".join(f"c{i}" for i in range(12)).encode() + b"\n" + b",".join([b"1"] * 12) + b"\n"
    refused = http.post("/invocations", content=csv, headers={"Content-Type": "text/csv"})
    assert refused.status_code == 413 and refused.json()["error"] == "too_many_columns"
    name = sp.project.root.name
    for header in (b"\xb2", "²".encode(), b"12a", b"-5"):  # '²' in Latin-1 and in UTF-8
        bad = http.post(f"/v2/models/{name}/infer", content=b"{}",
                        headers={"Inference-Header-Content-Length": header})
        assert bad.status_code == 400 and bad.json()["error"] == "invalid_header", bad.text
        assert "digits 0-9" in bad.json()["message"]


def test_feedback_bodies_are_bounded_before_decoding(client: tuple[TestClient, ServingProject]) -> None:
    http, _ = client
    flood = b'{"labels": [' + b",".join(b'{"prediction_id": "p", "label": 1}' for _ in range(9000)) + b"]}"
    refused = http.post("/v1/feedback", content=flood, headers={"Content-Type": "application/json"})
    assert refused.status_code == 413, refused.text
    assert refused.json()["error"] == "too_many_values"


def test_openapi_shows_no_training_values(client: tuple[TestClient, ServingProject]) -> None:
    http, sp = client
    text = http.get("/openapi.json").text
    doc = orjson.loads(text)
    for level in ("basic", "pro", "team", "north", "south", "east", "west"):
        assert f'"{level}"' not in text, level
    columns = {c.name: c for c in http.app.state.assay.runtime.routing.champion.columns}  # type: ignore[attr-defined]
    for name in ("x1", "x2", "count"):
        for bound in (columns[name].min, columns[name].max):
            assert str(bound) not in text and str(round(float(bound), 3)) not in text
    example = doc["components"]["schemas"]["PredictRequest"]["example"]["records"][0]
    assert example == {"x1": 0.5, "x2": 0.5, "count": 1, "plan": "text", "region": "text", "active": True,
                       "signup": "2024-01-01T00:00:00Z"}
    record = doc["components"]["schemas"]["Record"]
    assert record["maxProperties"] == 11 and record["properties"]["plan"]["maxLength"] == 50
