"""Drift tests: one statistic comparing a column's reference profile with its current values.

Each test is a small config object (its parameters), a computation
(:meth:`BaseDriftTest.compute`) and a typed result (:class:`DriftStat`), registered by alias
in :data:`DRIFT_TESTS`:

- ``psi`` (:class:`PSITest`): population stability index on the reference bins (the missing
  bin included), ``sum((q - p) * ln(q / p))`` with every share floored at ``epsilon``
  (default 1e-4) so that an empty bin on either side gives a large finite term instead of an
  infinite one. Always >= 0, and 0 when the binned shares are equal.
- ``ks`` (:class:`KSTest`): two-sample Kolmogorov-Smirnov statistic and p-value between the
  sorted reference sample and the current non-missing values; equal to
  ``scipy.stats.ks_2samp(sample, values)`` (two-sided, ``method="auto"``).
- ``chi2`` (:class:`ChiSquaredTest`): chi-squared goodness of fit of the current level counts
  (levels, the unseen bin, the missing bin) to ``reference shares x n``; equal to
  ``scipy.stats.chisquare`` on the pooled bins (see the class for the pooling).
- ``js`` (:class:`JSDistanceTest`): Jensen-Shannon distance, base 2 (0 to 1), between the
  binned distributions; equal to ``scipy.spatial.distance.jensenshannon(p, q, base=2)``.

The current column is counted once on the reference bins (:class:`CurrentColumn`: one sort
and a binary search of the bin edges per numeric column, one ``pd.factorize`` per
categorical one) and every test reads those counts.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from assay.aliases import AliasTable
from assay.monitor.reference import ColumnProfile, ProfileKind

__all__ = [
    "DRIFT_TESTS",
    "EPSILON",
    "BaseDriftTest",
    "ChiSquaredTest",
    "CurrentColumn",
    "DriftStat",
    "JSDistanceTest",
    "KSTest",
    "PSITest",
    "chi2_pooled",
    "js_distance",
    "ks_2samp_sorted",
    "ks_statistic",
    "psi",
]

#: the floor of every share in the PSI (a share of 0 would make a term infinite)
EPSILON = 1e-4
#: scipy's ks_2samp computes an exact p-value when both samples have at most this many values
_KS_EXACT_MAX_N = 10_000


@dataclass(frozen=True, eq=False)
class CurrentColumn:
    """The current window of one column, counted on its reference profile's bins.

    Attributes:
        profile: the reference profile of the column.
        counts: rows per bin of the profile, the missing bin last.
        values: the values as float64, sorted, missing ones (NaN) last (numeric profiles
            only).
    """

    profile: ColumnProfile
    counts: np.ndarray
    values: np.ndarray | None = None

    @classmethod
    def from_series(cls, profile: ColumnProfile, series: pd.Series) -> CurrentColumn:
        """Count ``series`` on ``profile``'s bins, in one vectorised pass."""
        counts, values = profile.bin_counts(series)
        return cls(profile=profile, counts=counts, values=values)

    @property
    def n(self) -> int:
        """The number of current rows, missing ones included."""
        return int(self.counts.sum())

    @property
    def n_missing(self) -> int:
        """The number of current rows without a value."""
        return int(self.counts[-1])

    @property
    def distribution(self) -> np.ndarray:
        """The current share of every bin, the missing bin last."""
        return self.counts / max(self.n, 1)


