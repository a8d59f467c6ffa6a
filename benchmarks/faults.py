"""Fault-injection campaign against ``assay serve`` and the CLI, through their public faces only.

Usage (from the repository root, assay's virtualenv)::

    python benchmarks/faults.py                  # the full campaign (10-12 minutes on 2 cores)
    python benchmarks/faults.py --quick          # a smoke run: 2 kills, 2 swaps, fewer cases
    python benchmarks/faults.py --kills 40 --swaps 20 --json faults.json --workdir /tmp/faults

The script drives the ``assay`` command (``python -m assay`` of the interpreter that runs it,
or ``--assay "CMD"``) and HTTP; it imports nothing from assay, so it measures whatever the
installed code does. It builds a project in a temporary folder: a seeded synthetic CSV (600
rows; float, integer and categorical features; a binary target), an ``assay.yaml`` searching
LightGBM only (one trial, 2 folds), two ``assay run`` calls (versions 1 and 2), ``assay
promote 1 --force`` and three tokens from ``assay token create`` (predict + feedback,
predict only, feedback only). Every server is ``assay serve --poll-seconds 0.2`` on a free
loopback port, in a process group of its own; its output goes to ``WORKDIR/logs``.

Phases and their goals (the script exits 1 when one is missed):

1. **SIGKILL under load** (``--kills``, default 20): four threads post one record per
   request on keep-alive connections, each with its own ``X-Request-ID``, and keep the id of
   every prediction answered 200. Each round waits for the server to answer, lets the load run
   a little, then SIGKILLs the server's whole process group (server, workers, log drainer);
   every fourth round runs ``--workers 2``. The load keeps going while the next server
   starts. At the end a last server starts (it replays what the killed ones left) and is
   stopped with SIGTERM; the ``predictions`` table of ``.assay/assay.db`` is then read
   (sqlite3, read-only). Goal: no acknowledged prediction is missing from the log.
2. **Swaps under load** (``--swaps``, default 10): the same load against one server while
   ``assay promote 2 --force`` and ``assay rollback`` alternate; after each command the load
   must see the new version answer. Goals: no failed request (non-200 or connection error),
   every swap observed.
3. **Fuzz battery**: hostile requests over every endpoint (``/v1/predict``, ``/v1/feedback``,
   ``/invocations`` as JSON and as ``text/csv``, ``/v2/models/{name}/infer`` and the model's
   metadata, ``/v2/health/*``, ``/healthz``, ``/readyz``, ``/metrics``, ``/openapi.json``):
   malformed JSON and CSV, wrong types, huge numbers, NaN/Infinity literals, 10,000-deep
   nesting, huge bodies (a 5 MB CSV header of 700,000 column names, a record with 500,000
   extra keys, an 8 MB string), non-ASCII digits in numeric headers
   (``Inference-Header-Content-Length: ²``), wrong content types and methods, missing, invalid
   and under-scoped tokens. Requests go over raw sockets (so nothing is cleaned up on the
   way). Meanwhile a separate process GETs ``/healthz`` every 10 ms on a keep-alive
   connection and records each latency. Then a config fuzz writes mutated ``assay.yaml``
   files (wrong types, ``.inf``, duplicate keys, a YAML alias bomb, 20,000-deep nesting, an
   unknown ``store.url`` scheme, ``data.encoding: utf-16``, a Python object tag, ...) and runs
   ``assay audit`` and ``assay models`` on each. Goals: no 5xx, no connection closed without
   an answer, the server never dies, no ``/healthz`` answer slower than 100 ms (a stall of the
   event loop), no CLI exit other than 0/1/2, no "Traceback" or "internal error" in any output
   (CLI or server log).
4. **Slow clients**: ``--slow-clients`` connections (default 16) trickle a request line and
   headers without a token, one byte per second; half start with the request line, half send
   it whole and trickle a header. The time until the server closes each connection is
   measured (up to the header timeout plus 10 s). Goals: every connection closed within
   ``--header-timeout`` (default 10 s, the server's) plus 2 s; ``/healthz`` never slower than
   100 ms meanwhile.
5. **Log growth**: 25 requests (``--quick``: 3) whose record carries an extra 8,000,000-character
   string field (the body stays under 8 MiB). The store's files (``.assay/assay.db*``) are
   measured with the server stopped before and after. Goal: growth under 1 MB per request.

The machine may be shared: the 100 ms stall goal is absolute, so the script first records
the worst ``/healthz`` latency of an idle server (shown as "noise floor") to judge it by.
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import os
import random
import resource
import select
import shlex
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Row", "main"]

N_ROWS = 600
STALL_MS = 100.0
PING_INTERVAL_S = 0.010
STARTUP_S = 240.0
CLI_TIMEOUT_S = 120.0
CONFIG_TIMEOUT_S = 30.0
CONFIG_MEMORY_BYTES = 4 * 1024**3
FUZZ_TIMEOUT_S = 60.0
BIG_STRING = 8_000_000
LOAD_THREADS = 4


# -- results -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """One measured figure, its goal and whether it was met (``None``: shown, no goal)."""

    phase: str
    figure: str
    value: str
    goal: str
    passed: bool | None


@dataclass
class Report:
    """Figures and the details behind them (which cases failed, what a command printed)."""

    rows: list[Row] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    def add(self, phase: str, figure: str, value: object, goal: str = "",
            passed: bool | None = None) -> None:
        self.rows.append(Row(phase, figure, str(value), goal, passed))

    def missed(self) -> list[Row]:
        return [row for row in self.rows if row.passed is False]


def print_table(rows: Sequence[Row]) -> None:
    """The figures as a plain-text table, one line per figure."""
    head = ("phase", "figure", "value", "goal", "result")
    cells = [(r.phase, r.figure, r.value, r.goal,
              "" if r.passed is None else ("pass" if r.passed else "MISS")) for r in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(head)]
    line = "  ".join(h.ljust(w) for h, w in zip(head, widths))
    print(line)
    print("-" * len(line))
    for c in cells:
        print("  ".join(v.ljust(w) for v, w in zip(c, widths)))


# -- the project (built through the CLI) -----------------------------------------------------


@dataclass(frozen=True)
class Cli:
    """How to call ``assay``; every call runs in the project folder."""

    argv: tuple[str, ...]
    env: dict[str, str]

    def run(self, cwd: Path, *args: str, timeout: float = CLI_TIMEOUT_S,
            limit_memory: bool = False) -> subprocess.CompletedProcess[str]:
        preexec = _limit_memory if limit_memory else None
        return subprocess.run([*self.argv, *args], cwd=cwd, capture_output=True, text=True,
                              env=self.env, timeout=timeout, check=False, errors="replace",
                              preexec_fn=preexec)

    def check(self, cwd: Path, *args: str) -> str:
        done = self.run(cwd, *args)
        if done.returncode != 0:
            raise RuntimeError(f"`assay {' '.join(args)}` exited {done.returncode}:\n"
                               f"{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
        return done.stdout


def _limit_memory() -> None:
    # an alias bomb that expands must fail, not take the machine's memory
    resource.setrlimit(resource.RLIMIT_AS, (CONFIG_MEMORY_BYTES, CONFIG_MEMORY_BYTES))


@dataclass(frozen=True)
class Project:
    """The built project: its folder, tokens, versions and a few valid records."""

    root: Path
    name: str
    token: str
    predict_only: str
    feedback_only: str
    first: int
    second: int
    records: list[dict[str, Any]]
    features: list[str]

    @property
    def db(self) -> Path:
        return self.root / ".assay" / "assay.db"


def synthetic_rows(n: int = N_ROWS, seed: int = 0) -> list[dict[str, Any]]:
    """``n`` rows: two floats, a count, a plan and a binary target ``y`` that depends on them."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        x1, x2 = rng.gauss(0, 1), rng.gauss(10, 3)
        count, plan = rng.randrange(20), rng.choice(["basic", "pro", "team"])
        logit = 1.2 * x1 + 0.3 * (x2 - 10) + (plan == "pro") - 0.05 * count
        u = min(max(rng.random(), 1e-9), 1 - 1e-9)
        y = int(logit + 0.7 * math.log(u / (1 - u)) > 0.3)
        rows.append({"x1": round(x1, 6), "x2": round(x2, 6), "count": count, "plan": plan, "y": y})
    return rows


