"""How far annotators agree, who agrees least, and which items they dispute.

:func:`agreement_report` is the input of ``assay label agreement`` and of the data audit's
``label_agreement`` finding. Its headline is Krippendorff's alpha (nominal, or ordinal for
ordered labels), compared with ``labelling.min_agreement``; Fleiss' kappa and Cohen's kappa per
annotator pair sit beside it. Every coefficient has a percentile bootstrap interval over items
(seeded). Items judged once carry no agreement information: they are counted and left out.

Each annotator is also compared with the consensus of the *others* on the items they judged
(leave-one-out), so no annotator agrees with their own vote; the comparison gives their
accuracy, Cohen's kappa and confusion table against it, and flags outliers by a robust rule.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from assay.errors import DataError
from assay.label import _reliability as rel
from assay.label._encode import Encoded, encode
from assay.label.annotations import Annotations, ordered_by_default
from assay.label.consensus import Consensus, consensus_labels

__all__ = [
    "AgreementReport",
    "AnnotatorAgreement",
    "ClassAgreement",
    "DisputedItem",
    "Estimate",
    "Outlier",
    "PairKappa",
    "agreement_report",
]

#: items listed as most disputed
N_DISPUTED = 20
#: outlier rule: kappa with the consensus below the others' median − OUTLIER_MADS × 1.4826 ×
#: their MAD (a robust z-score under −2.5) …
OUTLIER_MADS = 2.5
#: … and at least this far below their median: with a handful of annotators the MAD can be
#: tiny, and the least careful of a tight group (0.75 accurate among 0.95, 0.9, 0.85: kappa
#: up to 0.22 below the median in 40 simulated pilots) needs feedback, not an alarm
OUTLIER_MIN_GAP = 0.25
#: fewest compared items before an annotator can be called an outlier
OUTLIER_MIN_ITEMS = 10


def _num(value: float) -> float | None:
    """A JSON-ready number: NaN (undefined) becomes None."""
    return None if math.isnan(value) else float(value)


@dataclass(frozen=True)
class Estimate:
    """A coefficient with its percentile bootstrap interval and the items it rests on."""

    value: float
    low: float
    high: float
    n_items: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "value": _num(self.value),
            "low": _num(self.low),
            "high": _num(self.high),
            "n_items": self.n_items,
        }


@dataclass(frozen=True)
class PairKappa:
    """Cohen's kappa of two annotators on the items both judged."""

    annotator_a: str
    annotator_b: str
    kappa: Estimate

    def to_dict(self) -> dict[str, Any]:
        return {"annotators": [self.annotator_a, self.annotator_b], **self.kappa.to_dict()}


@dataclass(frozen=True)
class ClassAgreement:
    """Proportion of specific agreement for one class (Uebersax 1982; for two annotators
    2a / (2a + b + c)): of all pairings of a judgement of this class with another judgement
    of the same item, the share that are this class too. Low: annotators use it differently."""

    label: str
    n_judgements: int
    specific_agreement: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "n_judgements": self.n_judgements,
            "specific_agreement": _num(self.specific_agreement),
        }


@dataclass(frozen=True)
class AnnotatorAgreement:
    """One annotator against the consensus of the others.

    ``confusion[c][g]`` counts the items where the consensus is ``classes[c]`` and this
    annotator gave ``classes[g]`` (a tie in a leave-one-out majority splits the item evenly
    between the tied labels, so cells can be fractional). ``n_items`` counts all the items
    they judged, ``n_compared`` those someone else judged too.
    """

    annotator: str
    n_items: int
    n_compared: int
    accuracy: float
    kappa: float
    confusion: tuple[tuple[float, ...], ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "annotator": self.annotator,
            "n_items": self.n_items,
            "n_compared": self.n_compared,
            "accuracy": _num(self.accuracy),
            "kappa": _num(self.kappa),
            "confusion": [[float(v) for v in row] for row in self.confusion],
        }


@dataclass(frozen=True)
class Outlier:
    """An annotator whose kappa with the consensus is far below the others': ``median`` is
    the other annotators' median kappa, ``threshold`` the line they fell under."""

    annotator: str
    kappa: float
    median: float
    threshold: float
    evidence: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "annotator": self.annotator,
            "kappa": _num(self.kappa),
            "median": self.median,
            "threshold": self.threshold,
            "evidence": self.evidence,
        }


