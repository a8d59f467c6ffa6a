"""The annotation container: one judgement per (item, annotator), classes in a stable order."""

from __future__ import annotations

import numpy as np
import pytest

from assay.errors import DataError
from assay.label.annotations import Annotations, label_text, ordered_by_default


def test_numbers_and_their_text_are_one_label() -> None:
    assert label_text(3) == label_text(3.0) == label_text("3") == "3"
    assert label_text(True) == "true"
    assert label_text(" pos ") == "pos"


def test_a_later_judgement_of_the_same_pair_replaces_the_earlier() -> None:
    first = Annotations.from_records(["i1", "i2"], ["ann", "ann"], ["pos", "neg"], source="a.csv")
    second = Annotations.from_records(["i1"], ["ann"], ["neg"], source="b.csv")
    both = first.combined(second)
    assert len(both) == 2
    row = both.frame.set_index("item_id").loc["i1"]
    assert (row["label"], row["source"]) == ("neg", "b.csv")


def test_label_and_count_matrices_agree() -> None:
    ann = Annotations.from_records(
        ["x", "x", "x", "y", "y"], ["a", "b", "c", "a", "c"], [2, 10, 2, 10, 10]
    )
    assert ann.classes == ("2", "10")  # numeric order, not text order
    matrix, items, annotators = ann.label_matrix()
    assert items == ("x", "y") and annotators == ("a", "b", "c")
    np.testing.assert_array_equal(matrix, [[0, 1, 0], [1, -1, 1]])
    np.testing.assert_array_equal(ann.count_matrix(), [[2, 1], [0, 2]])


def test_a_label_outside_the_class_set_is_named() -> None:
    ann = Annotations.from_records(["x"], ["a"], ["maybe"])
    with pytest.raises(DataError, match="maybe"):
        ann.label_matrix(["pos", "neg"])


def test_ratings_are_ordinal_by_default_and_names_are_not() -> None:
    assert ordered_by_default(["1", "2", "3", "4", "5"])
    assert not ordered_by_default(["neg", "neu", "pos"])
    assert not ordered_by_default(["0", "1"])


def test_majority_vote_takes_the_most_frequent_label_with_its_share() -> None:
    from assay.label.consensus import majority_vote

    ann = Annotations.from_records(
        ["x", "x", "x", "y", "y"], ["a", "b", "c", "a", "b"], ["pos", "pos", "neg", "neg", "pos"]
    )
    votes = majority_vote(ann, ["neg", "pos"]).frame.set_index("item_id")
    assert votes.loc["x", "label"] == "pos" and votes.loc["x", "confidence"] == pytest.approx(2 / 3)
    assert votes.loc["y", "label"] == "neg"  # a tie goes to the first class
    assert votes.loc["y", "confidence"] == pytest.approx(0.5)
    held = majority_vote(ann, ["neg", "pos"]).held_out(0.6)
    assert list(held["item_id"]) == ["y"]
