"""The robustness gate judges exactly what the report shows: the gated cases, one cost, one tolerance."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import make_column_transformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from assay.config import parse_spec
from assay.evaluate import Evaluation, RobustnessCase, RobustnessReport, robustness
from assay.evaluate.robustness import case_cost, is_gated, judge
from assay.gate import robustness_gate
from assay.report import ReportInput
from assay.report.sections import build_sections


def _spec(task: str = "binary", tolerance: float = 0.10):
    return parse_spec({"task": task, "data": {"source": "d.csv", "target": "y"},
                       "gate": {"max_robustness_drop": tolerance}})


def _evaluation(report: RobustnessReport, task: str = "binary") -> Evaluation:
    return Evaluation(task=task, n_rows=report.n_rows, classes=(0, 1) if task == "binary" else (),
                      primary=report.metric, metrics={report.metric: report.clean},
                      robustness=report)


def _case(name: str, kind: str, value: float | None, clean: float = 0.9,
          answered: bool = True) -> RobustnessCase:
    drop = None if value is None else clean - value
    return RobustnessCase(name, kind, name.partition(":")[2] or None, answered, value, drop,
                          None if drop is None else drop / clean,
                          None if answered else "ValueError: boom", is_gated(name))


def _report(*cases: RobustnessCase, clean: float = 0.9) -> RobustnessReport:
    return RobustnessReport("accuracy", clean, 100, cases, None, None, ())


@pytest.fixture(scope="module")
def frame() -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(0)
    n = 800
    X = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n),
                      "region": rng.choice(["north", "south", "east"], n)})
    y = 3.0 * X["a"] - X["b"] + X["region"].map({"north": 2.0, "south": 0.0, "east": -2.0})
    return X, (y + rng.normal(0, 0.3, n)).to_numpy()


def _regression_pipeline(unknown: str = "ignore"):
    pre = make_column_transformer(
        (make_pipeline(SimpleImputer(), StandardScaler()), ["a", "b"]),
        (make_pipeline(SimpleImputer(strategy="most_frequent"),
                       OneHotEncoder(handle_unknown=unknown)), ["region"]))
    return make_pipeline(pre, LinearRegression())


def test_noise_costing_more_than_the_tolerance_fails_the_gate() -> None:
    # clean 0.9 over a 0.5 baseline: 0.4 of skill; noise costs 0.08 of it = 20 %
    report = _report(_case("noise", "noise", 0.82), _case("missing:a", "missing", 0.6))
    gate = robustness_gate(_evaluation(report), _spec(), baseline_value=0.5)
    assert not gate.passed
    assert "noise 20.0%" in gate.message and "skill lost" in gate.message
    assert gate.evidence["over"] == ["noise"]
    assert gate.evidence["noise_cost"] == pytest.approx(0.2)


def test_a_missing_feature_is_shown_not_gated() -> None:
    # a whole feature missing costs 75 % of the skill: a diagnostic, not a failure
    report = _report(_case("noise", "noise", 0.89), _case("missing:a", "missing", 0.6))
    gate = robustness_gate(_evaluation(report), _spec(), baseline_value=0.5)
    assert gate.passed, gate.message
    verdicts = {c["name"]: c for c in gate.evidence["cases"]}
    assert verdicts["missing:a"]["verdict"] == "informational"
    assert verdicts["missing:a"]["cost"] == pytest.approx(0.75)
    assert verdicts["noise"]["verdict"] == "ok"
    assert gate.evidence["worst_gated"] == "noise"
    assert gate.evidence["gated"] == ["noise"]


def test_every_gated_kind_is_judged_and_the_others_are_not() -> None:
    assert all(is_gated(n) for n in ("noise", "unseen_level:region", "typos:review",
                                     "lowercase:review", "uppercase:review"))
    assert not any(is_gated(n) for n in ("missing:a", "level_swap:region", "truncated:review",
                                         "no_punctuation:review", "out_of_range_high"))
    for name, kind in (("typos:review", "text"), ("uppercase:review", "text"),
                       ("unseen_level:region", "categorical")):
        report = _report(_case("noise", "noise", 0.9), _case(name, kind, 0.7))
        gate = robustness_gate(_evaluation(report), _spec(), baseline_value=0.5)
        assert not gate.passed and gate.evidence["over"] == [name], name
    for name, kind in (("truncated:review", "text"), ("level_swap:region", "categorical")):
        report = _report(_case("noise", "noise", 0.9), _case(name, kind, 0.7))
        assert robustness_gate(_evaluation(report), _spec(), baseline_value=0.5).passed, name


def test_without_a_baseline_the_cost_is_the_relative_drop() -> None:
    report = _report(_case("noise", "noise", 0.85))
    judged = judge(report, 0.10)
    assert judged.measure == "relative drop"
    assert judged.worst_cost == pytest.approx(0.05 / 0.9)
    # no skill over the baseline: the relative drop too
    assert case_cost(report.cases[0], 0.9, "accuracy", 0.95)[1] == "relative drop"
    # lower is better: the orientation follows the metric
    rmse = RobustnessCase("noise", "noise", None, True, 1.5, 0.5, 0.5, None, True)
    assert case_cost(rmse, 1.0, "rmse", 3.0) == (pytest.approx(0.25), "skill lost")


def test_an_unanswered_case_fails_even_when_it_is_not_gated() -> None:
    report = _report(_case("noise", "noise", 0.9), _case("missing:a", "missing", None,
                                                         answered=False))
    gate = robustness_gate(_evaluation(report), _spec(), baseline_value=0.5)
    assert not gate.passed and "failed to answer: missing:a" in gate.message


def test_a_model_that_crashes_on_an_unseen_level_fails(frame) -> None:
    X, y = frame
    model = _regression_pipeline(unknown="error").fit(X[:500], y[:500])
    report = robustness(model, X[500:].reset_index(drop=True), y[500:], "regression", "rmse",
                        X_reference=X[:500])
    assert not report.case("unseen_level:region").answered
    assert "unknown categor" in (report.case("unseen_level:region").error or "").lower()
    assert report.case("level_swap:region").answered  # known levels still work
    gate = robustness_gate(_evaluation(report, "regression"), _spec("regression"),
                           baseline_value=float(np.std(y[500:])))
    assert not gate.passed and "unseen_level:region" in gate.message


class _Absurd:
    """Wraps a regressor; a level it never saw gets an absurd (finite) prediction."""

    def __init__(self, model, known: set[str]) -> None:
        self.model, self.known = model, known

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        out = np.asarray(self.model.predict(X), dtype=float)
        return np.where(X["region"].isin(self.known), out, 1e3)


def test_an_unseen_level_that_costs_too_much_fails_and_a_sound_model_passes(frame) -> None:
    X, y = frame
    fitted = _regression_pipeline().fit(X[:500], y[:500])
    X_test, y_test = X[500:].reset_index(drop=True), y[500:]
    baseline = float(np.sqrt(np.mean((y_test - y[:500].mean()) ** 2)))

    sound = robustness(fitted, X_test, y_test, "regression", "rmse", X_reference=X[:500])
    gate = robustness_gate(_evaluation(sound, "regression"), _spec("regression"), baseline)
    assert gate.passed, gate.message
    verdicts = {c["name"]: c["verdict"] for c in gate.evidence["cases"]}
    assert verdicts["unseen_level:region"] == "ok" and verdicts["noise"] == "ok"
    assert verdicts["missing:region"] == "informational"
    assert verdicts["level_swap:region"] == "informational"

    absurd = robustness(_Absurd(fitted, {"north", "south", "east"}), X_test, y_test,
                        "regression", "rmse", X_reference=X[:500])
    gate = robustness_gate(_evaluation(absurd, "regression"), _spec("regression"), baseline)
    assert not gate.passed and gate.evidence["over"] == ["unseen_level:region"]


def test_unseen_levels_and_swaps_touch_a_share_of_the_rows_only() -> None:
    seen: list[pd.Series] = []

    class _Spy:
        classes_ = np.array([0, 1])

        def predict(self, X: pd.DataFrame) -> np.ndarray:
            seen.append(X["region"].copy())
            return np.zeros(len(X), dtype=int)

        def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
            return np.tile([0.5, 0.5], (len(X), 1))

    X = pd.DataFrame({"a": np.arange(200.0), "region": pd.Categorical(["n", "s"] * 100)})
    report = robustness(_Spy(), X, np.arange(200) % 2, "binary", "accuracy", seed=3)
    names = [c.name for c in report.cases]
    assert "unseen_level:region" in names and "level_swap:region" in names
    clean, unseen, swapped = seen[0], seen[names.index("unseen_level:region") + 1], \
        seen[names.index("level_swap:region") + 1]
    changed = unseen.astype(object) != clean.astype(object)
    assert changed.sum() == 10 and not unseen[changed].isin(["n", "s"]).any()
    moved = swapped.astype(object) != clean.astype(object)
    assert moved.sum() == 10 and swapped.isin(["n", "s"]).all()


def test_stored_cases_without_gated_load_with_it() -> None:
    old = {"name": "typos:review", "kind": "text", "feature": "review", "answered": True,
           "value": 0.8, "drop": 0.1, "relative_drop": 0.11, "error": None}
    assert RobustnessCase.from_dict(old).gated
    assert not RobustnessCase.from_dict({**old, "name": "truncated:review"}).gated


def test_the_report_colours_cases_by_the_gate_verdict() -> None:
    report = _report(_case("noise", "noise", 0.89), _case("missing:a", "missing", 0.6))
    gate = robustness_gate(_evaluation(report), _spec(), baseline_value=0.5)
    evaluation = _evaluation(report).to_dict()
    shown = ReportInput(version={"version": 1}, evaluation=evaluation, gates=[gate.to_dict()],
                        spec=_spec().model_dump(mode="json"))
    section = next(s for s in build_sections(shown) if s.id == "robustness")
    table = next(b for b in section.blocks if getattr(b, "kind", "") == "table")
    by_case = {row[0].text: row for row in table.rows}
    assert all(c.cls != "fail" for c in by_case["missing:a"])
    assert by_case["missing:a"][8].text == "informational"
    assert by_case["missing:a"][7].text == "75.0%"  # the same cost the gate computed
    failing = robustness_gate(_evaluation(_report(_case("noise", "noise", 0.8))), _spec(), 0.5)
    shown = ReportInput(version={"version": 1}, evaluation=_evaluation(
        _report(_case("noise", "noise", 0.8))).to_dict(), gates=[failing.to_dict()])
    section = next(s for s in build_sections(shown) if s.id == "robustness")
    table = next(b for b in section.blocks if getattr(b, "kind", "") == "table")
    assert table.rows[0][7].cls == "fail" and table.rows[0][8].text == "OVER tolerance"


class _SaysGood:
    """Predicts 1 when the text holds the exact, case-sensitive word "good"."""

    classes_ = np.array([0, 1])

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return np.array([int("good" in str(t).replace(".", " ").split()) for t in X["review"]])

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        hits = self.predict(X).astype(float)
        return np.column_stack([1 - hits, hits])


def test_a_text_model_that_breaks_on_upper_case_fails_and_truncation_is_a_diagnostic() -> None:
    # the deciding word comes last: truncation to half the words removes it too
    texts = [f"{' '.join(['the plot'] * (i % 3 + 1))} {'good' if i % 2 == 0 else 'poor'}."
             for i in range(200)]
    X, y = pd.DataFrame({"review": texts}), (np.arange(200) % 2 == 0).astype(int)
    report = robustness(_SaysGood(), X, y, "binary", "accuracy", text_columns=["review"])
    assert report.clean == 1.0
    gate = robustness_gate(_evaluation(report), _spec(), baseline_value=0.5)
    assert not gate.passed
    assert "uppercase:review" in gate.evidence["over"]
    assert "truncated:review" not in gate.evidence["over"]  # costs as much, but not gated
    costs = {c["name"]: c["cost"] for c in gate.evidence["cases"]}
    assert costs["truncated:review"] == pytest.approx(1.0)
    assert costs["uppercase:review"] == pytest.approx(1.0)
    verdicts = {c["name"]: c["verdict"] for c in gate.evidence["cases"]}
    assert verdicts["truncated:review"] == "informational"
    assert verdicts["lowercase:review"] == "ok"
    assert {"typos:review", "lowercase:review", "uppercase:review"} <= set(gate.evidence["gated"])
