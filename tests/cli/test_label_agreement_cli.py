"""``assay label agreement`` and the audit's ``label_agreement`` finding: annotators who agree
too little block training until their labels are fixed or the finding is accepted."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml


def _project(root: Path, accuracies: tuple[float, ...], seed: int = 0) -> Path:
    """A binary project whose rows 40..159 are unlabelled, annotated by planted annotators of
    the given accuracies (each labels every unlabelled row) in ``annotations.csv``."""
    rng = np.random.default_rng(seed)
    n = 240
    frame = pd.DataFrame({"row_id": np.arange(n), "x0": rng.normal(size=n),
                          "x1": rng.normal(size=n)})
    truth = (frame["x0"] + 0.5 * frame["x1"] > 0).astype(int)
    target = truth.astype(float)
    target[40:160] = np.nan
    frame["churned"] = target
    frame.to_csv(root / "data.csv", index=False)
    raw = {
        "task": "binary",
        "data": {"source": "data.csv", "target": "churned", "id": "row_id"},
        "search": {"families": ["linear"], "trials": 1, "cv_folds": 3},
        "serving": {"latency_p99_ms": 1000},
    }
    (root / "assay.yaml").write_text(yaml.safe_dump(raw))
    rows = []
    for j, accuracy in enumerate(accuracies):
        right = rng.random(120) < accuracy
        for i, ok in zip(range(40, 160), right):
            rows.append((i, f"annotator{j}", int(truth[i]) if ok else 1 - int(truth[i])))
    pd.DataFrame(rows, columns=["item_id", "annotator", "label"]).to_csv(
        root / "annotations.csv", index=False
    )
    return root


def test_careless_annotators_block_the_audit_until_accepted(cli, tmp_path: Path) -> None:
    root = _project(tmp_path, (0.6, 0.55, 0.6))
    assert cli("label", "import", "annotations.csv", cwd=root).code == 0
    agreement = cli("label", "agreement", "--json", "--boot", "100", cwd=root)
    assert agreement.code == 1, agreement.err
    payload = json.loads(agreement.out)
    assert payload["alpha"] < 0.3 and payload["passed"] is False
    assert payload["min_agreement"] == 0.7 and payload["n_annotators"] == 3

    audited = cli("audit", "--json", cwd=root)
    assert audited.code == 1
    found = [f for f in json.loads(audited.out)["findings"] if f["check"] == "label_agreement"]
    assert len(found) == 1 and found[0]["severity"] == "block"
    assert "below labelling.min_agreement 0.7" in found[0]["message"]
    assert "--accept label_agreement" in found[0]["fix"]

    ran = cli("run", cwd=root)
    assert ran.code == 1 and "label_agreement" in ran.err + ran.out

    accepted = cli("audit", "--json", "--accept", "label_agreement", cwd=root)
    finding = next(f for f in json.loads(accepted.out)["findings"]
                   if f["check"] == "label_agreement")
    assert finding["severity"] == "warn" and finding["evidence"]["accepted_by"]
    assert finding["message"].startswith("accepted by ")


def test_careful_annotators_pass_and_the_report_reads(cli, tmp_path: Path) -> None:
    root = _project(tmp_path, (0.98, 0.97, 0.97, 0.85), seed=1)
    assert cli("label", "import", "annotations.csv", cwd=root).code == 0
    shown = cli("label", "agreement", "--boot", "100", cwd=root)
    assert shown.code == 0, shown.out + shown.err
    text = " ".join(shown.out.split())
    assert "480 judgements of 120 items by 4 annotators" in text
    assert "meets labelling.min_agreement 0.7" in text
    assert "Cohen's kappa per pair of annotators" in text
    payload = json.loads(cli("label", "agreement", "--json", "--boot", "100", cwd=root).out)
    ranking = [a["annotator"] for a in payload["annotators"]]
    assert ranking[-1] == "annotator3"  # the least careful agrees least with the others
    audited = json.loads(cli("audit", "--json", cwd=root).out)
    assert not [f for f in audited["findings"] if f["check"] == "label_agreement"]


def test_one_annotator_is_a_warning_that_agreement_is_not_measured(cli, tmp_path: Path) -> None:
    root = _project(tmp_path, (0.95,))
    assert cli("label", "import", "annotations.csv", cwd=root).code == 0
    audited = json.loads(cli("audit", "--json", cwd=root).out)
    found = [f for f in audited["findings"] if f["check"] == "label_agreement"]
    assert [f["severity"] for f in found] == ["warn"]
    assert "second annotator" in found[0]["fix"]


def test_no_annotations_says_how_to_start(cli, tmp_path: Path) -> None:
    root = _project(tmp_path, ())
    shown = cli("label", "agreement", cwd=root)
    assert shown.code == 0 and "No annotations imported yet" in shown.out
    assert not (root / ".assay").exists()


@pytest.mark.parametrize("alpha_key", ["alpha"])
def test_json_has_no_nan(cli, tmp_path: Path, alpha_key: str) -> None:
    root = _project(tmp_path, (0.9, 0.9))
    assert cli("label", "import", "annotations.csv", cwd=root).code == 0
    out = cli("label", "agreement", "--json", "--boot", "60", cwd=root).out
    assert "NaN" not in out and alpha_key in json.loads(out)
