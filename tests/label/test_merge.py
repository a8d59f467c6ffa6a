"""Labels back into the data: the merge rule, the target's type, and the project's data version."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from assay.config.spec import LabellingSpec
from assay.errors import ConfigError
from assay.label.intake import import_annotations
from assay.label.merge import apply_label_version, build_label_table
from assay.project import Project

from .conftest import DATA, UNLABELLED, truth, write_project, write_table


def _table(*rows: tuple[str, str, float, bool]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["item_id", "label", "confidence", "held_out"])
    frame["n_annotations"] = 3
    return frame


def test_the_merge_rule() -> None:
    frame = pd.DataFrame({"id": [1, 2, 3, 4, 5, 6], "y": [1.0, np.nan, 0.0, np.nan, 1.0, 0.0]})
    table = _table(
        ("1", "1", 1.0, False),   # confirms the source label
        ("2", "0", 0.9, False),   # labels an unlabelled row
        ("3", "1", 0.8, False),   # overrules the source label
        ("4", "1", 0.5, True),    # unsure, no source label: stays unlabelled
        ("5", "0", 0.4, True),    # unsure, source label: kept, and listed
        ("99", "1", 1.0, False),  # no longer a row of the data
    )
    out, merge = apply_label_version(frame, "id", "y", table)
    assert out["y"].tolist()[:3] == [1.0, 0.0, 1.0]
    assert np.isnan(out["y"].iloc[3]) and out["y"].iloc[4] == 1.0 and out["y"].iloc[5] == 0.0
    assert out["y"].dtype == np.float64
    assert (merge.labelled, merge.relabelled, merge.confirmed) == (1, 1, 1)
    assert merge.held_out == ("5", "4")  # least sure first
    assert merge.kept_source == ("5",)
    assert merge.unknown_items == 1
    assert frame["y"].isna().sum() == 2  # the input frame is not changed


@pytest.mark.parametrize(
    ("values", "labels", "expected"),
    [
        ([3, 1, 2], ["2", "3", "1"], [2, 3, 1]),                       # ints stay ints
        ([True, False, True], ["false", "true", "false"], [False, True, False]),
        (["neg", "pos", "neg"], ["pos", "neg", "pos"], ["pos", "neg", "pos"]),
        ([np.nan, np.nan, np.nan], ["pos", "neg", "pos"], ["pos", "neg", "pos"]),
        ([np.nan, np.nan, 1.0], ["1", "0", "1"], [1.0, 0.0, 1.0]),
    ],
)
def test_labels_take_the_type_of_the_target(values: list[object], labels: list[str],
                                            expected: list[object]) -> None:
    frame = pd.DataFrame({"id": ["a", "b", "c"], "y": values})
    table = _table(*((i, lab, 1.0, False) for i, lab in zip("abc", labels)))
    out, _ = apply_label_version(frame, "id", "y", table)
    assert out["y"].tolist() == expected
    assert [type(v) for v in out["y"].tolist()] == [type(v) for v in expected]
    if isinstance(values[0], int) and not isinstance(values[0], bool):
        assert out["y"].dtype == np.int64


def test_held_out_items_follow_the_minimum_confidence() -> None:
    rows = pd.DataFrame(
        {"item_id": ["a", "a", "a", "b", "b"], "annotator": ["x", "y", "z", "x", "y"],
         "label": ["1", "1", "0", "0", "0"], "time_spent": np.nan, "source": "f.csv"}
    )
    strict = build_label_table(rows, LabellingSpec(consensus="majority", min_confidence=0.7), ("0", "1"))
    assert strict.method == "majority" and strict.min_confidence == 0.7
    assert strict.frame.set_index("item_id")["held_out"].to_dict() == {"a": True, "b": False}
    lenient = build_label_table(rows, LabellingSpec(consensus="majority", min_confidence=0.6), ("0", "1"))
    assert not lenient.frame["held_out"].any()


def test_the_project_loads_its_data_with_the_current_label_version(tmp_path: Path) -> None:
    project = write_project(tmp_path / "p")
    before = project.load_data()
    assert before.label_version is None and not (project.root / ".assay").exists()
    rows = [(i, who, int(truth(before.frame.iloc[[i]])[0]))
            for i in UNLABELLED for who in ("ana", "bo")]
    report = import_annotations(project, [write_table(tmp_path / "labels.csv", rows)])
    after = project.load_data()
    assert after.label_version == report.label_version.id == 1  # type: ignore[union-attr]
    assert after.version == report.data_version != before.version
    assert report.previous_data_version == before.version
    assert after.frame["churned"].notna().sum() == before.frame["churned"].notna().sum() + 60
    np.testing.assert_array_equal(after.frame["churned"].to_numpy(), truth(after.frame))
    raw = project.load_data(labels=False)
    assert raw.version == before.version and raw.label_version is None


def test_a_store_with_labels_needs_the_id_column(tmp_path: Path) -> None:
    project = write_project(tmp_path / "p")
    import_annotations(project, [DATA / "label_studio_export.json"])
    text = (project.config_path).read_text().replace("  id: row_id\n", "")
    project.config_path.write_text(text)
    with pytest.raises(ConfigError, match=r"data\.id.*label version 1.*Set data\.id"):
        Project.open(project.config_path).load_data()
