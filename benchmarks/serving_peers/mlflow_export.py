"""Export assay's benchmark model as an MLflow model (run in MLflow's own virtualenv).

Usage::

    /tmp/bench-mlflow/bin/python benchmarks/serving_peers/mlflow_export.py --model-dir BUNDLE --out DIR
    /tmp/bench-mlflow/bin/mlflow models serve -m DIR --env-manager local -h 127.0.0.1 -p 8103 -w 1

Fits an ``LGBMClassifier`` with assay's parameters on the same rows (proved equal to assay's
model on the probe rows), then ``mlflow.lightgbm.save_model`` with a signature inferred from
the named columns, so the scoring server enforces the schema as it does for any logged model.
``POST /invocations`` with ``{"dataframe_split": {"columns": [...], "data": [[...]]}}``
answers ``{"predictions": [label]}`` (the pyfunc flavour calls ``LGBMClassifier.predict``).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

import mlflow
import pandas as pd
from mlflow.models import infer_signature

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bundle import fit_classifier, load_bundle  # noqa: E402

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> None:
    """Write the MLflow model folder ``--out`` (replaced if present)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    bundle = load_bundle(args.model_dir)
    model = fit_classifier(bundle)
    probe = pd.DataFrame(bundle.probe, columns=bundle.features)
    signature = infer_signature(probe, model.predict(probe))
    if args.out.exists():
        shutil.rmtree(args.out)
    mlflow.lightgbm.save_model(model, str(args.out), signature=signature)
    print(f"mlflow {mlflow.__version__}: saved {args.out}")


if __name__ == "__main__":
    main()