@dataclass(frozen=True)
class DisputedItem:
    """An item the annotators split on: entropy (bits) of its labels, the top label's share."""

    item_id: str
    n_judgements: int
    entropy: float
    top_share: float
    votes: dict[str, int]
    consensus: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "item_id": self.item_id,
            "n_judgements": self.n_judgements,
            "entropy": self.entropy,
            "top_share": self.top_share,
            "votes": dict(self.votes),
            "consensus": self.consensus,
        }


@dataclass(frozen=True)
class AgreementReport:
    """Agreement of the annotators; ``alpha`` (Krippendorff's) is the headline figure."""

    classes: tuple[str, ...]
    ordered: bool
    n_items: int
    n_annotators: int
    n_annotations: int
    #: items judged once: no agreement information, left out of every coefficient
    n_single: int
    krippendorff: Estimate
    fleiss: Estimate
    #: Fleiss' kappa is computed on the items with this many judgements (the most common)
    fleiss_raters: int
    pairs: tuple[PairKappa, ...]
    per_class: tuple[ClassAgreement, ...]
    #: best agreement with the consensus first
    annotators: tuple[AnnotatorAgreement, ...]
    outliers: tuple[Outlier, ...]
    disputed: tuple[DisputedItem, ...]
    consensus_method: str
    #: each annotator was compared with the consensus of the others (not with their own vote)
    leave_one_out: bool
    n_boot: int
    seed: int
    notes: tuple[str, ...]

    @property
    def alpha(self) -> float:
        """Krippendorff's alpha: the figure ``labelling.min_agreement`` is compared with."""
        return self.krippendorff.value

    @property
    def level(self) -> str:
        """Krippendorff's level of measurement used."""
        return "ordinal" if self.ordered else "nominal"

    @property
    def ranking(self) -> tuple[str, ...]:
        """Annotators from the best to the worst agreement with the consensus."""
        return tuple(a.annotator for a in self.annotators)

    def passed(self, min_agreement: float) -> bool:
        """Whether alpha reaches ``min_agreement`` (an undefined alpha does not)."""
        return not math.isnan(self.alpha) and self.alpha >= min_agreement

    def to_dict(self) -> dict[str, Any]:
        return {
            "classes": list(self.classes),
            "ordered": self.ordered,
            "level": self.level,
            "n_items": self.n_items,
            "n_annotators": self.n_annotators,
            "n_annotations": self.n_annotations,
            "n_single": self.n_single,
            "alpha": _num(self.alpha),
            "krippendorff_alpha": self.krippendorff.to_dict(),
            "fleiss_kappa": {**self.fleiss.to_dict(), "n_raters": self.fleiss_raters},
            "pairs": [p.to_dict() for p in self.pairs],
            "per_class": [c.to_dict() for c in self.per_class],
            "annotators": [a.to_dict() for a in self.annotators],
            "outliers": [o.to_dict() for o in self.outliers],
            "disputed": [d.to_dict() for d in self.disputed],
            "consensus_method": self.consensus_method,
            "leave_one_out": self.leave_one_out,
            "confidence": rel.CONFIDENCE,
            "n_boot": self.n_boot,
            "seed": self.seed,
            "notes": list(self.notes),
        }


