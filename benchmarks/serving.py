"""One-row REST scoring: ``assay serve`` against the bare-booster floor and the peers, in one run.

Usage (from the repository root, assay's virtualenv)::

    python benchmarks/serving.py                       # assay, two floors, MLflow, BentoML
    python benchmarks/serving.py --skip-peers          # assay and the two floors only
    python benchmarks/serving.py --duration 20 --rounds 3 --json serving.json

The model is a LightGBM binary classifier on 20 numeric features with 100 trees, trained
through assay: a synthetic frame (4,000 rows, seeded) and an ``assay.yaml`` with
``search: {families: [lightgbm], trials: 1}`` go through ``assay.pipeline.run_project``.
Its search early-stops at whatever round the validation rows pick, so the script then
refits the run's pipeline (``sklearn.base.clone``, ``model__n_estimators=100``, no
validation set) on the run's training rows, registers it under the same run and
force-promotes it (reason recorded). The same booster is exported for the peers
(``model.txt``, the training rows and parameters: ``serving_peers/_bundle.py``); every peer
proves on 32 probe rows that it answers assay's probabilities (to 1e-9) before it is loaded.

Servers, one at a time, each with one worker, on 127.0.0.1:

1. ``assay serve`` with auth on (a ``predict`` token; wrk sends ``Authorization: Bearer``)
   and its durable prediction log (write-ahead log; a drainer process inserts it into SQLite,
   ``--log-drain thread`` a thread of the server) - ``POST /v1/predict`` with one record.
   After it stops, the logged predictions are counted against the answers;
2. the floor: a bare FastAPI app (uvloop + httptools) calling ``Booster.predict`` on a NumPy
   row (``serving_peers/bare_app.py --mode booster``), and the same app calling
   ``LGBMClassifier.predict_proba`` on a one-row DataFrame (``--mode sklearn``);
3. ``mlflow models serve --env-manager local -w 1`` on the model saved with
   ``mlflow.lightgbm`` (``serving_peers/mlflow_export.py``) - ``POST /invocations`` with
   ``dataframe_split``;
4. ``bentoml serve`` of ``serving_peers/bentoml_service.py`` (one worker, the booster on a
   NumPy row).

Load: ``wrk`` (Debian package ``wrk``), 1 thread, ``--latency``, concurrency 1, 8 and 32 for
``--duration`` seconds each (default 15, at most 60) after a 3 s warm-up at c=8; ``--rounds``
repeats the points and reports medians. Idle RSS is the resident memory of the server's
whole process tree (MLflow and BentoML start child processes; shared pages count once per
process) after start-up and one checked request.

The peers live in their own virtualenvs; this script installs nothing. Set-up::

    apt-get install -y wrk
    python3 -m venv /tmp/bench-mlflow && /tmp/bench-mlflow/bin/pip install mlflow lightgbm==4.7.0
    python3 -m venv /tmp/bench-bentoml && /tmp/bench-bentoml/bin/pip install bentoml lightgbm==4.7.0 pandas

(measured with mlflow 3.17.2 and bentoml 1.4.39; LightGBM must match assay's, 4.7, for the
refitted peer models to be identical). Point the script elsewhere with
``--peer-python-mlflow PATH`` and ``--peer-python-bentoml PATH``.

The machine is shared (2 cores; wrk takes one of them): the script prints ``uptime`` before
and after. Compare the ratios of one run, not absolute figures across runs.
"""

from __future__ import annotations

import argparse
import http.client
import json
import logging
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from sklearn.base import clone

__all__ = ["Point", "ServerResult", "Target", "build_model", "main", "parse_wrk", "run_wrk"]

PEERS_DIR = Path(__file__).resolve().parent / "serving_peers"
N_FEATURES = 20
N_TREES = 100
N_ROWS = 4000
PROBE_ROWS = 32
CONCURRENCY = (1, 8, 32)
WARMUP_SECONDS = 3
MAX_DURATION = 60
#: assay's goals: req/s ratios against each peer (at every concurrency) and p99 at c=8
GOALS = {"mlflow": 10.0, "bentoml": 3.0, "floor_booster": 0.6}
P99_GOAL_MS = 10.0
DEFAULT_MLFLOW = Path("/tmp/bench-mlflow/bin/python")
DEFAULT_BENTOML = Path("/tmp/bench-bentoml/bin/python")


