"""The model bundle shared by the peer servers of ``benchmarks/serving.py``.

``benchmarks/serving.py`` writes, beside assay's project, a folder with

* ``model.txt`` - the LightGBM booster inside assay's served pipeline (``Booster.save_model``);
* ``train.npz`` - ``X`` (float64, the training rows as the booster saw them) and ``y``;
* ``meta.json`` - ``features`` (input columns in order), ``params`` (the ``LGBMClassifier``
  parameters of assay's model), ``probe`` (rows) and ``expected`` (assay's probability of
  class 1 for each probe row).

The peers use only LightGBM, NumPy and pandas from it, so this module runs in their own
virtual environments (with the same LightGBM version, 4.7).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

__all__ = ["TOLERANCE", "Bundle", "check", "fit_classifier", "load_booster", "load_bundle"]

#: largest accepted difference between a peer's probability and assay's
TOLERANCE = 1e-9


@dataclass(frozen=True)
class Bundle:
    """The exported model: its folder, input columns, parameters, training rows and probe."""

    root: Path
    features: list[str]
    params: dict[str, Any]
    X: np.ndarray
    y: np.ndarray
    probe: np.ndarray
    expected: np.ndarray


def load_bundle(root: str | Path) -> Bundle:
    """Read the bundle folder written by ``benchmarks/serving.py``."""
    path = Path(root)
    meta = json.loads((path / "meta.json").read_text())
    with np.load(path / "train.npz") as data:
        X, y = data["X"], data["y"]
    return Bundle(
        root=path,
        features=list(meta["features"]),
        params=dict(meta["params"]),
        X=X,
        y=y,
        probe=np.asarray(meta["probe"], dtype=float),
        expected=np.asarray(meta["expected"], dtype=float),
    )


def load_booster(bundle: Bundle) -> lgb.Booster:
    """The booster of assay's model, checked against assay's probabilities."""
    booster = lgb.Booster(model_file=str(bundle.root / "model.txt"))
    check(bundle, lambda rows: booster.predict(rows, num_threads=1))
    return booster


def fit_classifier(bundle: Bundle) -> lgb.LGBMClassifier:
    """An ``LGBMClassifier`` with assay's parameters fitted on the same rows (named columns).

    LightGBM is deterministic here (``deterministic=True``, one thread), so the trees are
    the same as assay's; :func:`check` proves it on the probe rows.
    """
    model = lgb.LGBMClassifier(**bundle.params)
    model.fit(pd.DataFrame(bundle.X, columns=bundle.features), bundle.y)
    check(bundle, lambda rows: model.predict_proba(pd.DataFrame(rows, columns=bundle.features))[:, 1])
    return model


def check(bundle: Bundle, proba: Callable[[np.ndarray], Any]) -> None:
    """Raise ``RuntimeError`` unless ``proba(probe)`` equals assay's probabilities."""
    got = np.asarray(proba(bundle.probe), dtype=float).reshape(-1)
    worst = float(np.max(np.abs(got - bundle.expected)))
    if worst > TOLERANCE:
        raise RuntimeError(
            f"the peer's model differs from assay's by up to {worst:.3g} on the probe rows "
            f"(tolerance {TOLERANCE}); check that LightGBM is 4.7 here ({lgb.__version__})"
        )