def agreement_report(
    annotations: Annotations,
    *,
    classes: Sequence[str] | None = None,
    ordered: bool | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    consensus: Consensus | None = None,
) -> AgreementReport:
    """Agreement statistics of ``annotations``.

    ``classes`` fixes the class order (default: the labels used); ``ordered`` None means
    ordinal when every class is a number (:func:`ordered_by_default`): Cohen's kappa then
    uses quadratic weights and alpha the ordinal metric. ``consensus`` is what annotators
    are compared with (default: Dawid–Skene on these annotations); a majority vote or a
    Dawid–Skene consensus is recomputed per annotator without their vote, any other is used
    as given (noted). ``n_boot`` resamples of the items (0: no intervals), seeded by ``seed``.
    """
    enc = encode(annotations, classes)
    _require_overlap(enc)
    ordered = ordered_by_default(enc.classes) if ordered is None else ordered
    weights = rel.disagreement_weights(enc.k, ordered)
    rng = np.random.default_rng(seed)
    counts = enc.counts()
    per_item = counts.sum(axis=1)
    multi = per_item >= 2
    notes: list[str] = []
    n_single = int((per_item == 1).sum())
    if n_single:
        notes.append(
            f"{n_single} of {len(enc.items)} items have a single judgement: they carry no "
            "agreement information and are left out of every figure"
        )
    if ordered:
        notes.append(
            "labels are ordinal: Cohen's kappa uses quadratic weights and Krippendorff's "
            "alpha the ordinal metric, so near misses count as partial agreement"
        )
    krippendorff, fleiss, raters, fleiss_note = _alpha_and_fleiss(
        counts[multi], ordered, n_boot, rng
    )
    if fleiss_note:
        notes.append(fleiss_note)
    if consensus is None:
        consensus = consensus_labels(annotations, "dawid_skene", enc.classes)
    annotators, leave_one_out = _against_consensus(enc, counts, consensus, weights)
    if leave_one_out:
        notes.append(
            "each annotator is compared with the consensus of the other annotators on each "
            "item (with two judgements on an item, that is the other annotator's label)"
        )
    else:
        notes.append(
            f"annotators are compared with the given {consensus.method} consensus, which "
            "includes their own judgements (no annotator model to leave them out)"
        )
    ranked = tuple(sorted(annotators, key=lambda a: (math.isnan(a.kappa), -np.nan_to_num(a.kappa))))
    return AgreementReport(
        classes=enc.classes,
        ordered=ordered,
        n_items=len(enc.items),
        n_annotators=len(enc.annotators),
        n_annotations=len(enc.item),
        n_single=n_single,
        krippendorff=krippendorff,
        fleiss=fleiss,
        fleiss_raters=raters,
        pairs=_pair_kappas(enc, weights, n_boot, rng),
        per_class=_specific_agreement(counts[multi], enc.classes),
        annotators=ranked,
        outliers=_outliers(ranked, enc.classes),
        disputed=_disputed(enc, counts, consensus),
        consensus_method=consensus.method,
        leave_one_out=leave_one_out,
        n_boot=n_boot,
        seed=seed,
        notes=tuple(notes),
    )


def _require_overlap(enc: Encoded) -> None:
    if len(enc.annotators) < 2:
        raise DataError(
            "agreement needs judgements from at least two annotators",
            column="annotator",
            expected="two or more annotators judging the same items",
            received=f"{len(enc.annotators)} annotator(s): {', '.join(enc.annotators) or '-'}",
            fix="have a second annotator label an overlapping sample (50-100 items) and "
            "import their judgements",
        )
    if enc.k < 2:
        raise DataError(
            "agreement needs at least two classes",
            column="label",
            expected="two or more classes",
            received=", ".join(enc.classes) or "no class",
            fix="pass the task's classes (every annotator may have used only one of them)",
        )
    per_item = np.bincount(enc.item, minlength=len(enc.items))
    if not (per_item >= 2).any():
        raise DataError(
            "no item was judged by two annotators, so agreement cannot be measured",
            column="item_id",
            expected="items judged by at least two annotators",
            received=f"{len(enc.items)} items, each judged once",
            fix="have at least two annotators label an overlapping set of items",
        )


def _estimate(value: float, replicates: np.ndarray | None, n_items: int) -> Estimate:
    low, high = rel.interval(replicates) if replicates is not None else (math.nan, math.nan)
    return Estimate(float(value), low, high, n_items)


def _alpha_and_fleiss(
    counts: np.ndarray, ordered: bool, n_boot: int, rng: np.random.Generator
) -> tuple[Estimate, Estimate, int, str | None]:
    """Krippendorff's alpha on every item with two or more judgements, and Fleiss' kappa,
    which assumes the same number of judgements per item, on the items with the most common
    number (ties: the larger). One resample of the items serves both intervals."""
    import krippendorff
    from statsmodels.stats.inter_rater import fleiss_kappa

    k = counts.shape[1]
    per_item = counts.sum(axis=1)
    sizes, freq = np.unique(per_item, return_counts=True)
    raters = int(sizes[np.flatnonzero(freq == freq.max())[-1]])
    same = per_item == raters
    level: Literal["ordinal", "nominal"] = "ordinal" if ordered else "nominal"
    with np.errstate(invalid="ignore", divide="ignore"):
        alpha = float(krippendorff.alpha(value_counts=counts, level_of_measurement=level))
        fleiss = float(fleiss_kappa(counts[same], method="fleiss"))
    alpha_reps = fleiss_reps = None
    if n_boot > 0:
        alpha_part = rel.alpha_features(counts, ordered)
        fleiss_part = np.zeros((len(counts), k + 1))
        fleiss_part[same] = rel.fleiss_features(counts[same])
        features = np.column_stack([alpha_part, fleiss_part, same.astype(float)])
        sums = rel.bootstrap_sums(features, n_boot, rng)
        width = alpha_part.shape[1]
        alpha_reps = rel.alpha_from_sums(sums[:, :width], k, ordered)
        fleiss_reps = rel.fleiss_from_sums(sums[:, width:-1], sums[:, -1], raters)
    note = None
    if same.sum() < len(counts):
        note = (
            f"Fleiss' kappa assumes the same number of judgements per item: it is computed on "
            f"the {int(same.sum())} items with {raters} judgements (the most common count); "
            f"{len(counts) - int(same.sum())} items with another count are left out of it "
            "(Krippendorff's alpha uses them all)"
        )
    return (
        _estimate(alpha, alpha_reps, len(counts)),
        _estimate(fleiss, fleiss_reps, int(same.sum())),
        raters,
        note,
    )