# -- the model -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Model:
    """The served model: assay's project, its token, the peers' bundle and the request row."""

    config: Path
    version: int
    token: str
    bundle: Path
    features: list[str]
    record: dict[str, float]
    proba: float
    label: int


def synthetic_frame(n: int = N_ROWS, seed: int = 0) -> pd.DataFrame:
    """``n`` rows of 20 standard-normal features and a binary target with some interactions."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, N_FEATURES))
    weights = rng.normal(size=N_FEATURES)
    logit = 0.5 * X @ weights + 0.8 * np.sin(2 * X[:, 0]) + 0.5 * X[:, 1] * X[:, 2]
    frame = pd.DataFrame(X, columns=[f"f{i:02d}" for i in range(N_FEATURES)])
    frame["y"] = (logit + rng.logistic(size=n) > 0).astype(int)
    return frame


def build_model(workdir: Path, seed: int = 0) -> Model:
    """Train, register and promote the 100-tree model through assay; export it for the peers."""
    from assay.pipeline import open_registry, run_project
    from assay.project import Project
    from assay.serve.auth import create_token
    from assay.split import make_splits

    root = workdir / "project"
    root.mkdir(parents=True)
    frame = synthetic_frame(seed=seed)
    frame.to_parquet(root / "data.parquet")
    raw = {
        "task": "binary",
        "seed": seed,
        "data": {"source": "data.parquet", "target": "y"},
        "search": {"families": ["lightgbm"], "trials": 1, "cv_folds": 2},
    }
    (root / "assay.yaml").write_text(yaml.safe_dump(raw))
    project = Project.open(root / "assay.yaml")
    registry = open_registry(project)
    try:
        run = run_project(project, registry=registry, write_report=False)
        record = registry.get(run.version)
        model = registry.load_model(run.version)
        features = list(record.lineage.features)
        dataset = project.load_data()
        plan = make_splits(dataset.frame, project.spec, data_version=dataset.version, features=features)
        train, test = plan.take(dataset.frame, "train"), plan.take(dataset.frame, "test")
        version = run.version
        if _trees(model) != N_TREES:
            if not hasattr(model, "steps"):
                raise RuntimeError(f"expected assay's ModelPipeline, got {type(model).__name__}")
            model = clone(model).set_params(model__n_estimators=N_TREES)
            model.fit(train[features], train["y"])
            lineage = {**record.lineage.to_dict(), "note": f"serving benchmark: run {run.run_id}'s pipeline "
                       f"refitted with {N_TREES} trees on its training rows"}
            version = registry.register(
                record.run_id, model_obj=model, task=record.task, family=record.family,
                params={**record.params, "n_estimators": N_TREES}, metrics=record.metrics,
                data_version=record.data_version, config=record.config,
                code_version=record.code_version, schema=record.schema, lineage=lineage,
                test_fingerprint=record.test_fingerprint,
            ).version
        if _trees(model) != N_TREES:
            raise RuntimeError(f"the model has {_trees(model)} trees, expected {N_TREES}")
        if registry.alias("champion") != version:
            registry.promote(version, gate_passed=False, force=True,
                             reason=f"serving benchmark: the {N_TREES}-tree model")
        token = create_token(registry, "bench", ["predict"], actor="benchmark")
    finally:
        registry.store.close()

    probe = test[features].iloc[:PROBE_ROWS]
    expected = model.predict_proba(probe)[:, 1]
    preprocess = model.steps[0][1]
    if not np.array_equal(np.asarray(preprocess.transform(probe), dtype=float), probe.to_numpy(dtype=float)):
        raise RuntimeError("the preprocessing is not the identity on these rows; the peers "
                           "would score different inputs")
    classifier = model.steps[-1][1]
    bundle = workdir / "bundle"
    bundle.mkdir()
    classifier.booster_.save_model(str(bundle / "model.txt"))
    np.savez(bundle / "train.npz", X=train[features].to_numpy(dtype=float),
             y=train["y"].to_numpy(dtype=np.int64))
    meta = {"features": features, "params": classifier.get_params(),
            "probe": probe.to_numpy(dtype=float).tolist(), "expected": expected.tolist()}
    (bundle / "meta.json").write_text(json.dumps(meta))
    row = {name: float(probe.iloc[0][name]) for name in features}
    p = float(expected[0])
    return Model(root / "assay.yaml", version, token, bundle, features, row, p, int(p > 0.5))


def _trees(model: Any) -> int:
    final = model.steps[-1][1] if hasattr(model, "steps") else getattr(model, "estimator_", None)
    booster = getattr(final, "booster_", None)
    return int(booster.num_trees()) if booster is not None else -1


# -- the servers ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """One server to measure: how to start it and what to send it."""

    name: str
    label: str
    argv: list[str]
    path: str
    body: bytes
    check: Callable[[bytes], str | None]
    port: int
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    headers: dict[str, str] = field(default_factory=dict)
    startup_seconds: float = 180.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _proba_check(expected: float, at: Callable[[Any], float]) -> Callable[[bytes], str | None]:
    def check(body: bytes) -> str | None:
        try:
            got = float(at(json.loads(body)))
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            return f"unexpected answer {body[:200]!r} ({exc})"
        return None if abs(got - expected) <= 1e-9 else f"probability {got}, expected {expected}"

    return check


def _label_check(expected: int) -> Callable[[bytes], str | None]:
    def check(body: bytes) -> str | None:
        try:
            got = json.loads(body)["predictions"][0]
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            return f"unexpected answer {body[:200]!r} ({exc})"
        return None if int(got) == expected else f"label {got}, expected {expected}"

    return check


def _venv_env(python: Path, **extra: str) -> dict[str, str]:
    # the peers' CLIs start children found on PATH (uvicorn, circus): their venv's first
    env = {**os.environ, "PATH": f"{python.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.update(extra)
    return env


def make_targets(
    model: Model, workdir: Path, mlflow: Path | None, bentoml: Path | None, log_drain: str = "process"
) -> list[Target]:
    """assay, the two floors and (unless ``None``) the MLflow and BentoML peers."""
    records = json.dumps({"records": [model.record]}).encode()
    json_headers = {"Content-Type": "application/json"}
    own = _proba_check(model.proba, lambda a: a["predictions"][0]["probabilities"]["1"])
    bare = [sys.executable, str(PEERS_DIR / "bare_app.py"), "--model-dir", str(model.bundle)]
    targets = [
        Target("assay", "assay serve (auth + log)",
               [sys.executable, "-m", "assay", "serve", "--host", "127.0.0.1", "--port", "{port}",
                "--workers", "1", "--log-level", "warning", "--log-drain", log_drain,
                "--config", str(model.config)],
               "/v1/predict", records, own, _free_port(), cwd=model.config.parent,
               headers={**json_headers, "Authorization": f"Bearer {model.token}"}),
        Target("floor_booster", "bare FastAPI, Booster.predict",
               [*bare, "--mode", "booster", "--port", "{port}"], "/predict", records, own,
               _free_port(), headers=json_headers),
        Target("floor_sklearn", "bare FastAPI, sklearn predict_proba",
               [*bare, "--mode", "sklearn", "--port", "{port}"], "/predict", records, own,
               _free_port(), headers=json_headers),
    ]
    if mlflow is not None:
        exported = workdir / "mlflow_model"
        subprocess.run([str(mlflow), str(PEERS_DIR / "mlflow_export.py"), "--model-dir",
                        str(model.bundle), "--out", str(exported)], check=True,
                       env=_venv_env(mlflow), timeout=600)
        split = {"dataframe_split": {"columns": model.features,
                                     "data": [[model.record[f] for f in model.features]]}}
        targets.append(Target(
            "mlflow", "MLflow models serve",
            [str(mlflow), "-m", "mlflow", "models", "serve", "-m", str(exported), "--env-manager",
             "local", "-h", "127.0.0.1", "-p", "{port}", "-w", "1"],
            "/invocations", json.dumps(split).encode(), _label_check(model.label), _free_port(),
            env=_venv_env(mlflow, MLFLOW_TRACKING_URI=f"file://{workdir / 'mlruns'}"),
            cwd=workdir, headers=json_headers))
    if bentoml is not None:
        targets.append(Target(
            "bentoml", "BentoML serve",
            [str(bentoml), "-m", "bentoml", "serve", "bentoml_service:BoosterService",
             "--working-dir", str(PEERS_DIR), "--host", "127.0.0.1", "--port", "{port}"],
            "/predict", records, own, _free_port(),
            env=_venv_env(bentoml, BENCH_MODEL_DIR=str(model.bundle), BENTOML_DO_NOT_TRACK="True",
                          BENTOML_HOME=str(workdir / "bentoml_home")),
            cwd=workdir, headers=json_headers))
    return targets


def _post(target: Target, timeout: float = 10.0) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", target.port, timeout=timeout)
    try:
        conn.request("POST", target.path, target.body, target.headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def _start(target: Target, logdir: Path) -> subprocess.Popen[bytes]:
    argv = [a.replace("{port}", str(target.port)) for a in target.argv]
    with open(logdir / f"{target.name}.log", "wb") as log:
        # a session of its own, so the whole tree (workers, arbiters) stops with one signal
        return subprocess.Popen(argv, cwd=target.cwd, env=target.env or None, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)


def _wait_ready(target: Target, proc: subprocess.Popen[bytes], logdir: Path) -> bytes:
    deadline = time.monotonic() + target.startup_seconds
    last = ""
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{target.name} exited with {proc.returncode}: {_tail(logdir, target)}")
        try:
            status, body = _post(target)
            if status == 200:
                return body
            last = f"HTTP {status}: {body[:200]!r}"
        except OSError as exc:
            last = str(exc)
        time.sleep(0.5)
    raise RuntimeError(f"{target.name} not ready after {target.startup_seconds:.0f} s ({last}): "
                       f"{_tail(logdir, target)}")


def _tail(logdir: Path, target: Target, lines: int = 15) -> str:
    path = logdir / f"{target.name}.log"
    text = path.read_text(errors="replace") if path.exists() else ""
    return "\n".join(text.splitlines()[-lines:])


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, 30.0), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def tree_rss(pid: int) -> tuple[float, int]:
    """Resident memory (MB) of ``pid`` and its descendants, and how many processes that is."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    total_kb, count, todo = 0, 0, [pid]
    while todo:
        current = todo.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
        except OSError:
            continue
        match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
        total_kb += int(match.group(1)) if match else 0
        count += 1
        todo.extend(children.get(current, []))
    return total_kb / 1024.0, count


