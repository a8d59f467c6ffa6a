"""An ensemble's fast path gives the ensemble's answers (to 1e-9), or declines with the reason."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from assay.data.schema import infer_schema
from assay.model.fastblend import BlendPredictor, compile_blend
from assay.model.fastpath import FastPathUnsupported
from assay.model.loaded import compile_fast_path as _compile
from assay.model.validation import frame_records
from assay.train.context import BuildContext
from assay.train.ensemble import EnsembleClassifier, EnsembleRegressor
from assay.train.families import LightGBMFamily, LinearFamily, MLPFamily
from assay.train.objective import objective_for

from .test_fastpath import make_frame, nasty_rows

TOL = 1e-9


def build(family: Any, task: str, metric: str, frame: pd.DataFrame, params: dict[str, Any]) -> Any:
    context = BuildContext.of(
        task=task,
        schema=infer_schema(frame),
        features=list(frame.columns),
        text_column=None,
        objective=objective_for(task, metric),
        seed=0,
    )
    return family.build(params, context)


def ensemble(
    task: str, metric: str, weights: list[float], *, mlp: bool = False
) -> tuple[Any, pd.DataFrame]:
    frame, y = make_frame(task)
    members = [
        build(LightGBMFamily(), task, metric, frame, {"n_estimators": 30}),
        build(LinearFamily(), task, metric, frame, {}),
    ]
    if mlp:
        members.append(build(MLPFamily(), task, metric, frame, {"max_epochs": 3}))
    kind = EnsembleRegressor if task == "regression" else EnsembleClassifier
    model = kind(members, weights)
    model.fit(frame, y)
    return model, frame


@pytest.mark.parametrize(
    ("task", "metric"), [("binary", "roc_auc"), ("multiclass", "log_loss"), ("regression", "rmse")]
)
def test_blend_equals_the_ensemble(task: str, metric: str) -> None:
    model, frame = ensemble(task, metric, [0.7, 0.3])
    features = list(frame.columns)
    fast = compile_blend(model, features)
    assert fast.engine == "blend" and [w for w, _ in fast.members] == pytest.approx([0.7, 0.3])
    rows = pd.concat([nasty_rows(frame), frame.iloc[60:300]])
    records = frame_records(rows, features)
    labels, proba = fast.score(records)
    expected = model.predict(rows)
    classification = task != "regression"
    if classification:
        np.testing.assert_array_equal(labels, expected)
        assert proba is not None
        np.testing.assert_allclose(proba, model.predict_proba(rows), rtol=0, atol=TOL)
    else:
        assert proba is None
        np.testing.assert_allclose(labels, expected, rtol=0, atol=TOL)
    for i in range(0, 60, 4):
        value, probs = fast.score_one(records[i])
        if classification:
            assert value == expected[i]
            np.testing.assert_allclose(
                probs, model.predict_proba(rows.iloc[[i]])[0], rtol=0, atol=TOL
            )
        else:
            assert probs is None and abs(value - expected[i]) <= TOL


def test_the_blend_differs_from_each_member() -> None:
    # a known answer: the blend's probabilities are the weighted mean of the members' own
    model, frame = ensemble("binary", "roc_auc", [0.5, 0.5])
    features = list(frame.columns)
    records = frame_records(frame.iloc[:50], features)
    _, blended = compile_blend(model, features).score(records)
    members = [m.predict_proba(frame.iloc[:50]) for m in model.estimators_]
    assert blended is not None
    np.testing.assert_allclose(blended, 0.5 * members[0] + 0.5 * members[1], rtol=0, atol=TOL)
    assert not np.allclose(blended, members[0]) and not np.allclose(blended, members[1])


def test_a_binary_threshold_decides_the_label() -> None:
    model, frame = ensemble("binary", "f1", [0.6, 0.4])
    model.threshold = 0.8
    features = list(frame.columns)
    fast = compile_blend(model, features)
    assert fast.threshold == 0.8
    records = frame_records(frame, features)
    labels, proba = fast.score(records)
    np.testing.assert_array_equal(labels, model.predict(frame))
    assert proba is not None and np.any((proba[:, 1] > 0.5) & (proba[:, 1] < 0.8))


def test_a_member_without_a_fast_path_keeps_the_pipeline() -> None:
    model, frame = ensemble("binary", "roc_auc", [0.4, 0.3, 0.3], mlp=True)
    with pytest.raises(FastPathUnsupported, match="ensemble member 2"):
        compile_blend(model, list(frame.columns))
    fast, reason = _compile(model, list(frame.columns))
    assert fast is None and reason is not None and "ensemble member 2" in reason


def test_a_zero_weight_member_is_left_out_and_the_runtime_compiles_blends() -> None:
    model, frame = ensemble("regression", "rmse", [1.0, 0.0])
    fast, reason = _compile(model, list(frame.columns))
    assert isinstance(fast, BlendPredictor) and reason is None
    assert len(fast.members) == 1 and fast.members[0][1].engine == "lightgbm"
    records = frame_records(frame.iloc[:20], list(frame.columns))
    np.testing.assert_allclose(
        fast.score(records)[0], model.predict(frame.iloc[:20]), rtol=0, atol=TOL
    )


def test_an_unfitted_ensemble_is_refused() -> None:
    frame, _ = make_frame("binary")
    member = build(LinearFamily(), "binary", "roc_auc", frame, {})
    with pytest.raises(FastPathUnsupported, match="not fitted"):
        compile_blend(EnsembleClassifier([member], [1.0]), list(frame.columns))


def test_the_blend_check_refuses_a_single_record_path_that_drifts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    model, frame = ensemble("binary", "roc_auc", [0.5, 0.5])
    honest = BlendPredictor.score_one

    def drifting(self: BlendPredictor, record: Any) -> tuple[Any, list[float] | None]:
        value, probs = honest(self, record)
        assert probs is not None
        return value, [probs[0] - 1e-6, probs[1] + 1e-6]

    monkeypatch.setattr(BlendPredictor, "score_one", drifting)
    with pytest.raises(FastPathUnsupported, match="single-record path differs"):
        compile_blend(model, list(frame.columns))
    compile_blend(model, list(frame.columns), check=False)  # unchecked, it would serve wrong answers