def _pair_kappas(
    enc: Encoded, weights: np.ndarray, n_boot: int, rng: np.random.Generator
) -> tuple[PairKappa, ...]:
    """Cohen's kappa of every pair of annotators with at least two items in common, from
    one self-join of the judgements on the item (no items × annotators matrix)."""
    k, n_ann = enc.k, len(enc.annotators)
    long = pd.DataFrame({"item": enc.item, "annotator": enc.annotator, "label": enc.label})
    joined = long.merge(long, on="item", suffixes=("_a", "_b"))
    joined = joined[joined["annotator_a"] < joined["annotator_b"]]
    key = joined["annotator_a"].to_numpy() * n_ann + joined["annotator_b"].to_numpy()
    pair_keys, pair = np.unique(key, return_inverse=True)
    cells = (pair * k + joined["label_a"].to_numpy()) * k + joined["label_b"].to_numpy()
    tables = np.bincount(cells, minlength=len(pair_keys) * k * k).reshape(-1, k, k)
    kappas = rel.kappa_from_tables(tables, weights)
    result = []
    for p, pair_key in enumerate(pair_keys):
        n = int(tables[p].sum())
        if n < 2:
            continue
        replicates = None
        if n_boot > 0:
            replicates = rel.kappa_from_tables(
                rel.table_replicates(tables[p], n_boot, rng), weights
            )
        a, b = divmod(int(pair_key), n_ann)
        result.append(
            PairKappa(enc.annotators[a], enc.annotators[b], _estimate(kappas[p], replicates, n))
        )
    return tuple(result)


def _specific_agreement(counts: np.ndarray, classes: tuple[str, ...]) -> tuple[ClassAgreement, ...]:
    per_item = counts.sum(axis=1, keepdims=True)
    agree = (counts * (counts - 1)).sum(axis=0)
    involved = (counts * (per_item - 1)).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(involved > 0, agree / involved, np.nan)
    return tuple(
        ClassAgreement(c, int(n), float(s))
        for c, n, s in zip(classes, counts.sum(axis=0), share, strict=True)
    )


def _reference_weights(
    enc: Encoded, counts: np.ndarray, consensus: Consensus, rows: np.ndarray
) -> tuple[np.ndarray, bool]:
    """For each judgement in ``rows``: the consensus it is compared with, as weights over the
    classes (one-hot, or split evenly over tied labels), and whether it leaves that
    judgement out."""
    item, annotator, label = enc.item[rows], enc.annotator[rows], enc.label[rows]
    model = consensus.model
    scores: np.ndarray | None = None
    if consensus.method == "majority":
        scores = counts[item].astype(float)
        scores[np.arange(len(rows)), label] -= 1.0
    elif (
        model is not None
        and model.classes == enc.classes
        and set(enc.annotators) <= set(model.annotators)
    ):
        column = pd.Index(model.annotators).get_indexer(list(enc.annotators))
        own = np.log(model.confusions[column[annotator], :, label])  # (rows, true class)
        scores = model.log_scores(enc)[item] - own
    if scores is not None:
        top = scores >= scores.max(axis=1, keepdims=True) - 1e-9
        return top / top.sum(axis=1, keepdims=True), True
    given = consensus.frame.set_index("item_id")["label"].astype(str)
    code = pd.Index(enc.classes).get_indexer(given.reindex(list(enc.items)).to_numpy())
    reference = code[item]
    weights = np.zeros((len(rows), enc.k))
    known = reference >= 0
    weights[np.flatnonzero(known), reference[known]] = 1.0
    return weights, False


