"""Importing into a project: several files at once, all or nothing, and what the project needs."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from assay.errors import ConfigError, DataError
from assay.label.intake import import_annotations, label_status
from assay.project import Project
from assay.registry.labels import LabelStore
from assay.store import Store

from .conftest import DATA, write_project, write_table


def _counts(project: Project) -> tuple[int, int]:
    with Store.open(project.root) as store:
        labels = LabelStore(store)
        return len(labels.imports()), len(labels.annotation_rows())


def test_several_files_one_label_version(project: Project, tmp_path: Path) -> None:
    table = write_table(tmp_path / "more.csv", [(40, "9", "1"), (43, "ana", "0")])
    report = import_annotations(project, [DATA / "label_studio_export.json", table, table])
    assert [f.already for f in report.files] == [False, False, True]
    assert [f.import_id for f in report.files] == [1, 2, 2]
    version = report.label_version
    assert version is not None and version.id == 1 and version.import_ids == (1, 2)
    # 9 changed their mind on item 40 in the second file: now 3 of 3 say 1
    assert version.n_items == 4 and version.n_held_out == 0
    assert report.merge is not None and report.merge.labelled == 4
    assert _counts(project) == (2, 7)


def test_one_bad_file_stores_nothing(project: Project, tmp_path: Path) -> None:
    good = write_table(tmp_path / "good.csv", [(40, "ana", "1")])
    bad = write_table(tmp_path / "bad.csv", [(41, "ana", "maybe")])
    with pytest.raises(DataError, match=r"label 'maybe' at line 2 is not a class"):
        import_annotations(project, [good, bad])
    assert label_status(project).imports == ()
    assert _counts(project) == (0, 0)


def test_the_project_must_name_its_items_and_be_a_classification(tmp_path: Path) -> None:
    project = write_project(tmp_path / "p")
    raw = yaml.safe_load(project.config_path.read_text())
    del raw["data"]["id"]
    project.config_path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match=r"data\.id.*item id column"):
        import_annotations(Project.open(project.config_path), [DATA / "label_studio_export.json"])
    raw["data"]["id"] = "row_id"
    raw["task"] = "regression"
    project.config_path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match=r"task.*class labels"):
        import_annotations(Project.open(project.config_path), [DATA / "label_studio_export.json"])


def test_item_ids_must_name_one_row(tmp_path: Path) -> None:
    project = write_project(tmp_path / "p")
    frame = pd.read_csv(project.root / "data.csv")
    frame.loc[5, "row_id"] = 4
    frame.to_csv(project.root / "data.csv", index=False)
    with pytest.raises(DataError, match=r"column 'row_id'.*more than one row.*got 4"):
        import_annotations(project, [DATA / "label_studio_export.json"])


def test_status_lists_the_items_to_adjudicate(project: Project) -> None:
    import_annotations(project, [DATA / "label_studio_export.json"], actor="ana")
    status = label_status(project)
    assert [i.file_name for i in status.imports] == ["label_studio_export.json"]
    assert status.annotators == ("7", "9", "ana@example.com")
    assert (status.items, status.judgements) == (3, 5)
    assert status.label_version is not None and status.label_version.actor == "ana"
    (held,) = status.held_out
    assert (held.item_id, held.label, held.n_annotations) == ("40", "1", 3)
    assert held.confidence == pytest.approx(2 / 3)
