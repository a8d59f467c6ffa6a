"""The labelling queue: uncertain and diverse batches, strata floors, the review list, tasks."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from assay.errors import ConfigError, DataError
from assay.label.queue import review_list, select_batch, uncertainty
from assay.label.represent import representation
from assay.label.tasks import label_studio_tasks, write_csv, write_label_studio


def _binary(p1: np.ndarray) -> np.ndarray:
    return np.column_stack([1.0 - p1, p1])


def two_confusions(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A pool with two far-apart uncertain clusters; A (rows 500-539) is slightly more
    uncertain than B (rows 540-579), so the most uncertain rows all come from A.

    Rows 0-499 are confident. Returns (proba, representation).
    """
    rng = np.random.default_rng(seed)
    confident = rng.normal([0.0, 0.0], 0.5, (500, 2))
    a = rng.normal([8.0, 0.0], 0.3, (40, 2))
    b = rng.normal([0.0, 8.0], 0.3, (40, 2))
    p1 = np.concatenate(
        [
            rng.uniform(0.95, 0.99, 500),
            0.5 + rng.uniform(0.0, 0.02, 40),  # margin uncertainty 0.96-1.0
            0.5 + rng.uniform(0.025, 0.05, 40),  # margin uncertainty 0.90-0.95
        ]
    )
    return _binary(p1), np.vstack([confident, a, b])


def _part(positions: np.ndarray) -> np.ndarray:
    """How many chosen rows are confident, from cluster A, from cluster B."""
    return np.bincount(np.digitize(positions, [500, 540]), minlength=3)


def test_uncertainty_is_one_for_a_coin_toss_and_zero_for_a_sure_answer() -> None:
    proba = np.array([[1 / 3, 1 / 3, 1 / 3], [1.0, 0.0, 0.0], [0.6, 0.3, 0.1]])
    for strategy in ("least_confidence", "margin", "entropy"):
        u = uncertainty(proba, strategy)  # type: ignore[arg-type]
        assert u[0] == pytest.approx(1.0) and u[1] == pytest.approx(0.0)
        assert 0.0 < u[2] < 1.0
    assert uncertainty(proba, "margin")[2] == pytest.approx(1 - (0.6 - 0.3))
    assert uncertainty(proba, "least_confidence")[2] == pytest.approx(0.4 * 3 / 2)


def test_uncertainty_alone_takes_one_confusion_and_diversity_takes_both() -> None:
    proba, rep = two_confusions()
    alone = select_batch(proba, rep, 10, diversity="none", seed=0)
    assert _part(alone.positions).tolist() == [0, 10, 0]  # the trap is real
    for diversity in ("kmeans", "kcenter"):
        chosen = select_batch(proba, rep, 10, diversity=diversity, seed=0)  # type: ignore[arg-type]
        confident, a, b = _part(chosen.positions)
        assert confident == 0, diversity
        assert a >= 2 and b >= 2, (diversity, a, b)
        assert len(set(chosen.positions.tolist())) == 10


def test_the_batch_is_ranked_most_uncertain_first_with_a_reason_per_row() -> None:
    proba, rep = two_confusions()
    chosen = select_batch(proba, rep, 10, seed=0)
    assert np.all(np.diff(chosen.scores) <= 0)
    assert np.allclose(chosen.scores, uncertainty(proba)[chosen.positions])
    frame = chosen.to_frame()
    assert frame["rank"].tolist() == list(range(1, 11))
    for reason, score in zip(frame["reason"], chosen.scores):
        assert reason.startswith(f"margin uncertainty {score:.3f}; represents diversity cluster")
    clusters = chosen.clusters[chosen.clusters >= 0]
    assert len(set(clusters.tolist())) == clusters.size  # one row per diversity cluster
    assert json.loads(json.dumps(chosen.to_dict()))["rows"][0]["rank"] == 1


def test_the_same_seed_gives_the_same_batch() -> None:
    proba, rep = two_confusions()
    for diversity in ("kmeans", "kcenter", "none"):
        first = select_batch(proba, rep, 12, diversity=diversity, seed=3)  # type: ignore[arg-type]
        again = select_batch(proba, rep, 12, diversity=diversity, seed=3)  # type: ignore[arg-type]
        assert first.positions.tolist() == again.positions.tolist()


