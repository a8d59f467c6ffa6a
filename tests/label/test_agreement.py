"""The agreement report against textbook values, hand-computed tables and planted annotators."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import cohen_kappa_score

from assay.errors import DataError
from assay.label import _reliability as rel
from assay.label.agreement import agreement_report
from assay.label.annotations import Annotations
from assay.label.consensus import Consensus, majority_vote
from assay.label.simulate import planted_annotations

PLANTED = (0.95, 0.9, 0.85, 0.75, 0.4)


def _from_table(table: np.ndarray, a: str = "A", b: str = "B") -> Annotations:
    """Two annotators whose joint labels (row: A's class, column: B's) form ``table``."""
    items, who, labels = [], [], []
    n = 0
    for i, row in enumerate(table):
        for j, count in enumerate(row):
            for _ in range(int(count)):
                items += [f"u{n}", f"u{n}"]
                who += [a, b]
                labels += [f"c{i}", f"c{j}"]
                n += 1
    return Annotations.from_records(items, who, labels)


def _from_counts(counts: list[list[int]]) -> Annotations:
    """Items × classes counts; the judgements of an item go to raters r0, r1, ... in turn."""
    items, who, labels = [], [], []
    for i, row in enumerate(counts):
        rater = 0
        for c, count in enumerate(row):
            for _ in range(count):
                items.append(f"s{i}")
                who.append(f"r{rater:02d}")
                labels.append(f"k{c}")
                rater += 1
    return Annotations.from_records(items, who, labels)


# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", the 4-coder, 12-unit
# example with missing values (None): nominal alpha 0.743, ordinal 0.815
KRIPPENDORFF_2011 = {
    "A": [1, 2, 3, 3, 2, 1, 4, 1, 2, None, None, None],
    "B": [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, None, 3],
    "C": [None, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, None],
    "D": [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, None],
}

# Fleiss (1971) as tabulated on Wikipedia's "Fleiss' kappa": 10 subjects, 14 raters, 5
# categories; kappa 0.210
FLEISS_1971 = [
    [0, 0, 0, 0, 14],
    [0, 2, 6, 4, 2],
    [0, 0, 3, 5, 6],
    [0, 3, 9, 2, 0],
    [2, 2, 8, 1, 1],
    [7, 7, 0, 0, 0],
    [3, 2, 6, 3, 0],
    [2, 5, 3, 2, 2],
    [6, 5, 2, 1, 0],
    [0, 2, 2, 3, 7],
]


def _krippendorff_example() -> Annotations:
    items, who, labels = [], [], []
    for coder, values in KRIPPENDORFF_2011.items():
        for unit, value in enumerate(values):
            if value is not None:
                items.append(f"unit{unit + 1}")
                who.append(coder)
                labels.append(value)
    return Annotations.from_records(items, who, labels)


def test_cohen_kappa_of_a_hand_computed_table() -> None:
    # observed agreement 0.7, chance (5*6 + 5*4) / 100 = 0.5: kappa 0.4
    table = np.array([[4, 1], [2, 3]])
    report = agreement_report(_from_table(table), n_boot=200)
    (pair,) = report.pairs
    assert (pair.annotator_a, pair.annotator_b, pair.kappa.n_items) == ("A", "B", 10)
    assert pair.kappa.value == pytest.approx(0.4)
    a = ["c0"] * 5 + ["c1"] * 5
    b = ["c0"] * 4 + ["c1"] + ["c0"] * 2 + ["c1"] * 3
    assert cohen_kappa_score(a, b) == pytest.approx(0.4)
    assert pair.kappa.low < 0.4 < pair.kappa.high
    # proportion of specific agreement: 2a / (2a + b + c)
    specific = {c.label: c.specific_agreement for c in report.per_class}
    assert specific == pytest.approx({"c0": 8 / 11, "c1": 6 / 9})


@pytest.mark.parametrize("weights", [None, "quadratic"])
def test_the_bootstrap_kappa_formula_equals_scikit_learn(weights: str | None) -> None:
    rng = np.random.default_rng(3)
    for _ in range(20):
        a, b = rng.integers(0, 4, size=50), rng.integers(0, 4, size=50)
        b = np.where(rng.random(50) < 0.5, a, b)
        table = np.zeros((4, 4))
        np.add.at(table, (a, b), 1)
        ours = rel.kappa_from_tables(table, rel.disagreement_weights(4, weights is not None))
        assert float(ours) == pytest.approx(
            cohen_kappa_score(a, b, labels=[0, 1, 2, 3], weights=weights)
        )


def test_quadratic_weights_for_ordered_labels_match_scikit_learn() -> None:
    ann = _from_table(np.array([[5, 2, 0], [1, 6, 2], [0, 3, 7]]))
    a = ann.frame[ann.frame["annotator"] == "A"].set_index("item_id")["label"]
    b = ann.frame[ann.frame["annotator"] == "B"].set_index("item_id")["label"].loc[a.index]
    report = agreement_report(ann, classes=["c0", "c1", "c2"], ordered=True, n_boot=0)
    expected = cohen_kappa_score(a, b, labels=["c0", "c1", "c2"], weights="quadratic")
    assert report.pairs[0].kappa.value == pytest.approx(expected)
    assert math.isnan(report.pairs[0].kappa.low)


def test_fleiss_1971_example() -> None:
    report = agreement_report(_from_counts(FLEISS_1971), ordered=False, n_boot=500)
    assert report.fleiss.value == pytest.approx(0.2099, abs=5e-4)
    assert (report.fleiss.n_items, report.fleiss_raters) == (10, 14)
    assert report.fleiss.low < report.fleiss.value < report.fleiss.high
    # the bootstrap's formula gives the point estimate on the unresampled items
    counts = np.array(FLEISS_1971)
    sums = rel.fleiss_features(counts).sum(axis=0, keepdims=True)
    assert float(rel.fleiss_from_sums(sums, 10, 14)[0]) == pytest.approx(report.fleiss.value)


def test_krippendorff_2011_example_with_missing_values() -> None:
    ann = _krippendorff_example()
    nominal = agreement_report(ann, ordered=False, n_boot=300)
    assert round(nominal.alpha, 3) == 0.743
    assert nominal.level == "nominal"
    ordinal = agreement_report(ann, n_boot=300)  # numbers 1..5: ordinal by default
    assert ordinal.ordered and round(ordinal.alpha, 3) == 0.815
    # unit 12 was coded once: counted, said, and not used
    assert nominal.n_single == 1 and nominal.krippendorff.n_items == 11
    assert any("1 of 12 items have a single judgement" in n for n in nominal.notes)
    # the bootstrap's formulas give the library's value on the unresampled items
    counts = ann.count_matrix()
    counts = counts[counts.sum(axis=1) >= 2]
    for ordered, value in ((False, nominal.alpha), (True, ordinal.alpha)):
        sums = rel.alpha_features(counts, ordered).sum(axis=0, keepdims=True)
        assert float(rel.alpha_from_sums(sums, 5, ordered)[0]) == pytest.approx(value)


def test_items_judged_once_do_not_change_the_figures() -> None:
    planted = planted_annotations(200, PLANTED[:4], seed=3)
    extra = Annotations.from_records([f"solo{i}" for i in range(50)], ["a0"] * 50, ["1"] * 50)
    base = agreement_report(planted.annotations, classes=planted.classes, n_boot=100)
    more = agreement_report(
        planted.annotations.combined(extra), classes=planted.classes, n_boot=100
    )
    assert more.n_single == 50 and base.n_single == 0
    assert more.alpha == pytest.approx(base.alpha)
    assert more.fleiss.value == pytest.approx(base.fleiss.value)


def test_perfect_agreement_is_one_everywhere() -> None:
    items = [f"i{i}" for i in range(40)]
    labels = ["neg", "neu", "pos", "pos"] * 10
    ann = Annotations.from_records(items * 3, ["a"] * 40 + ["b"] * 40 + ["c"] * 40, labels * 3)
    report = agreement_report(ann, n_boot=200)
    assert report.alpha == pytest.approx(1.0) and report.passed(0.99)
    assert report.fleiss.value == pytest.approx(1.0)
    assert report.krippendorff.low == pytest.approx(1.0)
    assert all(p.kappa.value == pytest.approx(1.0) for p in report.pairs)
    assert all(c.specific_agreement == pytest.approx(1.0) for c in report.per_class)
    assert all(a.accuracy == 1.0 and a.kappa == pytest.approx(1.0) for a in report.annotators)
    assert report.disputed == () and report.outliers == ()


def test_independent_annotators_agree_as_chance_does() -> None:
    rng = np.random.default_rng(11)
    items = [f"i{i}" for i in range(600)]
    who = ["a"] * 600 + ["b"] * 600 + ["c"] * 600
    labels = rng.choice(["x", "y", "z"], size=1800)
    report = agreement_report(Annotations.from_records(items * 3, who, labels), seed=1)
    for estimate in (report.krippendorff, report.fleiss, *(p.kappa for p in report.pairs)):
        assert abs(estimate.value) < 0.05
        assert estimate.low < 0 < estimate.high
    assert not report.passed(0.7)


def test_planted_annotators_are_ranked_and_the_careless_one_is_the_outlier() -> None:
    planted = planted_annotations(400, PLANTED, seed=0)
    report = agreement_report(planted.annotations, classes=planted.classes, n_boot=200)
    assert report.ranking == ("a0", "a1", "a2", "a3", "a4")
    assert report.leave_one_out and report.consensus_method == "dawid_skene"
    (outlier,) = report.outliers
    assert outlier.annotator == "a4" and outlier.kappa < outlier.threshold
    assert outlier.threshold <= outlier.median - 0.25
    assert "most often gives" in outlier.evidence
    a4 = report.annotators[-1]
    assert a4.accuracy == pytest.approx(0.4, abs=0.07)
    # the confusion table covers the items the annotator shares with someone else
    assert sum(map(sum, a4.confusion)) == pytest.approx(a4.n_compared)
    # the majority-vote consensus ranks them the same way
    by_majority = agreement_report(
        planted.annotations,
        classes=planted.classes,
        n_boot=0,
        consensus=majority_vote(planted.annotations, planted.classes),
    )
    assert by_majority.ranking == report.ranking
    assert [o.annotator for o in by_majority.outliers] == ["a4"]


def test_no_outlier_among_equally_careful_annotators() -> None:
    planted = planted_annotations(400, (0.85, 0.85, 0.84, 0.86, 0.85), seed=2)
    assert agreement_report(planted.annotations, n_boot=0).outliers == ()


def test_an_annotator_is_not_compared_with_their_own_vote() -> None:
    # two annotators who never agree: the majority of both votes is a tie, resolved to the
    # first class, so each would look half right; against the other's label, never right
    items = [f"i{i}" for i in range(20)]
    labels = ["pos"] * 10 + ["neg"] * 10
    ann = Annotations.from_records(items * 2, ["a"] * 20 + ["b"] * 20, labels + labels[::-1])
    report = agreement_report(ann, n_boot=0, consensus=majority_vote(ann))
    assert [a.accuracy for a in report.annotators] == [0.0, 0.0]
    assert report.annotators[0].confusion == ((0.0, 10.0), (10.0, 0.0))
    # Dawid-Skene's prior takes an annotator as usually right, so the consensus without
    # one of the two is the other's label: never the same
    by_ds = agreement_report(ann, n_boot=0)
    assert [a.accuracy for a in by_ds.annotators] == [0.0, 0.0]


def test_each_annotator_gets_a_confusion_against_the_others() -> None:
    # c calls every "pos" of a and b "neg"; a and b agree everywhere
    items = [f"i{i}" for i in range(30)]
    truth = ["pos"] * 20 + ["neg"] * 10
    ann = Annotations.from_records(
        items * 3, ["a"] * 30 + ["b"] * 30 + ["c"] * 30, truth * 2 + ["neg"] * 30
    )
    report = agreement_report(ann, classes=["neg", "pos"], n_boot=0, consensus=majority_vote(ann))
    c = {a.annotator: a for a in report.annotators}["c"]
    assert c.confusion == ((10.0, 0.0), (20.0, 0.0))  # rows: consensus neg, pos
    assert c.accuracy == pytest.approx(1 / 3) and c.n_items == c.n_compared == 30
    assert report.ranking[-1] == "c"


def test_a_consensus_without_an_annotator_model_is_used_as_given() -> None:
    planted = planted_annotations(100, PLANTED[:3], seed=6)
    given = majority_vote(planted.annotations, planted.classes)
    external = Consensus("adjudicated", given.frame)
    report = agreement_report(planted.annotations, n_boot=0, consensus=external)
    assert not report.leave_one_out and report.consensus_method == "adjudicated"
    assert any("includes their own judgements" in n for n in report.notes)


def test_ordinal_alpha_credits_near_misses() -> None:
    planted = planted_annotations(
        300, (0.7, 0.7, 0.7, 0.7), n_classes=5, per_item=(2, 4), near_miss=True, seed=7
    )
    assert planted.classes == ("1", "2", "3", "4", "5")
    ordinal = agreement_report(planted.annotations, n_boot=100)
    nominal = agreement_report(planted.annotations, ordered=False, n_boot=100)
    assert ordinal.ordered and ordinal.level == "ordinal"
    assert ordinal.alpha > nominal.alpha + 0.2
    assert ordinal.krippendorff.low > nominal.krippendorff.high
    # quadratic-weighted pairwise kappa credits them too
    assert ordinal.pairs[0].kappa.value > nominal.pairs[0].kappa.value


def test_the_most_disputed_items_come_first_with_their_votes() -> None:
    ann = Annotations.from_records(
        ["even"] * 4 + ["split"] * 3 + ["agreed"] * 3 + ["lean"] * 4,
        ["a", "b", "c", "d", "a", "b", "c", "a", "b", "c", "a", "b", "c", "d"],
        ["x", "y", "z", "w", "x", "y", "x", "x", "x", "x", "x", "x", "x", "y"],
    )
    report = agreement_report(ann, n_boot=0, consensus=majority_vote(ann))
    # entropies: 2 bits, 0.918 (2 against 1), 0.811 (3 against 1); "agreed" is not disputed
    assert [d.item_id for d in report.disputed] == ["even", "split", "lean"]
    even, split, lean = report.disputed
    assert even.entropy == pytest.approx(2.0) and even.top_share == 0.25
    assert split.votes == {"x": 2, "y": 1} and split.consensus == "x"
    assert lean.entropy == pytest.approx(-(0.75 * math.log2(0.75) + 0.25 * math.log2(0.25)))


def test_at_most_twenty_disputed_items() -> None:
    planted = planted_annotations(300, (0.5, 0.5, 0.5), seed=8)
    report = agreement_report(planted.annotations, n_boot=0)
    assert len(report.disputed) == 20
    entropies = [d.entropy for d in report.disputed]
    assert entropies == sorted(entropies, reverse=True)


def test_fewer_than_two_annotators_or_no_overlap_is_a_data_error() -> None:
    alone = Annotations.from_records(["x", "y"], ["a", "a"], ["pos", "neg"])
    with pytest.raises(DataError, match="at least two annotators.*overlapping sample"):
        agreement_report(alone)
    apart = Annotations.from_records(["x", "y"], ["a", "b"], ["pos", "neg"])
    with pytest.raises(DataError, match="no item was judged by two annotators.*2 items"):
        agreement_report(apart)
    one_class = Annotations.from_records(["x", "x"], ["a", "b"], ["pos", "pos"])
    with pytest.raises(DataError, match="at least two classes"):
        agreement_report(one_class)
    assert agreement_report(one_class, classes=["neg", "pos"], n_boot=0).n_items == 1


def test_the_report_is_json_ready_and_reproducible() -> None:
    planted = planted_annotations(150, PLANTED, seed=9)
    first = agreement_report(planted.annotations, n_boot=200, seed=4)
    again = agreement_report(planted.annotations, n_boot=200, seed=4)
    assert first.to_dict() == again.to_dict()
    body = json.loads(json.dumps(first.to_dict(), allow_nan=False))
    assert body["alpha"] == pytest.approx(first.alpha)
    assert body["krippendorff_alpha"]["low"] <= body["alpha"] <= body["krippendorff_alpha"]["high"]
    assert body["outliers"][0]["annotator"] == "a4"
    assert len(body["pairs"]) == 10 and body["fleiss_kappa"]["n_raters"] in (3, 4, 5)
    assert first.passed(first.alpha) and not first.passed(first.alpha + 0.01)
    undefined = agreement_report(
        Annotations.from_records(["x", "x"], ["a", "b"], ["pos", "pos"]),
        classes=["neg", "pos"],
        n_boot=10,
    )
    assert math.isnan(undefined.alpha) and not undefined.passed(0.0)
    assert json.loads(json.dumps(undefined.to_dict(), allow_nan=False))["alpha"] is None


def test_pairs_cover_only_annotators_with_shared_items() -> None:
    frame = pd.DataFrame(
        {
            "item": ["i1", "i1", "i2", "i2", "i3", "i3", "i4", "i4"],
            "who": ["a", "b", "a", "b", "c", "d", "c", "d"],
            "label": ["p", "p", "n", "p", "p", "p", "n", "n"],
        }
    )
    ann = Annotations.from_records(frame["item"], frame["who"], frame["label"])
    report = agreement_report(ann, n_boot=0)
    assert [(p.annotator_a, p.annotator_b) for p in report.pairs] == [("a", "b"), ("c", "d")]
