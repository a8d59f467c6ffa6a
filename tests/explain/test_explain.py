"""Known answers for the explain stage: planted signal ranks first, linear attributions are
coefficient x (value - mean), tree attributions add up to the model's log-odds."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from assay.data.schema import infer_schema
from assay.errors import AssayError
from assay.explain import (
    Explanation,
    NoExplainer,
    explain_model,
    explain_rows,
    explainer_for,
    local_explainer,
)
from assay.explain.explainers import split_model
from assay.registry import Lineage
from assay.train.context import BuildContext
from assay.train.families import get_family
from assay.train.objective import objective_for
from assay.train.pipeline import fit_model

FEATURES = ["signal", "plan", "noise_a", "noise_b"]


def _frame(n: int = 500, seed: int = 3) -> tuple[pd.DataFrame, pd.Series, pd.Series]:
    """Two informative columns (``signal``, ``plan``) and two noise columns."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "signal": rng.normal(size=n),
        "plan": rng.choice(["basic", "pro", "team"], n),
        "noise_a": rng.normal(size=n),
        "noise_b": rng.uniform(size=n),
    })
    frame.loc[rng.random(n) < 0.1, "noise_a"] = np.nan
    logit = 3.0 * frame["signal"] + 2.0 * (frame["plan"] == "pro") - 1.0 * (frame["plan"] == "team")
    binary = pd.Series((logit + rng.logistic(size=n) * 0.3 > 0).astype(int))
    value = pd.Series(logit + rng.normal(size=n) * 0.1)
    return frame, binary, value


def _fit(family: str, frame: pd.DataFrame, y: pd.Series, task: str) -> object:
    fam = get_family(family)
    metric = {"binary": "roc_auc", "multiclass": "accuracy", "regression": "rmse"}[task]
    context = BuildContext.of(task=task, schema=infer_schema(frame), features=FEATURES,
                              text_column=None, objective=objective_for(task, metric), seed=0)
    model = fam.build(fam.defaults(task), context)
    fit_model(model, frame, y)
    return model


@pytest.mark.parametrize(
    ("family", "task", "method"),
    [
        ("lightgbm", "binary", "tree_shap"),
        ("lightgbm", "regression", "tree_shap"),
        ("linear", "binary", "linear"),
        ("linear", "regression", "linear"),
        ("extra_trees", "regression", "tree_shap"),
        ("svm", "binary", "permutation"),
    ],
)
def test_planted_informative_columns_rank_first_and_noise_last(
    family: str, task: str, method: str
) -> None:
    frame, binary, value = _frame()
    y = binary if task == "binary" else value
    model = _fit(family, frame, y, task)
    explanation = explain_model(model, frame, y, task=task, features=FEATURES, seed=0,
                                family=family)
    assert explanation.method == method
    assert explanation.ranking[:2] == ["signal", "plan"]
    assert set(explanation.ranking[2:]) == {"noise_a", "noise_b"}
    top = explanation.importance("signal")
    assert top.rank == 1 and top.share > 0.4
    assert sum(f.share for f in explanation.features) == pytest.approx(1.0)


def test_linear_attributions_are_coefficient_times_value_minus_mean() -> None:
    frame, binary, _ = _frame()
    model = _fit("linear", frame, binary, "binary")
    background, rows = frame.iloc[:300], frame.iloc[300:320]
    attributions = explainer_for(model, FEATURES, background=background).attributions(rows)

    pre, final = split_model(model)
    names = [str(n) for n in pre.get_feature_names_out()]
    Xt, Xb = np.asarray(pre.transform(rows).todense() if hasattr(pre.transform(rows), "todense")
                        else pre.transform(rows)), pre.transform(background)
    mean = np.asarray(Xb.mean(axis=0)).ravel()
    terms = final.coef_[0] * (Xt - mean)
    for j, feature in enumerate(FEATURES):
        # the column's own output, its missing indicator, or its one-hot levels
        owned = [i for i, n in enumerate(names)
                 if n.split("__", 1)[1] in (feature, f"missingindicator_{feature}")
                 or n.split("__", 1)[1].startswith(f"{feature}_") and n.startswith("categorical__")]
        assert owned, feature
        np.testing.assert_allclose(attributions.values[:, j, 0], terms[:, owned].sum(axis=1),
                                   rtol=1e-12, atol=1e-12)
    assert attributions.output == "log_odds"
    np.testing.assert_allclose(attributions.base[0], final.intercept_[0] + final.coef_[0] @ mean)
    np.testing.assert_allclose(attributions.totals[:, 0], final.decision_function(Xt), atol=1e-10)


