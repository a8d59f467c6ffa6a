"""Text classification served over real HTTP through every protocol, and by ``assay predict``.

The model is a ``tfidf_linear`` classifier trained by ``run_project`` (tests/serve/conftest.py);
the server is ``create_app`` under uvicorn on a loopback port. Every answer is compared with
the registered pipeline's own ``predict_proba`` on the same texts, and every bad text is
answered with a 4xx that names the field ``review``.
"""

from __future__ import annotations

import io
import shutil
import struct
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import pandas as pd
import pytest

from assay.model.loaded import LoadedModel
from assay.model.predictions import read_predictions
from assay.pipeline import open_registry
from assay.project import Project
from assay.serve.protocols import RequestLimits

from .conftest import TextProject
from .textmodels import LiveServer, live_server

TEXTS = [
    "great love friendly staff",
    "rude slow broken order",
    'the staff, "my order" and the service',  # a comma and quotes: CSV must quote it
    "42",  # reads as a number in a CSV; it is still the text "42"
    "excellent ✓ fast — très bien",
]
MAX_STRING = 300
Served = tuple[LiveServer, TextProject]


def _expected(tp: TextProject, texts: list[str]) -> tuple[list[str], np.ndarray]:
    """The registered pipeline's own labels and probabilities (columns neg, pos)."""
    model = tp.registry.load_model(tp.version)
    frame = pd.DataFrame({"review": texts})
    proba = model.predict_proba(frame)
    assert list(model.classes_) == ["neg", "pos"]
    return [str(c) for c in model.predict(frame)], proba