def test_a_rarely_predicted_class_gets_its_floor() -> None:
    proba, rep = two_confusions()
    # rows 0-4 are the only ones predicted as class 0, and the model is fairly sure of them
    proba[:5] = _binary(np.full(5, 0.2))
    predicted = proba.argmax(axis=1)
    assert int((predicted == 0).sum()) == 5
    plain = select_batch(proba, rep, 20, diversity="none", seed=0)
    assert not np.isin(plain.positions, np.arange(5)).any()
    floored = select_batch(
        proba, rep, 20, strata=predicted, share_floor=0.1, diversity="none", seed=0
    )
    rare = floored.positions[np.isin(floored.positions, np.arange(5))]
    assert rare.size == math.ceil(20 * 0.1)
    assert floored.floors["0"] == 2
    assert set(np.asarray(floored.strata)[np.isin(floored.positions, rare)]) == {"0"}
    diverse = select_batch(proba, rep, 20, strata=predicted, share_floor=0.1, seed=0)
    assert diverse.floors["0"] == 2
    assert np.isin(diverse.positions, np.arange(5)).sum() >= 2
    # a slice column is a second grouping: its small level gets a floor too
    slices = pd.DataFrame({"predicted": predicted, "region": ["north"] * 577 + ["south"] * 3})
    both = select_batch(proba, rep, 20, strata=slices, share_floor=0.1, diversity="none")
    assert np.isin(np.arange(577, 580), both.positions).sum() == 2
    assert both.floors["region=south"] == 2


def test_floors_take_at_most_half_the_budget() -> None:
    proba, rep = two_confusions()
    strata = np.arange(580) % 50  # 50 strata of 11-12 rows
    chosen = select_batch(proba, rep, 20, strata=strata, share_floor=0.1, seed=0)
    assert sum(chosen.floors.values()) == 10
    assert len(chosen) == 20


def test_a_budget_above_the_pool_takes_every_row_and_below_one_is_refused() -> None:
    proba, rep = two_confusions()
    everything = select_batch(proba[:30], rep[:30], 100, seed=0)
    assert sorted(everything.positions.tolist()) == list(range(30))
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ConfigError, match="budget must be a whole number of rows"):
            select_batch(proba, rep, bad, seed=0)  # type: ignore[arg-type]


def test_bad_probabilities_and_representations_are_refused() -> None:
    proba, rep = two_confusions()
    with pytest.raises(DataError, match="two or more classes"):
        select_batch(proba[:, 0], rep, 5)
    with pytest.raises(DataError, match="finite and non-negative"):
        select_batch(np.full_like(proba, np.nan), rep, 5)
    with pytest.raises(DataError, match="one row per pool row"):
        select_batch(proba, rep[:10], 5)
    with pytest.raises(ConfigError, match="unknown uncertainty strategy"):
        select_batch(proba, rep, 5, strategy="vibes")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="unknown diversity"):
        select_batch(proba, rep, 5, diversity="spread")  # type: ignore[arg-type]


def test_a_large_pool_is_handled_with_a_subsampled_candidate_set() -> None:
    rng = np.random.default_rng(1)
    proba = rng.dirichlet([1.0, 1.0, 1.0], 100_000)
    rep = rng.normal(size=(100_000, 16))
    chosen = select_batch(proba, rep, 300, strata=proba.argmax(axis=1), max_candidates=1000)
    assert len(chosen) == len(set(chosen.positions.tolist())) == 300
    assert chosen.candidates <= 1000 + 3 * 1000
    assert chosen.scores.min() > np.quantile(uncertainty(proba), 0.9)


