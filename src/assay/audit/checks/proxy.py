"""``protected_proxy``: a feature that predicts a protected attribute on its own.

A model trained without the protected attribute can still discriminate through a column
that stands in for it (a postcode for ethnicity, a first name for gender). Each feature is
scored on how well it alone predicts each protected attribute, out of fold: the
attribute's mean per level of the feature (numbers cut into deciles, missing values a
level of their own) is learnt on two folds and read on the third. A categorical
attribute is scored by the AUC of that estimate for its best-identified group (one
group against the rest); a numeric one (more than ``MAX_LEVELS`` values) by R².
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import r2_score, roc_auc_score
from sklearn.model_selection import KFold

from assay.audit.base import CHECKS, AuditContext, BaseCheck, Finding

__all__ = ["AUC_LIMIT", "R2_LIMIT", "ProtectedProxyCheck"]

#: a feature whose out-of-fold AUC for a protected group reaches this is a possible proxy
AUC_LIMIT = 0.8
#: a feature whose out-of-fold R² for a numeric protected attribute reaches this is one
R2_LIMIT = 0.5
#: protected attributes with more distinct values than this (and numeric) are numeric
MAX_LEVELS = 10
#: numeric features are cut into this many quantile bins
BINS = 10
FOLDS = 3
#: rows scored at most (a seeded sample of larger data)
MAX_ROWS = 20_000
#: a protected group with fewer rows than this is not scored on its own
MIN_GROUP_ROWS = 20
_MISSING = "(missing)"


def _levels(series: pd.Series) -> np.ndarray:
    """The feature's levels as strings: deciles for many-valued numbers and dates."""
    missing = series.isna().to_numpy()
    values: pd.Series = series
    numeric = pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(
        series.dtype)
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        values = pd.Series(series.to_numpy(dtype="datetime64[ns]").astype("int64"),
                           index=series.index).where(~missing)
        numeric = True
    if numeric and values.nunique(dropna=True) > BINS:
        numbers = pd.to_numeric(values, errors="coerce").astype(float)
        finite = np.isfinite(numbers.to_numpy())
        out = numbers.astype(str).to_numpy(dtype=object)  # inf and -inf keep levels of their own
        if finite.any():
            codes = pd.qcut(numbers[finite], BINS, labels=False, duplicates="drop")
            out[finite] = codes.astype(str).to_numpy(dtype=object)
    else:
        out = values.astype(str).to_numpy(dtype=object)
    out[missing] = _MISSING
    return np.asarray(out, dtype=object)


def _out_of_fold_means(levels: np.ndarray, y: np.ndarray, seed: int) -> np.ndarray:
    """Per row, the mean of ``y`` over its feature level in the other folds."""
    estimate = np.empty(len(y), dtype=float)
    for fit, held in KFold(FOLDS, shuffle=True, random_state=seed).split(levels):
        means = pd.Series(y[fit]).groupby(levels[fit]).mean()
        mapped = pd.Series(levels[held]).map(means).to_numpy(dtype=float)
        estimate[held] = np.where(np.isnan(mapped), y[fit].mean(), mapped)
    return estimate


def _categorical_score(levels: np.ndarray, groups: pd.Series, seed: int) -> tuple[float, str] | None:
    """The best one-group-against-the-rest AUC, and the group."""
    best: tuple[float, str] | None = None
    counts = groups.value_counts()
    for group, count in counts.items():
        if count < MIN_GROUP_ROWS or len(groups) - count < MIN_GROUP_ROWS:
            continue
        y = (groups.to_numpy() == group).astype(float)
        auc = float(roc_auc_score(y, _out_of_fold_means(levels, y, seed)))
        if best is None or auc > best[0]:
            best = (auc, str(group))
        if len(counts) == 2:  # the two groups' AUCs are the same
            break
    return best


@CHECKS.register("protected_proxy")
class ProtectedProxyCheck(BaseCheck):
    """A feature that predicts a protected attribute on its own (out-of-fold AUC >= 0.8 for
    one of its groups, or R² >= 0.5 for a numeric attribute): a possible proxy."""

    def applies(self, ctx: AuditContext) -> bool:
        present = [c for c in ctx.protected if c in ctx.frame.columns]
        return bool(present) and any(f not in ctx.protected for f in ctx.features)

    def run(self, ctx: AuditContext) -> list[Finding]:
        frame = ctx.frame
        if len(frame) > MAX_ROWS:
            rng = np.random.default_rng(ctx.seed)
            frame = frame.iloc[np.sort(rng.choice(len(frame), MAX_ROWS, replace=False))]
        features = [f for f in ctx.features if f not in ctx.protected and f != ctx.text_column]
        findings: list[Finding] = []
        for attribute in dict.fromkeys(ctx.protected):
            if attribute not in frame.columns:
                continue
            known = frame[attribute].notna().to_numpy()
            target = frame[attribute][known]
            numeric = (pd.api.types.is_numeric_dtype(target.dtype)
                       and not pd.api.types.is_bool_dtype(target.dtype)
                       and target.nunique() > MAX_LEVELS)
            if len(target) < 2 * MIN_GROUP_ROWS or target.nunique() < 2:
                continue
            for feature in features:
                levels = _levels(frame[feature])[known]
                if len(set(levels)) < 2:
                    continue
                finding = (self._numeric(ctx, feature, attribute, levels, target) if numeric
                           else self._categorical(ctx, feature, attribute, levels, target))
                if finding is not None:
                    findings.append(finding)
        return findings

    def _categorical(self, ctx: AuditContext, feature: str, attribute: str, levels: np.ndarray,
                     target: pd.Series) -> Finding | None:
        scored = _categorical_score(levels, target.astype(str), ctx.seed)
        if scored is None or scored[0] < AUC_LIMIT:
            return None
        auc, group = scored
        return self._finding(feature, attribute, f"out-of-fold AUC {auc:.2f} for the group "
                             f"'{group}'", {"auc": round(auc, 6), "group": group,
                                            "limit": AUC_LIMIT}, len(target))

    def _numeric(self, ctx: AuditContext, feature: str, attribute: str, levels: np.ndarray,
                 target: pd.Series) -> Finding | None:
        y = target.to_numpy(dtype=float)
        r2 = float(r2_score(y, _out_of_fold_means(levels, y, ctx.seed)))
        if r2 < R2_LIMIT:
            return None
        return self._finding(feature, attribute, f"out-of-fold R² {r2:.2f}",
                             {"r2": round(r2, 6), "limit": R2_LIMIT}, len(target))

    def _finding(self, feature: str, attribute: str, score: str, evidence: dict[str, Any],
                 rows: int) -> Finding:
        return Finding(
            check=self.alias,
            severity="warn",
            columns=(feature, attribute),
            message=(f"feature '{feature}' predicts the protected attribute '{attribute}' on its "
                     f"own ({score}): a model can discriminate through it without seeing "
                     f"'{attribute}'"),
            evidence={"feature": feature, "protected": attribute, **evidence, "folds": FOLDS,
                      "rows": rows},
            fix=(f"If '{feature}' is not needed, drop it (data.drop in assay.yaml). If it is, "
                 f"keep it and hold the model to fairness.limits on '{attribute}' (e.g. "
                 "disparate_impact_ratio: '>= 0.8') so the gate measures what it does."),
        )