@pytest.fixture(scope="module")
def served(text_template: TextProject,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """One server for the module, over a private copy of the text project."""
    root = tmp_path_factory.mktemp("text-served") / "project"
    shutil.copytree(text_template.root, root)
    project = Project.open(root / "assay.yaml")
    registry = open_registry(project)
    tp = TextProject(project, registry, text_template.version, text_template.frame)
    limits = RequestLimits(max_string_length=MAX_STRING)
    with live_server(project, root / "wal", limits=limits) as server:
        yield server, tp
    registry.store.close()


def test_the_text_column_is_known_to_the_loaded_model(served: Served) -> None:
    server, tp = served
    champion = server.state.runtime.routing.champion
    assert champion.task == "text-classification" and champion.text_column == "review"
    assert champion.fast is None and not champion.prefers_batches  # tfidf: the pipeline, ungathered
    doc = httpx.get(f"{server.url}/openapi.json", timeout=10).json()
    record = doc["components"]["schemas"]["Record"]
    assert record["required"] == ["review"]
    assert record["properties"]["review"]["type"] == "string"
    assert record["properties"]["review"]["minLength"] == 1
    assert record["properties"]["review"]["maxLength"] == MAX_STRING


def test_v1_predict_and_mlflow_formats_answer_as_the_pipeline(served: Served) -> None:
    server, tp = served
    labels, proba = _expected(tp, TEXTS)
    assert labels[:2] == ["pos", "neg"]  # known answers: the sentiment words decide
    body = httpx.post(f"{server.url}/v1/predict", json={"records": [{"review": t} for t in TEXTS]},
                      timeout=10).json()
    got = body["predictions"]
    assert [p["prediction"] for p in got] == labels
    got_proba = [[p["probabilities"]["neg"], p["probabilities"]["pos"]] for p in got]
    np.testing.assert_allclose(got_proba, proba, rtol=0, atol=1e-12)
    assert all(p["flags"] == [] and p["version"] == tp.version for p in got)

    split = {"dataframe_split": {"columns": ["review"], "data": [[t] for t in TEXTS]}}
    records = {"dataframe_records": [{"review": t} for t in TEXTS]}
    csv = pd.DataFrame({"review": TEXTS}).to_csv(index=False).encode()
    assert b'"the staff, ""my order"" and the service"' in csv
    for kwargs in ({"json": split}, {"json": records},
                   {"content": csv, "headers": {"content-type": "text/csv"}}):
        response = httpx.post(f"{server.url}/invocations", timeout=10,
                              **kwargs)
        assert response.status_code == 200, response.text
        assert response.json() == {"predictions": labels}


def test_oip_bytes_tensor_json_and_binary(served: Served) -> None:
    server, tp = served
    name = server.state.model_name
    labels, proba = _expected(tp, TEXTS)
    meta = httpx.get(f"{server.url}/v2/models/{name}", timeout=10).json()
    assert meta["inputs"] == [{"name": "review", "datatype": "BYTES", "shape": [-1]}]
    n = len(TEXTS)
    tensor = {"name": "review", "datatype": "BYTES", "shape": [n], "data": TEXTS}
    request = {"id": "req-1", "inputs": [tensor]}
    body = httpx.post(f"{server.url}/v2/models/{name}/infer", json=request, timeout=10).json()
    head = (body["model_name"], body["model_version"], body["id"])
    assert head == (name, str(tp.version), "req-1")
    outputs = {o["name"]: o for o in body["outputs"]}
    assert outputs["prediction"] == {"name": "prediction", "datatype": "BYTES", "shape": [n],
                                     "data": labels}
    assert outputs["probabilities"]["datatype"] == "FP64"
    assert outputs["probabilities"]["shape"] == [n, 2]
    flat = outputs["probabilities"]["data"]
    np.testing.assert_allclose(np.reshape(flat, (-1, 2)), proba, atol=1e-12)
    assert outputs["confidence"]["datatype"] == "FP64"
    np.testing.assert_allclose(outputs["confidence"]["data"], proba.max(axis=1), atol=1e-12)
    ids = outputs["prediction_id"]
    assert ids["datatype"] == "BYTES" and len(set(ids["data"])) == n

    # [N, 1] and the binary tensor extension: each element a 4-byte little-endian length, then UTF-8
    raw = b"".join(struct.pack("<I", len(t.encode())) + t.encode() for t in TEXTS)
    binary = {"name": "review", "datatype": "BYTES", "shape": [n, 1],
              "parameters": {"binary_data_size": len(raw)}}
    header = orjson.dumps({"inputs": [binary], "outputs": [{"name": "prediction"}]})
    response = httpx.post(f"{server.url}/v2/models/{name}/infer", content=header + raw, timeout=10,
                          headers={"Inference-Header-Content-Length": str(len(header)),
                                   "content-type": "application/octet-stream"})
    assert response.status_code == 200, response.text
    assert [o["name"] for o in response.json()["outputs"]] == ["prediction"]
    assert response.json()["outputs"][0]["data"] == labels


def test_oip_bytes_with_tritonclient(served: Served) -> None:
    triton = pytest.importorskip("tritonclient.http")
    server, tp = served
    name = server.state.model_name
    labels, proba = _expected(tp, TEXTS)
    client = triton.InferenceServerClient(url=server.url.removeprefix("http://"))
    try:
        assert client.is_model_ready(name)
        assert client.get_model_metadata(name)["inputs"][0]["datatype"] == "BYTES"
        for binary in (True, False):
            tensor = triton.InferInput("review", [len(TEXTS)], "BYTES")
            tensor.set_data_from_numpy(np.array([t.encode() for t in TEXTS], dtype=np.object_),
                                       binary_data=binary)
            outputs = [triton.InferRequestedOutput("prediction", binary_data=False),
                       triton.InferRequestedOutput("probabilities", binary_data=False)]
            result = client.infer(name, [tensor], outputs=outputs)
            predicted = result.as_numpy("prediction")
            assert [v.decode() if isinstance(v, bytes) else v for v in predicted] == labels
            np.testing.assert_allclose(result.as_numpy("probabilities"), proba, atol=1e-12)
    finally:
        client.close()


# -- bad text: a 4xx naming the field, never a 500 -----------------------------------------

LONG = "word " * (MAX_STRING // 5 + 1)
BAD_VALUES: list[tuple[str, Any, int, str]] = [
    ("a number", 42, 422, "expected the text as a string, got the number 42"),
    ("a boolean", True, 422, "got the boolean true"),
    ("a list", ["great"], 422, "got a list"),
    ("an object", {"text": "great"}, 422, "got an object"),
    ("an empty string", "", 422, "the text is empty"),
    ("a blank string", " \n\t", 422, "the text is empty (only whitespace)"),
    ("null", None, 422, "the text is missing"),
    ("an over-long string", LONG, 413, "max_string_length=300"),
]


def _refusal(response: httpx.Response, status: int, words: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == {"error", "message", "details"}
    assert "'review'" in body["message"] and words in body["message"], body["message"]
    assert body["details"][0]["field"] == "review"
    return body


@pytest.mark.parametrize(("what", "value", "status", "words"), BAD_VALUES,
                         ids=[b[0] for b in BAD_VALUES])
def test_bad_text_is_refused_naming_the_field(served: Served, what: str, value: Any, status: int,
                                              words: str) -> None:
    server, _ = served
    name = server.state.model_name
    good = {"review": "great love"}
    split = {"columns": ["review"], "data": [[value]]}
    for path, body in [("/v1/predict", {"records": [good, {"review": value}]}),
                       ("/invocations", {"dataframe_records": [{"review": value}]}),
                       ("/invocations", {"dataframe_split": split})]:
        _refusal(httpx.post(f"{server.url}{path}", json=body, timeout=10), status, words)
    tensor = {"name": "review", "datatype": "BYTES", "shape": [1], "data": [value]}
    response = httpx.post(f"{server.url}/v2/models/{name}/infer", json={"inputs": [tensor]},
                          timeout=10)
    if isinstance(value, list):  # nested tensor data is flattened row-major: ["great"] is the text
        assert response.status_code == 200, response.text
    elif isinstance(value, dict):  # a tensor's data holds scalars: the tensor is malformed
        assert response.status_code == 422 and response.json()["error"] == "invalid_tensor"
        assert response.json()["details"] == [
            {"input": "review", "reason": "'data' must be a (nested) list of scalars"}]
    else:
        _refusal(response, status, words)


def test_missing_text_and_wrong_tensors_are_refused(served: Served) -> None:
    server, _ = served
    name = server.state.model_name
    missing = "the required field 'review' is missing"
    _refusal(httpx.post(f"{server.url}/v1/predict", json={"records": [{"text": "great"}]},
                        timeout=10), 422, missing)
    csv = {"content-type": "text/csv"}
    for body, status, words in [(b"text\ngreat love\n", 422, missing),
                                (b'review\ngreat love\n""\n', 422, "the text is missing"),
                                (b"review\n" + LONG.encode() + b"\n", 413, "max_string_length")]:
        response = httpx.post(f"{server.url}/invocations", content=body, headers=csv, timeout=10)
        _refusal(response, status, words)
    infer = f"{server.url}/v2/models/{name}/infer"
    other = {"name": "text", "datatype": "BYTES", "shape": [1], "data": ["great"]}
    _refusal(httpx.post(infer, json={"inputs": [other]}, timeout=10), 422, missing)
    floats = {"name": "review", "datatype": "FP64", "shape": [1], "data": [1.5]}
    _refusal(httpx.post(infer, json={"inputs": [floats]}, timeout=10), 422, "got the number 1.5")
    raw = struct.pack("<I", 0)  # one empty BYTES element
    header = orjson.dumps({"inputs": [{"name": "review", "datatype": "BYTES", "shape": [1],
                                       "parameters": {"binary_data_size": len(raw)}}]})
    length = {"Inference-Header-Content-Length": str(len(header))}
    _refusal(httpx.post(infer, content=header + raw, headers=length, timeout=10), 422,
             "the text is empty")


def test_every_answer_is_logged(served: Served) -> None:
    server, tp = served
    state = server.state
    state.log.flush()
    before = len(read_predictions(tp.registry.store))
    body = httpx.post(f"{server.url}/v1/predict", json={"records": [{"review": t} for t in TEXTS]},
                      timeout=10).json()
    state.log.flush()
    logged = read_predictions(tp.registry.store)
    assert len(logged) == before + len(TEXTS)
    mine = logged[logged["request_id"] == body["request_id"]]
    by_id = dict(zip(mine["id"], mine["review"]))  # one request's rows share a time: order by id
    assert [by_id[p["id"]] for p in body["predictions"]] == TEXTS


# -- assay predict --------------------------------------------------------------------------


def _run_cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str,
             keep_out: bool = False) -> tuple[int, str]:
    """Run ``assay ARGS``: its exit code and its stderr (stdout and stderr with ``keep_out``)."""
    from assay.cli.app import app, main
    from assay.cli.serve import register_serve_commands

    if "predict" not in {c.name for c in app.registered_commands}:
        register_serve_commands(app)
    monkeypatch.setattr(sys, "argv", ["assay", *args])
    capsys.readouterr()
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, (captured.out + captured.err) if keep_out else captured.err


def test_assay_predict_scores_a_csv_with_a_text_column(
    text_project: TextProject, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    tp = text_project
    monkeypatch.chdir(tp.root)
    pd.DataFrame({"id": range(len(TEXTS)), "review": TEXTS}).to_csv(tp.root / "in.csv", index=False)
    code, err = _run_cli(monkeypatch, capsys, "predict", "in.csv", "-o", "out.csv")
    assert code == 0, err
    out = pd.read_csv(tp.root / "out.csv", dtype={"review": str})
    labels, proba = _expected(tp, TEXTS)
    assert list(out["review"]) == TEXTS and list(out["prediction"]) == labels
    got = out[["probability_neg", "probability_pos"]].to_numpy()
    np.testing.assert_allclose(got, proba, atol=1e-12)
    assert out["model_version"].tolist() == [tp.version] * len(TEXTS)

    (tp.root / "bad.csv").write_text('review\ngreat love\n""\nrude slow\n')
    code, err = _run_cli(monkeypatch, capsys, "predict", "bad.csv", "-o", "bad-out.csv")
    assert code == 2 and "column 'review'" in err
    assert "row 1 cannot be scored: the text is missing" in err
    assert "Traceback" not in err
    code, err = _run_cli(monkeypatch, capsys, "predict", "bad.csv", "-o", "bad-out.csv",
                         "--skip-invalid")
    assert code == 0, err
    out = pd.read_csv(tp.root / "bad-out.csv", dtype={"model_version": "Int64"})
    assert list(out["prediction"].fillna("")) == ["pos", "", "neg"]
    assert out["error"].isna().tolist() == [True, False, True]
    assert "review: the text is missing" in out["error"][1]
    assert out["model_version"].tolist()[::2] == [tp.version, tp.version]

    stdin = b"\n".join(orjson.dumps(r) for r in [{"review": 7}, {"review": "great love"}])
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin)))
    code, err = _run_cli(monkeypatch, capsys, "predict", "--stdin", keep_out=True)
    answers = [orjson.loads(line) for line in err.splitlines() if line.startswith("{")]
    # the stream goes on past a refused line
    assert code == 0 and [a.get("prediction") for a in answers] == [None, "pos"]
    assert answers[0]["message"] == (
        "line 1 refused: field 'review': expected the text as a string, got the number 7.")


