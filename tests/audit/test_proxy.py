"""``protected_proxy``: a planted stand-in for a protected attribute is found, with the
fix; features independent of it raise nothing."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from assay.audit import AuditContext, Finding, run_audit
from assay.data import Dataset


def _audit(frame: pd.DataFrame, protected: tuple[str, ...]) -> list[Finding]:
    ctx = AuditContext(dataset=Dataset.from_frame(frame), target="target", task="binary",
                       protected=protected, seed=3)
    report = run_audit(ctx, only=["protected_proxy"])
    json.dumps(report.to_dict())
    for finding in report.findings:
        assert not finding.message.startswith("the check could not run"), finding.message
        assert Finding.from_dict(finding.to_dict()) == finding
    return list(report.findings)


def _frame(n: int = 2000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    group = rng.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2])
    # a postcode that mostly follows the group: 90% of rows live in their group's district
    districts = {"a": ["N1", "N2"], "b": ["S1", "S2"], "c": ["E1"]}
    postcode = np.array([rng.choice(districts[g]) if rng.random() < 0.9
                         else rng.choice(["N1", "N2", "S1", "S2", "E1"]) for g in group])
    age = rng.integers(18, 80, n).astype(float)
    income = rng.normal(50, 10, n) + 8.0 * (age - 50) / 10  # follows age, not group
    return pd.DataFrame({
        "group": group,
        "postcode": postcode,
        "age": age,
        "income": income,
        "tenure": rng.normal(size=n),
        "plan": rng.choice(["basic", "pro"], n),
        "target": rng.integers(0, 2, n),
    })


def test_a_planted_proxy_of_a_group_is_found_with_the_fix() -> None:
    findings = _audit(_frame(), ("group",))
    assert [f.columns for f in findings] == [("postcode", "group")]
    finding = findings[0]
    assert finding.severity == "warn" and finding.check == "protected_proxy"
    assert finding.evidence["auc"] >= 0.9 and finding.evidence["group"] in ("a", "b", "c")
    assert "feature 'postcode' predicts the protected attribute 'group'" in finding.message
    assert "data.drop" in finding.fix and "fairness.limits on 'group'" in finding.fix


def test_a_numeric_protected_attribute_is_scored_by_r2() -> None:
    findings = _audit(_frame(), ("age",))
    assert [f.columns for f in findings] == [("income", "age")]
    assert findings[0].evidence["r2"] >= 0.5


def test_independent_features_raise_nothing() -> None:
    frame = _frame().drop(columns=["postcode", "income"])
    assert _audit(frame, ("group", "age")) == []
    assert _audit(frame, ()) == []
