"""The label plan: how many labelled rows the model needs to reach its acceptance threshold.

A learning curve (the metric on held-out rows against the number of training rows) is
fitted with an inverse power law,

    score(n) = a - b * n ** (-c)        (b > 0, c > 0; mirrored for errors, lower is better)

whose asymptote ``a`` is the best score more rows of the same kind can buy. Solving
``score(n) = threshold`` gives the rows needed; when ``a`` does not reach the threshold,
the threshold is *unreachable* by labelling alone. The interval comes from refitting on
bootstrap samples: of the replicate scores at each size when there are several (folds or
seeds), else of the fit's residuals. Extrapolating a curve past the sizes it was measured
on is uncertain, the more so the farther: every plan carries a warning that says how far.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from assay.errors import DataError

__all__ = ["LabelPlan", "PlanStatus", "fit_power_law", "label_plan", "rows_for"]

PlanStatus = Literal["met", "reachable", "unreachable"]

#: the interval's coverage (a central percentile interval of the bootstrap)
COVERAGE = 0.90
#: rows needed beyond this multiple of the largest measured size are flagged as far
FAR_FACTOR = 10.0
#: rows needed beyond this multiple of the largest measured size count as unreachable
MAX_FACTOR = 1000.0


@dataclass(frozen=True)
class PowerLaw:
    """``score(n) = a - b * n ** (-c)`` in the orientation where higher is better."""

    a: float
    b: float
    c: float

    def __call__(self, n: np.ndarray | float) -> np.ndarray:
        return np.asarray(self.a - self.b * np.power(np.asarray(n, dtype=float), -self.c))


@dataclass(frozen=True)
class LabelPlan:
    """How many labelled training rows reach ``threshold``, by an extrapolated learning curve.

    Attributes:
        metric: the metric's name (may be empty).
        threshold: the acceptance bound.
        greater_is_better: the metric's direction.
        sizes: the measured training-set sizes.
        scores: the mean score at each size.
        asymptote: the fitted ceiling ``a`` (the best more rows can give), in metric units.
        exponent: the fitted ``c`` (how fast the curve flattens).
        status: ``met`` (the largest size already reaches it), ``reachable`` or
            ``unreachable`` (the fitted ceiling falls short of the threshold, or the curve
            reaches it only beyond ``MAX_FACTOR`` times the largest measured size).
        rows_needed: training rows at which the fitted curve reaches the threshold (None
            when unreachable).
        interval: the central ``COVERAGE`` bootstrap interval of ``rows_needed`` (None for
            a side where too many bootstrap fits never reach the threshold).
        unreachable_share: the share of bootstrap fits that never reach the threshold (their
            ceiling falls short, or they reach it only beyond ``MAX_FACTOR`` times the
            largest measured size, which counts as unreachable).
        current_rows: the largest measured size.
        additional_rows: rows to add to ``current_rows`` (0 when met, None when unreachable).
        hours, hours_interval: annotator hours for the additional rows (with
            ``hours_per_label``), else None.
        warning: what to keep in mind about this extrapolation.
        n_boot: bootstrap fits made.
    """

    metric: str
    threshold: float
    greater_is_better: bool
    sizes: tuple[float, ...]
    scores: tuple[float, ...]
    asymptote: float
    exponent: float
    status: PlanStatus
    rows_needed: int | None
    interval: tuple[int | None, int | None]
    unreachable_share: float
    current_rows: int
    additional_rows: int | None
    hours: float | None
    hours_interval: tuple[float | None, float | None]
    warning: str
    n_boot: int

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict."""
        return {
            "metric": self.metric,
            "threshold": self.threshold,
            "greater_is_better": self.greater_is_better,
            "sizes": list(self.sizes),
            "scores": list(self.scores),
            "asymptote": self.asymptote,
            "exponent": self.exponent,
            "status": self.status,
            "rows_needed": self.rows_needed,
            "interval": list(self.interval),
            "coverage": COVERAGE,
            "unreachable_share": self.unreachable_share,
            "current_rows": self.current_rows,
            "additional_rows": self.additional_rows,
            "hours": self.hours,
            "hours_interval": list(self.hours_interval),
            "warning": self.warning,
            "n_boot": self.n_boot,
        }


