"""A tiny labelling project: a binary target with an item id column and unlabelled rows.

Rows 0..199 are ``row_id`` 0..199; rows 40..99 have no label (``churned`` is empty), the
others are labelled by a known rule of ``x0`` and ``x1``. The Label Studio files in
``data/`` annotate rows 40, 41 and 42.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from assay.project import Project
from assay.store import Store
from assay.testing.stores import open_test_store, store_params

DATA = Path(__file__).resolve().parent / "data"
UNLABELLED = range(40, 100)


def truth(frame: pd.DataFrame) -> np.ndarray:
    """The rule the labels follow."""
    return (frame["x0"] + 0.5 * frame["x1"] > 0).astype(int).to_numpy()


def write_project(root: Path, n: int = 200, **extra: object) -> Project:
    """The project in ``root``: data.csv and assay.yaml (``extra`` adds top-level keys)."""
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"row_id": np.arange(n), "x0": rng.normal(size=n),
                          "x1": rng.normal(size=n)})
    target = truth(frame).astype(float)
    target[list(UNLABELLED)] = np.nan
    frame["churned"] = target
    root.mkdir(parents=True, exist_ok=True)
    frame.to_csv(root / "data.csv", index=False)
    raw = {
        "task": "binary",
        "data": {"source": "data.csv", "target": "churned", "id": "row_id"},
        "search": {"families": ["linear"], "trials": 1, "cv_folds": 3},
        "serving": {"latency_p99_ms": 1000},
        # the import tests count votes; Dawid-Skene has tests of its own
        "labelling": {"consensus": "majority"},
        **extra,
    }
    (root / "assay.yaml").write_text(yaml.safe_dump(raw))
    return Project.open(root / "assay.yaml")


def write_table(path: Path, rows: list[tuple[object, ...]],
                columns: tuple[str, ...] = ("item_id", "annotator", "label")) -> Path:
    """A long annotation table (CSV or Parquet by the suffix)."""
    frame = pd.DataFrame(rows, columns=list(columns))
    if path.suffix == ".parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False)
    return path


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return write_project(tmp_path / "project")


@pytest.fixture(params=store_params())
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    with open_test_store(request.param, tmp_path) as opened:
        yield opened
