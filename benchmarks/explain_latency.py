"""One-row explanation latency of a 100-tree LightGBM: in process and over ``POST /v1/explain``.

Usage (from the repository root, assay's virtualenv)::

    python benchmarks/explain_latency.py                     # 2,000 calls in process, 500 over HTTP
    python benchmarks/explain_latency.py --calls 5000 --json explain.json

The model is a LightGBM binary classifier on 20 numeric features with 100 trees, trained
through assay (``search: {families: [lightgbm], trials: 1}`` on 4,000 seeded synthetic rows,
as ``benchmarks/serving.py`` does), refitted with ``model__n_estimators=100`` on the run's
training rows, registered and force-promoted. Two measurements, one row each time:

1. in process: validate the record against the version's schema, predict, and compute the
   exact tree SHAP contributions (``assay.model.explained.VersionExplainer``), i.e. what the
   server does per request minus HTTP;
2. over HTTP: ``assay serve``'s app under uvicorn (one worker, auth off, on 127.0.0.1), one
   ``httpx`` client sending ``POST /v1/explain`` with one record, sequentially.

Every answer is checked once: ``base_value + sum(contributions) == output`` and the
sigmoid of ``output`` is the model's probability. The goal is one row under 20 ms (p99).
The machine is shared (2 cores): compare within one run.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import yaml
from sklearn.base import clone

N_ROWS = 4_000
N_FEATURES = 20
N_TREES = 100
GOAL_MS = 20.0


def synthetic_frame(n: int = N_ROWS, seed: int = 0) -> pd.DataFrame:
    """``n`` rows of 20 standard-normal features and a binary target with some interactions."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, N_FEATURES))
    weights = rng.normal(size=N_FEATURES)
    logit = 0.5 * X @ weights + 0.8 * np.sin(2 * X[:, 0]) + 0.5 * X[:, 1] * X[:, 2]
    frame = pd.DataFrame(X, columns=[f"f{i:02d}" for i in range(N_FEATURES)])
    frame["y"] = (logit + rng.logistic(size=n) > 0).astype(int)
    return frame


def build(root: Path, seed: int = 0) -> tuple[Any, int, list[dict[str, float]]]:
    """The project (trained, 100-tree version promoted), its version and probe records."""
    from assay.pipeline import open_registry, run_project
    from assay.project import Project
    from assay.split import make_splits

    root.mkdir(parents=True)
    frame = synthetic_frame(seed=seed)
    frame.to_parquet(root / "data.parquet")
    raw = {"task": "binary", "seed": seed, "data": {"source": "data.parquet", "target": "y"},
           "search": {"families": ["lightgbm"], "trials": 1, "cv_folds": 2}}
    (root / "assay.yaml").write_text(yaml.safe_dump(raw))
    project = Project.open(root / "assay.yaml")
    registry = open_registry(project)
    try:
        run = run_project(project, registry=registry, write_report=False)
        record = registry.get(run.version)
        features = list(record.lineage.features)
        dataset = project.load_data()
        plan = make_splits(dataset.frame, project.spec, data_version=dataset.version,
                           features=features)
        train, test = plan.take(dataset.frame, "train"), plan.take(dataset.frame, "test")
        model = clone(registry.load_model(run.version)).set_params(model__n_estimators=N_TREES)
        model.fit(train[features], train["y"])
        version = registry.register(
            record.run_id, model_obj=model, task=record.task, family=record.family,
            params={**record.params, "n_estimators": N_TREES}, metrics=record.metrics,
            data_version=record.data_version, config=record.config,
            code_version=record.code_version, schema=record.schema,
            lineage={**record.lineage.to_dict(), "note": f"explain benchmark: {N_TREES} trees"},
            test_fingerprint=record.test_fingerprint,
        ).version
        registry.promote(version, gate_passed=False, force=True,
                         reason=f"explain benchmark: the {N_TREES}-tree model")
    finally:
        registry.store.close()
    records = [{k: float(v) for k, v in row.items()}
               for row in test[features].iloc[:200].to_dict(orient="records")]
    return project, version, records


def _summary(seconds: list[float]) -> dict[str, float]:
    ms = np.asarray(seconds) * 1000.0
    return {"calls": len(ms), "p50_ms": float(np.percentile(ms, 50)),
            "p99_ms": float(np.percentile(ms, 99)), "mean_ms": float(ms.mean())}


def in_process(project: Any, version: int, records: list[dict[str, float]], calls: int) -> dict[str, float]:
    """Validate + predict + explain one record, ``calls`` times."""
    from assay.model.explained import VersionExplainer
    from assay.model.loaded import LoadedModel
    from assay.pipeline import open_registry

    registry = open_registry(project)
    try:
        model = LoadedModel.load(registry, version)
        explainer = VersionExplainer.load(registry, model)
        check = explainer.explain(explainer.validate(records[:1]))[0]
        total = check.explanation.base_value + sum(check.explanation.contributions.values())
        assert abs(total - check.explanation.output) < 1e-9
        proba = 1.0 / (1.0 + np.exp(-check.explanation.output))
        assert check.prediction.probabilities is not None
        assert abs(proba - check.prediction.probabilities["1"]) < 1e-9
        for record in records[:20]:  # warm-up
            explainer.explain(explainer.validate([record]))
        seconds = []
        for i in range(calls):
            record = records[i % len(records)]
            start = time.perf_counter()
            explainer.explain(explainer.validate([record]))
            seconds.append(time.perf_counter() - start)
    finally:
        registry.store.close()
    return _summary(seconds)


def over_http(project: Any, records: list[dict[str, float]], calls: int, wal: Path) -> dict[str, float]:
    """``POST /v1/explain`` with one record, ``calls`` times, one client, sequentially."""
    import socket

    import uvicorn

    from assay.serve.app import create_app

    app = create_app(project, auth=False, poll_seconds=1.0, wal_dir=wal)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=url, timeout=10) as client:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if client.get("/readyz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError("the server did not become ready")
                time.sleep(0.05)
            first = client.post("/v1/explain", json={"records": records[:1]})
            first.raise_for_status()
            row = first.json()["explanations"][0]
            assert abs(row["base_value"] + sum(row["contributions"].values()) - row["output"]) < 1e-9
            for record in records[:20]:
                client.post("/v1/explain", json={"records": [record]})
            seconds = []
            for i in range(calls):
                body = {"records": [records[i % len(records)]]}
                start = time.perf_counter()
                response = client.post("/v1/explain", json=body)
                seconds.append(time.perf_counter() - start)
                if response.status_code != 200:
                    raise RuntimeError(response.text)
    finally:
        server.should_exit = True
        thread.join(timeout=30)
    return _summary(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000, help="in-process calls")
    parser.add_argument("--http-calls", type=int, default=500, help="HTTP requests")
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="assay-explain-bench-") as tmp:
        project, version, records = build(Path(tmp) / "project")
        results = {
            "model": f"LightGBM binary, {N_FEATURES} numeric features, {N_TREES} trees",
            "in_process": in_process(project, version, records, args.calls),
            "http": over_http(project, records, args.http_calls, Path(tmp) / "wal"),
        }
    for name in ("in_process", "http"):
        r = results[name]
        verdict = "meets" if r["p99_ms"] < GOAL_MS else "misses"
        print(f"{name:>10}: one row p50 {r['p50_ms']:.2f} ms, p99 {r['p99_ms']:.2f} ms "
              f"({r['calls']} calls; {verdict} the {GOAL_MS:.0f} ms goal)")
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
