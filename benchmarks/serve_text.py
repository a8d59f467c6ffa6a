"""One-text scoring of a text classifier: latency and throughput with and without gathering.

Usage (from the repository root, assay's virtualenv)::

    PYTHONPATH=src python benchmarks/serve_text.py                 # every model, c = 1, 8, 32
    PYTHONPATH=src python benchmarks/serve_text.py --duration 5 --json serve_text.json

The model is a ``tfidf_linear`` text classifier trained by ``assay.pipeline.run_project`` on
600 synthetic reviews (``review`` -> ``pos``/``neg``). It is served four ways, each a version
registered with the run's schema and lineage and promoted before its server starts (five
servers in all):

1. ``tfidf``: the run's pipeline as trained (it does not prefer batches: each request is
   scored on the event loop, today's path for every model without ``prefers_batches_``);
2. ``tfidf, gathered``: the same pipeline behind a wrapper that only declares
   ``prefers_batches_ = True`` (``--batch-wait-ms``, default 5, and ``--max-batch``, 32);
3. ``emulated transformer, alone`` and 4. ``..., gathered``: the pipeline behind
   :class:`EmulatedTransformer`, which sleeps ``--call-ms`` (default 10) plus ``--row-ms``
   (0.2) per row in each ``predict_proba`` call while holding one process-wide lock, as one
   CPU-bound forward pass of MiniLM would occupy the cores (5-30 ms a call on this machine).
   ``alone`` serves it with ``--max-batch 1`` (each request its own call, in a worker
   thread); ``gathered`` with the defaults; ``wait 0`` with ``--batch-wait-ms 0`` (only the
   requests that queued while the previous call ran are gathered). The real transformer
   family will replace it.

Each server is ``assay serve`` itself (the CLI's command function in a child process of this
script, so the child can unpickle the wrapper classes: auth off on loopback, the durable
prediction log drained by a separate process, one worker). Load: ``wrk`` (one thread,
``--latency``) for ``--duration`` seconds at each concurrency after a 2 s warm-up; every
request is one text, rotating over 64 different reviews. The rows per model call are read
from the server's ``/metrics`` (``assay_model_batch_rows``) before it stops.

The machine is shared (2 cores; wrk takes one): compare the ratios of one run.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

CONCURRENCY = (1, 8, 32)
GOOD = ["great", "love", "fast", "friendly", "excellent", "helpful", "quick"]
BAD = ["slow", "broken", "rude", "refund", "awful", "late", "cold"]
FILLER = ["the", "service", "was", "and", "order", "staff", "my", "food", "delivery", "today"]
_LOCK = threading.Lock()


class EmulatedTransformer:
    """A fitted text model that costs ``call_ms`` + ``row_ms`` per row per ``predict_proba``
    call, one call at a time (a lock), and declares ``prefers_batches_``."""

    prefers_batches_ = True

    def __init__(self, inner: Any, call_ms: float = 0.0, row_ms: float = 0.0) -> None:
        self.inner = inner
        self.call_ms = call_ms
        self.row_ms = row_ms

    @property
    def classes_(self) -> Any:
        return self.inner.classes_

    def predict_proba(self, X: pd.DataFrame) -> Any:
        if self.call_ms or self.row_ms:
            with _LOCK:
                time.sleep((self.call_ms + self.row_ms * len(X)) / 1000.0)
        return self.inner.predict_proba(X)

    def predict(self, X: pd.DataFrame) -> Any:
        return np.asarray(self.classes_)[np.argmax(self.predict_proba(X), axis=1)]


def reviews(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        label = "pos" if i % 2 else "neg"
        words = list(rng.choice(FILLER, 8)) + list(rng.choice(GOOD if label == "pos" else BAD, 2))
        rng.shuffle(words)
        rows.append({"review": " ".join(words), "label": label})
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class Point:
    """One wrk run."""

    concurrency: int
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int


@dataclass(frozen=True)
class Served:
    """One model's points and its mean rows per model call (None: not gathered)."""

    name: str
    points: list[Point]
    rows_per_call: float | None


