"""``assay label import|status`` end to end: what is printed, exit 2 on bad input with nothing
stored, the import in ``assay history``, and ``assay run`` training on the imported labels."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from assay.registry import ModelRegistry
from assay.store import Store

DATA = Path(__file__).resolve().parents[1] / "label" / "data"
EXPORT = DATA / "label_studio_export.json"


def _project(root: Path, n: int = 200) -> Path:
    """A binary project with an id column; rows 40..99 have no label (the rule: x0 + x1/2 > 0)."""
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"row_id": np.arange(n), "x0": rng.normal(size=n),
                          "x1": rng.normal(size=n)})
    target = (frame["x0"] + 0.5 * frame["x1"] > 0).astype(float)
    target[40:100] = np.nan
    frame["churned"] = target
    frame.to_csv(root / "data.csv", index=False)
    raw = {
        "task": "binary",
        "data": {"source": "data.csv", "target": "churned", "id": "row_id"},
        "search": {"families": ["linear"], "trials": 1, "cv_folds": 3},
        "serving": {"latency_p99_ms": 1000},
        "labelling": {"consensus": "majority"},
        "acceptance": {"roc_auc": ">= 0.6"},
        # the labels follow an exact rule: a perfect model is genuine here, not a leak
        "gate": {"plausibility": False},
    }
    (root / "assay.yaml").write_text(yaml.safe_dump(raw))
    return root


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return _project(tmp_path)


def test_import_prints_what_changed_and_a_repeat_is_a_no_op(cli, project: Path) -> None:
    first = cli("label", "import", str(EXPORT), cwd=project)
    assert first.code == 0, first.err
    out = " ".join(first.out.split())
    assert ("Imported label_studio_export.json (label-studio): 5 labels from 3 annotators, "
            "2 skipped (1 cancelled, 1 empty).") in out
    assert "Label version 1 (majority, min confidence 0.7): 2 items with a confident label, " \
           "1 held out for adjudication." in out
    assert "2 rows newly labelled, 0 relabelled, 0 confirmed" in out
    assert "Held out for adjudication: 40" in out
    again = cli("label", "import", str(EXPORT), "--json", cwd=project)
    assert again.code == 0, again.err
    payload = json.loads(again.out)
    assert payload["files"][0]["already_imported"] is True and payload["label_version"] is None
    assert payload["data_version"] == payload["previous_data_version"]
    text = cli("label", "import", str(EXPORT), cwd=project)
    assert "label_studio_export.json: already imported (import 1); nothing changed." in text.out


@pytest.mark.parametrize(
    ("name", "content", "match"),
    [
        ("malformed.json", None, r"line 27 column 9: the annotation file is not valid JSON"),
        ("unknown.csv", "item_id,annotator,label\n40,ana,1\n900,ana,0\n901,bo,1\n",
         r"2 item ids in unknown\.csv are not in the project data .* got 900, 901"),
        ("newclass.csv", "item_id,annotator,label\n40,ana,1\n41,ana,2\n",
         r"label '2' at line 3 is not a class of the target 'churned'"),
        ("cols.csv", "item,who,label\n40,ana,1\n",
         r"no column 'item_id'.*columns item, who, label"),
    ],
)
def test_bad_input_exits_2_in_one_line_and_stores_nothing(
    cli, project: Path, name: str, content: str | None, match: str
) -> None:
    path = project / name
    if content is None:
        shutil.copy(DATA / name, path)
    else:
        path.write_text(content)
    result = cli("label", "import", str(EXPORT), str(path), cwd=project)
    assert result.code == 2, result.out
    assert "Traceback" not in result.err
    assert len([line for line in result.err.splitlines() if line.strip()]) == 1
    assert re.search(match, " ".join(result.err.split())), result.err
    status = json.loads(cli("label", "status", "--json", cwd=project).out)
    assert status["imports"] == [] and status["judgements"] == 0


def test_status_and_history_show_the_import(cli, project: Path) -> None:
    empty = cli("label", "status", cwd=project)
    assert empty.code == 0 and "No annotations imported yet" in empty.out
    assert cli("label", "import", str(EXPORT), cwd=project).code == 0
    status = cli("label", "status", cwd=project)
    assert status.code == 0, status.err
    out = " ".join(status.out.split())
    assert "5 judgements of 3 items by 3 annotators: 7, 9, ana@example.com" in out
    assert "Label version 1 (majority, min confidence 0.7): 2 items labelled, 1 held out" in out
    assert "Held out for adjudication" in out and "0.67" in out
    events = json.loads(cli("history", "--json", cwd=project).out)
    assert events[0]["action"] == "labels"
    assert events[0]["reason"] == ("imported label_studio_export.json: 5 labels from 3 "
                                   "annotators (2 skipped); label version 1")
    history = cli("history", cwd=project)
    assert "imported label_studio_export.json" in " ".join(history.out.split())


@pytest.mark.slow
def test_run_after_an_import_trains_on_the_new_labels(cli, project: Path) -> None:
    first = cli("run", "--json", cwd=project)
    assert first.code == 0, first.err
    before = json.loads(first.out)["split"]
    frame = pd.read_csv(project / "data.csv")
    rows = frame.iloc[40:100]
    truth = (rows["x0"] + 0.5 * rows["x1"] > 0).astype(int)
    table = pd.DataFrame({
        "item_id": np.repeat(rows["row_id"].to_numpy(), 2),
        "annotator": ["ana", "bo"] * len(rows),
        "label": np.repeat(truth.to_numpy(), 2),
    })
    table.to_csv(project / "labels.csv", index=False)
    imported = cli("label", "import", "labels.csv", "--json", cwd=project)
    assert imported.code == 0, imported.err
    report = json.loads(imported.out)
    assert report["merge"]["labelled"] == 60
    assert report["data_version"] != before["data_version"]
    second = cli("run", "--json", cwd=project)
    assert second.code in (0, 1), second.err  # 1: the gate kept the champion
    after = json.loads(second.out)["split"]
    assert after["data_version"] == report["data_version"]
    assert after["sizes"]["dropped"] == 0 and before["sizes"]["dropped"] == 60
    trained = sum(after["sizes"][p] for p in ("train", "validation", "test"))
    assert trained == sum(before["sizes"][p] for p in ("train", "validation", "test")) + 60
    with Store.open(project) as store:
        registry = ModelRegistry(store)
        assert registry.get(1).lineage.labels is None
        assert registry.get(2).lineage.labels == 1
        assert registry.get(2).data_version == report["data_version"]