def fit_power_law(
    sizes: np.ndarray,
    scores: np.ndarray,
    *,
    ceiling: float | None = None,
    start: PowerLaw | None = None,
) -> PowerLaw:
    """The least-squares ``a - b * n**(-c)`` through the points (higher is better).

    Sizes are scaled by their largest value for the fit (``b`` is returned in row units).
    ``ceiling`` bounds ``a`` from above (1.0 for accuracy-like metrics). Several starting
    exponents are tried and the best fit wins, or only ``start`` when given (a bootstrap
    refit starts from the fit it perturbs).
    """
    from scipy.optimize import curve_fit

    n = np.asarray(sizes, dtype=float)
    y = np.asarray(scores, dtype=float)
    scale = float(n.max())
    x = n / scale
    top = np.inf if ceiling is None else float(ceiling)
    spread = max(float(y.max() - y.min()), 1e-6)
    best: tuple[float, tuple[float, float, float]] | None = None

    def curve(xv: np.ndarray, a: float, b: float, c: float) -> np.ndarray:
        return np.asarray(a - b * np.power(xv, -c))

    log_x = np.log(x)

    def jacobian(xv: np.ndarray, a: float, b: float, c: float) -> np.ndarray:
        power = np.power(xv, -c)
        return np.column_stack([np.ones_like(xv), -power, b * power * log_x])

    starts = []
    if start is not None:
        c0 = min(max(start.c, 2e-3), 4.9)
        a0 = min(start.a, top - 1e-9)
        starts.append((a0, max(start.b * scale ** (-c0), 1e-9), c0))
    else:
        a0 = min(float(y.max()) + 0.5 * spread, top - 1e-9)
        for c0 in (0.3, 0.7, 1.5):
            starts.append((a0, max((a0 - float(y.min())) * float(x.min()) ** c0, 1e-9), c0))
    for a0, b0, c0 in starts:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                params, _ = curve_fit(
                    curve, x, y, p0=(a0, b0, c0), jac=jacobian,
                    bounds=((-np.inf, 0.0, 1e-3), (top, np.inf, 5.0)), max_nfev=2000,
                )
        except (RuntimeError, ValueError):
            continue
        sse = float(((curve(x, *params) - y) ** 2).sum())
        if best is None or sse < best[0] - 1e-15:
            best = (sse, (float(params[0]), float(params[1]), float(params[2])))
    if best is None:
        raise DataError(
            "the learning curve could not be fitted with an inverse power law",
            expected="scores that improve (or level off) with more rows",
            received=", ".join(f"{s:g}: {v:.4g}" for s, v in zip(n, y)),
            fix="Measure the curve on more sizes or on more validation rows.",
        )
    a, b_scaled, c = best[1]
    return PowerLaw(a, b_scaled * scale**c, c)


def rows_for(law: PowerLaw, target: float) -> float:
    """Rows at which ``law`` reaches ``target`` (inf when its ceiling is at or below it)."""
    if law.a <= target:
        return math.inf
    if law.b <= 0:
        return 0.0
    return float((law.b / (law.a - target)) ** (1.0 / law.c))


def label_plan(
    sizes: Sequence[float],
    scores: Sequence[float] | Sequence[Sequence[float]],
    threshold: float,
    *,
    greater_is_better: bool,
    n_boot: int = 200,
    seed: int = 0,
    hours_per_label: float | None = None,
    best_possible: float | None = None,
    metric: str = "",
) -> LabelPlan:
    """Extrapolate a learning curve to the rows needed for ``threshold``.

    Args:
        sizes: training-set sizes (rows), at least three distinct ones.
        scores: the score at each size, or several replicate scores per size (folds,
            seeds; NaN entries are ignored).
        threshold: the acceptance bound on the metric.
        greater_is_better: the metric's direction.
        n_boot: bootstrap fits for the interval.
        seed: the bootstrap's seed.
        hours_per_label: annotator hours per labelled row, for an estimate of the time.
        best_possible: the best value the metric can take (1.0 for accuracy, 0.0 for an
            error): the fitted ceiling never passes it.
        metric: the metric's name, for the result.

    Raises:
        DataError: fewer than three distinct sizes, a size below 1, scores that are not
            finite, or a curve that cannot be fitted.
    """
    n, replicates = _points(sizes, scores)
    sign = 1.0 if greater_is_better else -1.0
    target = sign * float(threshold)
    ceiling = None if best_possible is None else sign * float(best_possible)
    means = np.asarray([np.mean(r) for r in replicates])
    flipped = [sign * r for r in replicates]
    law = fit_power_law(n, sign * means, ceiling=ceiling)
    current = int(n.max())
    observed_best = float(sign * means[int(np.argmax(n))])
    cap = MAX_FACTOR * current
    needed = rows_for(law, target)
    needed = needed if needed <= cap else math.inf

    rng = np.random.default_rng(seed)
    boot = _bootstrap(n, flipped, law, target, ceiling, n_boot, rng)
    boot[boot > cap] = math.inf
    unreachable_share = float(np.mean(~np.isfinite(boot))) if boot.size else 0.0
    interval = _interval(boot)

    if observed_best >= target:
        status: PlanStatus = "met"
        rows_needed: int | None = min(current, _ceil(needed) if math.isfinite(needed) else current)
        additional: int | None = 0
    elif math.isfinite(needed):
        status, rows_needed = "reachable", max(_ceil(needed), current)
        additional = rows_needed - current
    else:
        status, rows_needed, additional = "unreachable", None, None
    hours = None if hours_per_label is None or additional is None else additional * hours_per_label
    hours_interval: tuple[float | None, float | None] = (None, None)
    if hours_per_label is not None:
        hours_interval = tuple(  # type: ignore[assignment]
            None if v is None else max(v - current, 0) * hours_per_label for v in interval
        )
    return LabelPlan(
        metric=metric,
        threshold=float(threshold),
        greater_is_better=greater_is_better,
        sizes=tuple(float(v) for v in n),
        scores=tuple(float(v) for v in means),
        asymptote=float(sign * law.a),
        exponent=float(law.c),
        status=status,
        rows_needed=rows_needed,
        interval=interval,
        unreachable_share=round(unreachable_share, 4),
        current_rows=current,
        additional_rows=additional,
        hours=hours,
        hours_interval=hours_interval,
        warning=_warning(
            status, law, sign, threshold, needed, current, unreachable_share, metric, target
        ),
        n_boot=int(boot.size),
    )