def test_tree_attributions_add_up_to_the_log_odds_of_the_second_class() -> None:
    frame, binary, _ = _frame()
    model = _fit("lightgbm", frame, binary, "binary")
    attributions = explainer_for(model, FEATURES).attributions(frame.iloc[:50])
    assert attributions.output == "log_odds" and attributions.classes == (1,)
    proba = model.predict_proba(frame.iloc[:50])[:, 1]
    np.testing.assert_allclose(1.0 / (1.0 + np.exp(-attributions.totals[:, 0])), proba,
                               rtol=1e-9)


def test_forest_attributions_add_up_to_the_probability_of_the_second_class() -> None:
    pytest.importorskip("shap")
    frame, binary, _ = _frame(n=300)
    model = _fit("extra_trees", frame, binary, "binary")
    explainer = explainer_for(model, FEATURES, family="extra_trees")
    attributions = explainer.attributions(frame.iloc[:20])
    assert explainer.method == "tree_shap"
    assert attributions.output == "probability" and attributions.classes == (1,)
    np.testing.assert_allclose(attributions.totals[:, 0], model.predict_proba(frame.iloc[:20])[:, 1],
                               atol=1e-9)
    explanation = explain_model(model, frame, binary, task="binary", features=FEATURES, seed=0,
                                max_rows=60)
    assert explanation.ranking[:2] == ["signal", "plan"]
    rows = explain_rows(local_explainer(model, FEATURES, explanation), frame.iloc[:3])
    assert [r.output_space for r in rows] == ["probability"] * 3


def test_multiclass_tree_attributions_add_up_to_each_class_raw_score() -> None:
    frame, _, value = _frame()
    y = pd.Series(np.digitize(value, [-1.0, 1.0]))
    model = _fit("lightgbm", frame, y, "multiclass")
    attributions = explainer_for(model, FEATURES).attributions(frame.iloc[:30])
    assert attributions.output == "raw_score" and attributions.values.shape == (30, 4, 3)
    _, final = split_model(model)
    raw = final.predict(split_model(model)[0].transform(frame.iloc[:30]), raw_score=True)
    np.testing.assert_allclose(attributions.totals, raw, atol=1e-9)
    rows = explain_rows(explainer_for(model, FEATURES), frame.iloc[:30])
    predicted = model.predict(frame.iloc[:30])
    assert [r.output_class for r in rows] == [int(p) for p in predicted]


def test_a_stored_linear_explanation_explains_rows_without_the_training_rows() -> None:
    frame, binary, _ = _frame()
    model = _fit("linear", frame, binary, "binary")
    explanation = explain_model(model, frame.iloc[300:], binary.iloc[300:], task="binary",
                                features=FEATURES, background=frame.iloc[:300], seed=0)
    stored = Explanation.from_dict(explanation.to_dict())
    assert stored == explanation
    direct = explainer_for(model, FEATURES, background=frame.iloc[:300]).attributions(frame.iloc[:5])
    rows = explain_rows(local_explainer(model, FEATURES, stored), frame.iloc[:5])
    for i, row in enumerate(rows):
        assert row.output_space == "log_odds" and row.output_class == 1
        assert list(row.contributions) == FEATURES
        np.testing.assert_allclose(list(row.contributions.values()), direct.values[i, :, 0])
        assert row.base_value + sum(row.contributions.values()) == pytest.approx(row.output)