# -- load ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Point:
    """One wrk run: throughput and latency percentiles at one concurrency."""

    concurrency: int
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    socket_errors: int

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values."""
        return asdict(self)


_UNITS_MS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text.strip())
    if match is None:
        raise ValueError(f"unreadable wrk latency {text!r}")
    return float(match.group(1)) * _UNITS_MS[match.group(2)]


def parse_wrk(output: str, concurrency: int) -> Point:
    """The :class:`Point` in wrk's ``--latency`` output."""

    def find(pattern: str) -> re.Match[str]:
        match = re.search(pattern, output, re.MULTILINE)
        if match is None:
            raise ValueError(f"wrk output without {pattern!r}:\n{output}")
        return match

    done = find(r"^\s*(\d+) requests in ([\d.]+\w+)")
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return Point(
        concurrency=concurrency,
        requests=int(done.group(1)),
        seconds=_ms(done.group(2)) / 1000.0,
        rps=float(find(r"^Requests/sec:\s+([\d.]+)").group(1)),
        p50_ms=_ms(find(r"^\s+50%\s+(\S+)").group(1)),
        p99_ms=_ms(find(r"^\s+99%\s+(\S+)").group(1)),
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=sum(int(g) for g in errors.groups()) if errors else 0,
    )


def _lua(target: Target, workdir: Path) -> Path:
    # a level-2 long bracket: JSON bodies contain "]]", which would close a plain [[...]]
    lines = ['wrk.method = "POST"', f"wrk.body = [==[{target.body.decode()}]==]"]
    lines += [f'wrk.headers["{k}"] = "{v}"' for k, v in target.headers.items()]
    path = workdir / f"{target.name}.lua"
    path.write_text("\n".join(lines) + "\n")
    return path