def _points(
    sizes: Sequence[float], scores: Sequence[float] | Sequence[Sequence[float]]
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Sizes and the finite replicate scores at each, sorted by size; sizes merged."""
    n = np.asarray(sizes, dtype=float)
    if len(scores) != n.size:
        raise DataError(
            "a learning curve needs one score (or one list of scores) per size",
            expected=f"{n.size} entries",
            received=f"{len(scores)} entries",
        )
    by_size: dict[float, list[float]] = {}
    for size, value in zip(n, scores):
        values = np.atleast_1d(np.asarray(value, dtype=float)).ravel()
        if not np.isfinite(size) or size < 1:
            raise DataError(
                "learning-curve sizes are row counts",
                expected="finite sizes >= 1",
                received=size,
            )
        by_size.setdefault(float(size), []).extend(float(v) for v in values if np.isfinite(v))
    points = sorted((s, np.asarray(v)) for s, v in by_size.items() if v)
    if len(points) < 3:
        raise DataError(
            "a learning curve needs finite scores at three or more training-set sizes to be "
            "extrapolated",
            expected=">= 3 distinct sizes with a finite score",
            received=f"{len(points)} size(s)",
            fix="Measure the metric on more training-set sizes.",
        )
    return np.asarray([s for s, _ in points]), [v for _, v in points]


def _bootstrap(
    n: np.ndarray,
    flipped: list[np.ndarray],
    law: PowerLaw,
    target: float,
    ceiling: float | None,
    n_boot: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """Rows needed under each bootstrap refit (inf when that fit never reaches the target)."""
    replicated = all(r.size >= 2 for r in flipped)
    fitted = law(n)
    residuals = np.asarray([r.mean() for r in flipped]) - fitted
    residuals = residuals - residuals.mean()
    out = []
    for _ in range(max(0, int(n_boot))):
        if replicated:
            sample = np.asarray([rng.choice(r, r.size, replace=True).mean() for r in flipped])
        else:
            sample = fitted + rng.choice(residuals, residuals.size, replace=True)
        try:
            refit = fit_power_law(n, sample, ceiling=ceiling, start=law)
        except DataError:
            continue
        out.append(rows_for(refit, target))
    return np.asarray(out, dtype=float)


def _interval(boot: np.ndarray) -> tuple[int | None, int | None]:
    """The central percentile interval; a side beyond every finite fit is None (unbounded)."""
    if boot.size == 0:
        return (None, None)
    tail = (1.0 - COVERAGE) / 2.0
    low, high = np.quantile(boot, [tail, 1.0 - tail], method="inverted_cdf")  # inf sorts last
    return (
        _ceil(float(low)) if math.isfinite(low) else None,
        _ceil(float(high)) if math.isfinite(high) else None,
    )


def _ceil(value: float) -> int:
    return int(math.ceil(value - 1e-9))


def _warning(
    status: PlanStatus,
    law: PowerLaw,
    sign: float,
    threshold: float,
    needed: float,
    current: int,
    unreachable_share: float,
    metric: str,
    target: float,
) -> str:
    name = metric or "the metric"
    ceiling = sign * law.a
    if status == "unreachable" and law.a > target:
        return (
            f"unreachable in practice: the fitted curve reaches {threshold:g} only beyond "
            f"{MAX_FACTOR:g}x the largest measured training set ({current:,} rows); its ceiling "
            f"is {name} {ceiling:.4g}. Improve the features or the model family, or revisit "
            "the threshold"
        )
    if status == "unreachable":
        return (
            f"unreachable: the fitted curve levels off at {name} {ceiling:.4g}, short of the "
            f"threshold {threshold:g}; more labels of the same kind are unlikely to get there. "
            "Improve the features or the model family, or revisit the threshold"
        )
    if status == "met":
        return f"the largest measured training set ({current:,} rows) already reaches {threshold:g}"
    factor = needed / max(current, 1)
    text = (
        f"an extrapolation to {factor:.1f}x the largest measured training set ({current:,} rows): "
        "learning curves often flatten sooner than the fit says, so treat the number as a rough "
        "guide and re-plan after each labelled batch"
    )
    if factor > FAR_FACTOR:
        text = "far beyond the measured range; " + text
    if unreachable_share > 0.05:
        text += (
            f"; {unreachable_share:.0%} of the bootstrap fits never reach the threshold "
            f"(their ceiling is below {threshold:g})"
        )
    return text
