"""``label queue`` and ``label plan`` on a small project: the files, the sealed test rows, the
plan, and the messages for unusable input.

The project: 500 labelled rows of two well separated classes and 200 unlabelled rows
(target empty), an id column and a slice; one ``run_project`` registers version 1 (shared,
read-only template; each test copies it).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import typer
import yaml
from sklearn.datasets import make_classification
from typer.testing import CliRunner

from assay.cli.label_queue import register_queue_commands
from assay.errors import AssayError, ConfigError, DataError, NotFoundError
from assay.labelling import build_plan, build_queue, current_version
from assay.pipeline import open_registry, run_project
from assay.project import Project
from assay.registry import ModelRegistry
from assay.split import SplitPlan

pytestmark = pytest.mark.slow

LABELLED = 500
UNLABELLED = 200


def project_frame(seed: int = 0) -> pd.DataFrame:
    X, y = make_classification(
        n_samples=LABELLED + UNLABELLED, n_features=5, n_informative=3, n_redundant=0,
        flip_y=0.0, class_sep=1.5, random_state=seed,
    )
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(5)])
    frame.insert(0, "row_id", [f"r{i:04d}" for i in range(len(frame))])
    frame["segment"] = np.random.default_rng(seed).choice(["a", "b"], len(frame))
    frame["y"] = y.astype(float)
    frame.loc[LABELLED:, "y"] = np.nan
    return frame


def write_project(root: Path, frame: pd.DataFrame, **overrides: Any) -> Project:
    root.mkdir(parents=True, exist_ok=True)
    frame.to_csv(root / "data.csv", index=False)
    raw: dict[str, Any] = {
        "task": "binary",
        "data": {"source": "data.csv", "target": "y", "id": "row_id"},
        "slices": ["segment"],
        "acceptance": {"roc_auc": ">= 0.99"},
        "search": {"families": ["dummy", "linear"], "trials": 2, "cv_folds": 3},
        "serving": {"latency_p99_ms": 1000},
    }
    raw.update(overrides)
    (root / "assay.yaml").write_text(yaml.safe_dump(raw))
    return Project.open(root / "assay.yaml")


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("label-template") / "project"
    project = write_project(root, project_frame())
    registry = open_registry(project)
    try:
        run_project(project, registry=registry, write_report=False)
    finally:
        registry.store.close()
    return root


@pytest.fixture
def trained(template: Path, tmp_path: Path) -> Iterator[tuple[Project, ModelRegistry]]:
    root = tmp_path / "project"
    shutil.copytree(template, root)
    project = Project.open(root / "assay.yaml")
    registry = open_registry(project)
    yield project, registry
    registry.store.close()


def _cli() -> typer.Typer:
    label_app = typer.Typer()
    register_queue_commands(label_app)
    return label_app


def _invoke(*args: str) -> Any:
    return CliRunner().invoke(_cli(), [str(a) for a in args])


def _test_ids(project: Project, registry: ModelRegistry) -> list[str]:
    record = current_version(registry)
    assert record.lineage.split_digest is not None
    plan = SplitPlan.from_dict(registry.load_json(record.lineage.split_digest))
    frame = pd.read_csv(project.root / "data.csv")
    return frame["row_id"].iloc[plan.test].tolist()


def test_queue_writes_label_studio_tasks_and_a_csv(trained: Any) -> None:
    project, _ = trained
    tasks_path, csv_path = project.root / "tasks.json", project.root / "queue.csv"
    result = _invoke(
        "queue", "--budget", "12", "-o", tasks_path, "--csv", csv_path,
        "--config", project.config_path,
    )
    assert result.exit_code == 0, result.output
    assert "Queued 12 of 200 unlabelled rows with version 1" in result.output
    tasks = json.loads(tasks_path.read_text(encoding="utf-8"))
    assert isinstance(tasks, list) and len(tasks) == 12
    unlabelled = set(project_frame()["row_id"].iloc[LABELLED:])
    assert {t["data"]["row_id"] for t in tasks} <= unlabelled
    assert len({t["data"]["row_id"] for t in tasks}) == 12
    assert [t["meta"]["assay_rank"] for t in tasks] == list(range(1, 13))
    first = tasks[0]
    assert set(first["data"]) == {"row_id", "x0", "x1", "x2", "x3", "x4", "segment"}
    assert first["meta"]["assay_reason"].startswith("margin uncertainty")
    choice = first["predictions"][0]["result"][0]["value"]["choices"][0]
    assert choice in {"0", "1"}
    assert first["predictions"][0]["model_version"] == "assay version 1"
    queue = pd.read_csv(csv_path)
    assert queue["row_id"].tolist() == [t["data"]["row_id"] for t in tasks]
    assert queue["uncertainty"].is_monotonic_decreasing
    as_json = _invoke(
        "queue", "--budget", "5", "-o", tasks_path, "--strategy", "entropy",
        "--diversity", "kcenter", "--json", "--config", project.config_path,
    )
    payload = json.loads(as_json.output)
    assert payload["strategy"] == "entropy" and payload["diversity"] == "kcenter"
    assert len(payload["items"]) == 5 and payload["pool_rows"] == UNLABELLED


def test_queued_rows_are_the_uncertain_ones(trained: Any) -> None:
    project, registry = trained
    result = build_queue(project, registry, 10, diversity="none")
    everything = build_queue(project, registry, UNLABELLED, diversity="none")
    assert result.items["row_id"].tolist() == everything.items["row_id"].head(10).tolist()
    assert result.items["uncertainty"].min() >= everything.items["uncertainty"].median()


def test_sealed_test_rows_are_never_queued_or_reviewed(trained: Any) -> None:
    project, registry = trained
    test_ids = _test_ids(project, registry)
    frame = pd.read_csv(project.root / "data.csv")
    at = frame.set_index("row_id")
    # labels were removed from five sealed test rows, and five test and five training
    # labels were flipped, after version 1 was trained (the rows kept their order)
    blanked, flipped_test = test_ids[:5], test_ids[5:10]
    # the training rows to flip are ones the model is sure about: a wrong label there is plain
    model = registry.load_model(current_version(registry).version)
    labelled = frame.iloc[:LABELLED]
    labelled = labelled[~labelled["row_id"].isin(test_ids)]
    sure = model.predict_proba(labelled[[f"x{i}" for i in range(5)] + ["segment"]]).max(axis=1)
    flipped_train = labelled["row_id"].to_numpy()[np.argsort(-sure)[:5]].tolist()
    at.loc[blanked, "y"] = np.nan
    for rows in (flipped_test, flipped_train):
        at.loc[rows, "y"] = 1.0 - at.loc[rows, "y"]
    at.reset_index().to_csv(project.root / "data.csv", index=False)

    result = build_queue(project, registry, UNLABELLED + 5, review=True)
    assert result.test_rows_excluded == 5
    assert result.pool_rows == UNLABELLED
    assert not set(result.items["row_id"]) & set(test_ids)
    assert any("taken by position" in w for w in result.warnings)
    assert result.review is not None
    reviewed = set(result.review["row_id"])
    assert not reviewed & set(test_ids)
    assert len(set(flipped_train) & reviewed) >= 4
    assert result.review_checked == LABELLED - len(test_ids)
    first = result.review.iloc[0]
    assert first["given"] != first["suggested"]


def test_queue_review_file(trained: Any) -> None:
    project, _ = trained
    review_path = project.root / "review.csv"
    result = _invoke(
        "queue", "--budget", "3", "-o", project.root / "t.json", "--review", review_path,
        "--config", project.config_path,
    )
    assert result.exit_code == 0, result.output
    review = pd.read_csv(review_path)
    assert list(review.columns) == ["row_id", "rank", "given", "suggested", "given_probability"]
    assert "labelled rows look mislabelled" in result.output


def test_plan_extrapolates_to_the_acceptance_threshold(trained: Any) -> None:
    project, registry = trained
    result = _invoke(
        "plan", "--json", "--seconds-per-label", "36", "--config", project.config_path
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    plan = payload["plan"]
    assert payload["source"] == "refit" and payload["threshold"] == ">= 0.99"
    assert plan["metric"] == "roc_auc" and plan["threshold"] == 0.99
    # 300 training rows (of 500 labelled) at the refit shares 0.1 ... 1.0
    assert plan["sizes"] == [30.0, 60.0, 105.0, 150.0, 210.0, 300.0]
    assert payload["training_rows"] == 300 and payload["labelled_rows"] == LABELLED
    assert plan["status"] in {"met", "reachable", "unreachable"}
    assert plan["warning"]
    text = _invoke("plan", "--source", "stored", "--config", project.config_path)
    assert text.exit_code == 0, text.output
    assert "roc_auc by training rows (stored curve)" in text.output
    assert "acceptance roc_auc >= 0.99" in text.output


def test_plan_turns_training_rows_into_labels_and_hours(
    trained: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dataclasses

    import assay.labelling as labelling

    real = labelling.label_plan

    def planned(*args: Any, **kwargs: Any) -> Any:
        plan = real(*args, **kwargs)
        return dataclasses.replace(
            plan, status="reachable", rows_needed=600, interval=(450, None),
            additional_rows=600 - plan.current_rows,
        )

    monkeypatch.setattr(labelling, "label_plan", planned)
    project, registry = trained
    result = build_plan(project, registry, source="stored", seconds_per_label=36, n_boot=20)
    assert result.source == "stored" and len(result.plan.sizes) == 5
    # 300 more training rows; the split gives 500 labelled rows per 300 training rows
    assert result.additional_labels == 500
    assert result.additional_interval == (250, None)
    assert result.hours == pytest.approx(5.0) and result.hours_interval == (2.5, None)


def _error(result: Any, kind: type[AssayError], match: str) -> AssayError:
    """The error a command raised for the shell to render (exit 2, one line)."""
    assert isinstance(result.exception, kind), result.output
    assert result.exception.exit_code == 2
    assert match in result.exception.render()
    return result.exception


def test_a_budget_below_one_is_refused(trained: Any) -> None:
    project, _ = trained
    out = project.root / "tasks.json"
    result = _invoke("queue", "--budget", "0", "-o", out, "--config", project.config_path)
    _error(result, ConfigError, "--budget: the labelling budget must be a whole number")
    assert not out.exists()
    bad = _invoke(
        "queue", "--budget", "3", "-o", out, "--strategy", "vibes",
        "--config", project.config_path,
    )
    _error(bad, ConfigError, "--strategy: unknown value 'vibes'")


def test_writing_over_the_data_is_refused(trained: Any) -> None:
    project, _ = trained
    before = (project.root / "data.csv").read_bytes()
    result = _invoke(
        "queue", "--budget", "3", "-o", project.root / "data.csv", "--config", project.config_path
    )
    _error(result, ConfigError, "writing the queue there would replace it")
    assert (project.root / "data.csv").read_bytes() == before


def test_no_unlabelled_rows_is_a_clear_message(trained: Any, tmp_path: Path) -> None:
    project, _ = trained
    project_frame().iloc[:LABELLED].to_csv(project.root / "data.csv", index=False)
    result = _invoke(
        "queue", "--budget", "5", "-o", tmp_path / "t.json", "--config", project.config_path
    )
    _error(result, DataError, "there are no unlabelled rows to queue: every row has a value in 'y'")
    assert "with 'y' left empty" in result.exception.render()


def test_without_a_model_the_message_says_to_run_first(tmp_path: Path) -> None:
    project = write_project(tmp_path / "p", project_frame())
    for args in (["queue", "--budget", "5", "-o", tmp_path / "t.json"], ["plan"]):
        result = _invoke(*args, "--config", project.config_path)
        _error(result, NotFoundError, "no model version is registered")
        assert "run `assay run`" in result.exception.render()


def test_without_data_id_the_key_is_named(tmp_path: Path) -> None:
    project = write_project(
        tmp_path / "p", project_frame(), data={"source": "data.csv", "target": "y"}
    )
    result = _invoke(
        "queue", "--budget", "5", "-o", tmp_path / "t.json", "--config", project.config_path
    )
    error = _error(result, ConfigError, "data.id: labelling names every item by its id")
    assert "Add 'id: <column>' under data in assay.yaml" in error.render()


def test_without_an_acceptance_threshold_the_plan_says_which_to_set(trained: Any) -> None:
    project, _ = trained
    raw = yaml.safe_load(project.config_path.read_text())
    raw.pop("acceptance")
    project.config_path.write_text(yaml.safe_dump(raw))
    result = _invoke("plan", "--config", project.config_path)
    error = _error(result, ConfigError, "acceptance.roc_auc: the label plan extrapolates")
    assert "Set acceptance.roc_auc in assay.yaml" in error.render()


def _export(tasks: list[dict[str, Any]], truth: dict[str, int], lead_time: float) -> list[Any]:
    """A Label Studio export of ``tasks``: three annotators, each right, ``lead_time`` s each."""
    out = []
    for n, task in enumerate(tasks, start=1):
        item = task["data"]["row_id"]
        annotations = [
            {
                "id": 10 * n + who,
                "completed_by": who,
                "result": [{"type": "choices", "from_name": "label", "to_name": "text",
                            "value": {"choices": [str(truth[item])]}}],
                "was_cancelled": False,
                "lead_time": lead_time,
            }
            for who in (1, 2, 3)
        ]
        out.append({"id": 1000 + n, "data": task["data"], "annotations": annotations})
    return out


def test_the_whole_loop_through_the_assay_command(
    trained: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """queue -> Label Studio -> import -> the next data version, and the plan's hours come
    from the time the imported annotations record."""
    import sys

    from assay.cli.app import main

    project, registry = trained
    registry.store.close()
    monkeypatch.chdir(project.root)

    def assay(*args: str) -> tuple[int, str]:
        monkeypatch.setattr(sys, "argv", ["assay", *args])
        capsys.readouterr()
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
        captured = capsys.readouterr()
        return code, captured.out + captured.err

    code, said = assay("label", "queue", "--budget", "12", "-o", "tasks.json")
    assert code == 0, said
    tasks = json.loads((project.root / "tasks.json").read_text())
    assert len(tasks) == 12
    X, y = make_classification(
        n_samples=LABELLED + UNLABELLED, n_features=5, n_informative=3, n_redundant=0,
        flip_y=0.0, class_sep=1.5, random_state=0,
    )
    truth = {f"r{i:04d}": int(v) for i, v in enumerate(y)}
    (project.root / "export.json").write_text(json.dumps(_export(tasks, truth, 4.0)))
    before = Project.open(project.root / "assay.yaml").load_data()
    code, said = assay("label", "import", "export.json", "--json")
    assert code == 0, said
    report = json.loads(said[said.index("{"):])
    assert report["label_version"]["n_held_out"] == 0
    after = Project.open(project.root / "assay.yaml").load_data()
    assert after.version != before.version and after.label_version == 1
    queued = [t["data"]["row_id"] for t in tasks]
    labelled = after.frame.set_index("row_id").loc[queued, "y"]
    assert labelled.tolist() == [truth[i] for i in queued]
    code, said = assay("history")
    assert "labels" in said and "export.json" in said
    code, said = assay("label", "plan", "--json")
    assert code == 0, said
    plan = json.loads(said[said.index("{"):])
    assert plan["seconds_per_label"] == 12.0 and plan["seconds_from"] == "annotations"
