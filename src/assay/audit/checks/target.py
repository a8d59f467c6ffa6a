"""Checks on the target: class balance, label errors and target leakage.

* ``class_imbalance`` — the minority class share and what it does to accuracy;
  classes too small to stratify or evaluate.
* ``label_errors`` — rows whose given label a cross-validated model finds
  implausible (cleanlab's confident learning on out-of-fold probabilities).
* ``target_leakage`` — a feature, or the fact that it is missing, that alone
  predicts the target almost perfectly, or a value or range of one feature that
  implies a single class on a material share of rows (a *pure region*, e.g.
  ``cancellation_fee_paid > 0``): usually a field recorded after the outcome.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from assay.audit.base import CHECKS, AuditContext, BaseCheck, Finding, Severity
from assay.config.metrics import CLASSIFICATION_TASKS
from assay.data.purity import PureRegion, purest_region
from assay.data.values import native

__all__ = [
    "ClassImbalanceCheck",
    "LabelErrorsCheck",
    "TargetLeakageCheck",
    "label_text",
    "leakage_findings",
    "positive_class",
]

#: binary thresholds on the minority share; multiclass scales them by 2 / n_classes
IMBALANCE_WARN = 0.10
IMBALANCE_INFO = 0.30
#: a class with fewer rows cannot be spread over train, validation, test and CV folds
MIN_CLASS_ROWS = 10

#: label errors: a warning needs both an estimated error share above this ...
LABEL_ERRORS_WARN_SHARE = 0.02
#: ... and this much disagreement among the quarter of rows the model is surest about
LABEL_ERRORS_CONFIDENT_DISAGREEMENT = 0.04
LABEL_ERRORS_CONFIDENT_FRACTION = 0.25
#: ... where the model must leave at most half the disagreement the class shares alone leave
LABEL_ERRORS_SKILL = 0.5
#: below this estimated share nothing is reported
LABEL_ERRORS_INFO_SHARE = 0.005
#: rows listed as likely errors: the given label's probability is this far below another class's
LABEL_ERRORS_MARGIN = 0.8
LABEL_ERRORS_FOLDS = 5
#: listed row positions are capped so a report stays readable
MAX_LISTED_ROWS = 1000

LEAKAGE_BLOCK = 0.98
LEAKAGE_WARN = 0.90
MISSINGNESS_BLOCK = 0.90
LEAKAGE_MAX_ROWS = 100_000
LEAKAGE_FOLDS = 5
#: pseudo-count pulling a bin's target rate towards the overall rate
LEAKAGE_SMOOTHING = 10.0
#: R^2 suffers from shrinkage where AUC (a ranking) does not, so bin means shrink less
REGRESSION_SMOOTHING = 1.0
#: a pure region (see assay.data.purity) blocks when it holds at least this share of the
#: rows, at least this many rows, and not one row of another class; others warn. Small
#: curated tables (iris, wine) have natural clusters of 50 rows that pure.
PURE_REGION_BLOCK_SHARE = 0.10
PURE_REGION_BLOCK_ROWS = 100

_POSITIVE_NAMES = frozenset({"1", "true", "yes", "y", "positive", "pos"})

_LEAK_FIX = (
    "Drop it (add it to data.drop in assay.yaml) if it is only known after the outcome; "
    "otherwise confirm it is available at prediction time."
)


def positive_class(values: pd.Series) -> Any:
    """The positive class of a binary target.

    The label 1 / True / "yes" (or "true", "positive", "y") when present, else the
    minority class (the later one in sorted order on a tie).
    """
    labels = list(pd.unique(values.dropna()))
    for label in labels:
        if isinstance(label, (bool, np.bool_)):
            if label:
                return label
            continue
        if str(label).strip().lower() in _POSITIVE_NAMES or _is_one(label):
            return label
    counts = values.value_counts(dropna=True)
    smallest = counts[counts == counts.min()].index
    return max(smallest, key=_sort_key)


def _is_one(label: Any) -> bool:
    try:
        return float(label) == 1.0
    except (TypeError, ValueError):
        return False


def _sort_key(label: Any) -> tuple[int, Any]:
    if isinstance(label, (int, float, np.integer, np.floating)) and not isinstance(label, bool):
        return (0, float(label))
    return (1, str(label))


def label_text(label: Any) -> str:
    """A label for display: ``1`` rather than ``1.0`` when a float holds an integer."""
    if isinstance(label, (float, np.floating)) and float(label).is_integer():
        return str(int(label))
    return str(native(label))


def _labelled_target(ctx: AuditContext) -> pd.Series:
    """The target without missing values; the index holds positions into the frame."""
    series = ctx.frame[str(ctx.target)]
    present = series.notna().to_numpy()
    out = series[present]
    out.index = pd.RangeIndex(len(series))[present]
    return out


def _has_target(ctx: AuditContext) -> bool:
    return ctx.target is not None and ctx.task is not None and ctx.target in ctx.frame.columns


def _is_classification(ctx: AuditContext) -> bool:
    return _has_target(ctx) and ctx.task in CLASSIFICATION_TASKS


def _pct(share: float) -> str:
    return f"{100 * share:.1f}%"


@CHECKS.register("class_imbalance")
class ClassImbalanceCheck(BaseCheck):
    """The minority class share, its consequence for accuracy, and classes too small to use.

    The minority share warns below 10% and is reported below 30% for two classes;
    with K classes both thresholds are scaled by 2/K, so a balanced K-class target
    is never flagged.
    """

    def applies(self, ctx: AuditContext) -> bool:
        return _is_classification(ctx)

    def run(self, ctx: AuditContext) -> list[Finding]:
        target = str(ctx.target)
        y = _labelled_target(ctx)
        counts = y.value_counts()
        n = int(counts.sum())
        if n == 0:
            return []
        shares = counts / n
        evidence_counts = {label_text(k): int(v) for k, v in counts.items()}
        if len(counts) < 2:
            only = label_text(counts.index[0])
            return [
                Finding(
                    check=self.alias,
                    severity="block",
                    columns=(target,),
                    message=(
                        f"the target '{target}' has a single class ('{only}') in {n:,} labelled "
                        "rows: there is nothing to learn"
                    ),
                    evidence={"counts": evidence_counts},
                    fix="Check the data extract: rows of the other classes are missing.",
                )
            ]
        findings: list[Finding] = []
        k = len(counts)
        scale = 2.0 / k
        minority, majority = counts.index[-1], counts.index[0]
        min_share, max_share = float(shares.iloc[-1]), float(shares.iloc[0])
        evidence: dict[str, Any] = {
            "counts": evidence_counts,
            "shares": {label_text(c): round(float(s), 6) for c, s in shares.items()},
            "minority_class": label_text(minority),
            "minority_share": round(min_share, 6),
            "majority_baseline_accuracy": round(max_share, 6),
            "imbalance_ratio": round(float(counts.iloc[0] / counts.iloc[-1]), 4),
            "n_classes": k,
        }
        if min_share < IMBALANCE_INFO * scale:
            severity: Severity = "warn" if min_share < IMBALANCE_WARN * scale else "info"
            metrics = (
                "balanced accuracy, PR AUC or F1" if k == 2 else "balanced accuracy or F1 macro"
            )
            findings.append(
                Finding(
                    check=self.alias,
                    severity=severity,
                    columns=(target,),
                    message=(
                        f"the minority class '{label_text(minority)}' is {_pct(min_share)} of "
                        f"{n:,} labelled rows ({int(counts.iloc[-1]):,} rows); accuracy of always "
                        f"predicting '{label_text(majority)}' would be {_pct(max_share)}"
                    ),
                    evidence=evidence,
                    fix=(
                        f"Judge models by {metrics} (metrics.primary in assay.yaml), not accuracy; "
                        "use class weights or tune the decision threshold on validation data."
                    ),
                )
            )
        rare = counts[counts < MIN_CLASS_ROWS]
        if not rare.empty:
            listed = ", ".join(f"'{label_text(c)}' ({int(v)} rows)" for c, v in rare.items())
            findings.append(
                Finding(
                    check=self.alias,
                    severity="warn",
                    columns=(target,),
                    message=(
                        f"{len(rare)} class(es) of '{target}' have fewer than {MIN_CLASS_ROWS} rows: "
                        f"{listed}; they cannot be stratified over the splits or evaluated"
                    ),
                    evidence={
                        "rare_classes": {label_text(c): int(v) for c, v in rare.items()},
                        "min_rows": MIN_CLASS_ROWS,
                    },
                    fix=(
                        "Collect more examples, merge each into a related class, or drop their "
                        "rows and record that the model does not predict them."
                    ),
                )
            )
        return findings


@CHECKS.register("label_errors")
class LabelErrorsCheck(BaseCheck):
    """Labels a cross-validated model finds implausible, with cleanlab's confident learning.

    Out-of-fold probabilities come from a small LightGBM model on the features
    (numbers as they are, categories as codes, dates as timestamps; free text is
    left out) or, for text-classification, from TF-IDF + logistic regression on
    the text. At most ``ctx.label_errors_max_rows`` rows are used (a seeded sample).

    Hard boundary points are flagged by cleanlab even in clean data, so the
    estimated error share alone does not warn: the check also requires that the
    model disagrees with the given label on more than 4% of the quarter of rows it
    is most confident about (random label noise lands there, boundary cases do
    not), and that on those rows it leaves less than half the disagreement the
    class shares alone would (otherwise the features carry too little signal to
    tell noise from ambiguity).

    Subclasses change where the probabilities come from (``_out_of_fold``), which
    rows are checked (``_labelled``), the sample size (``_max_rows``) and what an
    example shows of its row (``_describe_row``).
    """

    def applies(self, ctx: AuditContext) -> bool:
        return _is_classification(ctx)

    def run(self, ctx: AuditContext) -> list[Finding]:
        from cleanlab.count import num_label_issues
        from cleanlab.filter import find_label_issues

        target = str(ctx.target)
        y_all = self._labelled(ctx)
        total = len(y_all)
        max_rows = self._max_rows(ctx)
        sampled = total > max_rows
        if sampled:
            rng = np.random.default_rng(ctx.seed)
            keep = np.sort(rng.choice(total, max_rows, replace=False))
            y_all = y_all.iloc[keep]
        counts = y_all.value_counts()
        too_small = counts[counts < LABEL_ERRORS_FOLDS]
        y = y_all[~y_all.isin(too_small.index)]
        classes = sorted(pd.unique(y), key=_sort_key)
        if len(classes) < 2 or len(y) < 10 * LABEL_ERRORS_FOLDS:
            return []
        labels = pd.Categorical(y, categories=classes).codes.astype(np.int64)
        positions = y.index.to_numpy()
        # a column that leaks the given labels lets the model reproduce every wrong one
        leaking = [f.columns[0] for f in leakage_findings(ctx) if f.severity == "block"]
        pred_probs, method = self._out_of_fold(ctx, positions, labels, leaking)
        if pred_probs is None:
            return []

        n = len(labels)
        estimated = int(num_label_issues(labels, pred_probs))
        issues = find_label_issues(labels, pred_probs)
        given_p = pred_probs[np.arange(n), labels]
        others = pred_probs.copy()
        others[np.arange(n), labels] = -1.0
        suggested = others.argmax(axis=1)
        margin = given_p - others.max(axis=1)
        likely = np.flatnonzero(issues & (margin < -LABEL_ERRORS_MARGIN))
        likely = likely[np.argsort(given_p[likely], kind="stable")]

        confident = np.argsort(-pred_probs.max(axis=1), kind="stable")
        confident = confident[: max(1, int(n * LABEL_ERRORS_CONFIDENT_FRACTION))]
        predicted = pred_probs[confident].argmax(axis=1)
        disagreement = float(np.mean(predicted != labels[confident]))
        # what the class shares alone would leave on the same rows: a model without skill
        # (uninformative features, rare class) disagrees about this much without any noise
        priors = np.bincount(labels, minlength=len(classes)) / n
        prior_disagreement = float(np.mean(1.0 - priors[predicted]))

        share = estimated / n
        if share < LABEL_ERRORS_INFO_SHARE and likely.size == 0:
            return []
        noisy = (
            share > LABEL_ERRORS_WARN_SHARE
            and disagreement > LABEL_ERRORS_CONFIDENT_DISAGREEMENT
            and disagreement < LABEL_ERRORS_SKILL * prior_disagreement
        )
        examples = [
            {
                "row": int(positions[i]),
                **self._describe_row(ctx, int(positions[i])),
                "given": label_text(classes[labels[i]]),
                "suggested": label_text(classes[suggested[i]]),
                "given_probability": round(float(given_p[i]), 4),
            }
            for i in likely[:10]
        ]
        evidence: dict[str, Any] = {
            "method": method,
            "rows_checked": n,
            "labelled_rows": total,
            "sampled": sampled,
            "estimated_errors": estimated,
            "estimated_share": round(share, 6),
            "flagged_by_cleanlab": int(issues.sum()),
            "likely_errors": int(likely.size),
            "rows": [int(positions[i]) for i in likely[:MAX_LISTED_ROWS]],
            "examples": examples,
            "confident_disagreement": round(disagreement, 6),
            "confident_prior_disagreement": round(prior_disagreement, 6),
            "confident_rows": int(confident.size),
            "excluded_classes": {label_text(c): int(v) for c, v in too_small.items()},
            "left_out_leaking_columns": leaking,
        }
        sample_note = f" (a seeded sample of {n:,} of {total:,} labelled rows)" if sampled else ""
        listed = ", ".join(
            f"row {e['row']}: '{e['given']}' -> '{e['suggested']}'" for e in examples[:3]
        )
        severity: Severity
        if noisy:
            message = (
                f"about {_pct(share)} of the labels of '{target}' look wrong ({estimated:,} of "
                f"{n:,} rows{sample_note}); even on the quarter of rows the model is surest about, "
                f"{_pct(disagreement)} of the given labels disagree with it. Either those labels "
                "are wrong, or the outcome is partly random given these features; confident "
                "learning cannot tell the two apart"
            )
            fix = (
                "Review the listed rows (evidence.rows): correct labels that are wrong, or check "
                "how labels are produced. If they are right, the outcome is noisy given the "
                "features (a delay, a click): expect a metric ceiling, and look for features "
                "that explain it. Either way, noise caps every model's metrics."
            )
            severity = "warn"
        else:
            message = (
                f"cleanlab estimates {estimated:,} possible label errors in '{target}' "
                f"({_pct(share)} of {n:,} rows{sample_note}); they cannot be told apart from the "
                "model's own uncertainty (hard or ambiguous rows), so they are not a warning"
            )
            fix = "Nothing required; spot-check the listed rows if labels are produced by hand."
            severity = "info"
        if listed:
            message += f"; e.g. {listed}"
        if leaking:
            shown = ", ".join(f"'{c}'" for c in leaking)
            message += f" (the model left out {shown}: target leakage would hide wrong labels)"
        return [
            Finding(
                check=self.alias,
                severity=severity,
                columns=(target,),
                message=message,
                evidence=evidence,
                fix=fix,
            )
        ]

    def _labelled(self, ctx: AuditContext) -> pd.Series:
        """The labels to check, indexed by row position (default: every labelled row)."""
        return _labelled_target(ctx)

    def _max_rows(self, ctx: AuditContext) -> int:
        """How many labelled rows are used at most (a seeded sample beyond)."""
        return ctx.label_errors_max_rows

    def _describe_row(self, ctx: AuditContext, position: int) -> dict[str, Any]:
        """What an example shows of its row besides the labels (nothing by default)."""
        return {}

    def _out_of_fold(
        self, ctx: AuditContext, positions: np.ndarray, labels: np.ndarray, leaking: list[str]
    ) -> tuple[np.ndarray | None, str]:
        """Out-of-fold class probabilities for ``labels`` (None: nothing to fit) and how."""
        from sklearn.model_selection import StratifiedKFold, cross_val_predict

        cv = StratifiedKFold(n_splits=LABEL_ERRORS_FOLDS, shuffle=True, random_state=ctx.seed)
        rows = ctx.frame.iloc[positions]
        features = [c for c in ctx.features if c not in leaking]
        left_out = (
            f" (left out as target leakage: {', '.join(leaking)})" if leaking else ""
        )
        text_columns = [c for c in features if ctx.kind(c) == "text"]
        if ctx.task == "text-classification" and text_columns:
            from sklearn.feature_extraction.text import TfidfVectorizer
            from sklearn.linear_model import LogisticRegression
            from sklearn.pipeline import make_pipeline

            text = rows[text_columns].fillna("").astype(str).agg(" ".join, axis=1).to_numpy()
            model = make_pipeline(
                TfidfVectorizer(
                    sublinear_tf=True, min_df=2, ngram_range=(1, 2), max_features=50_000
                ),
                LogisticRegression(max_iter=1000),
            )
            probs = cross_val_predict(model, text, labels, cv=cv, method="predict_proba")
            return probs, (
                f"cleanlab confident learning on {LABEL_ERRORS_FOLDS}-fold out-of-fold "
                f"probabilities of TF-IDF + logistic regression on {', '.join(text_columns)}"
                f"{left_out}"
            )
        columns = [c for c in features if ctx.kind(c) != "text"]
        if not columns:
            return None, ""
        from lightgbm import LGBMClassifier

        matrix = _numeric_matrix(rows, columns)
        model = LGBMClassifier(
            n_estimators=100,
            num_leaves=15,
            learning_rate=0.1,
            min_child_samples=20,
            random_state=ctx.seed,
            n_jobs=1,
            verbose=-1,
        )
        probs = cross_val_predict(model, matrix, labels, cv=cv, method="predict_proba")
        return probs, (
            f"cleanlab confident learning on {LABEL_ERRORS_FOLDS}-fold out-of-fold probabilities "
            f"of LightGBM (100 trees) on {len(columns)} features{left_out}"
        )


def _numeric_matrix(rows: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """Numbers as they are, categories as integer codes, dates as seconds; NaN stays NaN."""
    out = np.empty((len(rows), len(columns)), dtype=np.float64)
    for j, name in enumerate(columns):
        out[:, j] = _as_float(rows[name])
    return out


def _as_float(series: pd.Series) -> np.ndarray:
    """Numbers as floats, dates as seconds, anything else as sorted level codes; NaN if missing."""
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        values = series.to_numpy(dtype="datetime64[ns]").astype(np.int64).astype(np.float64)
        values[series.isna().to_numpy()] = np.nan
        return np.asarray(values / 1e9, dtype=np.float64)
    if pd.api.types.is_bool_dtype(series.dtype) or pd.api.types.is_numeric_dtype(series.dtype):
        return np.asarray(series.to_numpy(dtype=np.float64, na_value=np.nan), dtype=np.float64)
    codes, _ = pd.factorize(series, sort=True)
    values = codes.astype(np.float64)
    values[codes < 0] = np.nan
    return np.asarray(values, dtype=np.float64)


# --------------------------------------------------------------------------- leakage


@CHECKS.register("target_leakage")
class TargetLeakageCheck(BaseCheck):
    """A feature that alone predicts the target almost perfectly, or whose missingness does.

    Each feature is scored on its own, on a seeded sample of at most 100,000 rows:
    its values are binned (quantile bins for numbers and dates, one bin per level
    for categories, a bin for missing) and each bin is replaced by its target rate
    (or mean) computed on the other folds. The out-of-fold ROC AUC (macro
    one-vs-rest for multiclass) or R^2 of that encoding is the score: >= 0.98
    blocks, >= 0.90 warns. Because the encoding is out-of-fold, an ID-like column
    with a level per row scores 0.5, not 1. Separately, the ROC AUC of the
    "is missing" indicator >= 0.90 blocks.

    For classification, each feature (but free text and identifiers) is also
    searched for a *pure region* (:mod:`assay.data.purity`): a value, a side of a
    threshold, or missing / present, that holds at least 2% of the rows of which
    at least 99% are one class, far above its base rate, beyond chance (exact
    binomial test, Bonferroni-corrected) and, for a threshold, with a sharp edge.
    A partial leak (a fee only some leavers pay) hides in a moderate overall score
    but shows as such a region. A region of at least 10% of the rows (and 100 rows)
    without one row of another class blocks; a smaller or near-pure one warns. The region is
    added to the evidence (``pure_region``) of the column's finding.
    """

    def applies(self, ctx: AuditContext) -> bool:
        if not _has_target(ctx) or not ctx.features:
            return False
        if ctx.task in CLASSIFICATION_TASKS:
            return True
        return bool(pd.api.types.is_numeric_dtype(ctx.frame[str(ctx.target)].dtype))

    def run(self, ctx: AuditContext) -> list[Finding]:
        return leakage_findings(ctx)


def leakage_findings(ctx: AuditContext) -> list[Finding]:
    """The ``target_leakage`` findings on ``ctx``, scanned once and shared with other checks."""
    if not TargetLeakageCheck().applies(ctx):
        return []
    return list(ctx.shared("target.leakage", lambda: _scan_leakage(ctx)))


def _scan_leakage(ctx: AuditContext) -> tuple[Finding, ...]:
    target = str(ctx.target)
    y_series = _labelled_target(ctx)
    total = len(y_series)
    sampled = total > LEAKAGE_MAX_ROWS
    rng = np.random.default_rng(ctx.seed)
    if sampled:
        keep = np.sort(rng.choice(total, LEAKAGE_MAX_ROWS, replace=False))
        y_series = y_series.iloc[keep]
    n = len(y_series)
    if n < 2 * LEAKAGE_FOLDS:
        return ()
    rows = ctx.frame.iloc[y_series.index.to_numpy()]
    folds = rng.permutation(n) % LEAKAGE_FOLDS
    classification = ctx.task in CLASSIFICATION_TASKS
    if classification:
        classes = sorted(pd.unique(y_series), key=_sort_key)
        if len(classes) < 2:
            return ()
        y = pd.Categorical(y_series, categories=classes).codes.astype(np.int64)
        positive = classes.index(positive_class(y_series)) if len(classes) == 2 else None
        metric = "roc_auc" if len(classes) == 2 else "roc_auc_ovr_macro"
        n_bins = 50
    else:
        y_float = y_series.to_numpy(dtype=np.float64)
        metric, n_bins = "r2", 100
    n_bins = max(2, min(n_bins, n // 20))
    sample_note = f"a seeded sample of {n:,} of {total:,} rows" if sampled else f"{n:,} rows"

    findings: list[Finding] = []
    skip_regions = _not_for_regions(ctx) if classification else set()
    for column in ctx.features:
        series = rows[column]
        region: PureRegion | None = None
        if classification and column not in skip_regions:
            region = purest_region(series, y, [label_text(c) for c in classes], name=column)
        codes = _bin_codes(series, n_bins)
        if classification:
            score = _oof_auc(codes, y, len(classes), folds, positive)
        else:
            score = _oof_r2(codes, y_float, folds)
        missing = series.isna().to_numpy()
        missing_score: float | None = None
        if 0 < missing.sum() < n:
            missing_score = (
                _missing_auc(missing, y, len(classes))
                if classification
                else _folded(_rank_auc(missing, y_float))
            )
        evidence: dict[str, Any] = {
            "score": round(score, 6),
            "metric": metric,
            "method": (
                f"out-of-fold ({LEAKAGE_FOLDS} folds) target-{'rate' if classification else 'mean'}"
                f" encoding of up to {n_bins} bins of this column alone, on {sample_note}"
            ),
            "rows": n,
            "sampled": sampled,
        }
        if missing_score is not None:
            evidence["missing_indicator_auc"] = round(missing_score, 6)
            evidence["missing_share"] = round(float(missing.mean()), 6)
        metric_name = "R^2" if metric == "r2" else "ROC AUC"
        severity: Severity
        if missing_score is not None and missing_score >= MISSINGNESS_BLOCK:
            severity = "block"
            message = (
                f"whether '{column}' is missing predicts '{target}' almost perfectly "
                f"(ROC AUC {missing_score:.3f} of the missing indicator): the field is "
                "probably filled in only after the outcome"
            )
        elif score >= LEAKAGE_BLOCK:
            severity = "block"
            message = (
                f"feature '{column}' alone predicts '{target}' almost perfectly "
                f"(out-of-fold {metric_name} {score:.3f}): it is probably recorded after "
                "the outcome or derived from it"
            )
        elif score >= LEAKAGE_WARN:
            severity = "warn"
            message = (
                f"feature '{column}' alone predicts '{target}' suspiciously well "
                f"(out-of-fold {metric_name} {score:.3f})"
            )
        elif region is not None:
            severity = _region_severity(region)
            message = (
                f"'{region.region}' implies '{target}' = '{region.label}': "
                f"{_pct(region.purity)} of its {region.rows:,} rows ({_pct(region.share)} of "
                f"{sample_note}) against a base rate of {_pct(region.base_rate)}; "
                f"'{column}' is probably filled in only after the outcome for some rows "
                f"(out-of-fold {metric_name} of the whole column {score:.3f})"
            )
        else:
            continue
        if region is not None:
            evidence["pure_region"] = region.to_dict()
            if not message.startswith(f"'{region.region}'"):
                message += (
                    f"; '{region.region}' ({_pct(region.share)} of rows) is "
                    f"{_pct(region.purity)} '{region.label}'"
                )
            if _region_severity(region) == "block":
                severity = "block"
        findings.append(
            Finding(
                check=TargetLeakageCheck.alias,
                severity=severity,
                columns=(column,),
                message=message,
                evidence=evidence,
                fix=_LEAK_FIX,
            )
        )
    return tuple(findings)


def _not_for_regions(ctx: AuditContext) -> set[str]:
    """Columns not searched for pure regions: free text, and identifiers (id_like_column's)."""
    from assay.audit.checks.quality import _id_like_columns

    text = {c for c in ctx.features if ctx.kind(c) == "text"}
    return text | set(_id_like_columns(ctx))


def _region_severity(region: PureRegion) -> Severity:
    """Block a large region without one contrary row; warn on smaller or near-pure ones.

    A region that large and that clean is what a field recorded after the outcome
    leaves; a smaller one may be a genuinely decisive value, so it asks for a look.
    """
    large = region.share >= PURE_REGION_BLOCK_SHARE and region.rows >= PURE_REGION_BLOCK_ROWS
    if large and region.contrary_rows == 0:
        return "block"
    return "warn"


def _bin_codes(series: pd.Series, n_bins: int) -> np.ndarray:
    """Integer bin codes 0..B-1: quantile bins for numbers and dates, levels otherwise.

    Missing values get a code of their own (the last one).
    """
    dtype = series.dtype
    numeric = (
        pd.api.types.is_numeric_dtype(dtype)
        or pd.api.types.is_bool_dtype(dtype)
        or pd.api.types.is_datetime64_any_dtype(dtype)
    )
    if numeric:
        values = _as_float(series)
        present = np.isfinite(values)
        codes = np.zeros(len(values), dtype=np.int64)
        if present.any():
            finite = values[present]
            distinct = np.unique(finite)
            if distinct.size <= n_bins:
                codes[present] = np.searchsorted(distinct, finite)
            else:
                inner = np.linspace(0.0, 1.0, n_bins + 1)[1:-1]
                edges = np.unique(np.quantile(finite, inner))
                codes[present] = np.searchsorted(edges, finite, side="right")
        codes[~present] = codes[present].max() + 1 if present.any() else 0
        return codes
    factorized, _ = pd.factorize(series)
    levels = np.asarray(factorized, dtype=np.int64)
    levels[levels < 0] = levels.max() + 1
    return levels


def _oof_rates(codes: np.ndarray, y: np.ndarray, k: int, folds: np.ndarray) -> np.ndarray:
    """Per row, the class rates of its bin measured on the other folds (smoothed)."""
    n_codes = int(codes.max()) + 1
    cells = codes * k + y
    total = np.bincount(cells, minlength=n_codes * k).reshape(n_codes, k).astype(np.float64)
    prior_all = np.bincount(y, minlength=k).astype(np.float64)
    out = np.empty((len(y), k), dtype=np.float64)
    for f in range(LEAKAGE_FOLDS):
        held = folds == f
        if not held.any():
            continue
        held_counts = np.bincount(cells[held], minlength=n_codes * k).reshape(n_codes, k)
        train = total - held_counts
        prior = prior_all - np.bincount(y[held], minlength=k)
        prior = prior / max(prior.sum(), 1.0)
        rates = (train + LEAKAGE_SMOOTHING * prior) / (
            train.sum(axis=1, keepdims=True) + LEAKAGE_SMOOTHING
        )
        out[held] = rates[codes[held]]
    return out


def _oof_auc(
    codes: np.ndarray, y: np.ndarray, k: int, folds: np.ndarray, positive: int | None
) -> float:
    """Out-of-fold ROC AUC of the bin encoding (macro one-vs-rest for k > 2), folded to >= 0.5."""
    rates = _oof_rates(codes, y, k, folds)
    if positive is not None:
        auc = _rank_auc(y == positive, rates[:, positive])
        return max(auc, 1.0 - auc)
    aucs = []
    for c in range(k):
        members = y == c
        if members.all() or not members.any():
            continue
        aucs.append(_rank_auc(members, rates[:, c]))
    return float(np.mean(aucs)) if aucs else 0.5


def _missing_auc(missing: np.ndarray, y: np.ndarray, k: int) -> float:
    """The strongest one-vs-rest ROC AUC of the missing indicator, folded to >= 0.5."""
    best = 0.5
    for c in range(k if k > 2 else 1):
        members = y == c
        if members.all() or not members.any():
            continue
        auc = _rank_auc(members, missing.astype(np.float64))
        best = max(best, auc, 1.0 - auc)
    return best


def _rank_auc(labels: np.ndarray, score: np.ndarray) -> float:
    """ROC AUC of ``score`` for the boolean ``labels``, from ranks (ties count half)."""
    from scipy.stats import rankdata

    labels = labels.astype(bool)
    n_pos = int(labels.sum())
    n_neg = len(labels) - n_pos
    if n_pos == 0 or n_neg == 0:
        return 0.5
    ranks = rankdata(score)
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _folded(auc: float) -> float:
    return max(auc, 1.0 - auc)


def _oof_r2(codes: np.ndarray, y: np.ndarray, folds: np.ndarray) -> float:
    """Out-of-fold R^2 of the bin means (smoothed towards the training mean)."""
    n_codes = int(codes.max()) + 1
    total_sum = np.bincount(codes, weights=y, minlength=n_codes)
    total_n = np.bincount(codes, minlength=n_codes).astype(np.float64)
    pred = np.empty(len(y), dtype=np.float64)
    for f in range(LEAKAGE_FOLDS):
        held = folds == f
        if not held.any():
            continue
        s = total_sum - np.bincount(codes[held], weights=y[held], minlength=n_codes)
        c = total_n - np.bincount(codes[held], minlength=n_codes)
        mean = float(y[~held].mean()) if (~held).any() else float(y.mean())
        means = (s + REGRESSION_SMOOTHING * mean) / (c + REGRESSION_SMOOTHING)
        pred[held] = means[codes[held]]
    sst = float(np.sum((y - y.mean()) ** 2))
    if sst == 0.0:
        return 0.0
    return 1.0 - float(np.sum((y - pred) ** 2)) / sst
