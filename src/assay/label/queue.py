"""The labelling queue: which unlabelled rows to label next, and which labels to review.

:func:`select_batch` ranks a pool of unlabelled rows by what the model would learn from
them. Uncertainty alone picks many near-copies of one confusion (the rows around one
stretch of the decision boundary), so the batch is chosen in three steps:

1. **uncertainty** of every row from the model's class probabilities
   (``least_confidence``: 1 - top probability; ``margin``: 1 - (top - second);
   ``entropy``: the entropy of the probabilities divided by log(classes), all in [0, 1]);
2. **strata**: every stratum value (a predicted class, a slice value) present in the pool
   is owed ``ceil(budget * share_floor)`` rows, or all its rows when it has fewer. Strata
   are served rarest first, and the owed rows together take at most half the budget, so
   rare classes and small slices are always represented while most of the batch still
   follows uncertainty. A row counts for every stratum it belongs to;
3. **diversity** for every share (a stratum's floor, then the rest of the budget): the
   ``candidate_factor * share`` most uncertain rows (at most ``max_candidates``) are the
   candidates; ``kmeans`` clusters them in the representation into ``share`` clusters,
   weighting each row by its uncertainty, and takes the most uncertain candidate of each
   cluster (the one nearest the centre on a tie); ``kcenter`` takes them farthest-first (greedy k-center, starting from the rows
   already chosen or, with none, the most uncertain); ``none`` takes the most uncertain.

The batch is returned most uncertain first. Every random choice takes ``seed``.

:func:`review_list` is the other list: labelled rows whose given label cleanlab's
confident learning finds implausible, from out-of-fold probabilities, least plausible first.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from assay.errors import ConfigError, DataError

__all__ = [
    "Diversity",
    "QueueSelection",
    "ReviewList",
    "Strategy",
    "review_list",
    "select_batch",
    "uncertainty",
]

Strategy = Literal["least_confidence", "margin", "entropy"]
Diversity = Literal["kmeans", "kcenter", "none"]
STRATEGIES: tuple[str, ...] = ("least_confidence", "margin", "entropy")
DIVERSITIES: tuple[str, ...] = ("kmeans", "kcenter", "none")

#: candidates per row of a share: the diversity step chooses among this many uncertain rows
CANDIDATE_FACTOR = 5
#: candidates clustered at most (a seeded subsample of the most uncertain beyond)
MAX_CANDIDATES = 10_000
#: above this many candidates x clusters, k-means runs in mini-batches
_FULL_KMEANS_WORK = 20_000_000
#: the strata floors together take at most this share of the budget
RESERVED_SHARE = 0.5


@dataclass(frozen=True)
class QueueSelection:
    """The chosen rows of a pool, most uncertain first, and why each was chosen.

    Attributes:
        positions: int64 positions into the pool, in rank order (rank 1 first).
        scores: the uncertainty of each chosen row, in [0, 1].
        clusters: the diversity cluster each row represents (-1: chosen without clustering).
        strata: the stratum whose floor reserved the row ("" when uncertainty chose it).
        reasons: one sentence per row: its uncertainty, cluster and stratum.
        strategy, diversity: how uncertainty and diversity were measured.
        candidates: how many candidate rows the diversity step looked at in all.
        floors: stratum -> rows chosen for it by its floor.
    """

    positions: np.ndarray
    scores: np.ndarray
    clusters: np.ndarray
    strata: tuple[str, ...]
    reasons: tuple[str, ...]
    strategy: str
    diversity: str
    candidates: int
    floors: dict[str, int]

    def __len__(self) -> int:
        return int(self.positions.size)

    def to_frame(self) -> pd.DataFrame:
        """One row per chosen row: rank, position, uncertainty, cluster, stratum, reason."""
        return pd.DataFrame(
            {
                "rank": np.arange(1, len(self) + 1),
                "position": self.positions,
                "uncertainty": self.scores,
                "cluster": self.clusters,
                "stratum": list(self.strata),
                "reason": list(self.reasons),
            }
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict."""
        return {
            "strategy": self.strategy,
            "diversity": self.diversity,
            "candidates": self.candidates,
            "floors": dict(self.floors),
            "rows": [
                {
                    "rank": i + 1,
                    "position": int(p),
                    "uncertainty": round(float(s), 6),
                    "cluster": int(c),
                    "stratum": st,
                    "reason": r,
                }
                for i, (p, s, c, st, r) in enumerate(
                    zip(self.positions, self.scores, self.clusters, self.strata, self.reasons)
                )
            ],
        }