CONFIG = """\
task: binary
data:
  source: data.csv
  target: y
search:
  families: [lightgbm]
  trials: 1
  cv_folds: 2
serving:
  latency_p99_ms: 1000
"""


def build_project(workdir: Path, cli: Cli) -> Project:
    """Write the data and ``assay.yaml``, run twice, promote version 1, create the tokens."""
    root = workdir / "faultsproj"
    root.mkdir(parents=True)
    rows = synthetic_rows()
    features = ["x1", "x2", "count", "plan"]
    lines = [",".join([*features, "y"])]
    lines += [",".join(str(r[c]) for c in [*features, "y"]) for r in rows]
    (root / "data.csv").write_text("\n".join(lines) + "\n")
    (root / "assay.yaml").write_text(CONFIG)
    for _ in range(2):
        done = cli.run(root, "run", "--json", timeout=900)
        if done.returncode not in (0, 1):
            raise RuntimeError(f"`assay run` exited {done.returncode}:\n{done.stderr[-3000:]}")
    models = json.loads(cli.check(root, "models", "--json"))
    versions = sorted(int(v["version"]) for v in models["versions"])
    if len(versions) < 2:
        raise RuntimeError(f"expected two registered versions, got {versions}")
    first, second = versions[-2], versions[-1]
    if models.get("champion") != first:
        cli.check(root, "promote", str(first), "--force", "--reason", "fault campaign: baseline")
    tokens = []
    for name, scopes in (("faults", ["predict", "feedback"]), ("faults-predict", ["predict"]),
                         ("faults-feedback", ["feedback"])):
        argv = ["token", "create", name, "--json"]
        for scope in scopes:
            argv += ["--scope", scope]
        tokens.append(json.loads(cli.check(root, *argv))["token"])
    records = [{f: r[f] for f in features} for r in rows[:200]]
    return Project(root, root.name, tokens[0], tokens[1], tokens[2], first, second, records,
                   features)


# -- servers ------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_get(port: int, path: str, timeout: float = 5.0,
             headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def _group_alive(pgid: int) -> bool:
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


class Server:
    """One ``assay serve`` process group."""

    count = 0
    started: list[Server] = []

    def __init__(self, cli: Cli, project: Project, port: int, logdir: Path,
                 *extra: str) -> None:
        Server.count += 1
        Server.started.append(self)
        self.port = port
        self.log = logdir / f"server-{Server.count:03d}.log"
        argv = [*cli.argv, "serve", "--port", str(port), "--poll-seconds", "0.2",
                "--log-level", "warning", *extra]
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(argv, cwd=project.root, env=cli.env, stdout=out,
                                         stderr=subprocess.STDOUT, start_new_session=True)

    def wait_ready(self, seconds: float = STARTUP_S) -> float:
        started = time.monotonic()
        while time.monotonic() - started < seconds:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited with {self.proc.returncode}:\n{self.tail()}")
            try:
                if http_get(self.port, "/readyz", timeout=2)[0] == 200:
                    return time.monotonic() - started
            except (OSError, http.client.HTTPException):
                pass
            time.sleep(0.1)
        raise RuntimeError(f"the server was not ready after {seconds:.0f} s:\n{self.tail()}")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:]

    def kill(self) -> None:
        """SIGKILL the whole group: server, workers, drainers."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=30)
        deadline = time.monotonic() + 10
        while _group_alive(self.proc.pid) and time.monotonic() < deadline:
            time.sleep(0.05)

    def stop(self) -> bool:
        """SIGTERM the server and wait for its group to end; ``False`` if SIGKILL was needed."""
        graceful = True
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                graceful = False
        deadline = time.monotonic() + 30
        while _group_alive(self.proc.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _group_alive(self.proc.pid) or self.proc.poll() is None:
            graceful = False
            self.kill()
        return graceful


# -- load ---------------------------------------------------------------------------------------


class Load:
    """Threads posting one record per request; keeps every acknowledged prediction id."""

    def __init__(self, port: int, token: str, records: list[dict[str, Any]], prefix: str,
                 threads: int = LOAD_THREADS) -> None:
        self.port, self.token, self.records, self.prefix = port, token, records, prefix
        self.acked: dict[str, str] = {}
        self.statuses: Counter[int] = Counter()
        self.errors: Counter[str] = Counter()
        self.versions: list[int] = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True)
                        for i in range(threads)]

    def start(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=30)

    def count(self) -> int:
        with self.lock:
            return len(self.acked)

    def failures(self) -> int:
        with self.lock:
            return sum(self.errors.values()) + sum(n for s, n in self.statuses.items() if s != 200)

    def last_version(self) -> int | None:
        with self.lock:
            return self.versions[-1] if self.versions else None

    def _run(self, n: int) -> None:
        conn: http.client.HTTPConnection | None = None
        seq = 0
        while not self.stopping.is_set():
            seq += 1
            request_id = f"{self.prefix}-{n}-{seq}"
            record = self.records[(seq * LOAD_THREADS + n) % len(self.records)]
            body = json.dumps({"records": [record]})
            headers = {"Content-Type": "application/json", "Authorization": f"Bearer {self.token}",
                       "X-Request-ID": request_id}
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=15)
                conn.request("POST", "/v1/predict", body, headers)
                response = conn.getresponse()
                data = response.read()
            except (OSError, http.client.HTTPException) as exc:
                with self.lock:
                    self.errors[type(exc).__name__] += 1
                if conn is not None:
                    conn.close()
                conn = None
                time.sleep(0.05)
                continue
            if response.status == 200:
                prediction = json.loads(data)["predictions"][0]
                with self.lock:
                    self.statuses[200] += 1
                    self.acked[str(prediction["id"])] = request_id
                    self.versions.append(int(prediction["version"]))
            else:
                with self.lock:
                    self.statuses[response.status] += 1
                time.sleep(0.05)
            if response.will_close:
                conn.close()
                conn = None
        if conn is not None:
            conn.close()


def logged_ids(db: Path) -> set[str]:
    """Prediction ids in the store's log table, read without writing."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        return {str(row[0]) for row in conn.execute("SELECT id FROM predictions")}
    finally:
        conn.close()


