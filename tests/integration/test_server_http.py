"""The server over real HTTP: ``python -m assay serve`` as a subprocess, driven with httpx.

Every test starts its own server on a free loopback port in a private copy of the
serving project (tests/serve/conftest.py) and stops it at the end. Request loops
are bounded in count and time.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from assay.serve.auth import create_token
from assay.model.predictions import read_predictions

pytestmark = pytest.mark.integration


def _load_serving_fixtures() -> Any:
    path = Path(__file__).resolve().parents[1] / "serve" / "conftest.py"
    spec = importlib.util.spec_from_file_location("assay_tests_serving_fixtures", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


_fixtures = _load_serving_fixtures()
serving_template = _fixtures.serving_template
serving_project = _fixtures.serving_project
ServingProject = _fixtures.ServingProject

STARTUP_SECONDS = 90.0
ASSAY = [sys.executable, "-m", "assay"]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    """A running ``assay serve`` subprocess."""

    root: Path
    port: int
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


def _assay(root: Path, *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "ASSAY_USER": "tester", "COLUMNS": "200"}
    return subprocess.run([*ASSAY, *args], cwd=root, capture_output=True, input=stdin,
                          env=env, timeout=120, check=False)


def _start(servers: list[Server], root: Path, *args: str, port: int | None = None, ready: bool = True) -> Server:
    port = port or _free_port()
    log = root / f"server-{port}-{len(servers)}.log"
    handle = open(log, "wb")  # noqa: SIM115 - the child keeps it open
    proc = subprocess.Popen(
        [*ASSAY, "serve", "--port", str(port), "--poll-seconds", "0.2", *args],
        cwd=root, stdout=handle, stderr=subprocess.STDOUT, env={**os.environ, "ASSAY_USER": "tester"},
    )
    handle.close()
    server = Server(root, port, proc, log)
    servers.append(server)
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the server exited with {proc.returncode}:\n{server.output()}")
        try:
            status = httpx.get(f"{server.url}/readyz" if ready else f"{server.url}/healthz", timeout=2).status_code
            if status == 200:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"the server did not become ready:\n{server.output()}")


@pytest.fixture
def start_server() -> Iterator[Callable[..., Server]]:
    servers: list[Server] = []

    def start(root: Path, *args: str, port: int | None = None, ready: bool = True) -> Server:
        return _start(servers, root, *args, port=port, ready=ready)

    yield start
    for server in servers:
        server.stop()


@dataclass(frozen=True)
class Shared:
    """One server for the tests that change nothing but the log and their own tokens."""

    project: Any
    server: Server
    token: str


@pytest.fixture(scope="module")
def shared(serving_template: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shared]:
    import shutil

    from assay.pipeline import open_registry
    from assay.project import Project

    root = tmp_path_factory.mktemp("shared") / "project"
    shutil.copytree(serving_template.root, root)
    opened = Project.open(root / "assay.yaml")
    registry = open_registry(opened)
    project = ServingProject(project=opened, registry=registry, champion=serving_template.champion,
                             second=serving_template.second, frame=serving_template.frame,
                             features=list(serving_template.features))
    token = create_token(registry, "client", ["predict", "feedback"])
    servers: list[Server] = []
    try:
        yield Shared(project, _start(servers, root), token)
    finally:
        for server in servers:
            server.stop()
        registry.store.close()


@pytest.fixture
def project(serving_project: Any) -> Any:
    return serving_project


@pytest.fixture
def token(project: Any) -> str:
    return create_token(project.registry, "client", ["predict", "feedback"])


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _wait_for(check: Callable[[], bool], seconds: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _logged(project: Any, expected: int, seconds: float = 20.0) -> Any:
    """The prediction log once it holds at least ``expected`` rows (the server's writer drains every 0.2 s)."""
    frame = read_predictions(project.registry.store)
    deadline = time.monotonic() + seconds
    while len(frame) < expected and time.monotonic() < deadline:
        time.sleep(0.2)
        frame = read_predictions(project.registry.store)
    return frame


def _drained(project: Any, champion_answers: int, seconds: float = 30.0) -> None:
    """Wait until every champion answer is in the log and the log has stopped growing.

    Counting all rows is not enough once a shadow runs: its rows count too, and the drain
    inserts 512 rows per transaction, so a champion answer can be in while its shadow row
    waits for the next one.
    """
    deadline = time.monotonic() + seconds
    last = -1
    while time.monotonic() < deadline:
        frame = read_predictions(project.registry.store)
        answered = int((frame["route"] == "champion").sum())
        if answered >= champion_answers and len(frame) == last:
            return
        last = len(frame)
        time.sleep(0.5)
    raise AssertionError(f"the log did not settle with {champion_answers} champion answers in {seconds:.0f} s")


# -- endpoints ---------------------------------------------------------------------------------


def _champion_count(client: httpx.Client, version: int) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(client.get("/metrics").text):
        for sample in family.samples:
            if sample.name == "assay_predictions_total" and sample.labels == {"route": "champion",
                                                                             "version": str(version)}:
                return float(sample.value)
    return 0.0


def test_every_endpoint_and_protocol(shared: Shared) -> None:
    project, server, token = shared.project, shared.server, shared.token
    records = project.records(3)
    headers = {**_auth(token), "X-Request-ID": "every-endpoint"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=10) as client:
        counted = _champion_count(client, project.champion)
        assert client.get("/healthz").json() == {"status": "ok"}
        assert client.get("/readyz").json()["champion"] == project.champion
        body = client.post("/v1/predict", json={"records": records}).json()
        predictions = body["predictions"]
        assert [p["version"] for p in predictions] == [project.champion] * 3
        labels = [p["prediction"] for p in predictions]
        feedback = client.post("/v1/feedback", json={"labels": [{"id": predictions[0]["id"], "label": 1}]})
        assert feedback.json() == {"accepted": 1, "unknown_ids": [], "unchanged": 0, "overwritten": 0, "unknown_keys": [], "by_key": 0}
        for payload in ({"dataframe_records": records}, {"instances": records},
                        {"dataframe_split": {"columns": project.features,
                                             "data": [[r[f] for f in project.features] for r in records]}},
                        {"inputs": {f: [r[f] for r in records] for f in project.features}}):
            assert client.post("/invocations", json=payload).json() == {"predictions": labels}
        name = project.project.root.name
        assert client.get("/v2/health/live").json() == {"live": True}
        assert client.get("/v2/health/ready").json() == {"ready": True}
        meta = client.get(f"/v2/models/{name}").json()
        assert {i["name"]: i["datatype"] for i in meta["inputs"]}["count"] == "INT64"
        inputs = [{"name": i["name"], "datatype": i["datatype"], "shape": [3],
                   "data": [r[i["name"]] for r in records]} for i in meta["inputs"]]
        infer = client.post(f"/v2/models/{name}/infer", json={"inputs": inputs}).json()
        assert {o["name"]: o["data"] for o in infer["outputs"]}["prediction"] == labels
        assert _champion_count(client, project.champion) == counted + 18
        assert client.get("/docs").status_code == 200
        assert "PredictRequest" in client.get("/openapi.json").json()["components"]["schemas"]
    deadline = time.monotonic() + 20
    logged = read_predictions(project.registry.store)
    while (logged["request_id"] == "every-endpoint").sum() < 18 and time.monotonic() < deadline:
        time.sleep(0.2)
        logged = read_predictions(project.registry.store)
    mine = logged[logged["request_id"] == "every-endpoint"]
    assert len(mine) == 18 and set(mine["route"]) == {"champion"}
    assert mine.set_index("id").loc[predictions[0]["id"], "label"] == 1


HUGE = 123456789012345678901234567890


def _malformed_table(record: dict[str, Any]) -> list[tuple[str, bytes, str, int, str, str]]:
    import orjson

    j = "application/json"
    return [
        ("empty body", b"", j, 422, "empty_body", "body is empty"),
        ("not JSON", b"{records", j, 422, "invalid_json", "not valid JSON"),
        ("truncated", b'{"records": [', j, 422, "invalid_json", "unexpected end"),
        ("infinite number", b'{"records": [{"x1": 1e999}]}', j, 422, "invalid_json", "infinity"),
        ("NaN literal", b'{"records": [{"x1": NaN}]}', j, 422, "invalid_json", "no NaN or Infinity"),
        ("invalid UTF-8", b'{"records": ["\xff"]}', j, 422, "invalid_json", "UTF-8"),
        ("deep nesting", b"[" * 5000 + b"]" * 5000, j, 422, "invalid_json", "not valid JSON"),
        ("top-level list", b"[1, 2]", j, 422, "invalid_body", "got a list"),
        ("no records key", b'{"rows": []}', j, 422, "invalid_body", "no 'records' key"),
        ("records not a list", b'{"records": {"x1": 1}}', j, 422, "invalid_body", "must be a list"),
        ("empty records", b'{"records": []}', j, 422, "empty_records", "'records' is empty"),
        ("record not an object", b'{"records": [1]}', j, 422, "invalid_records", "record 0"),
        ("empty record", b'{"records": [{}]}', j, 422, "invalid_records", "field 'x1'"),
        ("nested object", orjson.dumps({"records": [{**record, "x1": {"a": [1]}}]}), j, 422,
         "invalid_records", "field 'x1'"),
        ("string for a number", orjson.dumps({"records": [{**record, "count": "many"}]}), j, 422,
         "invalid_records", "field 'count'"),
        ("too many records", orjson.dumps({"records": [record] * 1001}), j, 413, "too_many_records",
         "more than the 1000 records"),
        ("too many bytes", b'{"records": ["' + b"x" * (9 * 1024 * 1024) + b'"]}', j, 413, "body_too_large",
         "larger than"),
        # 7 features + the declared target 'y' (a record may carry it) + 16 extra fields
        ("too many fields", orjson.dumps({"records": [{**record, **{f"k{i}": 1 for i in range(18)}}]}), j,
         413, "too_many_fields", "record 0 has too many fields: got 25, over the limit max_fields=24"),
        ("too many values", orjson.dumps({"records": [{f"k{i}": 1 for i in range(100_000)}]}), j, 413,
         "too_many_values", "over the limit max_values=48,256"),
        ("long string", orjson.dumps({"records": [{**record, "plan": "p" * 10_001}]}), j, 413,
         "string_too_long", "got 10,001, over the limit max_string_length=10,000"),
        ("wrong content type", orjson.dumps({"records": [record]}), "text/plain", 415,
         "unsupported_media_type", "Content-Type 'text/plain'"),
        ("form content type", b"records=1", "application/x-www-form-urlencoded", 415,
         "unsupported_media_type", "send the body as application/json"),
    ]


def test_malformed_bodies_get_4xx_with_clear_messages(shared: Shared) -> None:
    project, server, token = shared.project, shared.server, shared.token
    record = project.records(1)[0]
    with httpx.Client(base_url=server.url, headers=_auth(token), timeout=30) as client:
        for name, body, content_type, status, code, fragment in _malformed_table(record):
            response = client.post("/v1/predict", content=body, headers={"Content-Type": content_type})
            assert response.status_code == status, (name, response.text[:300])
            payload = response.json()
            assert payload["error"] == code, (name, payload)
            assert fragment in payload["message"], (name, payload["message"])
        # huge numbers that JSON can carry are answered and flagged, never a 5xx
        flagged = client.post("/v1/predict", json={"records": [{**record, "x1": float(HUGE)}]})
        assert flagged.status_code == 200 and "out_of_range" in flagged.json()["predictions"][0]["flags"]
        big_int = client.post("/v1/predict", json={"records": [{**record, "count": HUGE}]})
        assert 200 <= big_int.status_code < 500, big_int.text
        for path in ("/invocations", f"/v2/models/{project.project.root.name}/infer"):
            response = client.post(path, content=b"{", headers={"Content-Type": "application/json"})
            assert response.status_code == 422 and response.json()["error"] == "invalid_json"
    assert "Traceback" not in server.output()


def test_auth_401_and_403(shared: Shared) -> None:
    project, server = shared.project, shared.server
    labeller = create_token(project.registry, "labeller", ["feedback"])
    service = create_token(project.registry, "service", ["predict"])
    payload = {"records": project.records(1)}
    with httpx.Client(base_url=server.url, timeout=10) as client:
        # the server reloads its tokens every few seconds
        _wait_for(lambda: client.post("/v1/predict", json=payload, headers=_auth(service)).status_code == 200,
                  what="the new tokens to reach the server")
        missing = client.post("/v1/predict", json=payload)
        assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
        assert client.post("/v1/predict", json=payload, headers=_auth("assay_wrong")).json()["error"] == "invalid_token"
        forbidden = client.post("/v1/predict", json=payload, headers=_auth(labeller))
        assert forbidden.status_code == 403
        assert "token 'labeller' lacks the 'predict' scope" in forbidden.json()["message"]
        assert client.post("/invocations", json={"instances": payload["records"]},
                           headers=_auth(labeller)).status_code == 403
        assert client.post("/v1/feedback", json={"labels": [{"id": "x", "label": 1}]},
                           headers=_auth(service)).status_code == 403
        assert client.post("/v1/predict", json=payload, headers=_auth(service)).status_code == 200
        revoked = _assay(project.root, "token", "revoke", "service")
        assert revoked.returncode == 0, revoked.stderr
        _wait_for(lambda: client.post("/v1/predict", json=payload, headers=_auth(service)).status_code == 401,
                  what="the revocation to reach the server")


def test_insecure_no_auth_only_on_loopback(project: Any, start_server: Callable[..., Server]) -> None:
    refused = _assay(project.root, "serve", "--host", "0.0.0.0", "--port", "9", "--insecure-no-auth")
    assert refused.returncode == 2
    message = refused.stderr.decode()
    assert "refusing to serve without authentication on a non-loopback address" in message
    assert "Traceback" not in message
    server = start_server(project.root, "--insecure-no-auth")
    response = httpx.post(f"{server.url}/v1/predict", json={"records": project.records(1)}, timeout=10)
    assert response.status_code == 200


def test_oip_v2_with_tritonclient(shared: Shared) -> None:
    import tritonclient.http as triton

    project, server, token = shared.project, shared.server, shared.token
    name = project.project.root.name
    records = project.records(20)
    expected = httpx.post(f"{server.url}/v1/predict", json={"records": records}, headers=_auth(token),
                          timeout=10).json()["predictions"]
    client = triton.InferenceServerClient(url=f"127.0.0.1:{server.port}")
    try:
        assert client.is_server_live() and client.is_server_ready()
        assert client.is_model_ready(name, headers=_auth(token))
        meta = client.get_model_metadata(name, headers=_auth(token))
        types = {i["name"]: i["datatype"] for i in meta["inputs"]}
        for binary in (True, False):
            rows = records if binary else [r for r in records if r["x2"] is not None]
            want = expected if binary else [p for p, r in zip(expected, records) if r["x2"] is not None]
            inputs = []
            for feature in project.features:
                array = _tensor([r[feature] for r in rows], types[feature])
                tensor = triton.InferInput(feature, [len(rows)], types[feature])
                tensor.set_data_from_numpy(array, binary_data=binary)
                inputs.append(tensor)
            outputs = [triton.InferRequestedOutput("prediction", binary_data=False),
                       triton.InferRequestedOutput("probabilities", binary_data=False)]
            result = client.infer(name, inputs, outputs=outputs, headers=_auth(token))
            assert result.as_numpy("prediction").tolist() == [p["prediction"] for p in want]
            np.testing.assert_allclose(result.as_numpy("probabilities")[:, 1],
                                       [p["probabilities"]["1"] for p in want], atol=1e-9)
        with pytest.raises(Exception, match="unauthorized"):
            client.get_model_metadata(name)
    finally:
        client.close()


def _tensor(values: list[Any], datatype: str) -> np.ndarray:
    if datatype == "BYTES":
        return np.array([str(v).encode() for v in values], dtype=np.object_)
    if datatype == "FP64":
        return np.array([np.nan if v is None else v for v in values], dtype=np.float64)
    if datatype == "INT64":
        return np.array(values, dtype=np.int64)
    return np.array(values, dtype=np.bool_)


# -- hostile clients -------------------------------------------------------------------------------


def _raw_post(port: int, path: str, body: bytes, headers: dict[str, str]) -> socket.socket:
    """A connection that has sent all of a POST but its body's last byte."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    head = "".join(f"{k}: {v}\r\n" for k, v in {**headers, "Content-Length": str(len(body))}.items())
    sock.sendall(f"POST {path} HTTP/1.1\r\nHost: test\r\n{head}\r\n".encode() + body[:-1])
    return sock


def _answer(sock: socket.socket) -> tuple[int, dict[str, Any]]:
    """Status and JSON body of the answer on ``sock`` (the server closes or it is complete)."""
    import orjson

    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length")))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return int(head.split(b" ")[1]), orjson.loads(body)


def test_huge_bodies_are_refused_while_health_answers(shared: Shared) -> None:
    import orjson

    project, server, token = shared.project, shared.server, shared.token
    auth = {"Authorization": f"Bearer {token}"}
    record = project.records(1)[0]
    hostile = [
        ("/invocations", ",".join(f"c{i}" for i in range(700_000)).encode() + b"\n1\n", "text/csv",
         "too_many_columns", "the CSV header line has too many columns: got 700,000, over the limit max_columns=24"),
        ("/v1/predict", orjson.dumps({"records": [{**record, **{f"k{i}": 1 for i in range(550_000)}}]}),
         "application/json", "too_many_values", "over the limit max_values=48,256"),
        ("/invocations", orjson.dumps({"dataframe_split": {"columns": [f"c{i}" for i in range(100_000)],
                                                           "data": [[1] * 100_000]}}),
         "application/json", "too_many_values", "over the limit max_values"),
    ]
    with httpx.Client(base_url=server.url, headers=auth, timeout=30) as client:
        for path, body, media, code, fragment in hostile:
            sock = _raw_post(server.port, path, body, {**auth, "Content-Type": media})
            try:
                # the big request is in flight (its body is on the server but for one byte):
                # the event loop still answers others
                assert client.get("/healthz").json() == {"status": "ok"}
                sock.sendall(body[-1:])
                # and it keeps answering while the body is checked
                assert client.get("/healthz").json() == {"status": "ok"}
                status, answer = _answer(sock)
            finally:
                sock.close()
            assert (status, answer["error"]) == (413, code), (path, answer)
            assert fragment in answer["message"], answer["message"]
            assert answer["details"][0]["name"] in answer["message"]
        # a large valid batch is scored (in a worker thread) and answered in full
        batch = client.post("/v1/predict", json={"records": (project.records(400) * 3)[:1000]})
        assert batch.status_code == 200 and len(batch.json()["predictions"]) == 1000
        name = project.project.root.name
        for header in (b"\xb2", "²".encode()):
            bad = client.post(f"/v2/models/{name}/infer", content=b'{"inputs": []}',
                              headers={"Inference-Header-Content-Length": header})
            assert bad.status_code == 400 and bad.json()["error"] == "invalid_header", bad.text
    assert "Traceback" not in server.output()


def test_slow_clients_are_let_go(project: Any, token: str, start_server: Callable[..., Server]) -> None:
    server = start_server(project.root, "--header-timeout", "1", "--body-timeout", "1")
    idle = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    head = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    body = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    try:
        head.sendall(b"POST /v1/predict HTTP/1.1\r\nHost: test\r\nContent-Ty")
        body.sendall(f"POST /v1/predict HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {token}\r\n"
                     "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{".encode())
        # while the three wait on the server, it answers others
        with httpx.Client(base_url=server.url, timeout=10) as client:
            assert client.get("/healthz").json() == {"status": "ok"}
        for sock in (idle, head):
            status, answer = _answer(sock)
            assert (status, answer["error"]) == (408, "header_timeout")
            assert "within 1 s (limit header_timeout=1)" in answer["message"]
            assert sock.recv(1) == b""  # and closed
        status, answer = _answer(body)
        assert (status, answer["error"]) == (408, "body_timeout")
        assert "within 1 s of its headers (limit body_timeout=1)" in answer["message"]
        assert body.recv(1) == b""
        with httpx.Client(base_url=server.url, timeout=10) as client:
            assert client.get("/healthz").json() == {"status": "ok"}
            ok = client.post("/v1/predict", json={"records": project.records(1)}, headers=_auth(token))
            assert ok.status_code == 200
    finally:
        for sock in (idle, head, body):
            sock.close()
    assert "Traceback" not in server.output()


# -- swaps, shadow, canary -------------------------------------------------------------------------


@dataclass
class Stream:
    """Sends single-record predictions from a thread until stopped (bounded in count and time)."""

    url: str
    headers: dict[str, str]
    records: list[dict[str, Any]]
    max_requests: int = 10_000
    max_seconds: float = 60.0
    pause: float = 0.004
    answers: list[tuple[int, list[str]]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    stop_on_error: bool = False

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> Stream:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        deadline = time.monotonic() + self.max_seconds
        with httpx.Client(base_url=self.url, headers=self.headers, timeout=10) as client:
            i = 0
            while not self._stop.is_set() and i < self.max_requests and time.monotonic() < deadline:
                record = self.records[i % len(self.records)]
                i += 1
                try:
                    response = client.post("/v1/predict", json={"records": [record]})
                except httpx.TransportError as exc:
                    self.failures.append(f"{type(exc).__name__}: {exc}")
                    if self.stop_on_error:
                        return
                    continue
                if response.status_code != 200:
                    self.failures.append(f"{response.status_code}: {response.text[:200]}")
                    continue
                predictions = response.json()["predictions"]
                self.answers.append((predictions[0]["version"], [p["id"] for p in predictions]))
                time.sleep(self.pause)


def test_promote_during_a_stream_drops_nothing(project: Any, token: str,
                                               start_server: Callable[..., Server]) -> None:
    server = start_server(project.root)
    stream = Stream(server.url, _auth(token), project.records(50)).start()
    try:
        _wait_for(lambda: len(stream.answers) >= 30, what="the first answers")
        promoted = _assay(project.root, "promote", str(project.second), "--force", "--reason", "swap test")
        assert promoted.returncode == 0, promoted.stderr
        _wait_for(lambda: bool(stream.answers) and stream.answers[-1][0] == project.second, seconds=15,
                  what="the new champion to answer")
        seen = len(stream.answers)
        _wait_for(lambda: len(stream.answers) >= seen + 30, what="answers after the swap")
    finally:
        stream.stop()
    assert stream.failures == []
    versions = [v for v, _ in stream.answers]
    switch = versions.index(project.second)
    assert switch > 0 and set(versions[:switch]) == {project.champion}
    assert set(versions[switch:]) == {project.second}  # no flip back once swapped


def test_shadow_scores_every_request_without_answering(project: Any, token: str,
                                                       start_server: Callable[..., Server]) -> None:
    server = start_server(project.root)
    deployed = _assay(project.root, "deploy", str(project.second), "--shadow")
    assert deployed.returncode == 0, deployed.stderr
    with httpx.Client(base_url=server.url, headers=_auth(token), timeout=10) as client:
        _wait_for(lambda: client.get("/readyz").json().get("mode") == "shadow", what="the shadow deployment")
        answers = [client.post("/v1/predict", json={"records": project.records(2, start=2 * i)}).json()
                   for i in range(50)]
    assert {p["version"] for a in answers for p in a["predictions"]} == {project.champion}
    logged = _logged(project, 200)
    champion = logged[logged["route"] == "champion"]
    shadow = logged[logged["route"] == "shadow"]
    assert len(champion) == 100 and len(shadow) == 100
    assert set(shadow["version"]) == {project.second}
    assert set(shadow["request_id"]) == set(champion["request_id"]) == {a["request_id"] for a in answers}
    returned = {p["id"] for a in answers for p in a["predictions"]}
    assert set(champion["id"]) == returned and not returned & set(shadow["id"])


@pytest.mark.slow
def test_shadow_gate_passes_under_steady_traffic(project: Any, token: str,
                                                 start_server: Callable[..., Server]) -> None:
    """20 requests/s while a shadow is deployed: the server picks the deployment up a moment
    after it is recorded, and the champion answers of that moment do not count against the
    shadow's coverage, so a candidate agreeing on every record passes the gate."""
    from assay.monitor.retrain import shadow_comparison, shadow_gates
    from assay.model.deployments import deploy

    champion = project.registry.load_model(project.champion)
    second = project.registry.load_model(project.second)
    frame = project.frame[project.features]
    same = np.flatnonzero(np.asarray(champion.predict(frame)) == np.asarray(second.predict(frame)))
    records = [project.records(1, start=int(i))[0] for i in same[:100]]
    server = start_server(project.root)
    stream = Stream(server.url, _auth(token), records, pause=0.05).start()
    try:
        _wait_for(lambda: len(stream.answers) >= 20, what="steady traffic")
        deployment = deploy(project.registry, project.second, mode="shadow", reason="coverage test")

        def shadowed() -> int:
            logged = read_predictions(project.registry.store, since=deployment.created_at, route="shadow")
            return len(logged)

        _wait_for(lambda: shadowed() >= 100, seconds=60, what="100 shadowed predictions")
    finally:
        stream.stop()
    assert stream.failures == []
    _drained(project, champion_answers=sum(len(ids) for _, ids in stream.answers))
    result = shadow_comparison(
        project.registry, champion=project.champion, candidate=project.second,
        since=deployment.created_at, task="binary", classes=[0, 1], primary="roc_auc",
    )
    gates = {g.name: g for g in shadow_gates(result)}
    assert gates["shadow_coverage"].passed, gates["shadow_coverage"].message
    assert result.coverage == 1.0 and result.agreement == 1.0 and result.n_paired >= 100
    # the pick-up lag was real: answers after the deployment was recorded, before the server ran it
    answered = read_predictions(project.registry.store, since=deployment.created_at, route="champion")
    assert len(answered) > result.n_champion


def test_canary_share_within_tolerance(project: Any, token: str, start_server: Callable[..., Server]) -> None:
    server = start_server(project.root)
    deployed = _assay(project.root, "deploy", str(project.second), "--canary", "30")
    assert deployed.returncode == 0, deployed.stderr
    assert b"answering 30% of requests" in deployed.stdout
    with httpx.Client(base_url=server.url, headers=_auth(token), timeout=10) as client:
        _wait_for(lambda: client.get("/readyz").json().get("mode") == "canary", what="the canary deployment")
        records = project.records(100)
        versions = [client.post("/v1/predict", json={"records": [records[i % 100]]}).json()["predictions"][0]["version"]
                    for i in range(600)]
    share = versions.count(project.second) / len(versions)
    assert 0.20 <= share <= 0.40, share
    assert set(versions) == {project.champion, project.second}
    logged = _logged(project, 600)
    assert (logged["route"] == "canary").sum() == versions.count(project.second)
    assert set(logged.loc[logged["route"] == "canary", "version"]) == {project.second}


# -- durability ----------------------------------------------------------------------------------


def test_sigkill_loses_no_answered_prediction(project: Any, token: str,
                                              start_server: Callable[..., Server]) -> None:
    server = start_server(project.root)
    stream = Stream(server.url, _auth(token), project.records(50), stop_on_error=True).start()
    try:
        _wait_for(lambda: len(stream.answers) >= 200, seconds=60, what="200 answers")
        server.proc.send_signal(signal.SIGKILL)
        server.proc.wait(timeout=10)
    finally:
        stream.stop()
    answered = {pid for _, ids in stream.answers for pid in ids}
    assert len(answered) >= 200
    start_server(project.root)  # replays the write-ahead log before it is ready
    logged = set(read_predictions(project.registry.store)["id"])
    missing = answered - logged
    assert not missing, f"{len(missing)} answered predictions are not in the log"


def _drainers(wal: Path) -> list[int]:
    """Pids of the drainer processes working on the WAL folder ``wal``."""
    found = []
    for pid in os.listdir("/proc"):
        try:
            line = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if "assay.serve.drain" in line and f"--wal-dir {wal} " in line:
            found.append(int(pid))
    return found


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")
def test_two_workers_each_drain_and_stop_clean(project: Any, token: str,
                                               start_server: Callable[..., Server]) -> None:
    wal = project.root / ".assay" / "wal"
    server = start_server(project.root, "--workers", "2")
    _wait_for(lambda: len(_drainers(wal)) == 2, seconds=30, what="a drainer per worker")
    stream = Stream(server.url, _auth(token), project.records(50), stop_on_error=True).start()
    try:
        _wait_for(lambda: len(stream.answers) >= 200, seconds=60, what="200 answers")
    finally:
        stream.stop()
    answered = {pid for _, ids in stream.answers for pid in ids}
    server.stop()  # SIGTERM: each worker closes its log, its drainer makes a last pass
    assert server.proc.returncode == 0, server.output()
    assert _drainers(wal) == []
    assert sorted(wal.glob("*.wal")) == [] and sorted(wal.glob("drainer-*.json")) == []
    logged = set(read_predictions(project.registry.store)["id"])
    assert answered <= logged, f"{len(answered - logged)} answered predictions are not in the log"


# -- fuzzing ---------------------------------------------------------------------------------------


def test_openapi_fuzzing_finds_no_server_error(shared: Shared) -> None:
    import schemathesis
    from hypothesis import HealthCheck, given, settings
    from hypothesis.errors import Unsatisfiable
    from schemathesis import GenerationMode

    project, server, token = shared.project, shared.server, shared.token
    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    errors: list[str] = []
    calls = 0
    deadline = time.monotonic() + 50.0
    fixed = {"name": project.project.root.name}
    for result in schema.get_all_operations():
        operation = result.ok()
        path_parameters = fixed if "{name}" in operation.path else None
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            if time.monotonic() > deadline:
                break

            @settings(max_examples=25, deadline=None, database=None, derandomize=True,
                      suppress_health_check=list(HealthCheck))
            @given(case=operation.as_strategy(generation_mode=mode, headers=_auth(token),
                                                path_parameters=path_parameters))
            def check(case: Any) -> None:
                nonlocal calls
                calls += 1
                response = case.call(base_url=server.url, timeout=10)
                if response.status_code >= 500:
                    errors.append(f"{case.method} {case.formatted_path} -> {response.status_code}: "
                                  f"{response.text[:200]}")

            try:
                check()
            except Unsatisfiable:  # nothing invalid to generate (an operation without inputs)
                assert mode is GenerationMode.NEGATIVE
    assert calls >= 50
    assert errors == [], errors[:5]
    assert "Traceback" not in server.output()
