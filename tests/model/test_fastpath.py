"""The fast path gives the pipeline's answers (to 1e-9) on every supported model shape."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from assay.data.schema import infer_schema
from assay.model import fastpath
from assay.model.fastpath import FastPathUnsupported, compile_fast
from assay.model.validation import frame_records, validate_records
from assay.train.context import BuildContext
from assay.train.families import DummyFamily, LightGBMFamily, LinearFamily, TfidfLinearFamily
from assay.train.objective import ThresholdedClassifier, objective_for

TOL = 1e-9
N = 500


def make_frame(task: str, n: int = N, seed: int = 3) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "a": rng.normal(size=n),
            "b": rng.normal(size=n) * 10 + 3,
            "k": rng.integers(0, 30, n),
            "plan": rng.choice(["basic", "pro", "team"], n),
            "city": rng.choice(["oslo", "rome", "lima", "kyiv"], n),
            "ok": rng.random(n) < 0.4,
            "when": pd.Timestamp("2023-01-01")
            + pd.to_timedelta(rng.integers(0, 2 * 365 * 24, n), unit="h"),
        }
    )
    frame.loc[rng.random(n) < 0.08, "b"] = np.nan
    frame.loc[rng.random(n) < 0.05, "city"] = None
    frame.loc[:2, "plan"] = "rare"  # below min_frequency: the infrequent bucket
    signal = frame["a"] + 0.1 * frame["b"].fillna(3) + (frame["plan"] == "pro") + frame["ok"]
    signal = signal + 0.3 * frame["when"].dt.month / 12 + rng.normal(scale=0.5, size=n)
    if task == "binary":
        y = (signal > signal.median()).astype(int)
    elif task == "multiclass":
        y = pd.Series(np.digitize(signal, np.quantile(signal, [0.33, 0.66])), dtype=int)
        y = y.map({0: "low", 1: "mid", 2: "high"})
    else:
        y = signal * 2.5
    return frame, pd.Series(y, name="y")


def nasty_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows with missing values everywhere, unseen levels and dates outside training."""
    rows = frame.iloc[:60].copy()
    rows["a"] = rows["a"].astype(object)
    rows.loc[rows.index[0:8], "a"] = None
    rows.loc[rows.index[8:16], "b"] = np.nan
    rows.loc[rows.index[16:24], "plan"] = "enterprise"
    rows.loc[rows.index[24:30], "city"] = "paris"
    rows.loc[rows.index[30:36], "city"] = None
    rows["ok"] = rows["ok"].astype(object)
    rows.loc[rows.index[36:40], "ok"] = None
    rows.loc[rows.index[40:44], "when"] = pd.NaT
    rows.loc[rows.index[44:48], "when"] = pd.Timestamp("2031-06-30 23:00")
    rows.loc[rows.index[48:52], "k"] = 1000
    return rows


def fit(
    family: Any, task: str, metric: str, params: dict[str, Any] | None = None
) -> tuple[Any, pd.DataFrame]:
    frame, y = make_frame(task)
    schema = infer_schema(frame)
    context = BuildContext.of(
        task=task,
        schema=schema,
        features=list(frame.columns),
        text_column=None,
        objective=objective_for(task, metric),
        seed=0,
    )
    model = family.build({"n_estimators": 40, **(params or {})}, context)
    model.fit(frame, y)
    return model, frame


def assert_same(model: Any, frame: pd.DataFrame, classification: bool) -> None:
    features = list(frame.columns)
    fast = compile_fast(model, features)
    rows = pd.concat([nasty_rows(frame), frame.iloc[60:300]])
    records = frame_records(rows, features)
    labels, proba = fast.score(records)
    expected_labels = model.predict(rows)
    if classification:
        np.testing.assert_array_equal(labels, expected_labels)
        assert proba is not None
        np.testing.assert_allclose(proba, model.predict_proba(rows), rtol=0, atol=TOL)
    else:
        assert proba is None
        np.testing.assert_allclose(labels, expected_labels, rtol=0, atol=TOL)
    for i in range(0, 60, 3):  # the single-record path too
        value, probs = fast.score_one(records[i])
        if classification:
            assert value == expected_labels[i]
            np.testing.assert_allclose(
                probs, model.predict_proba(rows.iloc[[i]])[0], rtol=0, atol=TOL
            )
        else:
            assert probs is None and abs(value - expected_labels[i]) <= TOL


@pytest.mark.parametrize(
    ("task", "metric"),
    [
        ("binary", "roc_auc"),
        ("multiclass", "log_loss"),
        ("regression", "rmse"),
        ("regression", "mae"),
    ],
)
@pytest.mark.parametrize("family", [LightGBMFamily(), LinearFamily()], ids=["lightgbm", "linear"])
def test_fast_path_equals_pipeline(family: Any, task: str, metric: str) -> None:
    model, frame = fit(family, task, metric)
    assert_same(model, frame, classification=task != "regression")
    expected_engine = "lightgbm" if isinstance(family, LightGBMFamily) else "linear"
    assert compile_fast(model, list(frame.columns)).engine == expected_engine