def run_wrk(url: str, script: Path, concurrency: int, seconds: int) -> Point:
    """wrk with one thread, ``concurrency`` connections, for ``seconds``."""
    argv = ["wrk", "-t1", f"-c{concurrency}", f"-d{seconds}s", "--latency", "--timeout", "10s",
            "-s", str(script), url]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60, check=True)
    return parse_wrk(out.stdout, concurrency)


# -- one server ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ServerResult:
    """A server's points (medians over rounds), idle memory, and what went wrong if anything."""

    name: str
    label: str
    points: list[Point]
    idle_rss_mb: float | None
    processes: int
    answered: int
    error: str | None = None
    note: str | None = None

    def point(self, concurrency: int) -> Point | None:
        """The point at ``concurrency``, if measured."""
        return next((p for p in self.points if p.concurrency == concurrency), None)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values."""
        out = asdict(self)
        out["points"] = [p.to_dict() for p in self.points]
        return out


def measure(target: Target, workdir: Path, concurrency: Sequence[int], seconds: int,
            rounds: int) -> ServerResult:
    """Start ``target``, check its answer, take its idle RSS, load it, stop it."""
    logdir = workdir / "logs"
    logdir.mkdir(exist_ok=True)
    print(f"-- {target.label}: starting", flush=True)
    proc = _start(target, logdir)
    try:
        body = _wait_ready(target, proc, logdir)
        wrong = target.check(body)
        if wrong:
            raise RuntimeError(f"{target.name} answers a different model: {wrong}")
        time.sleep(2.0)
        rss, processes = tree_rss(proc.pid)
        url = f"http://127.0.0.1:{target.port}{target.path}"
        script = _lua(target, workdir)
        answered = 1 + run_wrk(url, script, 8, WARMUP_SECONDS).requests
        runs: dict[int, list[Point]] = {c: [] for c in concurrency}
        for _ in range(rounds):
            for c in concurrency:
                point = run_wrk(url, script, c, seconds)
                if point.non_2xx:
                    raise RuntimeError(f"{point.non_2xx} of {point.requests} answers at c={c} were "
                                       "not 2xx; the figures would not be comparable")
                answered += point.requests
                runs[c].append(point)
                print(f"   c={c:<3} {point.rps:9.1f} req/s  p50 {point.p50_ms:7.2f} ms  "
                      f"p99 {point.p99_ms:7.2f} ms", flush=True)
        points = [_median(runs[c]) for c in concurrency]
        return ServerResult(target.name, target.label, points, rss, processes, answered)
    except (RuntimeError, subprocess.SubprocessError, ValueError, OSError) as exc:
        print(f"   FAILED: {exc}", flush=True)
        return ServerResult(target.name, target.label, [], None, 0, 0, error=str(exc))
    finally:
        _stop(proc)


def _median(points: list[Point]) -> Point:
    if len(points) == 1:
        return points[0]
    med = statistics.median
    return Point(points[0].concurrency, int(med(p.requests for p in points)),
                 med(p.seconds for p in points), med(p.rps for p in points),
                 med(p.p50_ms for p in points), med(p.p99_ms for p in points),
                 sum(p.non_2xx for p in points), sum(p.socket_errors for p in points))


def logged_predictions(config: Path, version: int) -> int:
    """Predictions of ``version`` in the project's prediction log table (after the server stopped)."""
    from sqlalchemy import func, select

    from assay.pipeline import open_registry
    from assay.project import Project
    from assay.store.tables import predictions

    registry = open_registry(Project.open(config))
    try:
        with registry.store.engine.connect() as conn:
            query = select(func.count()).select_from(predictions).where(predictions.c.version == version)
            return int(conn.execute(query).scalar_one())
    finally:
        registry.store.close()


