"""float32 against int8 scoring of a registered fine-tuned text version, on its sealed test rows.

Usage::

    python benchmarks/text_int8.py PROJECT_DIR [--version N] [--texts 60]

PROJECT_DIR is a project whose version (default: the champion, else the latest) is a fine-tuned text model,
for example the folder ``benchmarks/text_finetune.py --assay-run`` prints. The script loads
the version with its artifact verified, scores the sealed test rows of its split as
registered (float32) and again with ``quantize="int8"`` (adapters merged, int8 linear
layers, each text scored alone), and prints macro F1 of both, the share of identical
predictions, and the median latency of one text (``predict_proba`` of one row, after a
warm-up) with one and two torch threads. Goal (issue: one text under 20 ms p50).
"""

from __future__ import annotations

import argparse
import pickle
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import f1_score

from assay.project import Project
from assay.registry import open_registry
from assay.split import SplitPlan


def final_estimator(model: Any) -> Any:
    return model.steps[-1][1] if hasattr(model, "steps") else model


def one_text_ms(model: Any, X: Any, n: int) -> float:
    rng = np.random.default_rng(0)
    model.predict_proba(X.iloc[[0]])  # loads the weights
    times = []
    for i in rng.integers(0, len(X), n):
        started = time.perf_counter()
        model.predict_proba(X.iloc[[int(i)]])
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("project", type=Path)
    parser.add_argument("--version", type=int, default=None)
    parser.add_argument("--texts", type=int, default=60, help="single texts timed")
    args = parser.parse_args(argv)

    project = Project.open(args.project / "assay.yaml")
    registry = open_registry(project)
    versions = registry.list()
    number = args.version or registry.alias("champion") or (
        max(v.version for v in versions) if versions else None
    )
    if number is None:
        print("no registered version: run assay run first", file=sys.stderr)
        return 2
    record = registry.get(number)
    model = registry.load_model(number)
    final = final_estimator(model)
    if not hasattr(final, "quantize"):
        print(f"version {number} ({record.family}) is not a fine-tuned text model", file=sys.stderr)
        return 2
    plan = SplitPlan.from_dict(registry.load_json(record.lineage.split_digest))
    frame = project.load_data().frame
    test = frame.iloc[plan.test]
    target = project.spec.data.target
    X, y = test[list(record.lineage.features)], test[target]

    started = time.perf_counter()
    plain = model.predict(X)
    plain_seconds = time.perf_counter() - started
    int8 = pickle.loads(pickle.dumps(model))
    final_estimator(int8).quantize = "int8"
    started = time.perf_counter()
    quantised = int8.predict(X)
    int8_seconds = time.perf_counter() - started

    f_plain = f1_score(y, plain, average="macro")
    f_int8 = f1_score(y, quantised, average="macro")
    print(f"version {number} ({record.family}), {len(X):,} sealed test rows")
    print(f"macro F1: float32 {f_plain:.4f}, int8 {f_int8:.4f} ({f_int8 - f_plain:+.4f}); "
          f"identical predictions {np.mean(plain == quantised):.1%}")
    print(f"all test rows: float32 {plain_seconds:.1f} s, int8 {int8_seconds:.1f} s")
    for threads in (1, 2):
        final.threads = threads
        final_estimator(int8).threads = threads
        a, b = one_text_ms(model, X, args.texts), one_text_ms(int8, X, args.texts)
        verdict = "met" if b < 20 else "MISSED"
        print(f"one text p50, {threads} thread(s): float32 {a:.1f} ms, int8 {b:.1f} ms "
              f"({verdict}: under 20 ms)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