def _against_consensus(
    enc: Encoded, counts: np.ndarray, consensus: Consensus, weights: np.ndarray
) -> tuple[list[AnnotatorAgreement], bool]:
    k, n_ann = enc.k, len(enc.annotators)
    rows = np.flatnonzero(counts.sum(axis=1)[enc.item] >= 2)
    reference, leave_one_out = _reference_weights(enc, counts, consensus, rows)
    cell = enc.annotator[rows] * k + enc.label[rows]
    confusion = np.empty((n_ann, k, k))
    for c in range(k):
        confusion[:, c, :] = np.bincount(
            cell, weights=reference[:, c], minlength=n_ann * k
        ).reshape(n_ann, k)
    compared = confusion.sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        accuracy = np.trace(confusion, axis1=1, axis2=2) / compared
    kappa = rel.kappa_from_tables(confusion, weights)
    judged = np.bincount(enc.annotator, minlength=n_ann)
    result = [
        AnnotatorAgreement(
            annotator=name,
            n_items=int(judged[j]),
            n_compared=int(np.rint(compared[j])),
            accuracy=float(accuracy[j]) if compared[j] > 0 else math.nan,
            kappa=float(kappa[j]),
            confusion=tuple(tuple(float(v) for v in row) for row in confusion[j]),
        )
        for j, name in enumerate(enc.annotators)
    ]
    return result, leave_one_out


def _outliers(
    annotators: tuple[AnnotatorAgreement, ...], classes: tuple[str, ...]
) -> tuple[Outlier, ...]:
    """Annotators whose kappa with the consensus is far below the others'.

    Each annotator is set against the median and MAD of the *other* annotators' kappas (an
    outlier does not inflate the spread it is judged by): flagged when below
    median − max(2.5 × 1.4826 × MAD, ``OUTLIER_MIN_GAP``). Only annotators with at least
    ``OUTLIER_MIN_ITEMS`` compared items and a defined kappa take part; it needs three.
    """
    scored = [
        a for a in annotators if a.n_compared >= OUTLIER_MIN_ITEMS and not math.isnan(a.kappa)
    ]
    if len(scored) < 3:
        return ()
    values = np.array([a.kappa for a in scored])
    result = []
    for i, a in enumerate(scored):
        others = np.delete(values, i)
        median = float(np.median(others))
        spread = OUTLIER_MADS * 1.4826 * float(np.median(np.abs(others - median)))
        threshold = median - max(spread, OUTLIER_MIN_GAP)
        if a.kappa >= threshold:
            continue
        table = np.array(a.confusion)
        off = table - np.diag(np.diag(table))
        consensus_class, given = np.unravel_index(int(off.argmax()), off.shape)
        evidence = (
            f"Cohen's kappa with the consensus {a.kappa:.2f} on {a.n_compared} items "
            f"(accuracy {a.accuracy:.0%}); the other annotators' median is {median:.2f}, "
            f"the outlier threshold {threshold:.2f}"
        )
        if off.max() > 0:
            evidence += (
                f"; most often gives '{classes[given]}' where the consensus is "
                f"'{classes[consensus_class]}' ({off.max():g} times)"
            )
        result.append(Outlier(a.annotator, a.kappa, median, threshold, evidence))
    return tuple(result)


def _disputed(enc: Encoded, counts: np.ndarray, consensus: Consensus) -> tuple[DisputedItem, ...]:
    """The items with the most divided labels: highest entropy, then lowest top share."""
    per_item = counts.sum(axis=1)
    candidates = np.flatnonzero((per_item >= 2) & ((counts > 0).sum(axis=1) >= 2))
    shares = counts[candidates] / per_item[candidates, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        entropy = -np.where(shares > 0, shares * np.log2(shares), 0.0).sum(axis=1)
    top = shares.max(axis=1)
    order = np.lexsort((candidates, top, -entropy))[:N_DISPUTED]
    agreed = consensus.frame.set_index("item_id")["label"]
    result = []
    for idx in order:
        i = int(candidates[idx])
        item_id = enc.items[i]
        votes = {
            enc.classes[c]: int(counts[i, c])
            for c in np.argsort(-counts[i], kind="stable")
            if counts[i, c] > 0
        }
        label = agreed.get(item_id)
        result.append(
            DisputedItem(
                item_id=item_id,
                n_judgements=int(per_item[i]),
                entropy=round(float(entropy[idx]), 6),
                top_share=float(top[idx]),
                votes=votes,
                consensus=None if label is None else str(label),
            )
        )
    return tuple(result)
