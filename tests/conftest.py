"""Shared fixtures: seeds and small frames with known properties.

Model artifacts are signed with a key kept outside the store: the test session uses a
key file of its own in a temporary folder (created at the first registration), never
the user's ``~/.config/assay/signing.key``. Subprocesses inherit it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_classification


@pytest.fixture(scope="session", autouse=True)
def signing_key_file() -> Iterator[str]:
    """The session's signing key file (``$ASSAY_KEY_FILE``), in a temporary folder."""
    saved = {name: os.environ.get(name) for name in ("ASSAY_KEY_FILE", "ASSAY_SIGNING_KEY")}
    folder = tempfile.mkdtemp(prefix="assay-test-key-")
    path = os.path.join(folder, "signing.key")
    os.environ["ASSAY_KEY_FILE"] = path
    os.environ.pop("ASSAY_SIGNING_KEY", None)
    yield path
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    shutil.rmtree(folder, ignore_errors=True)


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
