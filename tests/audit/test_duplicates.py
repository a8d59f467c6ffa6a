"""The duplicate_rows and near_duplicate_rows checks."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from assay.audit import CHECKS, AuditContext, Finding, run_audit
from assay.data import Dataset

CHECK_NAMES = ["duplicate_rows", "near_duplicate_rows"]


def _audit(frame: pd.DataFrame, **kw: object) -> list[Finding]:
    ctx = AuditContext(Dataset.from_frame(frame), **kw)  # type: ignore[arg-type]
    report = run_audit(ctx, only=CHECK_NAMES)
    json.dumps(report.to_dict())  # every finding is JSON-serialisable
    for finding in report.findings:
        assert Finding.from_dict(finding.to_dict()) == finding
    return list(report.findings)


@pytest.fixture
def base(seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = 400
    return pd.DataFrame(
        {
            "id": np.arange(n),
            "age": rng.normal(40, 10, n),
            "income": rng.normal(50_000, 8_000, n),
            "city": rng.choice(["Paris", "Lyon", "Nice", "Lille"], n),
            "target": rng.integers(0, 2, n),
        }
    )


def test_registered_in_order() -> None:
    names = CHECKS.names()
    assert names.index("duplicate_rows") < names.index("near_duplicate_rows")


def test_clean_frame_raises_nothing(clean_frame: pd.DataFrame) -> None:
    assert _audit(clean_frame, target="target", task="binary") == []


def test_planted_exact_duplicates_are_counted(base: pd.DataFrame) -> None:
    # 12 extra copies of rows 0..5 (3 copies of 0..3, 0 of 4..5) with new ids: 3% of 412 rows
    copies = base.iloc[[0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]].copy()
    copies["id"] = np.arange(1000, 1012)
    frame = pd.concat([base, copies], ignore_index=True)
    findings = _audit(frame, target="target", task="binary", id_column="id")
    exact = [f for f in findings if f.check == "duplicate_rows"]
    assert len(exact) == 1
    found = exact[0]
    assert found.severity == "warn"
    assert found.evidence["rows"] == 12
    assert found.evidence["groups"] == 4
    assert found.evidence["rows_in_groups"] == 16
    assert found.evidence["share"] == pytest.approx(12 / 412, abs=1e-6)
    assert found.evidence["examples"][0] == [0, 400, 401, 402]
    assert "12 extra rows" in found.message and "straddle train and test" in found.fix
    assert not [f for f in findings if f.check == "near_duplicate_rows"]


def test_few_duplicates_are_info(base: pd.DataFrame) -> None:
    frame = pd.concat([base, base.iloc[[7]].assign(id=999)], ignore_index=True)
    (found,) = _audit(frame, target="target", task="binary", id_column="id")
    assert (found.check, found.severity, found.evidence["rows"]) == ("duplicate_rows", "info", 1)


def test_conflicting_labels_are_a_separate_finding(base: pd.DataFrame) -> None:
    flipped = base.iloc[[10, 11, 12]].copy()
    flipped["target"] = 1 - flipped["target"]
    flipped["id"] = [900, 901, 902]
    frame = pd.concat([base, flipped], ignore_index=True)
    findings = _audit(frame, target="target", task="binary", id_column="id")
    conflict = [f for f in findings if f.check == "duplicate_rows" and f.columns == ("target",)]
    assert len(conflict) == 1
    found = conflict[0]
    assert found.severity == "warn"
    assert (found.evidence["groups"], found.evidence["rows"]) == (3, 6)
    example = found.evidence["examples"][0]
    assert example["rows"] == [10, 400]
    assert sorted(example["targets"]) == [0, 1]
    # features + target differ, so these are not exact duplicates
    assert [f for f in findings if f.columns == ()] == []


def test_regression_targets_are_not_conflicts(base: pd.DataFrame) -> None:
    copy = base.iloc[[3]].assign(id=999, target=base["target"].iloc[3] + 0.5)
    frame = pd.concat([base.astype({"target": float}), copy], ignore_index=True)
    assert _audit(frame, target="target", task="regression", id_column="id") == []


def test_without_target_only_feature_duplicates(base: pd.DataFrame) -> None:
    frame = pd.concat([base, base.iloc[[5, 6]].assign(target=[7, 8])], ignore_index=True)
    findings = _audit(frame.drop(columns=["id"]).drop(columns=["target"]))
    assert [(f.check, f.evidence["rows"]) for f in findings] == [("duplicate_rows", 2)]


def test_near_duplicates_found_with_counts(base: pd.DataFrame) -> None:
    rows = [20, 21, 22, 23, 24, 25]
    near = base.iloc[rows].copy()
    near["id"] = np.arange(800, 806)
    near["city"] = ["  " + c.upper() + "." for c in near["city"]]
    near["income"] = near["income"] * (1 + 1e-11)
    frame = pd.concat([base, near], ignore_index=True)
    findings = _audit(frame, target="target", task="binary", id_column="id")
    assert [f.check for f in findings] == ["near_duplicate_rows"]
    (found,) = findings
    assert found.severity == "warn"  # 6 of 406 rows
    assert (found.evidence["rows"], found.evidence["groups"]) == (6, 6)
    assert found.evidence["rows_in_groups"] == 12
    assert found.columns == ("income", "city")
    example = found.evidence["examples"][0]
    assert example["rows"] == [20, 400]
    assert example["values"]["city"][1] == "  " + base["city"].iloc[20].upper() + "."
    assert set(example["values"]) == {"income", "city"}


def test_near_duplicates_ignore_true_differences(base: pd.DataFrame) -> None:
    other = base.iloc[[30]].assign(id=999, income=base["income"].iloc[30] * 1.001)
    frame = pd.concat([base, other], ignore_index=True)
    assert _audit(frame, target="target", task="binary", id_column="id") == []


def test_single_near_duplicate_is_info(base: pd.DataFrame) -> None:
    other = base.iloc[[30]].assign(id=999, city=" " + base["city"].iloc[30].lower())
    frame = pd.concat([base, other], ignore_index=True)
    (found,) = _audit(frame, target="target", task="binary", id_column="id")
    assert (found.check, found.severity, found.columns) == (
        "near_duplicate_rows",
        "info",
        ("city",),
    )
