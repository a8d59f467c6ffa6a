"""Fairness mitigation: planted bias is reduced by at least one alternative; clean input
triggers nothing."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from assay.audit.base import Finding
from assay.evaluate.evaluation import Criterion
from assay.evaluate.mitigation import MitigationComparison
from assay.train.mitigation import mitigate, plan_mitigation, reweighing_weights


def _biased(n: int, seed: int) -> tuple[pd.DataFrame, pd.Series]:
    """Group 'a' gets the positive label far more often at the same x."""
    rng = np.random.default_rng(seed)
    group = rng.choice(["a", "b"], n)
    x = rng.normal(size=n)
    logit = x + np.where(group == "a", 1.5, -1.5)
    y = np.where(rng.random(n) < 1 / (1 + np.exp(-logit)), "yes", "no")
    return pd.DataFrame({"x": x, "noise": rng.normal(size=n), "group": group}), pd.Series(y)


TEMPLATE = Pipeline([
    ("pre", ColumnTransformer([("num", StandardScaler(), ["x", "noise"]),
                               ("cat", OneHotEncoder(), ["group"])])),
    ("model", LogisticRegression()),
])


def test_reweighing_weights_known_answer() -> None:
    # a: 3 rows (2 yes), b: 1 row (no). P(a)=3/4, P(yes)=1/2, P(a,yes)=1/2 -> 0.75
    w = reweighing_weights(["yes", "yes", "no", "no"], ["a", "a", "a", "b"])
    assert w == pytest.approx([0.75, 0.75, 1.5, 0.5])
    # weighted, each (group, label) cell holds n P(group) P(label) (the empty cell b/yes
    # holds nothing, so the weights sum to 4 - 4 * 1/4 * 1/2)
    assert w.sum() == pytest.approx(3.5)
    cells = pd.DataFrame({"g": ["a", "a", "a", "b"], "y": ["yes", "yes", "no", "no"], "w": w})
    assert cells.groupby(["g", "y"])["w"].sum().to_dict() == pytest.approx(
        {("a", "no"): 1.5, ("a", "yes"): 1.5, ("b", "no"): 0.5}
    )


def test_planted_bias_is_reduced_by_a_mitigation(seed: int) -> None:
    train, validation, test = _biased(1500, seed), _biased(600, seed + 1), _biased(800, seed + 2)
    model = clone(TEMPLATE).fit(*train)
    criterion = Criterion("demographic_parity_difference", "<= 0.1", 0.8, None, False, "group")
    plan = plan_mitigation([criterion], [], ["group"])
    assert plan is not None and plan.constraint == "demographic_parity"
    comparison = mitigate(
        plan, task="binary", model=model, template=TEMPLATE, train=train,
        validation=validation, test=test,
        protected={"train": train[0][["group"]], "validation": validation[0][["group"]],
                   "test": test[0][["group"]]},
        primary="accuracy", limits={"demographic_parity_difference": "<= 0.1"}, seed=seed,
    )
    methods = [m.method for m in comparison.models]
    assert methods == ["none", "reweight", "threshold", "reductions"] and not comparison.skipped
    before = comparison.models[0].fairness["group"]["demographic_parity_difference"]
    assert before is not None and before > 0.5 and comparison.models[0].limits_hold is False
    best = comparison.best("demographic_parity_difference")
    assert best is not None
    after = best.fairness["group"]["demographic_parity_difference"]
    assert after is not None and after < before / 3
    # every alternative is fairer than the chosen model, at some cost in accuracy
    for m in comparison.models[1:]:
        assert m.fairness["group"]["demographic_parity_difference"] < before
        assert m.primary is not None and m.primary <= comparison.models[0].primary + 0.02
    stored = json.loads(json.dumps(comparison.to_dict()))
    assert MitigationComparison.from_dict(stored) == comparison


def test_equalized_odds_limit_picks_the_equalized_odds_constraint() -> None:
    failing = Criterion("equalized_odds_difference", "<= 0.1", 0.4, None, False, "group")
    plan = plan_mitigation([failing], [], ["group"])
    assert plan is not None and plan.constraint == "equalized_odds"


def test_clean_checks_plan_nothing() -> None:
    passing = Criterion("demographic_parity_difference", "<= 0.1", 0.02, None, True, "group")
    info = Finding("protected_attribute_correlation", "info", ("group",), "ratio 0.97")
    assert plan_mitigation([passing], [info], ["group"]) is None
    assert plan_mitigation([], [], ["group"]) is None


def test_biased_labels_in_the_audit_plan_mitigation() -> None:
    warn = Finding("protected_attribute_correlation", "warn", ("group",), "ratio 0.3")
    plan = plan_mitigation([], [warn], ["group"])
    assert plan is not None and plan.attribute == "group"
    assert plan.reasons == ("data audit: ratio 0.3",)


def test_regression_and_multiclass_say_why_not(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 300
    X = pd.DataFrame({"x": rng.normal(size=n), "group": rng.choice(["a", "b"], n)})
    y = pd.Series(X["x"] * 2 + (X["group"] == "a") * 3)
    template = Pipeline([
        ("pre", ColumnTransformer([("num", StandardScaler(), ["x"]),
                                   ("cat", OneHotEncoder(), ["group"])])),
        ("model", Ridge()),
    ])
    model = clone(template).fit(X, y)
    failing = Criterion("mae_ratio", ">= 0.9", 0.5, None, False, "group")
    plan = plan_mitigation([failing], [], ["group"])
    assert plan is not None
    part = (X, y)
    groups = X[["group"]]
    comparison = mitigate(
        plan, task="regression", model=model, template=template, train=part, validation=part,
        test=part, protected={"train": groups, "validation": groups, "test": groups},
        primary="rmse", limits={"mae_ratio": ">= 0.9"},
    )
    assert [m.method for m in comparison.models] == ["none"]
    assert set(comparison.skipped) == {"reweight", "threshold", "reductions"}
    assert all("regression" in why for why in comparison.skipped.values())
    assert comparison.models[0].fairness["group"]["mae_ratio"] is not None