# -- report --------------------------------------------------------------------------------------


def _uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "load average: " + Path("/proc/loadavg").read_text().strip()


def render(results: list[ServerResult], concurrency: Sequence[int]) -> str:
    """The table of points, idle memory, and assay's ratios against the goals."""
    lines = ["| server | c | req/s | p50 ms | p99 ms | non-2xx / socket errors |",
             "|---|---|---|---|---|---|"]
    for r in results:
        if r.error:
            lines.append(f"| {r.label} | - | failed: {r.error.splitlines()[0][:80]} | | | |")
        for p in r.points:
            lines.append(f"| {r.label} | {p.concurrency} | {p.rps:,.0f} | {p.p50_ms:.2f} | "
                         f"{p.p99_ms:.2f} | {p.non_2xx} / {p.socket_errors} |")
    lines += ["", "| server | idle RSS (process tree) |", "|---|---|"]
    for r in results:
        rss = f"{r.idle_rss_mb:,.0f} MB ({r.processes} process{'es' if r.processes > 1 else ''})" \
            if r.idle_rss_mb is not None else "-"
        lines.append(f"| {r.label} | {rss} |")
    by_name = {r.name: r for r in results}
    assay = by_name.get("assay")
    if assay is None or not assay.points:
        return "\n".join(lines)
    lines += ["", "| assay req/s ÷ | " + " | ".join(f"c={c}" for c in concurrency) + " | goal | met |",
              "|---|" + "---|" * (len(concurrency) + 2)]
    for name, goal in GOALS.items():
        peer = by_name.get(name)
        if peer is None or not peer.points:
            continue
        ratios = []
        for c in concurrency:
            mine, theirs = assay.point(c), peer.point(c)
            ratios.append(mine.rps / theirs.rps if mine and theirs and theirs.rps > 0 else float("nan"))
        met = "yes" if all(x >= goal for x in ratios) else "no"
        lines.append(f"| {peer.label} | " + " | ".join(f"{x:.2f}x" for x in ratios)
                     + f" | >= {goal:g}x | {met} |")
    at8 = assay.point(8)
    if at8 is not None:
        lines += ["", f"assay p99 at c=8: {at8.p99_ms:.2f} ms (goal < {P99_GOAL_MS:g} ms: "
                      f"{'met' if at8.p99_ms < P99_GOAL_MS else 'not met'})"]
    if assay.note:
        lines.append(assay.note)
    return "\n".join(lines)