def uncertainty(proba: np.ndarray, strategy: Strategy = "margin") -> np.ndarray:
    """How unsure the model is about each row, in [0, 1] (1 = no idea)."""
    p = _check_proba(proba)
    if strategy == "least_confidence":
        # scaled so that a uniform answer scores 1 whatever the number of classes
        k = p.shape[1]
        return np.asarray(np.clip((1.0 - p.max(axis=1)) * k / (k - 1), 0.0, 1.0))
    if strategy == "margin":
        top2 = np.sort(p, axis=1)[:, -2:]
        return np.asarray(np.clip(1.0 - (top2[:, 1] - top2[:, 0]), 0.0, 1.0))
    if strategy == "entropy":
        with np.errstate(divide="ignore", invalid="ignore"):
            logs = np.where(p > 0, np.log(p), 0.0)
        return np.asarray(np.clip(-(p * logs).sum(axis=1) / math.log(p.shape[1]), 0.0, 1.0))
    raise ConfigError(
        f"unknown uncertainty strategy '{strategy}'",
        key="strategy",
        expected=" | ".join(STRATEGIES),
        received=strategy,
        fix="Choose one of " + ", ".join(STRATEGIES) + ".",
    )


def select_batch(
    proba: np.ndarray,
    representation: np.ndarray,
    budget: int,
    *,
    strata: np.ndarray | pd.DataFrame | None = None,
    strategy: Strategy = "margin",
    diversity: Diversity = "kmeans",
    share_floor: float = 0.1,
    candidate_factor: int = CANDIDATE_FACTOR,
    max_candidates: int = MAX_CANDIDATES,
    seed: int = 0,
) -> QueueSelection:
    """Choose ``budget`` rows of the pool to label (see the module doc for the rule).

    Args:
        proba: (rows, classes) class probabilities of the current model on the pool.
        representation: (rows, dims) numeric features in which distance means similarity.
        budget: how many rows to choose (all rows when the pool is smaller).
        strata: per row, the stratum value(s) owed a floor: a 1-D array (e.g. the
            predicted class) or a frame / 2-D array with one grouping per column
            (predicted class, slice columns); None for no floors.
        strategy: how uncertainty is measured.
        diversity: ``kmeans``, ``kcenter`` or ``none``.
        share_floor: each stratum value is owed ``ceil(budget * share_floor)`` rows.
        candidate_factor: candidates per chosen row for the diversity step.
        max_candidates: the diversity step looks at most at this many rows per share.
        seed: the seed of the clustering and the candidate subsample.

    Raises:
        ConfigError: budget below 1, an unknown strategy or diversity, a floor outside [0, 1].
        DataError: probabilities or representation of the wrong shape or not finite.
    """
    if isinstance(budget, bool) or not isinstance(budget, (int, np.integer)) or budget < 1:
        raise ConfigError(
            "the labelling budget must be a whole number of rows, at least 1",
            key="budget",
            expected="an integer >= 1",
            received=repr(budget),
            fix="Pass --budget N with N >= 1.",
        )
    if diversity not in DIVERSITIES:
        raise ConfigError(
            f"unknown diversity '{diversity}'",
            key="diversity",
            expected=" | ".join(DIVERSITIES),
            received=diversity,
            fix="Choose one of " + ", ".join(DIVERSITIES) + ".",
        )
    if not 0.0 <= share_floor <= 1.0:
        raise ConfigError(
            "the stratum floor is a share of the budget",
            key="share_floor",
            expected="a number in [0, 1]",
            received=share_floor,
        )
    scores = uncertainty(proba, strategy)
    n = scores.size
    rep = _check_representation(representation, n)
    groups = _groupings(strata, n)
    budget = min(int(budget), n)
    chooser = _Chooser(
        scores, rep, diversity, max(1, int(candidate_factor)), max(1, int(max_candidates)), seed
    )
    chosen: list[int] = []
    clusters: dict[int, int] = {}
    reserved_for: dict[int, str] = {}
    floors: dict[str, int] = {}
    taken = np.zeros(n, dtype=bool)

    owed = math.ceil(budget * share_floor) if groups else 0
    reserve_left = int(budget * RESERVED_SHARE)
    for name, members in _strata_rarest_first(groups):
        if owed == 0 or reserve_left == 0:
            break
        need = min(owed, int(members.sum())) - int((members & taken).sum())
        need = min(need, reserve_left)
        if need <= 0:
            continue
        picked, picked_clusters = chooser.choose(np.flatnonzero(members & ~taken), need, chosen)
        for row, cluster in zip(picked, picked_clusters):
            chosen.append(row)
            clusters[row] = cluster
            reserved_for[row] = name
        taken[picked] = True
        floors[name] = len(picked)
        reserve_left -= len(picked)

    rest = budget - len(chosen)
    if rest > 0:
        picked, picked_clusters = chooser.choose(np.flatnonzero(~taken), rest, chosen)
        for row, cluster in zip(picked, picked_clusters):
            chosen.append(row)
            clusters[row] = cluster
        taken[picked] = True

    order = np.asarray(chosen, dtype=np.int64)
    order = order[np.lexsort((order, -scores[order]))]
    positions = order
    reasons = tuple(
        _reason(strategy, float(scores[p]), clusters[int(p)], reserved_for.get(int(p), ""))
        for p in positions
    )
    positions.setflags(write=False)
    return QueueSelection(
        positions=positions,
        scores=scores[positions],
        clusters=np.asarray([clusters[int(p)] for p in positions], dtype=np.int64),
        strata=tuple(reserved_for.get(int(p), "") for p in positions),
        reasons=reasons,
        strategy=strategy,
        diversity=diversity,
        candidates=chooser.looked_at,
        floors=floors,
    )


