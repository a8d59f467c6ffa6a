"""Event-loop stalls: hostile requests against ``assay serve`` while /healthz is pinged every 10 ms.

Usage (from the repository root, assay's virtualenv)::

    python benchmarks/loop_stalls.py                          # builds a model, starts its own server
    python benchmarks/loop_stalls.py --url http://127.0.0.1:8000 --token TOKEN --model NAME

Without ``--url`` the script trains the serving benchmark's model (``serving.build_model``:
LightGBM, 20 numeric features, about 10 s) in a temporary folder and starts
``assay serve --header-timeout 2 --body-timeout 3`` on it, so the slow clients are
let go within seconds. With ``--url`` it uses a running server (a token with the
``predict`` scope; ``--model`` is the name under ``/v2/models/``).

A separate process sends ``GET /healthz`` every 10 ms on one kept-alive connection and
records each answer's latency, while the main process sends, one after another:

1. ``POST /invocations``, ``text/csv`` whose header line names 700,000 columns (5.5 MB);
2. ``POST /v1/predict``, one record with 550,000 extra keys;
3. ``POST /v1/predict``, one record with a 5,000,000-character string;
4. ``POST /v1/predict``, 20,000 records (over ``--max-records``);
5. ``POST /v1/predict``, 1,000 valid records (the largest batch allowed: scored, 200);
6. ``POST /v2/models/{name}/infer`` with ``Inference-Header-Content-Length: ²``;
7. 50 connections that send half a request head and wait (until the server closes them);
8. 10 connections that send their headers and then one body byte a second.

It prints each request's status and error code, when the slow connections were
closed, and the worst /healthz latency during each phase and overall. Goal: no
/healthz answer slower than 100 ms (exit code 1 otherwise). The machine is shared:
run it twice before believing a single outlier.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing as mp
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

GOAL_MS = 100.0
PING_EVERY = 0.010


# -- the pinger (its own process, so the client's GIL does not delay it) -------------------------


def _ping(host: str, port: int, stop: Any, out: Any) -> None:
    samples: list[tuple[float, float]] = []
    conn = http.client.HTTPConnection(host, port, timeout=30)
    while not stop.is_set():
        start = time.monotonic()
        try:
            conn.request("GET", "/healthz")
            conn.getresponse().read()
        except (OSError, http.client.HTTPException):
            conn.close()
            conn = http.client.HTTPConnection(host, port, timeout=30)
            continue
        end = time.monotonic()
        samples.append((start, end - start))
        time.sleep(max(0.0, PING_EVERY - (end - start)))
    conn.close()
    out.put(samples)


# -- the hostile requests --------------------------------------------------------------------


@dataclass
class Phase:
    """One hostile request (or group of connections) and what the server answered."""

    name: str
    start: float = 0.0
    end: float = 0.0
    status: str = ""


def _post(host: str, port: int, path: str, body: bytes, headers: dict[str, str]) -> str:
    conn = http.client.HTTPConnection(host, port, timeout=120)
    try:
        conn.putrequest("POST", path)
        for name, value in {**headers, "Content-Length": str(len(body))}.items():
            conn.putheader(name, value.encode("latin-1"))
        conn.endheaders()
        conn.send(body)
        response = conn.getresponse()
        payload = response.read()
    finally:
        conn.close()
    try:
        parsed = json.loads(payload)
        code = parsed.get("error", "") if isinstance(parsed, dict) else ""
        message = parsed.get("message", "") if isinstance(parsed, dict) else ""
    except ValueError:
        code, message = "", payload[:80].decode(errors="replace")
    return f"{response.status} {code}".strip() + (f": {message[:110]}" if message else "")


def _slow_heads(host: str, port: int, count: int, wait: float) -> str:
    sockets = []
    for _ in range(count):
        sock = socket.create_connection((host, port), timeout=wait)
        sock.sendall(b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: appl")
        sockets.append(sock)
    return _closed_after(sockets, wait, None)


def _slow_bodies(host: str, port: int, token: str, count: int, wait: float) -> str:
    sockets = []
    head = (f"POST /v1/predict HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
            "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n").encode()
    for _ in range(count):
        sock = socket.create_connection((host, port), timeout=wait)
        sock.sendall(head + b"{")
        sockets.append(sock)
    return _closed_after(sockets, wait, b" ")


def _closed_after(sockets: list[socket.socket], wait: float, drip: bytes | None) -> str:
    start = time.monotonic()
    open_ = {s: b"" for s in sockets}
    closed: list[float] = []
    statuses: set[str] = set()
    last_drip = start
    while open_ and time.monotonic() - start < wait:
        for sock in list(open_):
            sock.settimeout(0.05)
            try:
                data = sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                data = b""
            if data:
                open_[sock] += data
                continue
            statuses.add(open_[sock][:12].decode(errors="replace").strip() or "closed, no answer")
            closed.append(time.monotonic() - start)
            del open_[sock]
            sock.close()
        if drip is not None and time.monotonic() - last_drip >= 1.0:
            last_drip = time.monotonic()
            for sock in open_:
                try:
                    sock.sendall(drip)
                except OSError:
                    pass
    for sock in open_:
        sock.close()
    if not closed:
        return f"none of {len(sockets)} closed within {wait:g} s"
    return (f"{len(closed)} of {len(sockets)} closed by the server after {min(closed):.1f}-{max(closed):.1f} s"
            f" ({', '.join(sorted(statuses))})")


# -- a server of our own -------------------------------------------------------------------------


def _own_server(workdir: Path, header_timeout: float, body_timeout: float) -> tuple[subprocess.Popen[bytes],
                                                                                  str, str, str, list[str]]:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from serving import build_model  # the serving benchmark's model

    model = build_model(workdir)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    log = open(workdir / "server.log", "wb")  # noqa: SIM115 - the child keeps it
    proc = subprocess.Popen(
        [sys.executable, "-m", "assay", "serve", "--port", str(port), "--log-level", "warning",
         "--header-timeout", str(header_timeout), "--body-timeout", str(body_timeout),
         "--config", str(model.config)],
        cwd=model.config.parent, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited: {(workdir / 'server.log').read_text()[-2000:]}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/readyz")
            if conn.getresponse().status == 200:
                break
        except OSError:
            pass
        time.sleep(0.2)
    else:
        raise SystemExit("the server did not become ready in 120 s")
    return proc, url, model.token, model.config.parent.name, list(model.features)


def _features(host: str, port: int, token: str, model: str) -> list[str]:
    conn = http.client.HTTPConnection(host, port, timeout=10)
    conn.request("GET", f"/v2/models/{model}", headers={"Authorization": f"Bearer {token}"})
    response = conn.getresponse()
    body = json.loads(response.read())
    if response.status != 200:
        raise SystemExit(f"GET /v2/models/{model}: {response.status} {body}")
    return [i["name"] for i in body["inputs"]]


# -- main --------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """Run the phases; 0 when no /healthz answer took longer than the goal."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a running server (default: start one on a fresh model)")
    parser.add_argument("--token", default=os.environ.get("ASSAY_TOKEN"), help="a 'predict' token")
    parser.add_argument("--model", help="the served model's name (OIP v2), with --url")
    parser.add_argument("--slow-seconds", type=float, default=None,
                        help="how long to wait for the server to close slow clients "
                        "(default: 4 s with our own server, 15 s with --url)")
    args = parser.parse_args(argv)

    proc = None
    workdir = Path(tempfile.mkdtemp(prefix="assay-loop-stalls-"))
    if args.url:
        if not args.token or not args.model:
            parser.error("--url needs --token (or ASSAY_TOKEN) and --model")
        url, token, model = args.url, args.token, args.model
        parts = urlsplit(url)
        features = _features(parts.hostname or "127.0.0.1", parts.port or 80, token, model)
        wait = args.slow_seconds or 15.0
    else:
        proc, url, token, model, features = _own_server(workdir, header_timeout=2.0, body_timeout=3.0)
        wait = args.slow_seconds or 4.0
        print(f"server: {url} (--header-timeout 2 --body-timeout 3), work folder {workdir}", flush=True)
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80

    auth = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    record = {name: 0.5 for name in features}
    wide_csv = (",".join(f"c{i}" for i in range(700_000)) + "\n" + ",".join("1" * 1)).encode()
    extra_keys = json.dumps({"records": [{**record, **{f"k{i}": 1 for i in range(550_000)}}]}).encode()
    long_string = json.dumps({"records": [{**record, features[0]: "x" * 5_000_000}]}).encode()
    many = json.dumps({"records": [record] * 20_000}).encode()
    batch = json.dumps({"records": [record] * 1000}).encode()
    oip = json.dumps({"inputs": [{"name": f, "datatype": "FP64", "shape": [1], "data": [0.5]}
                                 for f in features]}).encode()
    steps: list[tuple[str, Callable[[], str]]] = [
        ("csv header of 700,000 columns (5.5 MB)", lambda: _post(
            host, port, "/invocations", wide_csv, {**auth, "Content-Type": "text/csv"})),
        ("record with 550,000 extra keys", lambda: _post(host, port, "/v1/predict", extra_keys, auth)),
        ("string of 5,000,000 characters", lambda: _post(host, port, "/v1/predict", long_string, auth)),
        ("20,000 records", lambda: _post(host, port, "/v1/predict", many, auth)),
        ("1,000 valid records", lambda: _post(host, port, "/v1/predict", batch, auth)),
        ("Inference-Header-Content-Length: ²", lambda: _post(
            host, port, f"/v2/models/{model}/infer", oip,
            {**auth, "Inference-Header-Content-Length": "\u00b2"})),
        ("50 half-sent request heads", lambda: _slow_heads(host, port, 50, wait)),
        ("10 bodies at one byte a second", lambda: _slow_bodies(host, port, token, 10, wait)),
    ]

    stop, out = mp.Event(), mp.Queue()
    pinger = mp.Process(target=_ping, args=(host, port, stop, out), daemon=True)
    pinger.start()
    phases: list[Phase] = []
    try:
        time.sleep(1.0)  # a baseline of pings
        for name, step in steps:
            phase = Phase(name, start=time.monotonic())
            try:
                phase.status = step()
            except (OSError, http.client.HTTPException) as exc:
                phase.status = f"client error: {type(exc).__name__}: {exc}"
            phase.end = time.monotonic()
            phases.append(phase)
            print(f"{name:40s} {phase.end - phase.start:6.2f} s  {phase.status}", flush=True)
            time.sleep(0.3)
    finally:
        stop.set()
        samples: list[tuple[float, float]] = out.get(timeout=60)
        pinger.join(timeout=10)
        if proc is not None:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)

    print()
    print("| phase | /healthz answers | worst /healthz ms |")
    print("|---|---|---|")
    for phase in phases:
        inside = [lat for at, lat in samples if phase.start <= at + lat and at <= phase.end]
        worst = max(inside, default=float("nan")) * 1000
        print(f"| {phase.name} | {len(inside)} | {worst:.1f} |")
    latencies = sorted(lat for _, lat in samples)
    worst = latencies[-1] * 1000 if latencies else float("nan")
    p99 = latencies[int(0.99 * (len(latencies) - 1))] * 1000 if latencies else float("nan")
    print(f"\n/healthz: {len(latencies)} answers, p99 {p99:.1f} ms, worst {worst:.1f} ms "
          f"(goal: no stall over {GOAL_MS:g} ms: {'met' if worst <= GOAL_MS else 'not met'})")
    return 0 if worst <= GOAL_MS else 1


if __name__ == "__main__":
    sys.exit(main())
