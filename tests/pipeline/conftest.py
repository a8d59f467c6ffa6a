"""Small real projects on disk for end-to-end runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.datasets import make_classification

from assay.project import Project


def classification_frame(n: int = 600, seed: int = 0) -> pd.DataFrame:
    X, y = make_classification(
        n_samples=n, n_features=6, n_informative=4, n_redundant=0, flip_y=0.02,
        class_sep=1.2, random_state=seed,
    )
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(6)])
    frame["segment"] = np.random.default_rng(seed).choice(["a", "b"], n)
    frame["y"] = y
    return frame


@pytest.fixture
def make_project(tmp_path: Path) -> Callable[..., Project]:
    """Write data and an assay.yaml (fast search settings unless overridden); open it."""

    def make(frame: pd.DataFrame | None = None, **overrides: Any) -> Project:
        data = classification_frame() if frame is None else frame
        data.to_csv(tmp_path / "data.csv", index=False)
        raw: dict[str, Any] = {
            "task": "binary",
            "data": {"source": "data.csv", "target": "y"},
            "slices": ["segment"],
            "search": {"families": ["dummy", "linear"], "trials": 2, "cv_folds": 3},
            "serving": {"latency_p99_ms": 1000},
        }
        for key, value in overrides.items():
            raw[key] = value
        if raw["task"] == "binary":
            # a criterion, so a first run that passes every gate is promoted
            raw.setdefault("acceptance", {"roc_auc": ">= 0.6"})
        (tmp_path / "assay.yaml").write_text(yaml.safe_dump(raw))
        return Project.open(tmp_path / "assay.yaml")

    return make