def _peer_python(path: Path, name: str, setup: str) -> Path:
    if not path.exists():
        raise SystemExit(f"{name}: no Python at {path}. Create the venv ({setup}), pass "
                         f"--peer-python-{name} PATH, or run with --skip-peers.")
    return path


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; 0 when every server was measured, 1 otherwise."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=15, help="seconds per point (1-60)")
    parser.add_argument("--rounds", type=int, default=1, help="repeat the points; report medians")
    parser.add_argument("--concurrency", default=",".join(map(str, CONCURRENCY)))
    parser.add_argument("--skip-peers", action="store_true", help="assay and the floors only")
    parser.add_argument("--peer-python-mlflow", type=Path, default=DEFAULT_MLFLOW)
    parser.add_argument("--peer-python-bentoml", type=Path, default=DEFAULT_BENTOML)
    parser.add_argument("--workdir", type=Path, help="keep the project, bundle and logs here")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--log-drain", choices=["process", "thread"], default="process",
                        help="assay serve's --log-drain (who inserts the prediction log)")
    parser.add_argument("--json", type=Path, help="also write the results as JSON")
    args = parser.parse_args(argv)
    if not 1 <= args.duration <= MAX_DURATION:
        parser.error(f"--duration must be 1 to {MAX_DURATION} seconds, got {args.duration}")
    if args.rounds < 1:
        parser.error("--rounds must be 1 or more")
    concurrency = [int(c) for c in args.concurrency.split(",")]
    if any(c < 1 for c in concurrency):
        parser.error("--concurrency takes positive integers, e.g. 1,8,32")
    if subprocess.run(["which", "wrk"], capture_output=True).returncode != 0:
        raise SystemExit("wrk is not installed: apt-get install -y wrk")
    mlflow = bentoml = None
    if not args.skip_peers:
        mlflow = _peer_python(args.peer_python_mlflow, "mlflow",
                              "python3 -m venv /tmp/bench-mlflow && /tmp/bench-mlflow/bin/pip "
                              "install mlflow lightgbm==4.7.0")
        bentoml = _peer_python(args.peer_python_bentoml, "bentoml",
                               "python3 -m venv /tmp/bench-bentoml && /tmp/bench-bentoml/bin/pip "
                               "install bentoml lightgbm==4.7.0 pandas")

    before = _uptime()
    print(f"uptime before: {before}", flush=True)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="assay-serving-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    warnings.filterwarnings("ignore")
    logging.getLogger("assay").setLevel(logging.WARNING)
    started = time.perf_counter()
    model = build_model(workdir, seed=args.seed)
    print(f"model: version {model.version}, {N_TREES} trees, {N_FEATURES} features "
          f"({time.perf_counter() - started:.1f} s); work folder {workdir}", flush=True)
    targets = make_targets(model, workdir, mlflow, bentoml, args.log_drain)
    results = []
    for target in targets:
        result = measure(target, workdir, concurrency, args.duration, args.rounds)
        if target.name == "assay" and not result.error:
            logged = logged_predictions(model.config, model.version)
            note = (f"assay's prediction log: {logged:,} predictions stored for {result.answered:,} "
                    "answered requests (wrk counts only completed answers)")
            result = replace(result, note=note)
        results.append(result)
    after = _uptime()
    print()
    print(render(results, concurrency))
    print(f"\nuptime before: {before}\nuptime after:  {after}")
    print("2 shared cores (wrk uses one): other processes may have run during the points.")
    if args.json:
        args.json.write_text(json.dumps({
            "uptime_before": before, "uptime_after": after, "duration": args.duration,
            "rounds": args.rounds, "results": [r.to_dict() for r in results],
        }, indent=2))
    return 0 if all(r.error is None for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