@dataclass(frozen=True)
class DriftStat:
    """The result of one drift test on one column.

    Attributes:
        test: the alias of the test (``psi``, ``ks``, ``chi2``, ``js``, ...).
        statistic: the value of the statistic; None when it cannot be computed (e.g. a
            numeric column with no non-missing current value for KS, or an empty window).
        p_value: the p-value for hypothesis tests, None for effect sizes.
    """

    test: str
    statistic: float | None
    p_value: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable form."""
        return {"test": self.test, "statistic": self.statistic, "p_value": self.p_value}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DriftStat:
        """Rebuild from :meth:`to_dict` output."""
        return cls(test=data["test"], statistic=data["statistic"], p_value=data.get("p_value"))


class BaseDriftTest(abc.ABC):
    """A statistic comparing one column's reference profile with its current values.

    Call order, per column of a drift check:

    1. the column is counted once on its profile's bins: :meth:`CurrentColumn.from_series`;
    2. for each test, :meth:`applies_to` ``(profile)``; when True,
       :meth:`compute` ``(current)`` returns a :class:`DriftStat`, whose statistic is None
       on an empty window (no row, so nothing to compare: not "no drift", not "drift").

    A test reads only the profile and the :class:`CurrentColumn`, never the training rows.
    Subclasses are small frozen dataclasses (their fields are the test's parameters) and
    register with ``@DRIFT_TESTS.register("alias")``.
    """

    alias: ClassVar[str]
    #: the profile kinds the test applies to
    kinds: ClassVar[tuple[ProfileKind, ...]] = ("numeric", "categorical")

    def applies_to(self, profile: ColumnProfile) -> bool:
        """Whether the test can run on a column with this profile (by default: its kind)."""
        return profile.kind in self.kinds

    @abc.abstractmethod
    def compute(self, current: CurrentColumn) -> DriftStat:
        """The statistic of ``current`` against ``current.profile``."""


#: alias -> drift test class
DRIFT_TESTS: AliasTable[type[BaseDriftTest]] = AliasTable("drift test")


@DRIFT_TESTS.register("psi")
@dataclass(frozen=True)
class PSITest(BaseDriftTest):
    """Population stability index on the reference bins, shares floored at ``epsilon``."""

    epsilon: float = EPSILON

    def compute(self, current: CurrentColumn) -> DriftStat:
        """PSI of the current bin shares against the reference shares; None on an empty window."""
        if current.n == 0:
            return DriftStat(self.alias, None)
        value = psi(current.profile.distribution, current.distribution, self.epsilon)
        return DriftStat(self.alias, value)


@DRIFT_TESTS.register("ks")
@dataclass(frozen=True)
class KSTest(BaseDriftTest):
    """Two-sample Kolmogorov-Smirnov test: reference sample vs current non-missing values.

    Missing values are left out (their drift shows in the PSI's missing bin). The statistic
    and p-value equal ``scipy.stats.ks_2samp(sample, values)``: scipy itself runs when both
    sides have at most 10,000 values (its exact p-value); above that the statistic is
    computed by :func:`ks_statistic` on the already sorted values, and the p-value by the
    same asymptotic distribution scipy uses.
    """

    kinds: ClassVar[tuple[ProfileKind, ...]] = ("numeric",)

    def compute(self, current: CurrentColumn) -> DriftStat:
        """KS statistic and p-value; None for both when either side has no value."""
        values = current.values
        if values is None:
            return DriftStat(self.alias, None, None)
        statistic, p_value = ks_2samp_sorted(current.profile.sample, values)
        return DriftStat(self.alias, statistic, p_value)


@DRIFT_TESTS.register("chi2")
@dataclass(frozen=True)
class ChiSquaredTest(BaseDriftTest):
    """Chi-squared goodness of fit of current level counts to the reference shares.

    The bins are the levels, the ``unseen`` bin (every current value the reference never
    had) and the missing bin; expected counts are ``reference share x n``. Small expected
    counts are handled by :func:`chi2_pooled`:

    - bins empty on both sides are dropped;
    - bins whose expected count is below ``min_expected`` (5, Cochran's rule) are pooled
      into one ``rare`` bin, which stays a bin of its own however small;
    - when that pool's reference share is 0 (only the unseen bin and a missing bin the
      reference never had), it gets the share ``epsilon``, taken from the other bins in
      proportion, so traffic with new values gives a large finite statistic rather than an
      infinite one;
    - with a single bin left the statistic is 0 and the p-value 1 (nothing to compare).

    Without smoothing the result equals ``scipy.stats.chisquare(observed, expected)`` on
    the pooled bins; it is that call in every case, on the smoothed expectation.
    """

    kinds: ClassVar[tuple[ProfileKind, ...]] = ("categorical",)
    min_expected: float = 5.0
    epsilon: float = EPSILON

    def compute(self, current: CurrentColumn) -> DriftStat:
        """Chi-squared statistic and p-value on the pooled bins; None on an empty window."""
        if current.n == 0:
            return DriftStat(self.alias, None, None)
        statistic, p_value, _, _ = chi2_pooled(
            current.counts, current.profile.distribution, self.min_expected, self.epsilon
        )
        return DriftStat(self.alias, statistic, p_value)


@DRIFT_TESTS.register("js")
@dataclass(frozen=True)
class JSDistanceTest(BaseDriftTest):
    """Jensen-Shannon distance (base 2, between 0 and 1) of the binned distributions."""

    def compute(self, current: CurrentColumn) -> DriftStat:
        """JS distance between the reference and current bin shares; None on an empty window."""
        if current.n == 0:
            return DriftStat(self.alias, None)
        return DriftStat(
            self.alias, js_distance(current.profile.distribution, current.distribution)
        )


# -- the statistics, on plain arrays ------------------------------------------------------


def psi(expected: np.ndarray, actual: np.ndarray, epsilon: float = EPSILON) -> float:
    """Population stability index ``sum((q - p) * ln(q / p))`` of shares, floored at ``epsilon``.

    ``expected`` (p) and ``actual`` (q) are the shares of the same bins. Every term is >= 0
    (its two factors have the same sign), so the PSI is >= 0, and 0 when the shares agree.
    """
    p = np.maximum(np.asarray(expected, dtype=np.float64), epsilon)
    q = np.maximum(np.asarray(actual, dtype=np.float64), epsilon)
    return float(np.sum((q - p) * np.log(q / p)))


def js_distance(expected: np.ndarray, actual: np.ndarray) -> float:
    """Jensen-Shannon distance, base 2: ``scipy.spatial.distance.jensenshannon(p, q, base=2)``.

    Rounding can make scipy's divergence a hair below 0 for equal inputs (a NaN distance);
    that case is 0.
    """
    from scipy.spatial.distance import jensenshannon

    value = float(jensenshannon(expected, actual, base=2.0))
    return 0.0 if np.isnan(value) else value


def ks_statistic(reference: np.ndarray, current: np.ndarray) -> float:
    """The two-sample KS statistic of two sorted samples (NaN, if any, last in ``current``).

    The result equals ``scipy.stats.ks_2samp(..., method="asymp")``'s statistic bit for bit
    (its exact mode rounds the same value to a multiple of ``1 / lcm(n1, n2)``): the largest
    gap between the two empirical CDFs at the data points. Rather than evaluating both CDFs at
    every point of both samples, the distinct reference values are located in the sorted
    current values (two ``np.searchsorted`` of a few thousand points): between two
    reference points the reference CDF is flat, so the gaps are largest at a reference
    point or just before the next one.
    """
    ref = np.asarray(reference, dtype=np.float64)
    cur = np.asarray(current, dtype=np.float64)
    n1 = ref.size
    n2 = cur.size - int(np.count_nonzero(np.isnan(cur)))
    if n1 == 0 or n2 == 0:
        raise ValueError("both samples need at least one value")
    cur = cur[:n2]
    points, per_point = np.unique(ref, return_counts=True)
    cdf1 = np.cumsum(per_point) / n1
    # current CDF at each reference point, and just before it
    at_points = np.searchsorted(cur, points, side="right") / n2
    before = np.searchsorted(cur, points, side="left") / n2
    max_s = float(np.max(cdf1 - at_points))
    min_s = max(float(np.max(at_points - cdf1)), float(before[0]))
    if points.size > 1:
        min_s = max(min_s, float(np.max(before[1:] - cdf1[:-1])))
    min_s = min(max(min_s, 0.0), 1.0)
    return max(max_s, min_s)


def ks_2samp_sorted(
    reference: np.ndarray, current: np.ndarray
) -> tuple[float | None, float | None]:
    """KS statistic and two-sided p-value, equal to ``scipy.stats.ks_2samp(reference, current)``.

    Both samples are sorted; ``current`` may end with NaN (missing values), which are
    ignored. Returns ``(None, None)`` when either side is empty.
    """
    from scipy import stats

    cur = np.asarray(current, dtype=np.float64)
    n1 = int(reference.size)
    n2 = cur.size - int(np.count_nonzero(np.isnan(cur)))
    if n1 == 0 or n2 == 0:
        return None, None
    if max(n1, n2) <= _KS_EXACT_MAX_N:
        result = stats.ks_2samp(reference, cur[:n2])
        return float(result.statistic), float(result.pvalue)
    d = ks_statistic(reference, cur)
    m, n = sorted([float(n1), float(n2)], reverse=True)
    p_value = stats.kstwo.sf(d, np.round(m * n / (m + n)))
    return d, float(np.clip(p_value, 0.0, 1.0))


def chi2_pooled(
    observed: np.ndarray,
    expected_shares: np.ndarray,
    min_expected: float = 5.0,
    epsilon: float = EPSILON,
) -> tuple[float, float, np.ndarray, np.ndarray]:
    """Chi-squared goodness of fit with sparse bins pooled (see :class:`ChiSquaredTest`).

    Returns the statistic, the p-value, and the pooled observed and expected counts that
    were passed to ``scipy.stats.chisquare`` (the pool, if any, last).
    """
    from scipy import stats

    obs = np.asarray(observed, dtype=np.float64)
    shares = np.asarray(expected_shares, dtype=np.float64)
    n = float(obs.sum())
    keep = (obs > 0) | (shares > 0)
    obs, shares = obs[keep], shares[keep]
    rare = shares * n < min_expected
    if rare.any():
        pool_share = float(shares[rare].sum())
        obs = np.append(obs[~rare], obs[rare].sum())
        shares = np.append(shares[~rare], pool_share)
        if pool_share == 0.0 and shares.size > 1:
            shares[:-1] *= (1.0 - epsilon) / shares[:-1].sum()
            shares[-1] = epsilon
    expected = shares * n
    if obs.size < 2:
        return 0.0, 1.0, obs, expected
    result = stats.chisquare(obs, expected)
    return float(result.statistic), float(result.pvalue), obs, expected
