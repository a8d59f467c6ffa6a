"""The floors of ``benchmarks/serving.py``: a bare FastAPI endpoint around the same model.

Usage (assay's virtualenv; uvloop and httptools installed)::

    python benchmarks/serving_peers/bare_app.py --model-dir BUNDLE --mode booster --port 8101
    python benchmarks/serving_peers/bare_app.py --model-dir BUNDLE --mode sklearn --port 8102

``POST /predict`` takes assay's body, ``{"records": [{"f00": 0.1, ...}]}``, and answers
``{"predictions": [{"prediction": 0|1, "probabilities": {"0": p0, "1": p1}}]}``.

* ``booster``: the record's values in feature order as a NumPy row, then
  ``Booster.predict(row, num_threads=1)`` (the floor: no validation, no logging, no auth);
* ``sklearn``: a one-row DataFrame, then ``LGBMClassifier.predict_proba`` (the scikit-learn
  wrapper's per-call checks).

The endpoint is ``async`` and scores inline, as assay's does for small requests.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import Response

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bundle import fit_classifier, load_booster, load_bundle  # noqa: E402

__all__ = ["create_app", "main"]


def create_app(model_dir: Path, mode: str) -> FastAPI:
    """The bare app over the bundle in ``model_dir`` (``mode``: booster | sklearn)."""
    bundle = load_bundle(model_dir)
    features = bundle.features
    proba: Callable[[Mapping[str, Any]], float]
    if mode == "booster":
        booster = load_booster(bundle)

        def proba(record: Mapping[str, Any]) -> float:
            row = np.array([[float(record[name]) for name in features]])
            return float(booster.predict(row, num_threads=1)[0])

    elif mode == "sklearn":
        model = fit_classifier(bundle)

        def proba(record: Mapping[str, Any]) -> float:
            frame = pd.DataFrame([record], columns=features)
            return float(model.predict_proba(frame)[0, 1])

    else:
        raise SystemExit(f"--mode must be booster or sklearn, got {mode!r}")

    app = FastAPI()

    @app.post("/predict")
    async def predict(request: Request) -> Response:
        records: Sequence[Mapping[str, Any]] = orjson.loads(await request.body())["records"]
        out = []
        for record in records:
            p = proba(record)
            out.append({"prediction": int(p > 0.5), "probabilities": {"0": 1.0 - p, "1": p}})
        return Response(orjson.dumps({"predictions": out}), media_type="application/json")

    return app


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the arguments and serve with uvicorn (uvloop + httptools, one worker)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--mode", choices=["booster", "sklearn"], required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    app = create_app(args.model_dir, args.mode)
    uvicorn.run(app, host=args.host, port=args.port, loop="uvloop", http="httptools",
                access_log=False, log_level="warning", workers=1)


if __name__ == "__main__":
    main()
