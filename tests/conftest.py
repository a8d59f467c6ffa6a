"""Shared fixtures: seeds and small frames with known properties."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_classification


@pytest.fixture
def seed() -> int:
    return 7


@pytest.fixture
def clean_frame(seed: int) -> pd.DataFrame:
    """A clean binary data set: no defect any audit check should report."""
    X, y = make_classification(
        n_samples=2000,
        n_features=8,
        n_informative=5,
        n_redundant=1,
        flip_y=0,
        class_sep=1.0,
        random_state=seed,
    )
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(X.shape[1])])
    frame["target"] = y
    return frame
