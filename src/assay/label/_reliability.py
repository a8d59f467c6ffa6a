"""Vectorised reliability coefficients and their item bootstrap.

Each coefficient is written as a function of sums over items (a contingency table, a
coincidence matrix, per-item agreement), so a bootstrap replicate is one weighted sum: the
item weights of a resample (how often each item was drawn) times a per-item feature matrix.
The point estimates in the agreement report come from the reference implementations
(scikit-learn, statsmodels, krippendorff); the tests check that these formulas equal them.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "alpha_features",
    "alpha_from_sums",
    "bootstrap_sums",
    "disagreement_weights",
    "fleiss_features",
    "fleiss_from_sums",
    "interval",
    "kappa_from_tables",
    "table_replicates",
]

#: the coverage of every bootstrap interval in the report
CONFIDENCE = 0.95
#: bootstrap weights drawn per block: bounds memory at about this many integers
_BLOCK = 4_000_000


def disagreement_weights(k: int, ordered: bool) -> np.ndarray:
    """Cohen's disagreement weights: 1 off the diagonal, or (i − j)² when ordered
    (scikit-learn's ``weights="quadratic"``, on class positions)."""
    positions = np.arange(k, dtype=float)
    if ordered:
        return np.asarray((positions[:, None] - positions[None, :]) ** 2)
    return 1.0 - np.eye(k)


def kappa_from_tables(tables: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Cohen's (weighted) kappa of each k × k table in ``tables`` (…, k, k); NaN where the
    expected disagreement is 0 (both raters used one and the same class)."""
    tables = np.asarray(tables, dtype=float)
    n = tables.sum(axis=(-2, -1))
    rows, cols = tables.sum(axis=-1), tables.sum(axis=-2)
    with np.errstate(invalid="ignore", divide="ignore"):
        expected = rows[..., :, None] * cols[..., None, :] / n[..., None, None]
        observed = (tables * weights).sum(axis=(-2, -1))
        chance = (expected * weights).sum(axis=(-2, -1))
        kappa = 1.0 - observed / chance
    return np.asarray(np.where(chance > 0, kappa, np.nan))


def table_replicates(table: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Bootstrap replicates of a contingency table: resampling its n items with replacement
    gives a multinomial draw of n over the observed cell shares, drawn directly."""
    n = int(table.sum())
    draws = rng.multinomial(n, table.ravel() / n, size=n_boot)
    return draws.reshape(n_boot, *table.shape)


def bootstrap_sums(features: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """``n_boot`` × features: the feature sums over items resampled with replacement."""
    n = len(features)
    out = np.empty((n_boot, features.shape[1]))
    block = max(1, min(n_boot, _BLOCK // max(n, 1)))
    for start in range(0, n_boot, block):
        b = min(block, n_boot - start)
        drawn = rng.integers(0, n, size=(b, n)) + (np.arange(b) * n)[:, None]
        weights = np.bincount(drawn.ravel(), minlength=b * n).reshape(b, n)
        out[start : start + b] = weights @ features
    return out


def interval(replicates: np.ndarray) -> tuple[float, float]:
    """The percentile bootstrap interval (NaN replicates, degenerate resamples, ignored)."""
    finite = replicates[np.isfinite(replicates)]
    if len(finite) == 0:
        return float("nan"), float("nan")
    tail = (1.0 - CONFIDENCE) / 2 * 100
    low, high = np.percentile(finite, [tail, 100 - tail])
    return float(low), float(high)


def fleiss_features(counts: np.ndarray) -> np.ndarray:
    """Per item (all with the same number m of ratings): its pairwise agreement P_i and its
    class counts, the sums Fleiss' kappa is made of."""
    m = counts.sum(axis=1)
    agreement = ((counts**2).sum(axis=1) - m) / (m * (m - 1))
    return np.column_stack([agreement, counts]).astype(float)


def fleiss_from_sums(sums: np.ndarray, n_items: np.ndarray | int, n_raters: int) -> np.ndarray:
    """Fleiss' kappa from summed :func:`fleiss_features` (rows of ``sums``) over ``n_items``
    items (per row when an array: resamples may draw more or fewer of them)."""
    n = np.broadcast_to(np.asarray(n_items, dtype=float), (len(sums),))
    p_bar = sums[:, 0] / n
    shares = sums[:, 1:] / (n * n_raters)[:, None]
    p_e = (shares**2).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        kappa = (p_bar - p_e) / (1.0 - p_e)
    return np.asarray(np.where((p_e < 1.0) & (n > 0), kappa, np.nan))


def alpha_features(counts: np.ndarray, ordered: bool) -> np.ndarray:
    """Per item (each with ≥ 2 judgements): its contribution to Krippendorff's coincidence
    matrix o (k² entries) when ordered; for nominal data only what alpha needs of it, the
    off-diagonal mass (observed disagreement) and the row sums (the item's counts)."""
    m = counts.sum(axis=1).astype(float)
    if ordered:
        k = counts.shape[1]
        pairs = counts[:, :, None] * counts[:, None, :] - counts[:, :, None] * np.eye(k)
        return np.asarray((pairs / (m - 1)[:, None, None]).reshape(len(counts), k * k))
    disagreement = (m**2 - (counts**2).sum(axis=1)) / (m - 1)
    return np.column_stack([disagreement, counts]).astype(float)


def alpha_from_sums(sums: np.ndarray, k: int, ordered: bool) -> np.ndarray:
    """Krippendorff's alpha from summed :func:`alpha_features` (rows of ``sums``):
    1 − D_o / D_e, with the ordinal metric (rank sums between two values) when ordered."""
    if not ordered:
        observed = sums[:, 0]
        n_v = sums[:, 1:]
        n = n_v.sum(axis=1)
        chance = (n**2 - (n_v**2).sum(axis=1)) / (n - 1)
    else:
        o = sums.reshape(len(sums), k, k)
        n_v = o.sum(axis=2)
        n = n_v.sum(axis=1)
        low = np.minimum.outer(np.arange(k), np.arange(k))
        high = np.maximum.outer(np.arange(k), np.arange(k))
        cum = np.concatenate([np.zeros((len(sums), 1)), np.cumsum(n_v, axis=1)], axis=1)
        between = cum[:, high + 1] - cum[:, low]  # n_low + … + n_high
        d = (between - (n_v[:, low] + n_v[:, high]) / 2) ** 2
        observed = (o * d).sum(axis=(1, 2))
        e = (n_v[:, :, None] * n_v[:, None, :] - n_v[:, :, None] * np.eye(k)) / (n - 1)[
            :, None, None
        ]
        chance = (e * d).sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        alpha = 1.0 - observed / chance
    return np.asarray(np.where(chance > 0, alpha, np.nan))
