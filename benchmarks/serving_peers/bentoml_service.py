"""The BentoML peer of ``benchmarks/serving.py`` (run in BentoML's own virtualenv).

Usage::

    BENCH_MODEL_DIR=BUNDLE /tmp/bench-bentoml/bin/python -m bentoml serve \\
        bentoml_service:BoosterService --working-dir benchmarks/serving_peers \\
        --host 127.0.0.1 --port 8104

``POST /predict`` takes assay's body, ``{"records": [{"f00": 0.1, ...}]}`` (validated by
BentoML's pydantic IO), scores each record with the booster of assay's model on a NumPy
row (``num_threads=1``, the same call as the bare floor) and answers
``{"predictions": [{"prediction": 0|1, "probabilities": {"0": p0, "1": p1}}]}``. One
worker; the API is ``async``, so the call is not handed to a thread pool.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import bentoml
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bundle import load_booster, load_bundle  # noqa: E402

__all__ = ["BoosterService"]


@bentoml.service(workers=1, traffic={"timeout": 30})
class BoosterService:
    """One LightGBM booster behind one JSON endpoint."""

    def __init__(self) -> None:
        bundle = load_bundle(os.environ["BENCH_MODEL_DIR"])
        self.features = bundle.features
        self.booster = load_booster(bundle)

    @bentoml.api
    async def predict(self, records: list[dict[str, float]]) -> dict[str, Any]:
        """Probabilities of each record."""
        out = []
        for record in records:
            row = np.array([[float(record[name]) for name in self.features]])
            p = float(self.booster.predict(row, num_threads=1)[0])
            out.append({"prediction": int(p > 0.5), "probabilities": {"0": 1.0 - p, "1": p}})
        return {"predictions": out}
