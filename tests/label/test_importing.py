"""Reading annotation files: Label Studio JSON and JSON-MIN, long tables, and what is refused."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from assay.errors import ConfigError, DataError
from assay.label.importing import (
    ColumnNames,
    check_annotation_file,
    read_annotation_file,
)

from .conftest import DATA, write_table

EXPORT = DATA / "label_studio_export.json"
MIN_EXPORT = DATA / "label_studio_min.json"
PROJECT_COLUMNS = ("row_id", "x0", "x1")  # the data columns but the target


def _task(task_id: int, row_id: int, *annotations: dict[str, Any]) -> dict[str, Any]:
    return {"id": task_id, "data": {"row_id": row_id}, "annotations": list(annotations)}


def _choice(who: object, *choices: str, control: str = "churned") -> dict[str, Any]:
    region = {"type": "choices", "from_name": control, "to_name": "row",
              "value": {"choices": list(choices)}}
    return {"id": 1, "completed_by": who, "result": [region], "was_cancelled": False}


def _write(path: Path, payload: object) -> Path:
    path.write_text(json.dumps(payload))
    return path


def test_label_studio_export_gives_one_row_per_judgement() -> None:
    read = read_annotation_file(EXPORT, id_key="row_id")
    assert read.format == "label-studio"
    rows = read.rows
    assert rows["item_id"].tolist() == ["40", "40", "40", "41", "42"]
    assert rows["annotator"].tolist() == ["7", "ana@example.com", "9", "7", "7"]
    assert rows["label"].tolist() == ["1", "1", "0", "0", "1"]
    np.testing.assert_allclose(rows["time_spent"], [12.5, 8.25, 30.0, 5.0, 4.0])
    assert rows["annotated_at"].iloc[0] == pd.Timestamp("2026-05-20T09:14:02.112233Z")
    # the cancelled annotation of task 102 and the empty result of task 103 are no labels;
    # the prediction of task 101 is ignored
    assert read.skipped == {"cancelled": 1, "empty": 1}
    assert read.n_labels == 5 and read.n_skipped == 2
    assert read.annotators == ("7", "9", "ana@example.com")
    assert len(read.sha256) == 64


def test_without_the_id_key_in_the_data_the_task_id_names_the_item() -> None:
    read = read_annotation_file(EXPORT)
    assert read.rows["item_id"].tolist() == ["101", "101", "101", "102", "103"]
    named = read_annotation_file(EXPORT, columns=ColumnNames(item="row_id"))
    assert named.rows["item_id"].tolist()[-1] == "42"


def test_json_min_export_is_read_with_the_control_told_from_the_data_keys() -> None:
    read = read_annotation_file(MIN_EXPORT, id_key="row_id", data_columns=PROJECT_COLUMNS)
    assert read.format == "label-studio-min"
    assert read.rows["item_id"].tolist() == ["40", "40", "41"]
    assert read.rows["annotator"].tolist() == ["7", "ana@example.com", "7"]
    assert read.rows["label"].tolist() == ["1", "1", "0"]
    assert read.skipped == {"empty": 1}  # task 103's record has no choice
    assert read.options["label"] == "churned"


def test_json_min_with_several_candidate_keys_needs_label() -> None:
    with pytest.raises(DataError, match=r"which key.*candidates: churned, x0, x1.*--label"):
        read_annotation_file(MIN_EXPORT, id_key="row_id")
    read = read_annotation_file(MIN_EXPORT, id_key="row_id", columns=ColumnNames(label="churned"))
    assert read.n_labels == 3


def test_malformed_json_names_line_and_column() -> None:
    with pytest.raises(DataError, match=r"malformed\.json, line 27 column 9.*not valid JSON"):
        read_annotation_file(DATA / "malformed.json")


def test_a_task_without_an_annotations_list_is_named() -> None:
    with pytest.raises(DataError, match=r"task 202 has no annotations list"):
        read_annotation_file(DATA / "no_annotations_list.json", id_key="row_id")


def test_an_annotation_without_annotator_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path / "a.json", [_task(5, 40, _choice(None, "1"))])
    with pytest.raises(DataError, match=r"task 5, annotation 1 names no annotator"):
        read_annotation_file(path, id_key="row_id")


def test_several_choices_or_several_controls_are_refused(tmp_path: Path) -> None:
    multi = _write(tmp_path / "m.json", [_task(5, 40, _choice(1, "0", "1"))])
    with pytest.raises(DataError, match=r"task 5, annotation 1 chooses several classes \(0, 1\)"):
        read_annotation_file(multi, id_key="row_id")
    two = _choice(1, "1")
    two["result"] = [*two["result"], *_choice(1, "high", control="risk")["result"]]
    controls = _write(tmp_path / "c.json", [_task(6, 41, two)])
    with pytest.raises(DataError, match=r"several controls \(churned, risk\).*--label"):
        read_annotation_file(controls, id_key="row_id")
    picked = read_annotation_file(controls, id_key="row_id", columns=ColumnNames(label="risk"))
    assert picked.rows["label"].tolist() == ["high"]


def test_results_without_any_choice_are_refused_not_skipped(tmp_path: Path) -> None:
    region = {"type": "textarea", "from_name": "note", "to_name": "row",
              "value": {"text": ["looks fine"]}}
    task = _task(7, 40, {"id": 1, "completed_by": 3, "result": [region]})
    path = _write(tmp_path / "t.json", [task])
    with pytest.raises(DataError, match=r"no annotation in the file holds a class label.*textarea"):
        read_annotation_file(path, id_key="row_id")


def test_a_long_table_with_renamed_columns(tmp_path: Path) -> None:
    path = write_table(
        tmp_path / "labels.csv",
        [(40, "ana", 1, 3.5), (41, "ana", 0, None), (41, "bo", None, 2.0)],
        columns=("row", "who", "churn", "seconds"),
    )
    read = read_annotation_file(
        path, columns=ColumnNames(item="row", annotator="who", label="churn", time="seconds")
    )
    assert read.format == "table"
    assert read.rows["item_id"].tolist() == ["40", "41"]
    assert read.rows["label"].tolist() == ["1", "0"]  # 1.0 read from the CSV is the class 1
    assert read.rows["time_spent"].iloc[0] == 3.5 and np.isnan(read.rows["time_spent"].iloc[1])
    assert read.skipped == {"no label": 1}


def test_a_parquet_table_is_read_by_its_suffix(tmp_path: Path) -> None:
    path = write_table(tmp_path / "labels.parquet", [(40, "ana", "1"), (42, "bo", "0")])
    read = read_annotation_file(path)
    assert read.rows["item_id"].tolist() == ["40", "42"] and read.n_labels == 2


def test_a_missing_column_names_file_column_and_the_columns_there(tmp_path: Path) -> None:
    path = write_table(tmp_path / "t.csv", [(40, "ana", "1")], columns=("id", "annotator", "label"))
    with pytest.raises(DataError) as caught:
        read_annotation_file(path)
    text = str(caught.value)
    assert "t.csv" in text and "no column 'item_id'" in text
    assert "columns id, annotator, label" in text and "--item" in text


def test_a_row_without_annotator_names_its_line(tmp_path: Path) -> None:
    path = write_table(tmp_path / "t.csv", [(40, "ana", "1"), (41, None, "0")])
    with pytest.raises(DataError, match=r"t\.csv, line 3.*no annotator"):
        read_annotation_file(path)


def test_the_format_comes_from_the_suffix_or_the_option(tmp_path: Path) -> None:
    path = tmp_path / "labels.txt"
    path.write_text("item_id,annotator,label\n40,ana,1\n")
    with pytest.raises(ConfigError, match=r"--format.*cannot tell the format"):
        read_annotation_file(path)
    assert read_annotation_file(path, file_format="table").n_labels == 1
    with pytest.raises(ConfigError, match="unknown annotation file format 'xml'"):
        read_annotation_file(path, file_format="xml")
    with pytest.raises(DataError, match="does not exist"):
        read_annotation_file(tmp_path / "nowhere.csv")


def test_check_names_unknown_items_up_to_ten(tmp_path: Path) -> None:
    rows = [(i, "ana", "1") for i in range(500, 512)] + [(40, "ana", "1")]
    read = read_annotation_file(write_table(tmp_path / "t.csv", rows))
    with pytest.raises(DataError) as caught:
        check_annotation_file(read, ids={"40"}, classes={"0", "1"}, id_column="row_id",
                              target="churned", data_label="data.csv")
    text = str(caught.value)
    assert "12 item ids in t.csv are not in the project data (first at line 2)" in text
    assert "500, 501" in text and "509, ... (12 in all)" in text and "510" not in text
    assert "'row_id'" in text and "data.csv" in text


def test_check_names_a_label_outside_the_classes_with_where_and_labels_seen() -> None:
    read = read_annotation_file(EXPORT, id_key="row_id")
    ids = {"40", "41", "42"}
    check_annotation_file(read, ids=ids, classes={"0", "1"}, id_column="row_id",
                          target="churned", data_label="data.csv")
    with pytest.raises(DataError) as caught:
        check_annotation_file(read, ids=ids, classes={"0", "2"}, id_column="row_id",
                              target="churned", data_label="data.csv")
    text = str(caught.value)
    assert "label '1' at task 101, annotation 1 is not a class of the target 'churned'" in text
    assert "labels in the file: 0, 1" in text and "new label 1" in text