def wait_until(check: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return check()


# -- phase 1: SIGKILL ---------------------------------------------------------------------------


def phase_kills(cli: Cli, project: Project, logdir: Path, kills: int, report: Report,
                rng: random.Random, full: bool) -> None:
    print(f"[1/5] {kills} SIGKILLs under load", flush=True)
    port = free_port()
    load = Load(port, project.token, project.records, "kill").start()
    startups: list[float] = []
    failed_starts: list[str] = []
    try:
        for round_ in range(kills):
            extra = ("--workers", "2") if round_ % 4 == 3 else ()
            server = Server(cli, project, port, logdir, *extra)
            try:
                startups.append(server.wait_ready())
            except RuntimeError as exc:  # a server that cannot start after a kill is a finding
                failed_starts.append(f"round {round_ + 1}: {exc}"[:2000])
                server.kill()
                if len(failed_starts) >= 3:
                    break
                continue
            before = load.count()
            wait_until(lambda: load.count() >= before + 40, 10.0)
            time.sleep(rng.uniform(0.0, 0.5))
            server.kill()
            print(f"  round {round_ + 1}/{kills}: killed after {load.count() - before} answers",
                  flush=True)
        last = Server(cli, project, port, logdir)
        startups.append(last.wait_ready())
        time.sleep(1.0)
    finally:
        load.stop()
    graceful = last.stop()
    logged = logged_ids(project.db)
    missing = sorted(set(load.acked) - logged)
    report.details["kills"] = {
        "acknowledged": len(load.acked), "missing": missing[:50],
        "missing_request_ids": [load.acked[m] for m in missing[:50]],
        "statuses": dict(load.statuses), "errors": dict(load.errors), "startup_s": startups,
        "failed_starts": failed_starts,
    }
    report.add("kills", "SIGKILLs of the server group", kills, ">= 20",
               kills >= 20 if full else None)
    report.add("kills", "predictions acknowledged (200)", len(load.acked))
    report.add("kills", "acknowledged predictions missing from the log", len(missing), "0",
               not missing and len(load.acked) > 0)
    report.add("kills", "servers that did not start after a kill", len(failed_starts), "0",
               not failed_starts)
    report.add("kills", "last server stopped by SIGTERM", "yes" if graceful else "no", "yes",
               graceful)
    median = sorted(startups)[len(startups) // 2]
    report.add("kills", "startup to ready, median (s)", f"{median:.1f}")


# -- phase 2: swaps -----------------------------------------------------------------------------


def phase_swaps(cli: Cli, project: Project, logdir: Path, swaps: int, report: Report,
                full: bool) -> None:
    print(f"[2/5] {swaps} promote/rollback swaps under load", flush=True)
    port = free_port()
    server = Server(cli, project, port, logdir)
    server.wait_ready()
    load = Load(port, project.token, project.records, "swap").start()
    observed, command_failures = 0, []
    try:
        wait_until(lambda: load.count() >= 50, 30.0)
        for i in range(swaps):
            if i % 2 == 0:
                target = project.second
                done = cli.run(project.root, "promote", str(target), "--force", "--reason",
                               f"fault campaign: swap {i + 1}")
            else:
                target = project.first
                done = cli.run(project.root, "rollback", "--reason",
                               f"fault campaign: swap {i + 1}")
            if done.returncode != 0:
                command_failures.append(
                    f"swap {i + 1}: exit {done.returncode}: {done.stderr[-300:]}")
                continue
            if wait_until(lambda: load.last_version() == target, 20.0):
                observed += 1
            seen = load.count()
            wait_until(lambda: load.count() >= seen + 20, 5.0)
    finally:
        load.stop()
    graceful = server.stop()
    failed = load.failures()
    switches = sum(1 for a, b in zip(load.versions, load.versions[1:]) if a != b)
    report.details["swaps"] = {"statuses": dict(load.statuses), "errors": dict(load.errors),
                               "command_failures": command_failures, "version_changes": switches}
    report.add("swaps", "promote/rollback swaps", swaps, ">= 10", swaps >= 10 if full else None)
    report.add("swaps", "requests answered 200", load.statuses[200])
    report.add("swaps", "failed requests (non-200 or connection error)", failed, "0", failed == 0)
    report.add("swaps", "swaps seen by the load", f"{observed}/{swaps}", f"{swaps}/{swaps}",
               observed == swaps)
    report.add("swaps", "server stopped by SIGTERM", "yes" if graceful else "no", "yes", graceful)


# -- /healthz pinger (its own process, so the campaign's own work cannot delay it) -------------


PINGER = r"""
import http.client, json, sys, threading, time
port, interval = int(sys.argv[1]), float(sys.argv[2])
stop = threading.Event()
threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
samples, conn, ready = [], None, False
while not stop.is_set():
    start = time.monotonic()
    try:
        if conn is None:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        conn.request("GET", "/healthz")
        response = conn.getresponse()
        response.read()
        status = response.status
    except Exception:
        status = 0
        if conn is not None:
            conn.close()
        conn = None
    samples.append((start, time.monotonic() - start, status))
    if status == 200 and not ready:
        ready = True
        print("ready", flush=True)
    time.sleep(interval)
json.dump(samples, sys.stdout)
"""


@contextmanager
def pinger(port: int) -> Iterator[list[tuple[float, float, int]]]:
    """Ping ``/healthz`` every 10 ms; the list fills with (start, seconds, status) at exit."""
    samples: list[tuple[float, float, int]] = []
    proc = subprocess.Popen([sys.executable, "-c", PINGER, str(port), str(PING_INTERVAL_S)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    try:
        if proc.stdout.readline().strip() != "ready":
            raise RuntimeError("the /healthz pinger did not get an answer")
        yield samples
    finally:
        out, _ = proc.communicate(input="", timeout=120)
        samples.extend((float(a), float(b), int(c)) for a, b, c in json.loads(out or "[]"))


# -- phase 3: fuzz ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One hostile request."""

    name: str
    method: str
    path: str
    body: bytes = b""
    headers: tuple[tuple[str, bytes], ...] = ()
    content_length: bool = True


@dataclass(frozen=True)
class Outcome:
    """What came back: a status, or how the connection ended without one."""

    status: int | None
    error: str | None
    sent_all: bool
    start: float
    seconds: float


def send_raw(port: int, case: Case, timeout: float = FUZZ_TIMEOUT_S) -> Outcome:
    """Send ``case`` over a fresh socket and read the status line of the answer, if any."""
    lines = [f"{case.method} {case.path} HTTP/1.1".encode("latin-1", "replace"),
             b"Host: 127.0.0.1", b"Connection: close"]
    lines += [name.encode() + b": " + value for name, value in case.headers]
    if case.content_length and (case.body or case.method in ("POST", "PUT")):
        lines.append(b"Content-Length: " + str(len(case.body)).encode())
    payload = b"\r\n".join(lines) + b"\r\n\r\n" + case.body
    start = time.monotonic()
    sent_all, error, received = True, None, b""
    try:
        sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    except OSError as exc:
        return Outcome(None, f"connect: {type(exc).__name__}", False, start, 0.0)
    with sock:
        try:
            sock.sendall(payload)
        except OSError:
            sent_all = False
        try:
            while b"\r\n" not in received:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                received += chunk
            while True:  # drain, so the answer is complete before the next case starts
                chunk = sock.recv(1 << 20)
                if not chunk:
                    break
        except TimeoutError:
            error = "timeout"
        except OSError as exc:
            error = type(exc).__name__
    seconds = time.monotonic() - start
    head = received.split(b"\r\n", 1)[0].split()
    if len(head) >= 2 and head[0].startswith(b"HTTP/") and head[1].isdigit():
        return Outcome(int(head[1]), None, sent_all, start, seconds)
    return Outcome(None, error or "closed without an answer", sent_all, start, seconds)


def _j(value: Any) -> bytes:
    return json.dumps(value, allow_nan=True).encode()


JSON_TYPE = (("Content-Type", b"application/json"),)
CSV_TYPE = (("Content-Type", b"text/csv"),)


def _deep(levels: int, leaf: bytes = b"1") -> bytes:
    return b"[" * levels + leaf + b"]" * levels


def fuzz_cases(project: Project, prediction_id: str, metadata: dict[str, Any],
               quick: bool) -> list[Case]:
    """The battery: generic hostile bodies on every POST endpoint, then endpoint-specific ones."""
    auth = (("Authorization", f"Bearer {project.token}".encode()),)
    record = dict(project.records[0])
    infer = f"/v2/models/{project.name}/infer"
    oip_inputs = [{"name": i["name"], "datatype": i["datatype"], "shape": [1],
                   "data": [record[i["name"]]]} for i in metadata.get("inputs", [])]
    csv_ok = (",".join(project.features) + "\n"
              + ",".join(str(record[f]) for f in project.features) + "\n").encode()

    def wrap(path: str, payload: Any) -> bytes:
        """``payload`` in the body shape of the endpoint at ``path``."""
        if path == "/v1/predict":
            return _j({"records": payload})
        if path == "/invocations":
            return _j({"dataframe_records": payload})
        if path == "/v1/feedback":
            return _j({"labels": payload})
        return _j({"inputs": payload})

    posts = ["/v1/predict", "/v1/feedback", "/invocations", infer]
    generic: list[tuple[str, bytes]] = [
        ("empty body", b""), ("not JSON", b"{records"), ("truncated", b'{"records": ['),
        ("null", b"null"), ("number", b"1"), ("string", b'"x"'), ("list", b"[1, 2]"),
        ("NaN literal", b'{"records": [{"x1": NaN}], "labels": NaN, "inputs": NaN}'),
        ("Infinity literal", b'{"records": [{"x1": Infinity}], "inputs": -Infinity}'),
        ("1e999", b'{"records": [{"x1": 1e999}], "labels": 1e999, "inputs": 1e999}'),
        ("big integer", b'{"records": [{"count": ' + b"9" * 4000 + b"}]}"),
        ("invalid UTF-8", b'{"records": ["\xff\xfe"]}'),
        ("lone surrogate", b'{"records": [{"plan": "\\ud800"}]}'),
        ("NUL bytes", b'{"records": [{"plan": "a\x00b"}]}\x00'),
        ("UTF-8 BOM", b"\xef\xbb\xbf" + _j({"records": [record]})),
        ("duplicate keys", b'{"records": [], "records": [{"x1": 1}], "labels": 1, "labels": []}'),
        ("deep list 10k", _deep(10_000)),
        ("deep object 10k", b'{"a":' * 10_000 + b"1" + b"}" * 10_000),
        ("deep in field 10k", b'{"records": [{"x1": ' + _deep(10_000) + b'}], "inputs": '
         + _deep(10_000) + b', "labels": ' + _deep(10_000) + b"}"),
    ]
    cases = [Case(f"{name} -> {path}", "POST", path, body, (*auth, *JSON_TYPE))
             for path in posts for name, body in generic]

    typed: list[tuple[str, Any]] = [
        ("wrong types", [{"x1": "abc", "x2": [1], "count": {"a": 1}, "plan": 3}]),
        ("booleans", [{"x1": True, "x2": False, "count": True, "plan": False}]),
        ("huge numbers", [{**record, "x1": 1.7e308, "x2": -1.7e308, "count": 10**30}]),
        ("tiny numbers", [{**record, "x1": 5e-324, "count": -(10**30)}]),
        ("nulls", [{f: None for f in project.features}]),
        ("unicode digits", [{**record, "x1": "١٢٣", "count": "²", "x2": "१०"}]),
        ("odd strings", [{**record, "plan": "\u202e\ufeff\U0001f4a5" * 100}]),
        ("2,000 records", [record] * 2000),
        ("long field name", [{**record, "k" * 100_000: 1}]),
    ]
    for path in ("/v1/predict", "/invocations"):
        cases += [Case(f"{name} -> {path}", "POST", path, wrap(path, payload), (*auth, *JSON_TYPE))
                  for name, payload in typed]
    for key in ("instances", "inputs", "dataframe_split"):
        for name, value in (("null", None), ("string", "x"), ("nested", [[[[1]]]]),
                            ("columns mismatch", {"columns": ["x1"], "data": [[1, 2, 3]]}),
                            ("deep", json.loads(_deep(500)))):
            cases.append(Case(f"/invocations {key}: {name}", "POST", "/invocations",
                              _j({key: value}), (*auth, *JSON_TYPE)))

    feedback: list[tuple[str, Any]] = [
        ("unknown ids", [{"id": f"nope-{i}", "label": 1} for i in range(1000)]),
        ("too many labels", [{"id": prediction_id, "label": 1}] * 5000),
        ("id wrong types", [{"id": 1, "label": 1}, {"id": None, "label": 1}, {"id": [1]}]),
        ("label wrong types", [{"id": prediction_id, "label": {"a": [1]}}]),
        ("label huge", [{"id": prediction_id, "label": 10**40}]),
        ("label NaN", [{"id": prediction_id, "label": float("nan")}]),
        ("id 10k chars", [{"id": "i" * 10_000, "label": 1}]),
        ("label 1 MB string", [{"id": prediction_id, "label": "l" * 1_000_000}]),
    ]
    cases += [Case(f"feedback: {name}", "POST", "/v1/feedback", wrap("/v1/feedback", payload),
                   (*auth, *JSON_TYPE)) for name, payload in feedback]

    first = oip_inputs[0] if oip_inputs else {"name": "x1", "datatype": "FP64"}
    oip: list[tuple[str, Any]] = [
        ("shape mismatch", [{**i, "shape": [3]} for i in oip_inputs]),
        ("shape huge", [{**i, "shape": [10**18]} for i in oip_inputs]),
        ("shape negative", [{**i, "shape": [-1]} for i in oip_inputs]),
        ("shape 2-d", [{**i, "shape": [1, 1, 1]} for i in oip_inputs]),
        ("wrong datatype", [{**i, "datatype": "BYTES"} for i in oip_inputs]),
        ("unknown datatype", [{**i, "datatype": "FP1024"} for i in oip_inputs]),
        ("data not a list", [{**i, "data": "abc"} for i in oip_inputs]),
        ("NaN strings", [{**i, "data": ["NaN"]} for i in oip_inputs]),
        ("duplicate inputs", oip_inputs + oip_inputs),
        ("missing inputs", oip_inputs[:1]),
        ("no inputs", []),
        ("100k inputs", [{"name": f"k{n}", "datatype": "FP64", "shape": [1], "data": [0.0]}
                         for n in range(100_000)]),
        ("binary_data_size", [{**first, "parameters": {"binary_data_size": 10**12}}]),
    ]
    cases += [Case(f"infer: {name}", "POST", infer, wrap(infer, payload), (*auth, *JSON_TYPE))
              for name, payload in oip]
    ok_infer = _j({"inputs": oip_inputs})
    for value in ("²", "١٢", "-1", "99999999999999999999", "1e3", "0x10", " 4", ""):
        cases.append(Case(f"Inference-Header-Content-Length: {value!r}", "POST", infer, ok_infer,
                          (*auth, ("Content-Type", b"application/octet-stream"),
                           ("Inference-Header-Content-Length", value.encode()))))
    cases.append(Case("binary tensor shorter than declared", "POST", infer,
                      _j({"inputs": [{**first, "parameters": {"binary_data_size": 8}}]}) + b"\x00",
                      (*auth, ("Content-Type", b"application/octet-stream"),
                       ("Inference-Header-Content-Length", str(len(ok_infer)).encode()))))

    csv_cases: list[tuple[str, bytes]] = [
        ("empty", b""), ("header only", csv_ok.split(b"\n")[0] + b"\n"),
        ("ragged rows", csv_ok + b"1,2\n1,2,3,4,5,6\n"),
        ("unbalanced quote", csv_ok + b'"1,2,3,pro\n'),
        ("NUL bytes", csv_ok.replace(b"pro", b"p\x00o").replace(b"basic", b"b\x00c")),
        ("nan/inf/1e999", csv_ok.split(b"\n")[0] + b"\nnan,inf,1e999,pro\n"),
        ("unicode digits", csv_ok.split(b"\n")[0] + "\n١٢,²,१०,pro\n".encode()),
        ("UTF-16", csv_ok.decode().encode("utf-16")),
        ("invalid UTF-8", csv_ok + b"\xff\xfe,1,2,pro\n"),
        ("CR only", csv_ok.replace(b"\n", b"\r")),
        ("duplicate columns", b"x1,x1,x2,count,plan\n1,2,3,4,pro\n"),
        ("5,000 rows", csv_ok + (csv_ok.split(b"\n")[1] + b"\n") * 5000),
        ("8 MB cell", csv_ok.split(b"\n")[0] + b"\n1,2,3," + b"p" * BIG_STRING + b"\n"),
        ("700k-column header", b",".join(b"c%d" % n for n in range(700_000)) + b"\n1\n"),
    ]
    cases += [Case(f"csv: {name}", "POST", "/invocations", body, (*auth, *CSV_TYPE))
              for name, body in csv_cases]

    big_keys = {**record, **{f"k{n}": 0 for n in range(500_000)}}
    big_string = {**record, "note": "s" * BIG_STRING}
    for path in ("/v1/predict", "/invocations"):
        cases.append(Case(f"500k extra keys -> {path}", "POST", path, wrap(path, [big_keys]),
                          (*auth, *JSON_TYPE)))
        cases.append(Case(f"8 MB string -> {path}", "POST", path, wrap(path, [big_string]),
                          (*auth, *JSON_TYPE)))
    cases.append(Case("8 MB string in a feature -> /v1/predict", "POST", "/v1/predict",
                      wrap("/v1/predict", [{**record, "plan": "p" * BIG_STRING}]),
                      (*auth, *JSON_TYPE)))
    cases.append(Case("20 MB body -> /v1/predict", "POST", "/v1/predict",
                      b'{"records": ["' + b"x" * 20_000_000 + b'"]}', (*auth, *JSON_TYPE)))

    good = _j({"records": [record]})
    headers_cases: list[tuple[str, tuple[tuple[str, bytes], ...], bytes]] = [
        ("no token", JSON_TYPE, good),
        ("invalid token", (("Authorization", b"Bearer assay_wrong"), *JSON_TYPE), good),
        ("empty bearer", (("Authorization", b"Bearer "), *JSON_TYPE), good),
        ("basic auth", (("Authorization", b"Basic dXNlcjpwYXNz"), *JSON_TYPE), good),
        ("100k-char token", (("Authorization", b"Bearer " + b"a" * 100_000), *JSON_TYPE), good),
        ("non-ASCII token", (("Authorization", "Bearer jéton\u00ff".encode("latin-1")),
                             *JSON_TYPE), good),
        ("two tokens", (*auth, ("Authorization", b"Bearer assay_other"), *JSON_TYPE), good),
        ("wrong scope", (("Authorization", f"Bearer {project.feedback_only}".encode()),
                         *JSON_TYPE), good),
        ("text/plain", (*auth, ("Content-Type", b"text/plain")), good),
        ("form", (*auth, ("Content-Type", b"application/x-www-form-urlencoded")), b"records=1"),
        ("multipart", (*auth, ("Content-Type", b"multipart/form-data; boundary=x")),
         b"--x\r\nContent-Disposition: form-data; name=records\r\n\r\n1\r\n--x--\r\n"),
        ("charset utf-16", (*auth, ("Content-Type", b"application/json; charset=utf-16")),
         good.decode().encode("utf-16")),
        ("no content type", auth, good),
        ("garbage content type", (*auth, ("Content-Type", b"\x01\x02;;;==")), good),
        ("request id 10k chars", (*auth, *JSON_TYPE, ("X-Request-ID", b"r" * 10_000)), good),
        ("request id non-ASCII",
         (*auth, *JSON_TYPE, ("X-Request-ID", "ré\u00ff".encode("latin-1"))), good),
        ("gzip claimed", (*auth, *JSON_TYPE, ("Content-Encoding", b"gzip")), good),
    ]
    for path, body_of in (("/v1/predict", None), ("/invocations", None), ("/v1/feedback", "fb"),
                          (infer, "oip")):
        for name, headers, body in headers_cases:
            if body_of == "fb":
                body = _j({"labels": [{"id": prediction_id, "label": 1}]})
                if name == "wrong scope":
                    headers = (("Authorization", f"Bearer {project.predict_only}".encode()),
                               *JSON_TYPE)
            elif body_of == "oip":
                body = ok_infer
            cases.append(Case(f"{name} -> {path}", "POST", path, body, headers))

    raw_framing = [
        Case("Content-Length: ²", "POST", "/v1/predict", good,
             (*auth, *JSON_TYPE, ("Content-Length", "²".encode())), content_length=False),
        Case("Content-Length: -1", "POST", "/v1/predict", good,
             (*auth, *JSON_TYPE, ("Content-Length", b"-1")), content_length=False),
        Case("two Content-Lengths", "POST", "/v1/predict", good,
             (*auth, *JSON_TYPE, ("Content-Length", b"3"), ("Content-Length", b"9")),
             content_length=False),
        Case("Content-Length too short", "POST", "/v1/predict", good,
             (*auth, *JSON_TYPE, ("Content-Length", b"5")), content_length=False),
        Case("bad chunked encoding", "POST", "/v1/predict", b"zz\r\n{}\r\n0\r\n\r\n",
             (*auth, *JSON_TYPE, ("Transfer-Encoding", b"chunked")), content_length=False),
        Case("chunked 6 MB", "POST", "/v1/predict",
             b"".join(b"%x\r\n" % 60_000 + b"[" * 60_000 + b"\r\n" for _ in range(100))
             + b"0\r\n\r\n", (*auth, *JSON_TYPE, ("Transfer-Encoding", b"chunked")),
             content_length=False),
        Case("header 60 KB", "GET", "/healthz", b"", (("X-Big", b"h" * 60_000),)),
        Case("1,000 headers", "GET", "/healthz", b"",
             tuple((f"X-H{n}", b"v") for n in range(1000))),
    ]
    cases += raw_framing

    gets = ["/healthz", "/readyz", "/metrics", "/openapi.json", "/v2/health/live",
            "/v2/health/ready", f"/v2/models/{project.name}", f"/v2/models/{project.name}/ready",
            "/v2", "/docs"]
    for path in gets:
        cases += [
            Case(f"GET {path}", "GET", path, b"", auth),
            Case(f"GET {path} no token", "GET", path, b""),
            Case(f"GET {path} 60 KB query", "GET", path + "?q=" + "a" * 60_000, b"", auth),
            Case(f"POST {path} JSON", "POST", path, _deep(10_000), (*auth, *JSON_TYPE)),
            Case(f"DELETE {path}", "DELETE", path, b"", auth),
            Case(f"HEAD {path}", "HEAD", path, b"", auth),
        ]
    cases += [
        Case("GET /metrics openmetrics", "GET", "/metrics", b"",
             (*auth, ("Accept", b"application/openmetrics-text; version=1.0.0"))),
        Case("GET unknown model", "GET", "/v2/models/nope/infer", b"", auth),
        Case("infer unknown model", "POST", "/v2/models/nope/infer", ok_infer, (*auth, *JSON_TYPE)),
        Case("infer model %00", "POST", "/v2/models/%00/infer", ok_infer, (*auth, *JSON_TYPE)),
        Case("infer model traversal", "POST", "/v2/models/..%2F..%2Fetc%2Fpasswd/infer", ok_infer,
             (*auth, *JSON_TYPE)),
        Case("infer model version", "POST", f"/v2/models/{project.name}/versions/999/infer",
             ok_infer, (*auth, *JSON_TYPE)),
        Case("unicode path", "GET", "/v1/pr\u00e9dict", b"", auth),
        Case("absolute-form target", "GET", "http://evil.example/healthz", b"", auth),
        Case("OPTIONS *", "OPTIONS", "*", b"", auth),
        Case("path 60 KB", "GET", "/" + "p" * 60_000, b"", auth),
    ]
    if quick:
        big = [c for c in cases if len(c.body) > 1_000_000]
        small = [c for c in cases if len(c.body) <= 1_000_000]
        cases = small[::3] + big[::2]
    return cases


def _valid_prediction(project: Project, port: int) -> str:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("POST", "/v1/predict", json.dumps({"records": project.records[:1]}),
                     {"Content-Type": "application/json",
                      "Authorization": f"Bearer {project.token}"})
        response = conn.getresponse()
        body = response.read()
    finally:
        conn.close()
    if response.status != 200:
        raise RuntimeError(f"a valid request got {response.status}: {body[:300]!r}")
    return str(json.loads(body)["predictions"][0]["id"])


def _stalls(samples: list[tuple[float, float, int]],
            windows: list[tuple[str, float, float]]) -> list[dict[str, Any]]:
    """Pings slower than the stall limit (or failed), with the cases that overlapped them most."""
    out = []
    for start, seconds, status in samples:
        if seconds * 1000 <= STALL_MS and status == 200:
            continue
        end = start + seconds
        overlap = [(min(end, b) - max(start, a), name) for name, a, b in windows]
        during = [name for o, name in sorted(overlap, reverse=True) if o > 0]
        out.append({"ms": round(seconds * 1000, 1), "status": status, "during": during[:3]})
    return out


def phase_fuzz(cli: Cli, project: Project, logdir: Path, quick: bool, report: Report) -> Server:
    print("[3/5] fuzz battery", flush=True)
    port = free_port()
    server = Server(cli, project, port, logdir)
    server.wait_ready()
    prediction_id = _valid_prediction(project, port)
    status, body = http_get(port, f"/v2/models/{project.name}",
                            headers={"Authorization": f"Bearer {project.token}"})
    metadata = json.loads(body) if status == 200 else {}
    if status != 200:
        print(f"  warning: model metadata answered {status}; infer cases are less precise")
    cases = fuzz_cases(project, prediction_id, metadata, quick)
    with pinger(port) as idle:
        time.sleep(2.0)
    floor = max((s for _, s, st in idle if st == 200), default=float("nan")) * 1000
    report.add("fuzz", "noise floor: worst /healthz of an idle server (ms)", f"{floor:.1f}")
    results: list[dict[str, Any]] = []
    windows: list[tuple[str, float, float]] = []
    crashes: list[str] = []
    with pinger(port) as samples:
        for i, case in enumerate(cases):
            outcome = send_raw(port, case)
            windows.append((case.name, outcome.start, outcome.start + outcome.seconds))
            results.append({"case": case.name, "status": outcome.status, "error": outcome.error,
                            "sent_all": outcome.sent_all, "seconds": round(outcome.seconds, 3)})
            if not server.alive():
                crashes.append(f"{case.name}: exit {server.proc.returncode}")
                server = Server(cli, project, port, logdir)
                server.wait_ready()
            if (i + 1) % 100 == 0:
                print(f"  {i + 1}/{len(cases)} cases", flush=True)
    fives = [r for r in results if r["status"] is not None and r["status"] >= 500]
    resets = [r for r in results if r["status"] is None]
    stalls = _stalls(samples, windows)
    worst = max((s for _, s, _ in samples), default=0.0) * 1000
    report.details["fuzz"] = {"cases": results, "5xx": fives, "no_answer": resets,
                              "crashes": crashes, "stalls": stalls[:100]}
    report.add("fuzz", "hostile requests sent", len(cases))
    report.add("fuzz", "answers 5xx", len(fives), "0", not fives)
    report.add("fuzz", "connections closed without an answer", len(resets), "0", not resets)
    report.add("fuzz", "server deaths", len(crashes), "0", not crashes)
    report.add("fuzz", f"/healthz pings > {STALL_MS:.0f} ms or failed (of {len(samples)})",
               len(stalls), "0", not stalls)
    report.add("fuzz", "worst /healthz latency (ms)", f"{worst:.0f}")
    return server


CONFIG_MUTATIONS: list[tuple[str, str]] = [
    ("task wrong type", CONFIG.replace("task: binary", "task: 5")),
    ("trials .inf", CONFIG.replace("trials: 1", "trials: .inf")),
    ("cv_folds -.inf", CONFIG.replace("cv_folds: 2", "cv_folds: -.inf")),
    ("latency .nan", CONFIG.replace("latency_p99_ms: 1000", "latency_p99_ms: .nan")),
    ("seed 10**40", CONFIG + "seed: 10000000000000000000000000000000000000000\n"),
    ("duplicate keys", CONFIG + "task: regression\ndata: {source: other.csv, target: y}\n"),
    ("alias bomb", CONFIG + "bomb0: &b0 [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"bomb{n}: &b{n} [{', '.join([f'*b{n - 1}'] * 10)}]\n" for n in range(1, 9))
     + "slices: *b8\n"),
    ("alias bomb in data.drop", CONFIG.replace("target: y", "target: y\n  drop: [&a0 [x, x, x], "
        + ", ".join(f"&a{n} [{', '.join([f'*a{n - 1}'] * 10)}]" for n in range(1, 9)) + "]")),
    ("nesting 20,000 flow", CONFIG + "slices: " + "[" * 20_000 + "]" * 20_000 + "\n"),
    ("nesting 20,000 mappings", CONFIG + "monitoring: " + "{k: " * 20_000 + "1" + "}" * 20_000
     + "\n"),
    ("unknown store scheme", CONFIG + "store:\n  url: nosuchdb://host/db\n"),
    ("store url garbage", CONFIG + "store:\n  url: '::::\\x00'\n"),
    ("encoding utf-16", CONFIG.replace("target: y", "target: y\n  encoding: utf-16")),
    ("python object tag", CONFIG + "x: !!python/object/apply:os.system ['echo pwned']\n"),
    ("top-level list", "- task\n- binary\n"),
    ("empty file", ""),
    ("binary garbage", "\x00\x01\x02\ufffe\uffff"),
    ("file in UTF-16", "UTF16:" + CONFIG),
    ("target missing", CONFIG.replace("target: y", "target: nosuchcolumn")),
    ("source is /dev/null", CONFIG.replace("source: data.csv", "source: /dev/null")),
    ("source is a folder", CONFIG.replace("source: data.csv", "source: .")),
    ("huge string key", CONFIG + "k" * 1_000_000 + ": 1\n"),
]


def _write_config(path: Path, text: str) -> None:
    if text.startswith("UTF16:"):
        path.write_bytes(text[len("UTF16:"):].encode("utf-16"))
    else:
        path.write_bytes(text.encode("utf-8", "surrogatepass"))


def phase_config(cli: Cli, project: Project, workdir: Path, quick: bool, report: Report) -> None:
    mutations = CONFIG_MUTATIONS[::3] if quick else CONFIG_MUTATIONS
    print(f"      config fuzz: {len(mutations)} mutated assay.yaml files", flush=True)
    jobs = []
    for n, (name, text) in enumerate(mutations):
        folder = workdir / "config-fuzz" / f"{n:02d}"
        folder.mkdir(parents=True)
        shutil.copy(project.root / "data.csv", folder / "data.csv")
        _write_config(folder / "assay.yaml", text)
        jobs += [(name, folder, "audit"), (name, folder, "models")]

    def run(job: tuple[str, Path, str]) -> dict[str, Any]:
        name, folder, command = job
        try:
            done = cli.run(folder, command, "--config", str(folder / "assay.yaml"),
                           timeout=CONFIG_TIMEOUT_S, limit_memory=True)
            code, output = done.returncode, done.stdout + done.stderr
        except subprocess.TimeoutExpired:
            code, output = None, "timed out"
        return {"mutation": name, "command": command, "exit": code,
                "traceback": "Traceback" in output or "internal error" in output.lower(),
                "pwned": "pwned" in output, "output": output[-600:]}

    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(run, jobs))
    bad_exits = [r for r in results if r["exit"] not in (0, 1, 2)]
    tracebacks = [r for r in results if r["traceback"] or r["pwned"]]
    report.details["config"] = {"results": results}
    report.add("fuzz", "config mutations x (audit, models)", f"{len(mutations)} x 2")
    report.add("fuzz", "CLI exits other than 0/1/2 (or hangs)", len(bad_exits), "0", not bad_exits)
    report.add("fuzz", "CLI outputs with a traceback / internal error", len(tracebacks), "0",
               not tracebacks)


# -- phase 4: slow clients ----------------------------------------------------------------------


def _slow_client(port: int, whole_line: bool, cap: float) -> dict[str, Any]:
    """Trickle a request, a byte a second; seconds until the server closed (or ``cap``)."""
    request_line = b"POST /v1/predict HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    trickle = (b"Content-Type: application/json\r\nX-Slow: " + b"s" * 200)
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    start = time.monotonic()
    answer, closed, sent = b"", False, 0
    try:
        if whole_line:
            sock.sendall(request_line)
            data = trickle
        else:
            data = request_line + trickle
        next_send = start
        while time.monotonic() - start < cap:
            if time.monotonic() >= next_send and sent < len(data):
                try:
                    sock.sendall(data[sent:sent + 1])
                except OSError:
                    closed = True
                    break
                sent += 1
                next_send += 1.0
            readable, _, _ = select.select([sock], [], [], 0.05)
            if readable:
                try:
                    chunk = sock.recv(4096)
                except OSError:
                    closed = True
                    break
                if not chunk:
                    closed = True
                    break
                answer += chunk
    finally:
        sock.close()
    status = answer.split(b"\r\n", 1)[0].decode("latin-1")
    return {"held_s": round(time.monotonic() - start, 2), "closed": closed, "answer": status,
            "bytes_sent": sent + (len(request_line) if whole_line else 0)}


def phase_slow(server: Server, n: int, header_timeout: float, report: Report) -> None:
    print(f"[4/5] {n} slow clients", flush=True)
    cap = header_timeout + 10.0
    with pinger(server.port) as samples, ThreadPoolExecutor(max_workers=n) as pool:
        futures = [pool.submit(_slow_client, server.port, i % 2 == 1, cap) for i in range(n)]
        results = [f.result() for f in futures]
    held = max(r["held_s"] for r in results)
    open_at_cap = sum(1 for r in results if not r["closed"])
    worst = max((s for _, s, _ in samples), default=0.0) * 1000
    failed_pings = sum(1 for _, _, st in samples if st != 200)
    limit = header_timeout + 2.0
    report.details["slow"] = {"clients": results}
    report.add("slow", "slow connections", n)
    report.add("slow", "longest held (s)", f"{held:.1f}" + (f" ({open_at_cap} still open)"
                                                            if open_at_cap else ""),
               f"<= {limit:.0f}", held <= limit and not open_at_cap)
    report.add("slow", "worst /healthz latency meanwhile (ms)", f"{worst:.0f}",
               f"<= {STALL_MS:.0f}", worst <= STALL_MS and not failed_pings)


# -- phase 5: log growth ------------------------------------------------------------------------


def store_bytes(project: Project) -> int:
    return sum(p.stat().st_size for p in project.db.parent.glob("assay.db*"))


def phase_growth(cli: Cli, project: Project, logdir: Path, requests: int, report: Report) -> None:
    print(f"[5/5] log growth: {requests} requests with an 8 MB string", flush=True)
    before = store_bytes(project)
    port = free_port()
    server = Server(cli, project, port, logdir)
    server.wait_ready()
    body = json.dumps({"records": [{**project.records[0], "note": "g" * BIG_STRING}]}).encode()
    statuses: Counter[str] = Counter()
    for i in range(requests):
        case = Case(f"growth {i}", "POST", "/v1/predict", body,
                    (("Authorization", f"Bearer {project.token}".encode()), *JSON_TYPE))
        outcome = send_raw(port, case)
        statuses[str(outcome.status or outcome.error)] += 1
    graceful = server.stop()
    after = store_bytes(project)
    growth_mb = (after - before) / 1e6
    wal = sum(p.stat().st_size for p in (project.root / ".assay").rglob("*.wal"))
    report.details["growth"] = {"statuses": dict(statuses), "before": before, "after": after,
                                "wal_left_bytes": wal}
    report.add("growth", f"answers to {requests} requests", ", ".join(
        f"{k}: {v}" for k, v in sorted(statuses.items())))
    report.add("growth", "store growth (MB)", f"{growth_mb:.1f}", f"< {requests}",
               growth_mb < requests)
    report.add("growth", "server stopped by SIGTERM", "yes" if graceful else "no", "yes", graceful)


# -- main ---------------------------------------------------------------------------------------


def server_tracebacks(logdir: Path, first: int) -> list[str]:
    """Server logs (numbered from ``first``) that contain a traceback or an internal error."""
    found = []
    for log in sorted(logdir.glob("server-*.log")):
        if int(log.stem.split("-")[1]) < first:
            continue
        text = log.read_text(errors="replace")
        if "Traceback" in text or "internal error" in text.lower():
            found.append(log.name)
    return found


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: 2 kills, 2 swaps, a third of the fuzz cases")
    parser.add_argument("--kills", type=int, help="SIGKILL rounds (default 20; --quick 2)")
    parser.add_argument("--swaps", type=int, help="promote/rollback swaps (default 10; --quick 2)")
    parser.add_argument("--slow-clients", type=int, help="slow connections (default 16; --quick 4)")
    parser.add_argument("--header-timeout", type=float, default=10.0,
                        help="the server's header timeout the slow clients are held to (s)")
    parser.add_argument("--assay", default=f"{shlex.quote(sys.executable)} -m assay",
                        help="the command that runs assay (default: this Python's -m assay)")
    parser.add_argument("--json", type=Path, help="write figures and details to this file")
    parser.add_argument("--workdir", type=Path, help="keep the project and logs here")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    kills = args.kills if args.kills is not None else (2 if args.quick else 20)
    swaps = args.swaps if args.swaps is not None else (2 if args.quick else 10)
    slow = args.slow_clients if args.slow_clients is not None else (4 if args.quick else 16)
    growth_requests = 3 if args.quick else 25

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="assay-faults-"))
    workdir.mkdir(parents=True, exist_ok=True)
    logdir = workdir / "logs"
    logdir.mkdir(exist_ok=True)
    env = {**os.environ, "ASSAY_USER": "faults", "COLUMNS": "120", "NO_COLOR": "1",
           "PYTHONUNBUFFERED": "1"}
    cli = Cli(tuple(shlex.split(args.assay)), env)
    report = Report()
    started = time.monotonic()
    print(f"building the project in {workdir}", flush=True)
    project = build_project(workdir, cli)
    print(f"  built in {time.monotonic() - started:.0f} s", flush=True)
    rng = random.Random(args.seed)

    timings = {"build": time.monotonic() - started}

    def timed(name: str, run: Callable[[], Any]) -> Any:
        began = time.monotonic()
        result = run()
        timings[name] = time.monotonic() - began
        print(f"  {name}: {timings[name]:.0f} s", flush=True)
        return result

    full = not args.quick
    try:
        timed("kills", lambda: phase_kills(cli, project, logdir, kills, report, rng, full))
        timed("swaps", lambda: phase_swaps(cli, project, logdir, swaps, report, full))
        first_fuzz_log = Server.count + 1
        server = timed("fuzz", lambda: phase_fuzz(cli, project, logdir, args.quick, report))
        timed("slow", lambda: phase_slow(server, slow, args.header_timeout, report))
        stopped = server.stop()
        timed("config", lambda: phase_config(cli, project, workdir, args.quick, report))
        timed("growth", lambda: phase_growth(cli, project, logdir, growth_requests, report))
    finally:  # no server outlives the campaign, even when a phase fails
        for leftover in Server.started:
            if leftover.alive() or _group_alive(leftover.proc.pid):
                leftover.kill()
    report.details["seconds"] = timings
    traced = server_tracebacks(logdir, first_fuzz_log)
    report.add("fuzz", "server logs with a traceback / internal error", len(traced), "0",
               not traced)
    report.add("fuzz", "fuzzed server stopped by SIGTERM", "yes" if stopped else "no", "yes",
               stopped)
    # keep the phases' rows together
    order = {"kills": 0, "swaps": 1, "fuzz": 2, "slow": 3, "growth": 4}
    report.rows.sort(key=lambda row: order[row.phase])
    elapsed = time.monotonic() - started
    print()
    print_table(report.rows)
    missed = report.missed()
    print(f"\n{len(missed)} goal(s) missed; {elapsed / 60:.1f} min; work folder {workdir}")
    for name in ("fuzz", "config"):
        detail = report.details.get(name, {})
        for key in ("5xx", "no_answer", "crashes", "stalls"):
            for item in detail.get(key, [])[:8]:
                print(f"  {name} {key}: {item}")
        for item in [r for r in detail.get("results", []) if r["exit"] not in (0, 1, 2)
                     or r["traceback"] or r["pwned"]][:8]:
            print(f"  config: {item['mutation']} / {item['command']}: exit {item['exit']}: "
                  f"{item['output'][-160:]!r}")
    if args.json:
        args.json.write_text(json.dumps({"rows": [asdict(r) for r in report.rows],
                                         "details": report.details, "seconds": elapsed},
                                        indent=2, default=str))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