def test_review_list_finds_planted_mislabels_and_skips_excluded_rows() -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_predict

    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(-2, 1, (150, 2)), rng.normal(2, 1, (150, 2))])
    y = np.repeat([0, 1], 150)
    planted = np.array([3, 40, 170, 260])  # deep inside their true class
    X[planted] = np.array([[-3, -3], [-3.5, -2.5], [3, 3], [2.5, 3.5]])
    y[planted] = 1 - y[planted]
    proba = cross_val_predict(LogisticRegression(), X, y, cv=5, method="predict_proba")
    found = review_list(y, proba)
    assert set(planted) <= set(found.positions[:6].tolist())
    assert np.all(np.diff(found.given_probability) >= 0)  # least plausible first
    assert found.suggested[: len(planted)].tolist() == (1 - found.given[: len(planted)]).tolist()
    exclude = np.zeros(300, dtype=bool)
    exclude[[3, 170]] = True
    kept = review_list(y, proba, exclude=exclude)
    assert not np.isin([3, 170], kept.positions).any()
    assert {40, 260} <= set(kept.positions.tolist())
    frame = review_list(y, proba, limit=2).to_frame(["neg", "pos"])
    assert len(frame) == 2 and set(frame["given"]) <= {"neg", "pos"}
    with pytest.raises(DataError, match="class codes"):
        review_list(y + 5, proba)


def test_representation_of_text_and_of_tables() -> None:
    texts = pd.Series(
        ["the soup was cold and bland"] * 5 + ["great fresh coffee beans"] * 5 + [None]
    )
    rep = representation(pd.DataFrame({"t": texts}), ["t"], text_column="t", dims=4)
    assert rep.shape[0] == 11 and np.isfinite(rep).all()
    assert np.allclose(rep[0], rep[4]) and not np.allclose(rep[0], rep[5])
    frame = pd.DataFrame(
        {
            "age": [20.0, 30.0, np.nan, 40.0, 1e6],
            "plan": ["a", "b", "a", None, "b"],
            "vip": [True, False, True, False, True],
        }
    )
    tab = representation(frame, ["age", "plan", "vip"])
    assert tab.shape == (5, 1 + 3 + 1) and np.isfinite(tab).all()
    assert np.abs(tab).max() <= 5.0  # the outlier is clipped


def test_label_studio_tasks_round_trip(tmp_path: Path) -> None:
    items = pd.DataFrame(
        {
            "review_id": [17, 4],
            "rank": [1, 2],
            "uncertainty": [0.99, 0.8],
            "predicted": ["great", "other"],
            "confidence": [0.505, 0.6],
            "stratum": ["", "predicted=other"],
            "reason": ["margin uncertainty 0.990", "margin uncertainty 0.800; floor"],
            "review": ["Lovely tea.", np.nan],
        }
    )
    tasks = label_studio_tasks(
        items, id_column="review_id", data_columns=["review"], model_version="assay version 3"
    )
    path = write_label_studio(tmp_path / "tasks.json", tasks)
    loaded = json.loads(path.read_text(encoding="utf-8"))
    assert isinstance(loaded, list) and len(loaded) == 2
    first = loaded[0]
    assert set(first) == {"data", "meta", "predictions"}
    assert first["data"] == {"review_id": 17, "review": "Lovely tea."}
    assert loaded[1]["data"]["review"] is None
    assert first["meta"]["assay_rank"] == 1
    assert first["meta"]["assay_reason"] == "margin uncertainty 0.990"
    assert first["meta"]["assay_id_column"] == "review_id"
    prediction = first["predictions"][0]
    assert prediction["model_version"] == "assay version 3"
    assert prediction["score"] == pytest.approx(0.505)
    assert prediction["result"][0]["type"] == "choices"
    assert prediction["result"][0]["value"] == {"choices": ["great"]}
    assert {"from_name", "to_name"} <= set(prediction["result"][0])
    plain = label_studio_tasks(items, id_column="review_id", data_columns=["review"])
    assert "predictions" not in plain[0]
    csv = write_csv(tmp_path / "queue.csv", items)
    assert pd.read_csv(csv)["review_id"].tolist() == [17, 4]
    with pytest.raises(DataError, match="lacks columns"):
        label_studio_tasks(items, id_column="item", data_columns=["review"])
    with pytest.raises(DataError, match="folder to write into does not exist"):
        write_label_studio(tmp_path / "missing" / "tasks.json", tasks)