class _Chooser:
    """Picks ``m`` diverse, uncertain rows among given rows (one share of the budget)."""

    def __init__(
        self,
        scores: np.ndarray,
        rep: np.ndarray,
        diversity: str,
        factor: int,
        max_candidates: int,
        seed: int,
    ) -> None:
        self.scores, self.rep, self.diversity = scores, rep, diversity
        self.factor, self.max_candidates, self.seed = factor, max_candidates, seed
        self.looked_at = 0
        self._calls = 0
        self._clusters = 0  # clusters made so far: cluster ids are unique over all shares

    def choose(
        self, rows: np.ndarray, m: int, already: Sequence[int]
    ) -> tuple[np.ndarray, list[int]]:
        """``m`` rows of ``rows`` (fewer only if ``rows`` has fewer) and their cluster ids."""
        self._calls += 1
        if m >= rows.size:
            return rows.copy(), [-1] * rows.size
        candidates = self._candidates(rows, m)
        self.looked_at += int(candidates.size)
        if self.diversity == "none" or m == candidates.size:
            top = candidates[: m]
            return top, [-1] * m
        if self.diversity == "kcenter":
            rows, ids = self._kcenter(candidates, m, already)
        else:
            rows, ids = self._kmeans(candidates, m)
        offset, self._clusters = self._clusters, self._clusters + m
        return rows, [i + offset if i >= 0 else -1 for i in ids]

    def _candidates(self, rows: np.ndarray, m: int) -> np.ndarray:
        """The ``factor * m`` most uncertain of ``rows``, most uncertain first (ties: position);
        a seeded subsample of ``max_candidates`` of them when there are more."""
        k = min(rows.size, self.factor * m)
        s = self.scores[rows]
        if k < rows.size:
            part = np.argpartition(-s, k - 1)[:k]
            rows, s = rows[part], s[part]
        order = np.lexsort((rows, -s))
        top = rows[order]
        limit = max(self.max_candidates, m)
        if top.size > limit:
            rng = np.random.default_rng([self.seed, self._calls])
            keep = np.sort(rng.choice(top.size, limit, replace=False))
            top = top[keep]
        return top

    def _kmeans(self, candidates: np.ndarray, m: int) -> tuple[np.ndarray, list[int]]:
        from sklearn.cluster import KMeans, MiniBatchKMeans

        X = self.rep[candidates]
        weight = np.maximum(self.scores[candidates], 1e-6)
        if candidates.size * m <= _FULL_KMEANS_WORK:
            model: Any = KMeans(n_clusters=m, n_init=1, random_state=self.seed)
        else:
            model = MiniBatchKMeans(
                n_clusters=m, n_init=1, random_state=self.seed, batch_size=2048, max_iter=50
            )
        with warnings.catch_warnings():
            # fewer distinct points than clusters: the empty clusters are filled below
            warnings.simplefilter("ignore")
            labels = model.fit_predict(X, sample_weight=weight)
        centers = np.asarray(model.cluster_centers_)
        distance = np.einsum("ij,ij->i", X - centers[labels], X - centers[labels])
        scores = self.scores[candidates]
        picked: list[int] = []
        picked_clusters: list[int] = []
        used = np.zeros(candidates.size, dtype=bool)
        for cluster in range(m):
            members = np.flatnonzero(labels == cluster)
            if members.size == 0:
                continue
            # the most uncertain member; ties to the one nearest the centre
            best = members[np.lexsort((members, distance[members], -scores[members]))[0]]
            used[best] = True
            picked.append(int(candidates[best]))
            picked_clusters.append(cluster)
        for i in np.flatnonzero(~used)[: m - len(picked)]:  # empty clusters: most uncertain
            picked.append(int(candidates[i]))
            picked_clusters.append(-1)
        return np.asarray(picked, dtype=np.int64), picked_clusters

    def _kcenter(
        self, candidates: np.ndarray, m: int, already: Sequence[int]
    ) -> tuple[np.ndarray, list[int]]:
        X = self.rep[candidates]
        if already:
            nearest = _nearest_sq_distance(X, self.rep[np.asarray(already, dtype=np.int64)])
            first = int(np.argmax(nearest))
        else:
            nearest = np.full(candidates.size, np.inf)
            first = 0  # candidates are most uncertain first
        picked = [first]
        for _ in range(m - 1):
            d = ((X - X[picked[-1]]) ** 2).sum(axis=1)
            nearest = np.minimum(nearest, d)
            nearest[picked] = -1.0
            picked.append(int(np.argmax(nearest)))
        rows = candidates[np.asarray(picked, dtype=np.int64)]
        return rows, list(range(m))


