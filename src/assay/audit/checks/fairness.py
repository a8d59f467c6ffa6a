"""Checks on groups of rows: bias in the labels and the size of each slice.

* ``protected_attribute_correlation`` — how the target differs across the groups of
  each protected attribute before any model is trained (pre-training bias):
  base rates, the disparate-impact ratio, Cramér's V and a chi-squared test;
  for regression, group means, eta-squared and a Kruskal-Wallis test.
* ``slice_representation`` — slice levels too small to be evaluated on the held-out
  test set, and levels where a class is nearly absent.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from assay.audit.base import CHECKS, AuditContext, BaseCheck, Finding
from assay.audit.checks.target import _as_float, label_text, positive_class
from assay.config.metrics import CLASSIFICATION_TASKS

__all__ = [
    "ProtectedAttributeCorrelationCheck",
    "SliceRepresentationCheck",
    "slice_levels",
]

#: the four-fifths rule
DISPARATE_IMPACT_LIMIT = 0.8
#: regression: a "medium" effect (Cohen) of the protected attribute on the target
ETA_SQUARED_LIMIT = 0.06
SIGNIFICANCE = 0.05
#: numeric attributes with more distinct values than this are cut into quantile bins
MAX_NUMERIC_LEVELS = 10
N_QUANTILE_BINS = 4
#: the share of rows held out as the sealed test set (the default split.test_size)
TEST_SHARE = 0.2
#: a slice level with fewer rows of some class than this cannot be evaluated on it
MIN_CLASS_ROWS_PER_LEVEL = 5
MISSING_LEVEL = "(missing)"
MAX_LISTED_LEVELS = 10


def slice_levels(series: pd.Series) -> tuple[pd.Series, bool]:
    """The group label of every row, as strings, and whether the column was binned.

    Numbers and dates with more than 10 distinct values are cut into quartile bins
    labelled ``[lo, hi)`` (the last bin closed); missing values form the level
    ``(missing)``.
    """
    missing = series.isna().to_numpy()
    dtype = series.dtype
    is_date = pd.api.types.is_datetime64_any_dtype(dtype)
    numeric = is_date or (
        pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)
    )
    if numeric and series.nunique(dropna=True) > MAX_NUMERIC_LEVELS:
        values = _as_float(series)
        present = values[~missing]
        edges = np.unique(np.quantile(present, np.linspace(0.0, 1.0, N_QUANTILE_BINS + 1)))
        shown = [_edge_text(e, is_date) for e in edges]
        names = [
            f"[{shown[i]}, {shown[i + 1]}{']' if i == len(edges) - 2 else ')'}"
            for i in range(len(edges) - 1)
        ]
        codes = np.clip(np.searchsorted(edges[1:-1], present, side="right"), 0, len(names) - 1)
        labels = np.empty(len(values), dtype=object)
        labels[~missing] = np.asarray(names, dtype=object)[codes]
        labels[missing] = MISSING_LEVEL
        return pd.Series(labels, index=series.index, dtype=object), True
    labels = _as_text(series)
    labels[missing] = MISSING_LEVEL
    return pd.Series(labels, index=series.index, dtype=object), False


def _edge_text(edge: float, is_date: bool) -> str:
    if not is_date:
        return f"{edge:g}"
    stamp = pd.Timestamp(round(edge * 1e9))
    return str(stamp.date()) if stamp == stamp.normalize() else stamp.isoformat(timespec="minutes")


def _as_text(series: pd.Series) -> np.ndarray:
    """Display labels of every value (``label_text`` once per distinct value)."""
    codes, uniques = pd.factorize(series)
    names = np.array([label_text(u) for u in uniques] + [MISSING_LEVEL], dtype=object)
    return np.asarray(names[codes], dtype=object)


def _columns_present(ctx: AuditContext, names: list[str]) -> list[str]:
    return [c for c in dict.fromkeys(names) if c in ctx.frame.columns and c != ctx.target]


def _has_target(ctx: AuditContext) -> bool:
    return ctx.target is not None and ctx.task is not None and ctx.target in ctx.frame.columns


def _pct(share: float) -> str:
    return f"{100 * share:.1f}%"


_FAIRNESS_FIX = (
    "The labels already differ by group, so a model trained on them will learn it. Set "
    "fairness.limits in assay.yaml (e.g. disparate_impact_ratio: '>= 0.8') so the gate checks "
    "the trained model, and consider re-weighting rows by group and label or reviewing how the "
    "labels were produced."
)


@CHECKS.register("protected_attribute_correlation")
class ProtectedAttributeCorrelationCheck(BaseCheck):
    """How the target differs across the groups of each protected attribute.

    Classification: the rate of each class per group; the disparate-impact ratio
    (lowest group rate / highest group rate) of the positive class for binary
    targets (1 / True / "yes" when present, else the minority class), of each class
    for multiclass (the smallest is reported); Cramér's V and a chi-squared test.
    Regression: the mean target per group, eta-squared and a Kruskal-Wallis test.
    Groups smaller than ``ctx.min_slice_size`` are shown but left out of the ratio.
    A ratio below 0.8 (the four-fifths rule) that is statistically significant
    warns; everything else is reported as info so the ratio is always visible.
    """

    def applies(self, ctx: AuditContext) -> bool:
        return _has_target(ctx) and bool(_columns_present(ctx, list(ctx.protected)))

    def run(self, ctx: AuditContext) -> list[Finding]:
        target = str(ctx.target)
        series = ctx.frame[target]
        labelled = series.notna().to_numpy()
        y = series[labelled]
        findings: list[Finding] = []
        for column in _columns_present(ctx, list(ctx.protected)):
            groups, binned = slice_levels(ctx.frame[column])
            groups = groups[labelled]
            if groups.nunique() < 2:
                findings.append(
                    Finding(
                        check=self.alias,
                        severity="info",
                        columns=(column,),
                        message=(
                            f"protected attribute '{column}' has a single group among labelled "
                            "rows: there is nothing to compare"
                        ),
                        evidence={"groups": sorted(groups.unique().tolist())},
                        fix="Check that the column holds the attribute you meant.",
                    )
                )
                continue
            if ctx.task in CLASSIFICATION_TASKS:
                finding = self._classification(ctx, column, groups, y, binned)
            else:
                finding = self._regression(ctx, column, groups, y, binned)
            if finding is not None:
                findings.append(finding)
        return findings

    def _classification(
        self, ctx: AuditContext, column: str, groups: pd.Series, y: pd.Series, binned: bool
    ) -> Finding | None:
        from scipy.stats import chi2_contingency

        target = str(ctx.target)
        y_text = pd.Series(_as_text(y), index=y.index)
        table = pd.crosstab(groups, y_text)
        if table.shape[1] < 2:
            return None
        sizes = table.sum(axis=1)
        rates = table.div(sizes, axis=0)
        eligible = sizes[sizes >= ctx.min_slice_size].index
        if len(eligible) < 2:
            eligible = sizes.index
        chi2, p_value, _, _ = chi2_contingency(table.to_numpy(), correction=False)
        n = float(sizes.sum())
        cramers_v = float(np.sqrt(chi2 / (n * (min(table.shape) - 1))))

        if table.shape[1] == 2:
            candidates = [label_text(positive_class(y))]
        else:
            candidates = list(table.columns)
        ratios: dict[str, float] = {}
        for label in candidates:
            class_rates = rates.loc[eligible, label]
            top = float(class_rates.max())
            if top > 0:
                ratios[label] = float(class_rates.min()) / top
        if not ratios:
            return None
        worst = min(ratios, key=lambda k: ratios[k])
        ratio = ratios[worst]
        worst_rates = rates.loc[eligible, worst]
        low_group, high_group = str(worst_rates.idxmin()), str(worst_rates.idxmax())
        low_rate, high_rate = float(worst_rates.min()), float(worst_rates.max())

        evidence: dict[str, Any] = {
            "groups": {
                str(g): {
                    "rows": int(sizes[g]),
                    "rates": {str(c): round(float(rates.loc[g, c]), 6) for c in table.columns},
                }
                for g in table.index
            },
            "class": worst,
            "disparate_impact_ratio": round(ratio, 6),
            "lowest_group": low_group,
            "highest_group": high_group,
            "cramers_v": round(cramers_v, 6),
            "chi2_p_value": float(p_value),
            "binned": binned,
            "excluded_small_groups": sorted(str(g) for g in sizes.index if g not in eligible),
        }
        if table.shape[1] == 2:
            evidence["positive_class"] = worst
        else:
            evidence["per_class_ratio"] = {k: round(v, 6) for k, v in ratios.items()}
        rates_text = (
            f"the rate of '{target}' = '{worst}' is {_pct(low_rate)} for '{low_group}' and "
            f"{_pct(high_rate)} for '{high_group}'"
        )
        if ratio < DISPARATE_IMPACT_LIMIT and p_value < SIGNIFICANCE:
            return Finding(
                check=self.alias,
                severity="warn",
                columns=(column,),
                message=(
                    f"protected attribute '{column}': {rates_text}: disparate-impact ratio "
                    f"{ratio:.2f}, below the four-fifths rule ({DISPARATE_IMPACT_LIMIT})"
                ),
                evidence=evidence,
                fix=_FAIRNESS_FIX,
            )
        note = (
            f"; below {DISPARATE_IMPACT_LIMIT} but not statistically significant at these group "
            f"sizes (chi-squared p = {p_value:.2g})"
            if ratio < DISPARATE_IMPACT_LIMIT
            else ""
        )
        return Finding(
            check=self.alias,
            severity="info",
            columns=(column,),
            message=(
                f"protected attribute '{column}': disparate-impact ratio {ratio:.2f} ({rates_text}); "
                f"Cramér's V {cramers_v:.2f}{note}"
            ),
            evidence=evidence,
            fix="Nothing required; set fairness.limits in assay.yaml to hold the model to a bound.",
        )

    def _regression(
        self, ctx: AuditContext, column: str, groups: pd.Series, y: pd.Series, binned: bool
    ) -> Finding | None:
        from scipy.stats import kruskal

        target = str(ctx.target)
        values = y.to_numpy(dtype=np.float64)
        frame = pd.DataFrame({"g": groups.to_numpy(), "y": values})
        stats = frame.groupby("g", sort=True)["y"].agg(["size", "mean"])
        total_ss = float(np.sum((values - values.mean()) ** 2))
        between_ss = float(np.sum(stats["size"] * (stats["mean"] - values.mean()) ** 2))
        eta_squared = between_ss / total_ss if total_ss > 0 else 0.0
        samples = [g["y"].to_numpy() for _, g in frame.groupby("g", sort=True) if len(g) > 1]
        try:
            p_value = float(kruskal(*samples).pvalue) if len(samples) >= 2 else 1.0
        except ValueError:  # every value identical (older scipy)
            p_value = 1.0
        if not np.isfinite(p_value):  # every value identical: scipy gives NaN, not JSON
            p_value = 1.0
        low_group, high_group = str(stats["mean"].idxmin()), str(stats["mean"].idxmax())
        evidence: dict[str, Any] = {
            "groups": {
                str(g): {"rows": int(r["size"]), "mean": round(float(r["mean"]), 6)}
                for g, r in stats.iterrows()
            },
            "eta_squared": round(eta_squared, 6),
            "kruskal_p_value": p_value,
            "lowest_group": low_group,
            "highest_group": high_group,
            "binned": binned,
        }
        means_text = (
            f"mean '{target}' is {stats['mean'].min():.4g} for '{low_group}' and "
            f"{stats['mean'].max():.4g} for '{high_group}'"
        )
        if eta_squared >= ETA_SQUARED_LIMIT and p_value < SIGNIFICANCE:
            return Finding(
                check=self.alias,
                severity="warn",
                columns=(column,),
                message=(
                    f"protected attribute '{column}' explains {_pct(eta_squared)} of the variance "
                    f"of '{target}' (eta-squared; {means_text})"
                ),
                evidence=evidence,
                fix=_FAIRNESS_FIX,
            )
        return Finding(
            check=self.alias,
            severity="info",
            columns=(column,),
            message=(
                f"protected attribute '{column}': eta-squared {eta_squared:.3f} ({means_text}; "
                f"Kruskal-Wallis p = {p_value:.2g})"
            ),
            evidence=evidence,
            fix="Nothing required; set fairness.limits in assay.yaml to hold the model to a bound.",
        )


@CHECKS.register("slice_representation")
class SliceRepresentationCheck(BaseCheck):
    """Slice levels too small to evaluate, for every slice and protected attribute.

    A level with fewer than ``ctx.min_slice_size`` rows leaves only about a fifth
    of them in the sealed test set; for classification, a level where some class
    has fewer than 5 rows cannot have that class's recall measured on it.
    Numeric columns with many values are cut into quartiles first.
    """

    def applies(self, ctx: AuditContext) -> bool:
        return bool(ctx.slices or ctx.protected)

    def run(self, ctx: AuditContext) -> list[Finding]:
        findings: list[Finding] = []
        names = list(dict.fromkeys([*ctx.slices, *ctx.protected]))
        absent = [c for c in names if c not in ctx.frame.columns]
        if absent:
            findings.append(
                Finding(
                    check=self.alias,
                    severity="warn",
                    columns=tuple(absent),
                    message=(
                        "slice or protected column(s) not in the data: "
                        + ", ".join(f"'{c}'" for c in absent)
                        + "; they cannot be evaluated"
                    ),
                    evidence={"missing_columns": absent},
                    fix="Fix the names in assay.yaml (slices, fairness.protected) or add the columns.",
                )
            )
        classification = _has_target(ctx) and ctx.task in CLASSIFICATION_TASKS
        for column in _columns_present(ctx, names):
            finding = self._one(ctx, column, classification)
            if finding is not None:
                findings.append(finding)
        return findings

    def _one(self, ctx: AuditContext, column: str, classification: bool) -> Finding | None:
        levels, binned = slice_levels(ctx.frame[column])
        counts = levels.value_counts()
        small = counts[counts < ctx.min_slice_size].sort_values()
        expected = {str(k): round(int(v) * TEST_SHARE) for k, v in small.items()}
        sparse: dict[str, dict[str, int]] = {}
        if classification:
            target = ctx.frame[str(ctx.target)]
            labelled = target.notna().to_numpy()
            y_text = _as_text(target[labelled])
            table = pd.crosstab(levels[labelled].to_numpy(), y_text)
            for level, row in table.iterrows():
                if level in small.index:
                    continue
                few = {str(c): int(v) for c, v in row.items() if v < MIN_CLASS_ROWS_PER_LEVEL}
                if few:
                    sparse[str(level)] = few
        if small.empty and not sparse:
            return None
        parts = []
        if not small.empty:
            listed = ", ".join(
                f"'{k}' ({int(v)} rows, ~{expected[str(k)]} in the test set)"
                for k, v in small.head(MAX_LISTED_LEVELS).items()
            )
            more = (
                f" and {len(small) - MAX_LISTED_LEVELS} more"
                if len(small) > MAX_LISTED_LEVELS
                else ""
            )
            parts.append(
                f"{len(small)} of {len(counts)} levels have fewer than {ctx.min_slice_size} rows: "
                f"{listed}{more}"
            )
        if sparse:
            items = list(sparse.items())
            listed = ", ".join(
                f"'{level}' (" + ", ".join(f"class '{c}': {v} rows" for c, v in few.items()) + ")"
                for level, few in items[:MAX_LISTED_LEVELS]
            )
            more = (
                f" and {len(items) - MAX_LISTED_LEVELS} more"
                if len(items) > MAX_LISTED_LEVELS
                else ""
            )
            parts.append(
                f"levels with fewer than {MIN_CLASS_ROWS_PER_LEVEL} rows of a class: {listed}{more}"
            )
        return Finding(
            check=self.alias,
            severity="warn",
            columns=(column,),
            message=f"slice '{column}': " + "; ".join(parts),
            evidence={
                "levels": len(counts),
                "small_levels": {str(k): int(v) for k, v in small.items()},
                "expected_test_rows": expected,
                "sparse_classes": sparse,
                "min_slice_size": ctx.min_slice_size,
                "test_share": TEST_SHARE,
                "binned": binned,
            },
            fix=(
                "Collect more rows for these levels, merge them into broader levels, or accept "
                "wide confidence intervals on their metrics (the evaluation reports them)."
            ),
        )