def test_the_beeswarm_sample_keeps_raw_values_and_attributions() -> None:
    frame, binary, _ = _frame()
    model = _fit("lightgbm", frame, binary, "binary")
    explanation = explain_model(model, frame, binary, task="binary", features=FEATURES, seed=0)
    assert explanation.rows == 500
    assert explanation.sample_features == tuple(FEATURES)
    assert len(explanation.sample_values) == len(explanation.sample_attributions) == 100
    assert explanation.sample_values[0][1] in ("basic", "pro", "team")
    assert len(explanation.base_values) == 1


def test_rows_are_sampled_with_the_seed() -> None:
    frame, binary, _ = _frame(n=900)
    model = _fit("linear", frame, binary, "binary")
    one = explain_model(model, frame, binary, task="binary", features=FEATURES, seed=4)
    two = explain_model(model, frame, binary, task="binary", features=FEATURES, seed=4)
    assert one.rows == 500 and one == two


def test_a_family_without_a_per_row_explainer_says_so() -> None:
    frame, binary, _ = _frame()
    model = _fit("svm", frame, binary, "binary")
    with pytest.raises(NoExplainer, match="model family 'svm' has no per-row explainer"):
        explainer_for(model, FEATURES, family="svm")
    explanation = explain_model(model, frame, binary, task="binary", features=FEATURES, seed=0,
                                family="svm")
    assert explanation.output == "loss_increase" and "shuffled" in explanation.note
    with pytest.raises(NoExplainer, match="model version 4: the model family 'svm'") as info:
        local_explainer(model, FEATURES, explanation, family="svm", version=4)
    assert "lightgbm, extra_trees or linear" in (info.value.fix or "")
    with pytest.raises(NoExplainer, match="no per-row explainer"):
        explain_model(model, frame, None, task="binary", features=FEATURES, family="svm")


def test_a_linear_version_registered_without_an_explanation_is_refused_with_the_fix() -> None:
    frame, binary, _ = _frame()
    model = _fit("linear", frame, binary, "binary")
    with pytest.raises(NoExplainer, match="registered without an explanation") as info:
        local_explainer(model, FEATURES, None, family="linear", version=2)
    assert "assay run" in (info.value.fix or "")
    assert isinstance(info.value, AssayError)


def test_explanations_and_lineage_read_records_stored_before_them() -> None:
    old = Explanation.from_dict({"method": "tree_shap", "output": "log_odds",
                                 "features": [{"feature": "a", "importance": 1.0, "rank": 1}]})
    assert old.ranking == ["a"] and old.base_values == () and old.note == ""
    assert Lineage.from_dict({"features": ["a"]}).explanation is None
    assert "explanation" not in Lineage(features=("a",)).to_dict()
    assert Lineage.from_dict(Lineage(explanation="sha256:x").to_dict()).explanation == "sha256:x"
    with pytest.raises(ValueError, match="unknown explanation method"):
        Explanation.from_dict({"method": "magic", "output": "log_odds"})


def test_a_forest_without_shap_installed_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    frame, binary, _ = _frame(n=200)
    model = _fit("extra_trees", frame, binary, "binary")
    monkeypatch.delitem(sys.modules, "assay.explain.forest", raising=False)
    monkeypatch.setitem(sys.modules, "shap", None)  # import shap raises ImportError
    with pytest.raises(NoExplainer, match="optional package 'shap'") as info:
        explainer_for(model, FEATURES, family="extra_trees")
    assert "pip install 'assay[explain]'" in (info.value.fix or "")
    explanation = explain_model(model, frame, binary, task="binary", features=FEATURES, seed=0,
                                family="extra_trees")
    assert explanation.method == "permutation"