def _nearest_sq_distance(X: np.ndarray, anchors: np.ndarray) -> np.ndarray:
    """Squared distance from each row of ``X`` to its nearest anchor, in blocks of anchors."""
    nearest = np.full(X.shape[0], np.inf)
    x2 = np.einsum("ij,ij->i", X, X)
    for start in range(0, anchors.shape[0], 256):
        block = anchors[start : start + 256]
        d = x2[:, None] + np.einsum("ij,ij->i", block, block)[None, :] - 2.0 * X @ block.T
        nearest = np.minimum(nearest, np.maximum(d, 0.0).min(axis=1))
    return nearest


def _reason(strategy: str, score: float, cluster: int, stratum: str) -> str:
    text = f"{strategy.replace('_', ' ')} uncertainty {score:.3f}"
    if cluster >= 0:
        text += f"; represents diversity cluster {cluster}"
    if stratum:
        text += f"; floor of stratum {stratum}"
    return text


def _check_proba(proba: np.ndarray) -> np.ndarray:
    p = np.asarray(proba, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] < 2:
        raise DataError(
            "class probabilities must be a (rows, classes) array with two or more classes",
            expected="a 2-D array with >= 2 columns",
            received=f"shape {p.shape}",
        )
    if not np.isfinite(p).all() or (p < -1e-9).any():
        raise DataError(
            "class probabilities must be finite and non-negative",
            expected="probabilities in [0, 1]",
            received="NaN, infinite or negative values",
        )
    return np.clip(p, 0.0, 1.0)


def _check_representation(representation: np.ndarray, n: int) -> np.ndarray:
    rep = np.asarray(representation, dtype=np.float64)
    if rep.ndim == 1:
        rep = rep[:, None]
    if rep.ndim != 2 or rep.shape[0] != n:
        raise DataError(
            "the representation must have one row per pool row",
            expected=f"a ({n}, dims) array",
            received=f"shape {rep.shape}",
        )
    if not np.isfinite(rep).all():
        raise DataError(
            "the representation holds NaN or infinite values",
            expected="finite numbers (impute missing values first)",
            received=f"{int((~np.isfinite(rep)).sum())} non-finite values",
        )
    return rep


