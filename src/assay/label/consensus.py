"""One label per item from the judgements of several annotators, each with a confidence.

Two methods: the majority vote, and Dawid & Skene's (1979) maximum-likelihood estimate, which
learns how often each annotator gives each label for each true class and weighs their votes
accordingly (a careful annotator outvotes two careless ones).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, get_args

import numpy as np
import pandas as pd

from assay.errors import ConfigError, DataError
from assay.label._encode import Encoded, encode
from assay.label.annotations import Annotations

if TYPE_CHECKING:
    from scipy import sparse

__all__ = [
    "Consensus",
    "ConsensusMethod",
    "DawidSkeneModel",
    "consensus_labels",
    "dawid_skene",
    "majority_vote",
]

ConsensusMethod = Literal["dawid_skene", "majority"]


@dataclass(frozen=True, eq=False)
class DawidSkeneModel:
    """What Dawid–Skene learned: class priors and one confusion matrix per annotator.

    ``confusions[j, t, l]`` is the probability that annotator ``annotators[j]`` gives label
    ``classes[l]`` to an item whose true class is ``classes[t]`` (rows sum to 1).
    """

    classes: tuple[str, ...]
    annotators: tuple[str, ...]
    priors: np.ndarray
    confusions: np.ndarray
    n_iter: int
    converged: bool

    @property
    def accuracies(self) -> dict[str, float]:
        """Each annotator's estimated probability of giving the true label, over the classes
        weighted by their estimated priors."""
        acc = np.einsum("t,jtt->j", self.priors, self.confusions)
        return {a: float(v) for a, v in zip(self.annotators, acc, strict=True)}

    def log_scores(self, encoded: Encoded) -> np.ndarray:
        """Items × classes unnormalised log posterior of the true class given the judgements.

        ``encoded`` must use this model's classes and a subset of its annotators.
        """
        column = pd.Index(self.annotators).get_indexer(list(encoded.annotators))
        if encoded.classes != self.classes or (column < 0).any():
            raise DataError(
                "the judgements do not match the fitted Dawid-Skene model",
                expected=f"classes {', '.join(self.classes)} and known annotators",
                received=f"classes {', '.join(encoded.classes)}",
                fix="fit the consensus again on these annotations",
            )
        return _log_scores(self.priors, self.confusions, encoded.recoded(self.annotators))

    def to_dict(self) -> dict[str, object]:
        return {
            "classes": list(self.classes),
            "priors": [float(p) for p in self.priors],
            "n_iter": self.n_iter,
            "converged": self.converged,
            "annotators": {
                a: {
                    "accuracy": acc,
                    "confusion": [[float(v) for v in row] for row in self.confusions[j]],
                }
                for j, (a, acc) in enumerate(self.accuracies.items())
            },
        }


@dataclass(frozen=True)
class Consensus:
    """Consensus labels: ``frame`` has ``item_id``, ``label``, ``confidence``, ``n_annotations``.

    ``confidence`` is the method's probability that the label is right (for a majority
    vote, the share of annotators who gave it).
    """

    method: str
    frame: pd.DataFrame
    #: the fitted annotator model when the method learns one (Dawid–Skene), else None
    model: DawidSkeneModel | None = None

    def held_out(self, min_confidence: float) -> pd.DataFrame:
        """Items too uncertain to train on: listed for adjudication, least sure first."""
        low = self.frame[self.frame["confidence"] < min_confidence]
        return low.sort_values(["confidence", "item_id"]).reset_index(drop=True)

    def to_dict(self) -> dict[str, object]:
        body: dict[str, object] = {
            "method": self.method,
            "labels": self.frame.to_dict(orient="records"),
        }
        if self.model is not None:
            body["model"] = self.model.to_dict()
        return body


def majority_vote(annotations: Annotations, classes: Sequence[str] | None = None) -> Consensus:
    """The most frequent label per item; ties go to the class first in the class order."""
    encoded = encode(annotations, classes)
    order = encoded.classes
    counts = encoded.counts()
    n = counts.sum(axis=1)
    winner = counts.argmax(axis=1)
    share = counts[np.arange(len(counts)), winner] / np.maximum(n, 1)
    frame = pd.DataFrame(
        {
            "item_id": list(annotations.items),
            "label": [order[i] for i in winner],
            "confidence": share.astype(float),
            "n_annotations": n.astype(int),
        }
    )
    return Consensus("majority", frame)


def _log_scores(
    priors: np.ndarray,
    confusions: np.ndarray,
    encoded: Encoded,
    design: sparse.csr_matrix | None = None,
) -> np.ndarray:
    """Items × true classes: log prior plus the log confusion entry of every judgement."""
    n_annotators, k, _ = confusions.shape
    log_conf = np.log(confusions).transpose(0, 2, 1).reshape(n_annotators * k, k)
    design = encoded.design() if design is None else design
    return np.asarray(np.log(priors) + np.asarray(design @ log_conf))


#: the mean of the prior on an annotator's accuracy (its strength: two judgements per class)
PRIOR_ACCURACY = 0.75


def _confusion_prior(k: int, smoothing: float) -> np.ndarray:
    """Pseudo-counts of a confusion matrix (true x given): most of them on the diagonal."""
    strength = 2.0 * k * smoothing
    if k < 2:
        return np.full((k, k), strength)
    pseudo = np.full((k, k), (1.0 - PRIOR_ACCURACY) * strength / (k - 1))
    np.fill_diagonal(pseudo, PRIOR_ACCURACY * strength)
    return pseudo


def dawid_skene(
    annotations: Annotations,
    classes: Sequence[str] | None = None,
    *,
    max_iter: int = 100,
    tol: float = 1e-6,
    smoothing: float = 1.0,
) -> Consensus:
    """Dawid & Skene's EM estimate of each item's true class.

    Starts from the majority vote (each item's vote shares as its class probabilities; the
    method is deterministic, no seed), then alternates: class priors and each annotator's
    confusion matrix from the current class probabilities (M step), then each item's
    posterior from the priors and the confusion rows of the labels it received (E step),
    until no posterior moves by more than ``tol`` or ``max_iter`` rounds. Each annotator's
    confusion rows get a Dirichlet prior of ``2 k x smoothing`` pseudo-judgements whose mean
    is an annotator right three times in four (:data:`PRIOR_ACCURACY`), and the class
    priors a Laplace count of ``smoothing``. So an annotator who never erred on the items
    seen keeps a small error probability (no log 0), and one with few judgements is taken
    as fairly reliable rather than as a coin: with flat pseudo-counts the estimate on a
    small pilot collapses to chance, and three annotators agreeing on an item would leave
    it at a confidence of one half. ``confidence`` is the posterior probability of the
    chosen label.
    """
    encoded = encode(annotations, classes)
    if len(encoded.item) == 0:
        raise DataError(
            "there are no annotations to build a consensus from",
            expected="at least one judgement",
            received="0 judgements",
            fix="import the annotators' labels first",
        )
    n_items, n_annotators, k = len(encoded.items), len(encoded.annotators), encoded.k
    design = encoded.design()
    counts = encoded.counts()
    posterior = counts / counts.sum(axis=1, keepdims=True)
    pseudo = _confusion_prior(k, smoothing)
    priors = np.full(k, 1.0 / k)
    confusions = np.full((n_annotators, k, k), 1.0 / k)
    converged = False
    n_iter = 0
    for n_iter in range(1, max_iter + 1):
        # M step: expected (annotator, given label) × true class counts, smoothed
        expected = np.asarray(design.T @ posterior)  # (J*K given, K true)
        confusions = expected.reshape(n_annotators, k, k).transpose(0, 2, 1) + pseudo
        confusions /= confusions.sum(axis=2, keepdims=True)
        priors = (posterior.sum(axis=0) + smoothing) / (n_items + k * smoothing)
        # E step: log prior + the log confusion entries of each item's judgements
        scores = _log_scores(priors, confusions, encoded, design)
        scores -= scores.max(axis=1, keepdims=True)
        updated = np.exp(scores)
        updated /= updated.sum(axis=1, keepdims=True)
        change = float(np.abs(updated - posterior).max())
        posterior = updated
        if change < tol:
            converged = True
            break
    winner = posterior.argmax(axis=1)
    frame = pd.DataFrame(
        {
            "item_id": list(encoded.items),
            "label": [encoded.classes[i] for i in winner],
            "confidence": posterior[np.arange(n_items), winner].astype(float),
            "n_annotations": counts.sum(axis=1).astype(int),
        }
    )
    model = DawidSkeneModel(
        classes=encoded.classes,
        annotators=encoded.annotators,
        priors=priors,
        confusions=confusions,
        n_iter=n_iter,
        converged=converged,
    )
    return Consensus("dawid_skene", frame, model)


def consensus_labels(
    annotations: Annotations,
    method: ConsensusMethod,
    classes: Sequence[str] | None = None,
) -> Consensus:
    """The consensus by the method ``labelling.consensus`` names: the one entry point."""
    if method == "dawid_skene":
        return dawid_skene(annotations, classes)
    if method == "majority":
        return majority_vote(annotations, classes)
    raise ConfigError(
        "unknown consensus method",
        key="labelling.consensus",
        expected=" or ".join(get_args(ConsensusMethod)),
        received=method,
        fix="set labelling.consensus to dawid_skene or majority",
    )