def test_a_loaded_text_model_refuses_what_the_server_refuses(text_project: TextProject) -> None:
    model = LoadedModel.load(text_project.registry, text_project.version)
    batch = model.validate([{"review": "great"}, {"review": ""}, {"review": 3}, {}])
    assert batch.valid_index == (0,)
    assert [(e.index, e.field, e.code) for e in batch.errors] == [
        (1, "review", "missing"), (2, "review", "type"), (3, "review", "missing")]


def test_the_text_column_is_text_whatever_kind_the_schema_inferred() -> None:
    from assay.data.schema import ColumnSchema
    from assay.model.validation import RecordValidator

    # short, repeated reviews are inferred categorical; the model still reads them as text
    column = ColumnSchema("review", "categorical", "str", nullable=True, n_unique=2,
                          categories=("bad", "good"))
    plain = RecordValidator([column], ["review"])
    text = RecordValidator([column], ["review"], text_column="review")
    records = [{"review": "good"}, {"review": "never seen"}, {"review": 5}, {"review": None}]
    assert plain.validate(records).flags == ((), ("unknown_category",), ("unknown_category",), ())
    batch = text.validate(records)
    assert batch.valid_index == (0, 1) and batch.flags == ((), ())
    assert [(e.index, e.code) for e in batch.errors] == [(2, "type"), (3, "missing")]
