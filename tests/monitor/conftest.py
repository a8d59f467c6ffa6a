"""A small monitored project and a way to log traffic into it without the HTTP server.

``monitored_template`` is built once per session (one ``run_project`` on 300 rows) and
must not be changed; ``monitored`` gives each test its own copy of the folder.
:meth:`Monitored.send` plays the server: it scores rows with the champion (and, when
asked, a shadow version), appends the entries to the prediction log and sends the
feedback labels.

The data: four numeric features and a categorical one; ``y`` is ``x0 > 0`` with
noise. ``concept=True`` makes ``y`` follow ``x1`` instead (the inputs keep their
distribution); ``shift`` moves ``x0`` (the inputs drift).
"""

from __future__ import annotations

import shutil
import random
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from assay.pipeline import open_registry, run_project
from assay.project import Project
from assay.registry import ModelRegistry
from assay.serve.log import LogEntry, PredictionLog, record_feedback
from assay.model.loaded import LoadedModel
from assay.store.database import utcnow

FEATURES = ["x0", "x1", "x2", "x3", "plan"]


def monitor_frame(n: int, seed: int, *, concept: bool = False, shift: float = 0.0) -> pd.DataFrame:
    """Rows of the monitored project (see the module doc)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    X[:, 0] += shift
    driver = X[:, 1] if concept else X[:, 0] - shift
    frame = pd.DataFrame(X, columns=["x0", "x1", "x2", "x3"])
    frame["plan"] = rng.choice(["basic", "pro", "team"], n)
    frame["y"] = (driver + 0.5 * rng.normal(size=n) > 0).astype(int)
    return frame


def _record(row: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.item() if isinstance(v, np.generic) else v) for k, v in row.items()}


@dataclass
class Monitored:
    """A project folder with a promoted champion, and a fake server to log traffic."""

    project: Project
    registry: ModelRegistry
    _log: PredictionLog | None = None
    _models: dict[int, LoadedModel] = field(default_factory=dict)
    # seeded ids: the log returns rows of one instant in id order, so random ids would
    # shuffle the refreshed data (and the retrain's split) from one test run to the next
    _ids: random.Random = field(default_factory=lambda: random.Random(0))

    def _id(self) -> str:
        return uuid.UUID(int=self._ids.getrandbits(128), version=4).hex

    @property
    def root(self) -> Path:
        return self.project.root

    @property
    def champion(self) -> int:
        version = self.registry.alias("champion")
        assert version is not None
        return version

    @property
    def log(self) -> PredictionLog:
        if self._log is None:
            self._log = PredictionLog(self.registry.store, self.root / ".assay" / "wal")
        return self._log

    def model(self, version: int) -> LoadedModel:
        if version not in self._models:
            self._models[version] = LoadedModel.load(self.registry, version)
        return self._models[version]

    def send(
        self,
        frame: pd.DataFrame,
        *,
        label: bool | Callable[[Any, Any], Any] | list[Any] = True,
        shadow: int | None = None,
        flags: list[str] | None = None,
        at: datetime | None = None,
        actor: str = "tester",
        latency_ms: float = 1.0,
    ) -> list[str]:
        """Log one request per row answered by the champion (and scored by ``shadow``);
        send labels: the target (``True``), none (``False``), ``label(prediction, y)``, or
        one label per row (None: no label). Returns the champion's prediction ids."""
        champion = self.model(self.champion)
        at = at or utcnow()
        rows = [_record(r) for r in frame[champion.features].to_dict("records")]
        answers = champion.predict(frame[champion.features])
        shadows = self.model(shadow).predict(frame[champion.features]) if shadow else None
        entries, ids = [], []
        for i, (record, answer) in enumerate(zip(rows, answers)):
            request = self._id()
            pid = self._id()
            ids.append(pid)
            entries.append(LogEntry(pid, at, champion.version, "champion", request, record,
                                    answer.prediction, answer.probabilities, answer.confidence,
                                    latency_ms, list(flags or [])))
            if shadows is not None:
                s = shadows[i]
                entries.append(LogEntry(self._id(), at, int(shadow), "shadow", request,
                                        record, s.prediction, s.probabilities, s.confidence,
                                        1.0, list(flags or [])))
        self.log.append(entries)
        self.log.flush()
        if isinstance(label, list):
            pairs = [(pid, value) for pid, value in zip(ids, label) if value is not None]
            if pairs:
                record_feedback(self.registry.store, pairs, actor)
        elif label is not False:
            ys = frame["y"].tolist()
            pairs = [
                (pid, y if label is True else label(answer.prediction, y))
                for pid, answer, y in zip(ids, answers, ys)
            ]
            record_feedback(self.registry.store, pairs, actor)
        return ids

    def configure(self, **sections: dict[str, Any]) -> Project:
        """Change some assay.yaml sections (merged per section) and reopen the project."""
        path = self.project.config_path
        raw = yaml.safe_load(path.read_text())
        for key, values in sections.items():
            raw[key] = {**raw.get(key, {}), **values}
        path.write_text(yaml.safe_dump(raw))
        self.project = Project.open(path)
        return self.project

    def close(self) -> None:
        if self._log is not None:
            self._log.close()
        self.registry.store.close()


def write_monitored(root: Path, **overrides: Any) -> Project:
    """Data and assay.yaml of the monitored project in ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    monitor_frame(300, 0).to_csv(root / "data.csv", index=False)
    raw: dict[str, Any] = {
        "task": "binary",
        "data": {"source": "data.csv", "target": "y"},
        "search": {"families": ["dummy", "linear"], "trials": 2, "cv_folds": 2},
        "serving": {"latency_p99_ms": 1000},
        "monitoring": {"window": 300},
        "retrain": {"shadow_predictions": 40},
    }
    raw.update(overrides)
    (root / "assay.yaml").write_text(yaml.safe_dump(raw))
    return Project.open(root / "assay.yaml")


@pytest.fixture(scope="session")
def monitored_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder of the shared, read-only project with a promoted champion (v1)."""
    root = tmp_path_factory.mktemp("monitored-template") / "project"
    project = write_monitored(root)
    registry = open_registry(project)
    try:
        result = run_project(project, registry=registry, write_report=False)
        if not result.promoted:
            registry.promote(
                result.version, gate_passed=result.gate.passed, force=not result.gate.passed,
                reason="test fixture",
            )
    finally:
        registry.store.close()
    return root


@pytest.fixture
def monitored(monitored_template: Path, tmp_path: Path) -> Iterator[Monitored]:
    """A private copy of the template project, free to change."""
    root = tmp_path / "project"
    shutil.copytree(monitored_template, root)
    project = Project.open(root / "assay.yaml")
    handle = Monitored(project, open_registry(project))
    yield handle
    handle.close()


@pytest.fixture
def fresh_project(tmp_path: Path) -> Project:
    """The monitored project's folder before any run (no model, no champion)."""
    return write_monitored(tmp_path / "fresh")


@pytest.fixture
def make_frame() -> Callable[..., pd.DataFrame]:
    """:func:`monitor_frame`: ``make_frame(n, seed, concept=False, shift=0.0)``."""
    return monitor_frame