def _groupings(strata: np.ndarray | pd.DataFrame | None, n: int) -> list[tuple[str, np.ndarray]]:
    """(column name, values as text) per grouping of ``strata``."""
    if strata is None:
        return []
    if isinstance(strata, pd.DataFrame):
        columns = [(str(c), strata[c].to_numpy()) for c in strata.columns]
    else:
        arr = np.asarray(strata, dtype=object)
        if arr.ndim == 1:
            columns = [("", arr)]
        else:
            columns = [(f"group {j}", arr[:, j]) for j in range(arr.shape[1])]
    out = []
    for name, values in columns:
        if len(values) != n:
            raise DataError(
                "strata must have one value per pool row",
                expected=f"{n} values",
                received=f"{len(values)} values",
            )
        out.append((name, np.asarray(["" if pd.isna(v) else str(v) for v in values])))
    return out


def _strata_rarest_first(groups: list[tuple[str, np.ndarray]]) -> list[tuple[str, np.ndarray]]:
    """Every (grouping, value) as a name and a row mask, the rarest value first."""
    found = []
    for name, values in groups:
        levels, counts = np.unique(values, return_counts=True)
        for level, count in zip(levels, counts):
            label = f"{name}={level}" if name else str(level)
            found.append((int(count), label, values == level))
    found.sort(key=lambda item: (item[0], item[1]))
    return [(label, mask) for _, label, mask in found]


@dataclass(frozen=True)
class ReviewList:
    """Labelled rows whose given label looks wrong, least plausible first.

    Attributes:
        positions: int64 positions into the labelled rows given to :func:`review_list`.
        given, suggested: class codes of the given label and of the most probable other one.
        given_probability: the out-of-fold probability of the given label.
        estimated_errors: cleanlab's estimate of how many labels are wrong in all.
    """

    positions: np.ndarray
    given: np.ndarray
    suggested: np.ndarray
    given_probability: np.ndarray
    estimated_errors: int

    def __len__(self) -> int:
        return int(self.positions.size)

    def to_frame(self, classes: Sequence[Any] | None = None) -> pd.DataFrame:
        """rank, position, given, suggested, given_probability (class names when given)."""
        given: Any = self.given
        suggested: Any = self.suggested
        if classes is not None:
            names = np.asarray(list(classes), dtype=object)
            given, suggested = names[self.given], names[self.suggested]
        return pd.DataFrame(
            {
                "rank": np.arange(1, len(self) + 1),
                "position": self.positions,
                "given": given,
                "suggested": suggested,
                "given_probability": self.given_probability,
            }
        )


def review_list(
    labels: np.ndarray,
    out_of_fold_proba: np.ndarray,
    *,
    exclude: np.ndarray | None = None,
    limit: int | None = None,
) -> ReviewList:
    """Rows cleanlab's confident learning flags as likely mislabelled, least plausible first.

    Args:
        labels: class codes 0..k-1 of the given labels.
        out_of_fold_proba: (rows, k) probabilities from a model that did not see each row.
        exclude: a boolean mask of rows never to list (e.g. the sealed test rows).
        limit: list at most this many rows.
    """
    from cleanlab.count import num_label_issues
    from cleanlab.filter import find_label_issues

    p = _check_proba(out_of_fold_proba)
    y = np.asarray(labels)
    if y.ndim != 1 or y.size != p.shape[0]:
        raise DataError(
            "labels and probabilities must have one entry per row",
            expected=f"{p.shape[0]} labels",
            received=f"shape {y.shape}",
        )
    in_range = y.min(initial=0) >= 0 and y.max(initial=0) < p.shape[1]
    if not np.issubdtype(y.dtype, np.integer) or not in_range:
        raise DataError(
            "labels must be class codes matching the probability columns",
            expected=f"integers in [0, {p.shape[1] - 1}]",
            received=f"{y.dtype} from {y.min(initial=0)} to {y.max(initial=0)}",
        )
    y = y.astype(np.int64)
    p = p / np.maximum(p.sum(axis=1, keepdims=True), 1e-12)
    ranked = np.asarray(
        find_label_issues(y, p, return_indices_ranked_by="self_confidence"), dtype=np.int64
    )
    if exclude is not None:
        mask = np.asarray(exclude, dtype=bool)
        ranked = ranked[~mask[ranked]]
    if limit is not None:
        ranked = ranked[: max(0, int(limit))]
    others = p.copy()
    others[np.arange(y.size), y] = -1.0
    estimated = int(num_label_issues(y, p)) if y.size else 0
    return ReviewList(
        positions=ranked,
        given=y[ranked],
        suggested=others.argmax(axis=1)[ranked],
        given_probability=p[ranked, y[ranked]],
        estimated_errors=estimated,
    )
