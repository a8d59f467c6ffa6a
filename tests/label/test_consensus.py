"""Consensus labels: Dawid–Skene against planted truth, the dispatcher, the result's shape."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from assay.errors import ConfigError, DataError
from assay.label.annotations import Annotations
from assay.label.consensus import Consensus, consensus_labels, dawid_skene, majority_vote
from assay.label.simulate import planted_annotations

PLANTED = (0.95, 0.9, 0.85, 0.75, 0.4)


def _accuracy(consensus: Consensus, truth: pd.Series) -> float:
    labels = consensus.frame.set_index("item_id")["label"]
    return float((labels == truth.loc[labels.index]).mean())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_dawid_skene_beats_the_majority_vote_against_the_truth(seed: int) -> None:
    planted = planted_annotations(400, PLANTED, seed=seed)
    ds = dawid_skene(planted.annotations, planted.classes)
    mv = majority_vote(planted.annotations, planted.classes)
    # measured margins 0.0225, 0.02, 0.0375 on these seeds (0.0175 or more on seeds 0-9):
    # the careless annotator's votes count for less than the careful ones'
    assert _accuracy(ds, planted.truth) - _accuracy(mv, planted.truth) >= 0.015
    assert _accuracy(ds, planted.truth) >= 0.94


def test_dawid_skene_estimates_the_planted_accuracies() -> None:
    planted = planted_annotations(400, PLANTED, seed=0)
    model = dawid_skene(planted.annotations, planted.classes).model
    assert model is not None and model.converged
    frame = planted.annotations.frame
    right = frame["label"].to_numpy() == planted.truth.loc[frame["item_id"]].to_numpy()
    realised = frame.assign(right=right).groupby("annotator")["right"].mean()
    for name, planted_accuracy in planted.accuracies.items():
        estimated = model.accuracies[name]
        assert estimated == pytest.approx(realised[name], abs=0.04)
        assert estimated == pytest.approx(planted_accuracy, abs=0.05)
    ranked = sorted(model.accuracies, key=model.accuracies.__getitem__, reverse=True)
    assert ranked == ["a0", "a1", "a2", "a3", "a4"]
    np.testing.assert_allclose(model.confusions.sum(axis=2), 1.0)
    assert model.priors.sum() == pytest.approx(1.0)


def test_a_careful_annotator_outvotes_two_careless_ones() -> None:
    # every item judged by all three: the majority is wrong whenever both careless
    # annotators err (about 0.83 right); Dawid-Skene learns to follow the careful one
    planted = planted_annotations(2000, (0.98, 0.6, 0.6), n_classes=2, per_item=(3, 3), seed=5)
    ds = dawid_skene(planted.annotations, planted.classes)
    mv = majority_vote(planted.annotations, planted.classes)
    assert _accuracy(mv, planted.truth) == pytest.approx(0.83, abs=0.03)
    assert _accuracy(ds, planted.truth) >= 0.96


def test_a_perfect_annotator_gives_finite_estimates() -> None:
    items = [f"i{i}" for i in range(30)]
    labels = ["a", "b", "c"] * 10
    ann = Annotations.from_records(items * 3, ["p"] * 30 + ["q"] * 30 + ["r"] * 30, labels * 3)
    consensus = dawid_skene(ann)
    assert consensus.model is not None
    assert np.isfinite(np.log(consensus.model.confusions)).all()
    assert list(consensus.frame["label"]) == labels
    assert (consensus.frame["confidence"] > 0.99).all()
    assert consensus.held_out(0.7).empty


def test_dawid_skene_confidence_is_the_posterior_and_low_items_are_held_out() -> None:
    planted = planted_annotations(300, PLANTED, per_item=(2, 3), seed=4)
    consensus = dawid_skene(planted.annotations, planted.classes)
    frame = consensus.frame
    assert frame["confidence"].between(1 / 3, 1).all()
    assert list(frame["n_annotations"].unique()) in ([2, 3], [3, 2])
    held = consensus.held_out(0.7)
    assert (held["confidence"] < 0.7).all() and len(held) == (frame["confidence"] < 0.7).sum()
    # the held-out items are the ones most often wrong
    labels = frame.set_index("item_id")["label"]
    wrong = labels != planted.truth.loc[labels.index]
    assert wrong.loc[held["item_id"]].mean() > wrong.mean()


def test_the_dispatcher_names_the_config_key_of_an_unknown_method() -> None:
    planted = planted_annotations(50, PLANTED, seed=1)
    majority = consensus_labels(planted.annotations, "majority", planted.classes)
    pd.testing.assert_frame_equal(
        majority.frame, majority_vote(planted.annotations, planted.classes).frame
    )
    assert majority.model is None
    ds = consensus_labels(planted.annotations, "dawid_skene", planted.classes)
    assert ds.method == "dawid_skene" and ds.model is not None
    with pytest.raises(ConfigError, match="labelling.consensus.*dawid_skene or majority"):
        consensus_labels(planted.annotations, "vote", planted.classes)  # type: ignore[arg-type]


def test_consensus_stays_backward_compatible_and_serialisable() -> None:
    frame = pd.DataFrame(
        {"item_id": ["x"], "label": ["pos"], "confidence": [1.0], "n_annotations": [2]}
    )
    plain = Consensus("majority", frame)
    assert plain.model is None and set(plain.to_dict()) == {"method", "labels"}
    planted = planted_annotations(60, PLANTED, seed=2)
    body = dawid_skene(planted.annotations, planted.classes).to_dict()
    text = json.dumps(body, allow_nan=False)
    model = json.loads(text)["model"]
    assert set(model["annotators"]) == {"a0", "a1", "a2", "a3", "a4"}
    assert len(model["annotators"]["a0"]["confusion"]) == 3


def test_dawid_skene_names_labels_outside_the_classes() -> None:
    ann = Annotations.from_records(["x", "x"], ["a", "b"], ["pos", "maybe"])
    with pytest.raises(DataError, match="maybe"):
        dawid_skene(ann, ["neg", "pos"])
    with pytest.raises(DataError, match="no annotations"):
        dawid_skene(Annotations.from_records([], [], []), ["neg", "pos"])