def build(workdir: Path, call_ms: float, row_ms: float) -> tuple[Path, dict[str, int]]:
    """The project and the versions to serve, by name."""
    from assay.pipeline import open_registry, run_project
    from assay.project import Project

    root = workdir / "project"
    root.mkdir(parents=True)
    reviews(600, 0).to_csv(root / "data.csv", index=False)
    raw = {"task": "text-classification",
           "data": {"source": "data.csv", "target": "label", "text": "review"},
           "search": {"families": ["tfidf_linear"], "trials": 1, "cv_folds": 2}}
    (root / "assay.yaml").write_text(yaml.safe_dump(raw))
    project = Project.open(root / "assay.yaml")
    registry = open_registry(project)
    try:
        run = run_project(project, registry=registry, write_report=False)
        record = registry.get(run.version)
        pipeline = registry.load_model(run.version)

        def register(model: Any) -> int:
            return int(registry.register(
                record.run_id, model_obj=model, task=record.task, family=record.family,
                params=record.params, metrics=record.metrics, data_version=record.data_version,
                config=record.config, code_version=record.code_version, schema=record.schema,
                lineage=record.lineage).version)

        versions = {
            "tfidf": run.version,
            "tfidf, gathered": register(EmulatedTransformer(pipeline)),
            "emulated transformer, alone": register(EmulatedTransformer(pipeline, call_ms, row_ms)),
        }
    finally:
        registry.store.close()
    return root / "assay.yaml", versions


def promote(config: Path, version: int) -> None:
    from assay.pipeline import open_registry
    from assay.project import Project

    registry = open_registry(Project.open(config))
    try:
        if registry.alias("champion") != version:
            registry.promote(version, gate_passed=False, force=True, reason="serving benchmark")
    finally:
        registry.store.close()


def serve_child(config: str, port: int, wait_ms: float, max_batch: int) -> None:
    """``assay serve`` in this process (the child): the CLI command's own function."""
    from assay.cli.serve import serve

    serve(host="127.0.0.1", port=port, insecure_no_auth=True, batch_wait_ms=wait_ms,
          max_batch=max_batch, log_level="warning", config=Path(config))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return int(response.status), response.read()
    except OSError:
        return 0, b""


