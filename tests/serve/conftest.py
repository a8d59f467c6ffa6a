"""A small real project for the serving tests: a promoted model and a second registered version.

``serving_template`` is built once per test session (two ``run_project`` calls on
400 rows, a few seconds) and must not be changed; ``serving_project`` gives each
test its own copy of the folder (database and artifacts), to promote, deploy,
tamper with or log into freely.

The data has numeric (with missing values), integer, categorical, boolean and
datetime features, and a binary target ``y``.
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from assay.pipeline import open_registry, run_project
from assay.project import Project
from assay.registry import ModelRegistry

FEATURES = ["x1", "x2", "count", "plan", "region", "active", "signup"]


def serving_frame(n: int = 400, seed: int = 0) -> pd.DataFrame:
    """A binary data set with every tabular column kind; ``x2`` has missing values."""
    rng = np.random.default_rng(seed)
    x1 = rng.normal(size=n)
    x2 = rng.normal(size=n) * 3 + 10
    count = rng.integers(0, 20, n)
    plan = rng.choice(["basic", "pro", "team"], n, p=[0.5, 0.3, 0.2])
    region = rng.choice(["north", "south", "east", "west"], n)
    active = rng.random(n) < 0.6
    signup = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 365 * 24, n), unit="h")
    logit = (
        1.2 * x1
        + 0.3 * (x2 - 10)
        + (plan == "pro") * 1.0
        - (plan == "team") * 0.5
        + 0.8 * active
        - 0.05 * count
    )
    y = (logit + rng.logistic(size=n) * 0.7 > 0.3).astype(int)
    frame = pd.DataFrame(
        {
            "x1": x1,
            "x2": x2,
            "count": count,
            "plan": plan,
            "region": region,
            "active": active,
            "signup": signup,
            "y": y,
        }
    )
    frame.loc[rng.random(n) < 0.05, "x2"] = np.nan
    return frame


def to_record(row: pd.Series) -> dict[str, Any]:
    """A frame row as a JSON request record (ISO datetimes, null for missing)."""
    out: dict[str, Any] = {}
    for name, value in row.items():
        if isinstance(value, pd.Timestamp):
            out[str(name)] = value.isoformat()
        elif isinstance(value, (float, np.floating)) and math.isnan(value):
            out[str(name)] = None
        elif isinstance(value, np.generic):
            out[str(name)] = value.item()
        else:
            out[str(name)] = value
    return out


@dataclass(frozen=True)
class ServingProject:
    """A project folder with a promoted champion and a second registered version.

    Attributes:
        project: the opened project.
        registry: its registry (a fresh connection per copy).
        champion: the promoted version (search over dummy, linear, lightgbm).
        second: a LightGBM version that is not the champion (registered, or archived when
            its run promoted it and the fixture rolled back), for swaps and deployments.
        frame: the training data (features and ``y``).
        features: the model's input columns.
    """

    project: Project
    registry: ModelRegistry
    champion: int
    second: int
    frame: pd.DataFrame
    features: list[str]

    @property
    def root(self) -> Path:
        return self.project.root

    def records(self, n: int = 5, start: int = 0) -> list[dict[str, Any]]:
        """``n`` JSON request records (features only) taken from the data."""
        rows = self.frame.iloc[start : start + n][self.features]
        return [to_record(row) for _, row in rows.iterrows()]

    def artifact_path(self, version: int) -> Path:
        """The artifact file of ``version`` (to tamper with in tests)."""
        digest = self.registry.get(version).artifact_digest
        return self.registry.store.artifacts.path_of(digest)


def _write_project(root: Path) -> Project:
    root.mkdir(parents=True, exist_ok=True)
    serving_frame().to_parquet(root / "data.parquet")
    raw = {
        "task": "binary",
        "data": {"source": "data.parquet", "target": "y"},
        "search": {"families": ["dummy", "linear", "lightgbm"], "trials": 3, "cv_folds": 2},
        "serving": {"latency_p99_ms": 1000},
    }
    (root / "assay.yaml").write_text(yaml.safe_dump(raw))
    return Project.open(root / "assay.yaml")


def _build(root: Path) -> tuple[int, int]:
    project = _write_project(root)
    registry = open_registry(project)
    try:
        first = run_project(project, registry=registry, write_report=False)
        if not first.promoted:
            registry.promote(
                first.version, gate_passed=first.gate.passed, force=not first.gate.passed,
                reason="test fixture",
            )
        spec = project.spec
        lightgbm_only = spec.model_copy(
            update={"search": spec.search.model_copy(update={"families": ["dummy", "lightgbm"]})}
        )
        second_project = Project(
            root=project.root, config_path=project.config_path, spec=lightgbm_only
        )
        second = run_project(second_project, registry=registry, write_report=False)
        if registry.alias("champion") != first.version:
            registry.rollback(reason="test fixture: keep the first version as champion")
        return first.version, second.version
    finally:
        registry.store.close()


@pytest.fixture(scope="session")
def serving_template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServingProject]:
    """The shared, read-only project (do not promote, deploy or write into it)."""
    root = tmp_path_factory.mktemp("serving-template") / "project"
    champion, second = _build(root)
    project = Project.open(root / "assay.yaml")
    registry = open_registry(project)
    yield ServingProject(
        project=project,
        registry=registry,
        champion=champion,
        second=second,
        frame=serving_frame(),
        features=list(FEATURES),
    )
    registry.store.close()


@pytest.fixture
def serving_project(serving_template: ServingProject, tmp_path: Path) -> Iterator[ServingProject]:
    """A private copy of the template project, free to change."""
    root = tmp_path / "project"
    shutil.copytree(serving_template.root, root)
    project = Project.open(root / "assay.yaml")
    registry = open_registry(project)
    yield ServingProject(
        project=project,
        registry=registry,
        champion=serving_template.champion,
        second=serving_template.second,
        frame=serving_template.frame,
        features=list(serving_template.features),
    )
    registry.store.close()


# -- a text-classification project -------------------------------------------------------------


@dataclass(frozen=True)
class TextProject:
    """A promoted ``tfidf_linear`` text classifier (``review`` -> ``pos``/``neg``).

    Attributes:
        project: the opened project.
        registry: its registry.
        version: the promoted version, trained by ``run_project``.
        frame: the training data.
    """

    project: Project
    registry: ModelRegistry
    version: int
    frame: pd.DataFrame

    @property
    def root(self) -> Path:
        return self.project.root


def _build_text(root: Path) -> int:
    from .textmodels import text_frame

    root.mkdir(parents=True, exist_ok=True)
    text_frame().to_csv(root / "data.csv", index=False)
    raw = {
        "task": "text-classification",
        "data": {"source": "data.csv", "target": "label", "text": "review"},
        "search": {"families": ["dummy", "tfidf_linear"], "trials": 2, "cv_folds": 2},
    }
    (root / "assay.yaml").write_text(yaml.safe_dump(raw))
    project = Project.open(root / "assay.yaml")
    registry = open_registry(project)
    try:
        result = run_project(project, registry=registry, write_report=False)
        if not result.promoted:
            registry.promote(
                result.version, gate_passed=result.gate.passed, force=not result.gate.passed,
                reason="test fixture",
            )
        return result.version
    finally:
        registry.store.close()


@pytest.fixture(scope="session")
def text_template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TextProject]:
    """The shared, read-only text project (do not promote, deploy or write into it)."""
    from .textmodels import text_frame

    root = tmp_path_factory.mktemp("text-template") / "project"
    version = _build_text(root)
    project = Project.open(root / "assay.yaml")
    registry = open_registry(project)
    yield TextProject(project, registry, version, text_frame())
    registry.store.close()


@pytest.fixture
def text_project(text_template: TextProject, tmp_path: Path) -> Iterator[TextProject]:
    """A private copy of the text project, free to change."""
    root = tmp_path / "text-project"
    shutil.copytree(text_template.root, root)
    project = Project.open(root / "assay.yaml")
    registry = open_registry(project)
    yield TextProject(project, registry, text_template.version, text_template.frame)
    registry.store.close()