@pytest.mark.parametrize("family", [LightGBMFamily(), LinearFamily()], ids=["lightgbm", "linear"])
def test_the_tuned_threshold_is_honoured(family: Any) -> None:
    model, frame = fit(family, "binary", "f1")
    assert isinstance(model, ThresholdedClassifier)
    model.threshold_ = 0.8  # far from 0.5, so argmax would disagree on many rows
    features = list(frame.columns)
    fast = compile_fast(model, features)
    assert fast.threshold == 0.8
    records = frame_records(frame, features)
    labels, proba = fast.score(records)
    np.testing.assert_array_equal(labels, model.predict(frame))
    assert proba is not None
    assert np.any((proba[:, 1] > 0.5) & (proba[:, 1] < 0.8))
    assert all(fast.score_one(r)[0] == labels[i] for i, r in enumerate(records[:50]))


def test_multiclass_string_labels_come_back_as_strings() -> None:
    model, frame = fit(LightGBMFamily(), "multiclass", "log_loss")
    fast = compile_fast(model, list(frame.columns))
    value, probs = fast.score_one(frame_records(frame.iloc[:1], list(frame.columns))[0])
    assert isinstance(value, str) and value in {"low", "mid", "high"}
    assert probs is not None and len(probs) == 3 and abs(sum(probs) - 1) < 1e-12


def test_a_baseline_is_a_constant() -> None:
    model, frame = fit(DummyFamily(), "binary", "roc_auc")
    fast = compile_fast(model, list(frame.columns))
    assert fast.engine == "constant"
    assert_same(model, frame, classification=True)


def test_validated_records_score_like_the_frame() -> None:
    model, frame = fit(LightGBMFamily(), "binary", "roc_auc")
    features = list(frame.columns)
    schema = infer_schema(frame)
    rows = frame.iloc[:80]
    json_rows = [
        {k: (v.isoformat() if isinstance(v, pd.Timestamp) else v) for k, v in r.items()}
        for r in frame_records(rows, features)
    ]
    batch = validate_records(json_rows, schema.columns, features)
    assert batch.ok
    fast = compile_fast(model, features)
    np.testing.assert_allclose(fast.score(batch.records)[1], model.predict_proba(rows), atol=TOL)


def test_raw_strings_are_read_as_the_pipeline_reads_them() -> None:
    model, frame = fit(LinearFamily(), "binary", "roc_auc")
    features = list(frame.columns)
    fast = compile_fast(model, features)
    rows = pd.DataFrame(
        {
            "a": ["1.5", "x", None],
            "b": [" 2 ", "3e1", ""],
            "k": [3, "7", None],
            "plan": ["pro", 5, None],
            "city": ["oslo", "lima", 2.0],
            "ok": ["yes", "F", "maybe"],
            "when": ["2024-02-03T04:05:06Z", "2023-07-01", "not a date"],
        },
        dtype=object,
    )
    np.testing.assert_allclose(
        fast.score(frame_records(rows, features))[1], model.predict_proba(rows), atol=TOL
    )


def test_the_transformed_row_equals_the_column_transformer() -> None:
    model, frame = fit(LinearFamily(), "binary", "roc_auc")
    features = list(frame.columns)
    fast = compile_fast(model, features)
    rows = nasty_rows(frame)
    expected = model.steps[0][1].transform(rows)
    expected = expected.toarray() if hasattr(expected, "toarray") else expected
    got = fast.transform_many(frame_records(rows, features))
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)
    assert fast.width == expected.shape[1]


def test_text_models_fall_back_to_the_pipeline() -> None:
    frame = pd.DataFrame({"review": ["good stuff here", "bad bad thing", "fine and good"] * 20})
    y = pd.Series([1, 0, 1] * 20)
    context = BuildContext(
        task="text-classification",
        schema=infer_schema(frame),
        features=("review",),
        text_column="review",
        objective=objective_for("text-classification", "accuracy"),
        seed=0,
    )
    model = TfidfLinearFamily().build({}, context)
    model.fit(frame, y)
    with pytest.raises(FastPathUnsupported, match="TextColumn"):
        compile_fast(model, ["review"])


def test_an_unknown_model_is_unsupported() -> None:
    from sklearn.tree import DecisionTreeClassifier

    with pytest.raises(FastPathUnsupported, match="is not a pipeline"):
        compile_fast(DecisionTreeClassifier(), ["a"])


def test_the_self_check_refuses_a_wrong_replay(monkeypatch: pytest.MonkeyPatch) -> None:
    model, frame = fit(LightGBMFamily(), "binary", "roc_auc")

    def wrong_parts(value: Any) -> list[float]:
        stamp = fastpath._stamp(value)
        if stamp is None:
            return [np.nan] * 4
        return [float(stamp.year), float(stamp.month), float(stamp.isoweekday()), float(stamp.hour)]

    monkeypatch.setattr(fastpath, "_date_parts", wrong_parts)
    with pytest.raises(FastPathUnsupported, match="differs from the pipeline"):
        compile_fast(model, list(frame.columns))
    compile_fast(model, list(frame.columns), check=False)  # unchecked, it would have been wrong


def test_frame_records_reads_columns_in_feature_order() -> None:
    frame = pd.DataFrame({"b": [1, 2], "a": ["x", None]})
    first, second = frame_records(frame, ["a", "b"])
    assert list(first) == ["a", "b"] and first == {"a": "x", "b": 1}
    assert pd.isna(second["a"]) and second["b"] == 2