def _lua(workdir: Path, texts: Sequence[str]) -> Path:
    bodies = ",\n".join(f"[==[{json.dumps({'records': [{'review': t}]})}]==]" for t in texts)
    script = workdir / "one_text.lua"
    script.write_text(
        'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
        f"local bodies = {{{bodies}}}\nlocal i = 0\n"
        "request = function()\n  i = i % #bodies + 1\n"
        "  return wrk.format(nil, '/v1/predict', nil, bodies[i])\nend\n"
    )
    return script


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", text.strip())
    if match is None:
        raise ValueError(f"unreadable wrk latency {text!r}")
    return float(match.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[match.group(2)]


def wrk(url: str, script: Path, concurrency: int, seconds: int) -> Point:
    argv = ["wrk", "-t1", f"-c{concurrency}", f"-d{seconds}s", "--latency", "--timeout", "10s",
            "-s", str(script), url]
    out = subprocess.run(argv, capture_output=True, text=True, check=True,
                         timeout=seconds + 60).stdout

    def find(pattern: str) -> str:
        match = re.search(pattern, out, re.M)
        if match is None:
            raise ValueError(f"wrk output without {pattern!r}:\n{out}")
        return match.group(1)

    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return Point(concurrency, float(find(r"Requests/sec:\s+([\d.]+)")),
                 _ms(find(r"^\s+50%\s+(\S+)")), _ms(find(r"^\s+99%\s+(\S+)")),
                 errors + (int(non_2xx.group(1)) if non_2xx else 0))


def measure(name: str, config: Path, version: int, wait_ms: float, max_batch: int, script: Path,
            concurrency: Sequence[int], seconds: int, expected: dict[str, float]) -> Served:
    promote(config, version)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    argv = [sys.executable, __file__, "--serve-child", str(config), str(port), str(wait_ms),
            str(max_batch)]
    child = subprocess.Popen(argv, cwd=config.parent, stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while _get(f"{url}/readyz")[0] != 200:
            if time.monotonic() > deadline or child.poll() is not None:
                raise RuntimeError(f"the server for {name!r} did not start")
            time.sleep(0.2)
        for text, pos in expected.items():  # the answer is the pipeline's
            body = json.dumps({"records": [{"review": text}]}).encode()
            request = urllib.request.Request(f"{url}/v1/predict", body,
                                             {"Content-Type": "application/json"})
            with urllib.request.urlopen(request, timeout=10) as response:
                got = json.loads(response.read())["predictions"][0]["probabilities"]["pos"]
            if abs(got - pos) > 1e-9:
                raise RuntimeError(f"{name}: probability {got} for {text!r}, expected {pos}")
        wrk(url, script, 8, 2)
        points = []
        for c in concurrency:
            points.append(wrk(url, script, c, seconds))
            p = points[-1]
            print(f"  {name:32s} c={c:<3d} {p.rps:8.0f} req/s  p50 {p.p50_ms:7.2f} ms  "
                  f"p99 {p.p99_ms:7.2f} ms  errors {p.errors}", flush=True)
        metrics = _get(f"{url}/metrics")[1].decode()
        rows = _total(metrics, "assay_model_batch_rows_sum")
        calls = _total(metrics, "assay_model_batches_total")
        return Served(name, points, rows / calls if calls else None)
    finally:
        child.terminate()
        try:
            child.wait(timeout=30)
        except subprocess.TimeoutExpired:
            child.kill()


def _total(metrics: str, name: str) -> float:
    """The sum of a metric's samples in Prometheus text."""
    return sum(float(v) for v in re.findall(rf"^{name}\{{[^}}]*\}} (\S+)$", metrics, re.M))


def render(results: Sequence[Served]) -> str:
    """The figures as a Markdown table (rows per call on each model's last line)."""
    lines = ["| model | c | req/s | p50 ms | p99 ms | errors | rows per call |",
             "|---|---|---|---|---|---|---|"]
    for r in results:
        per_call = f"{r.rows_per_call:.1f}" if r.rows_per_call is not None else "1 (not gathered)"
        for p in r.points:
            last = per_call if p is r.points[-1] else ""
            lines.append(f"| {r.name} | {p.concurrency} | {p.rps:.0f} | {p.p50_ms:.2f} | "
                         f"{p.p99_ms:.2f} | {p.errors} | {last} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per point")
    parser.add_argument("--concurrency", default=",".join(map(str, CONCURRENCY)))
    parser.add_argument("--call-ms", type=float, default=10.0,
                        help="emulated cost of one model call")
    parser.add_argument("--row-ms", type=float, default=0.2, help="emulated cost of one more row")
    parser.add_argument("--batch-wait-ms", type=float, default=5.0)
    parser.add_argument("--max-batch", type=int, default=32)
    parser.add_argument("--workdir", type=Path, help="keep the project here")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        print("wrk is needed: apt-get install -y wrk", file=sys.stderr)
        return 2
    concurrency = [int(c) for c in args.concurrency.split(",")]
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="assay-serve-text-"))
    workdir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    config, versions = build(workdir, args.call_ms, args.row_ms)
    sample = reviews(64, 1)["review"].tolist()
    from assay.pipeline import open_registry
    from assay.project import Project

    registry = open_registry(Project.open(config))
    pipeline = registry.load_model(versions["tfidf"])
    registry.store.close()
    probes = sample[:4]
    expected = dict(zip(probes, pipeline.predict_proba(pd.DataFrame({"review": probes}))[:, 1]))
    script = _lua(workdir, sample)
    print(f"trained and registered in {time.perf_counter() - started:.1f} s; emulated transformer: "
          f"{args.call_ms:g} ms a call + {args.row_ms:g} ms a row, one call at a time", flush=True)
    wait = args.batch_wait_ms
    emulated = versions["emulated transformer, alone"]
    plans = [("tfidf", versions["tfidf"], wait, 1),
             ("tfidf, gathered", versions["tfidf, gathered"], wait, args.max_batch),
             ("emulated transformer, alone", emulated, wait, 1),
             ("emulated transformer, gathered", emulated, wait, args.max_batch),
             ("emulated transformer, wait 0", emulated, 0.0, args.max_batch)]
    results = [measure(name, config, version, wait_ms, max_batch, script, concurrency,
                       args.duration, expected) for name, version, wait_ms, max_batch in plans]
    print()
    print(render(results))
    print(f"\ngathering: --batch-wait-ms {args.batch_wait_ms:g} --max-batch {args.max_batch}; "
          "2 shared cores (wrk uses one).")
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=2))
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "--serve-child":
        serve_child(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5]))
    else:
        sys.exit(main())
