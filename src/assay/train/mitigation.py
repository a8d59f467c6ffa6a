"""Fairness mitigation: alternatives to the chosen classifier that trade accuracy for parity.

When the data audit finds the labels biased across a protected attribute, or the chosen
model breaks a ``fairness.limits`` entry, :func:`mitigate` fits up to three alternatives
and compares them with the chosen model on the sealed test rows the fairness gate
judges (:func:`assay.evaluate.mitigation.compare_mitigations`):

* ``reweight`` (pre-processing, Kamiran & Calders): the chosen configuration refitted
  with sample weights ``P(group) P(label) / P(group, label)`` on the training rows, so
  every (group, label) cell weighs what it would if label and group were independent;
* ``threshold`` (post-processing, fairlearn ``ThresholdOptimizer``): per-group decision
  thresholds on the chosen model's probabilities, fitted on the validation rows; the
  attribute must be a model input, because each prediction needs it;
* ``reductions`` (in-processing, fairlearn ``ExponentiatedGradient``): a randomised
  ensemble of the chosen final estimator trained under the constraint.

The constraint follows the failing limit: ``equalized_odds`` for
``equalized_odds_difference``, else ``demographic_parity``. Threshold and reductions
need a binary task (fairlearn's constraints are binary); regression gets no mitigation,
with the reason recorded. The mitigated models are never registered in the chosen
model's place: the comparison is for the user to weigh.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from fairlearn.postprocessing import ThresholdOptimizer
from fairlearn.reductions import DemographicParity, EqualizedOdds, ExponentiatedGradient
from scipy import sparse
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from assay.audit.base import Finding
from assay.config.metrics import CLASSIFICATION_TASKS
from assay.evaluate.evaluation import Criterion
from assay.evaluate.mitigation import UNMITIGATED, MitigationComparison, compare_mitigations
from assay.train.objective import ThresholdedClassifier
from assay.train.pipeline import fit_model

__all__ = [
    "METHODS",
    "GroupThresholdClassifier",
    "MitigationPlan",
    "ReducedClassifier",
    "mitigate",
    "plan_mitigation",
    "reweighing_weights",
]

MitigationMode = Literal["auto", "off", "reweight", "threshold", "reductions"]
#: every mitigation method, in report order
METHODS: tuple[str, ...] = ("reweight", "threshold", "reductions")
#: the audit check whose warning means the labels are biased across a protected attribute
LABEL_BIAS_CHECK = "protected_attribute_correlation"
#: a protected attribute with more levels than this is not used for per-group thresholds
MAX_THRESHOLD_GROUPS = 20
MISSING_GROUP = "(missing)"
#: largest preprocessed matrix (rows x columns) made dense for the reductions approach
MAX_DENSE_CELLS = 20_000_000


@dataclass(frozen=True)
class MitigationPlan:
    """Whether to mitigate, why, on which attribute and under which constraint."""

    reasons: tuple[str, ...]
    attribute: str
    constraint: Literal["demographic_parity", "equalized_odds"]


def plan_mitigation(
    criteria: Sequence[Criterion],
    audit_findings: Sequence[Finding],
    protected: Sequence[str],
) -> MitigationPlan | None:
    """What triggers mitigation: failing fairness criteria, or biased labels in the audit.

    None when neither (the clean case: nothing is trained).
    """
    failing = [c for c in criteria if not c.passed and c.attribute is not None]
    biased = [
        f for f in audit_findings
        if f.check == LABEL_BIAS_CHECK and f.severity in ("warn", "block")
        and any(c in protected for c in f.columns)
    ]
    if not failing and not biased:
        return None
    reasons = [
        f"fairness limit {c.metric} {c.threshold} fails on '{c.attribute}' "
        f"(observed {'n/a' if c.observed is None else f'{c.observed:.4g}'})"
        for c in failing
    ] + [f"data audit: {f.message}" for f in biased]
    attribute = str(failing[0].attribute) if failing else next(
        c for c in biased[0].columns if c in protected
    )
    constraint: Literal["demographic_parity", "equalized_odds"] = (
        "equalized_odds"
        if any(c.metric == "equalized_odds_difference" and c.attribute == attribute for c in failing)
        else "demographic_parity"
    )
    return MitigationPlan(tuple(reasons), attribute, constraint)


def reweighing_weights(y: Any, groups: Any) -> np.ndarray:
    """Kamiran & Calders' weights: ``P(group) P(label) / P(group, label)`` for each row.

    Under these weights every (group, label) cell has the weight it would have if the
    label did not depend on the group (``n P(group) P(label)``); with every cell present
    the weights sum to n.
    """
    frame = pd.DataFrame({"g": np.asarray(groups, dtype=object), "y": np.asarray(y, dtype=object)})
    n = len(frame)
    p_group = frame["g"].map(frame["g"].value_counts() / n)
    p_label = frame["y"].map(frame["y"].value_counts() / n)
    cell = frame.groupby(["g", "y"])["y"].transform("size") / n
    return np.asarray(p_group * p_label / cell, dtype=float)


def _groups(values: pd.Series) -> np.ndarray:
    return np.asarray(
        [MISSING_GROUP if pd.isna(v) else str(v) for v in values.tolist()], dtype=object
    )


class GroupThresholdClassifier(ClassifierMixin, BaseEstimator):
    """A classifier deciding with per-group thresholds (fairlearn ``ThresholdOptimizer``).

    The group of each row is read from its ``attribute`` column. The decisions are
    randomised between two thresholds where fairlearn mixes them; ``seed`` fixes that draw.
    """

    def __init__(self, optimizer: Any = None, attribute: str = "", classes: Any = None,
                 seed: int = 0) -> None:
        self.optimizer = optimizer
        self.attribute = attribute
        self.classes = classes
        self.seed = seed

    @property
    def classes_(self) -> np.ndarray:
        """The two classes (the second is the positive one)."""
        return np.asarray(self.classes, dtype=object)

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """The thresholded decision per row."""
        chosen = self.optimizer.predict(
            X, sensitive_features=_groups(X[self.attribute]), random_state=self.seed
        )
        return np.asarray(self.classes_[np.asarray(chosen, dtype=int)])

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """The probability of each decision under the randomised thresholds."""
        return np.asarray(
            self.optimizer._pmf_predict(X, sensitive_features=_groups(X[self.attribute])),
            dtype=float,
        )


class ReducedClassifier(ClassifierMixin, BaseEstimator):
    """A fairness-constrained randomised classifier (fairlearn ``ExponentiatedGradient``)
    behind the chosen model's fitted preprocessing."""

    def __init__(self, preprocess: Any = None, reduction: Any = None, classes: Any = None,
                 seed: int = 0) -> None:
        self.preprocess = preprocess
        self.reduction = reduction
        self.classes = classes
        self.seed = seed

    @property
    def classes_(self) -> np.ndarray:
        """The two classes (the second is the positive one)."""
        return np.asarray(self.classes, dtype=object)

    def _matrix(self, X: Any) -> Any:
        out = self.preprocess.transform(X) if self.preprocess is not None else X
        return out.toarray() if sparse.issparse(out) else out

    def predict(self, X: Any) -> np.ndarray:
        """The decision per row (the randomised mixture drawn with ``seed``)."""
        chosen = self.reduction.predict(self._matrix(X), random_state=self.seed)
        return np.asarray(self.classes_[np.asarray(chosen, dtype=int)])

    def predict_proba(self, X: Any) -> np.ndarray:
        """The mixture's probability of each class."""
        return np.asarray(self.reduction._pmf_predict(self._matrix(X)), dtype=float)


def _takes_sample_weight(estimator: Any) -> bool:
    try:
        return "sample_weight" in inspect.signature(estimator.fit).parameters
    except (TypeError, ValueError):
        return False


def _head_and_final(template: Any) -> tuple[Pipeline | None, Any]:
    """The preprocessing steps and the final estimator of the chosen configuration
    (inside a thresholded classifier); the whole template as final when it is not a pipeline."""
    inner = template.estimator if isinstance(template, ThresholdedClassifier) else template
    if isinstance(inner, Pipeline) and len(inner.steps) > 1:
        return Pipeline(list(inner.steps[:-1])), inner.steps[-1][1]
    if isinstance(inner, Pipeline):
        return None, inner.steps[-1][1]
    return None, inner


def _fit_reweighted(
    template: Any, X: pd.DataFrame, y: pd.Series, weights: np.ndarray, seed: int
) -> tuple[Any, str]:
    head, final = _head_and_final(template)
    if _takes_sample_weight(final):
        fitted_head = clone(head).fit(X, y) if head is not None else None
        Xt = fitted_head.transform(X) if fitted_head is not None else X
        model = clone(final).fit(Xt, np.asarray(y), sample_weight=weights)
        steps = (list(fitted_head.steps) if fitted_head is not None else []) + [("model", model)]
        return Pipeline(steps), (
            f"the chosen {type(final).__name__} refitted with reweighing sample weights"
        )
    # a final estimator without sample weights: draw the training rows in proportion to them
    rng = np.random.default_rng(seed)
    rows = rng.choice(len(X), size=len(X), replace=True, p=weights / weights.sum())
    model = fit_model(clone(template), X.iloc[rows], y.iloc[rows])
    return model, (
        f"the chosen {type(final).__name__} refitted on training rows resampled by the "
        "reweighing weights (it takes no sample weights)"
    )


def _fit_reductions(
    template: Any, X: pd.DataFrame, y01: np.ndarray, groups: np.ndarray,
    constraint: str, seed: int,
) -> tuple[Any, str]:
    head, final = _head_and_final(template)
    fitted_head = clone(head).fit(X, y01) if head is not None else None
    Xt = fitted_head.transform(X) if fitted_head is not None else X
    if sparse.issparse(Xt):
        if Xt.shape[0] * Xt.shape[1] > MAX_DENSE_CELLS:
            raise ValueError(
                f"the preprocessed features ({Xt.shape[0]} x {Xt.shape[1]}, sparse) are too "
                "large to fit the reduction on a dense matrix"
            )
        Xt = Xt.toarray()
    base = clone(final) if _takes_sample_weight(final) else LogisticRegression(max_iter=2000)
    moment = EqualizedOdds() if constraint == "equalized_odds" else DemographicParity()
    reduction = ExponentiatedGradient(base, moment, max_iter=50)
    reduction.fit(Xt, y01, sensitive_features=groups)
    return ReducedClassifier(fitted_head, reduction, None, seed), (
        f"fairlearn ExponentiatedGradient ({constraint}) over {type(base).__name__}"
    )


def mitigate(
    plan: MitigationPlan,
    *,
    task: str,
    model: Any,
    template: Any,
    train: tuple[pd.DataFrame, pd.Series],
    validation: tuple[pd.DataFrame, pd.Series],
    test: tuple[pd.DataFrame, pd.Series],
    protected: Mapping[str, pd.DataFrame],
    primary: str,
    limits: Mapping[str, str],
    mode: MitigationMode = "auto",
    seed: int = 0,
    min_group_size: int = 30,
    no_refit: str = "",
) -> MitigationComparison:
    """Fit the mitigated alternatives of ``plan`` and compare them with ``model`` on the test rows.

    Args:
        plan: why, on which attribute, under which constraint (:func:`plan_mitigation`).
        model: the chosen fitted model; ``template``: its unfitted configuration.
        train, validation, test: (feature frame, labels) of each part of the split.
        protected: the protected columns of ``train``, ``validation`` and ``test`` rows,
            by part name (aligned by position).
        mode: ``auto`` fits every method; a method name fits that one only.
        no_refit: why the configuration must not be trained again (e.g. a fine-tuned
            transformer: each fit is a whole training run); reweighing and reductions,
            which retrain, are then skipped with this reason.
    """
    wanted = METHODS if mode == "auto" else (mode,) if mode in METHODS else ()
    skipped: dict[str, str] = {}
    fitted: list[tuple[str, str, Any]] = [(UNMITIGATED, "the chosen model", model)]
    classes = list(getattr(model, "classes_", []))
    X_train, y_train = train
    X_val, y_val = validation
    attribute = plan.attribute
    groups_train = _groups(protected["train"][attribute].reset_index(drop=True))
    for method in wanted:
        why = _unsupported(method, task, classes, X_train, attribute)
        if not why and no_refit and method != "threshold":
            why = no_refit
        if why:
            skipped[method] = why
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fitted.append((method, *_fit_one(
                    method, plan, model, template, X_train, y_train, X_val, y_val,
                    groups_train, protected["validation"][attribute], classes, seed,
                )))
        except Exception as exc:  # noqa: BLE001 - one failed alternative must not sink the run
            skipped[method] = f"fitting failed: {type(exc).__name__}: {exc}"
    X_test, y_test = test
    return compare_mitigations(
        fitted, X_test, y_test, protected["test"],
        task=task, primary=primary, limits=limits, reasons=plan.reasons, attribute=attribute,
        constraint=plan.constraint, skipped=skipped, min_group_size=min_group_size,
    )


def _unsupported(
    method: str, task: str, classes: list[Any], X: pd.DataFrame, attribute: str
) -> str:
    if task not in CLASSIFICATION_TASKS:
        return ("regression: reweighing balances (group, label) cells and fairlearn's "
                "thresholds and parity constraints are for classifiers")
    if method != "reweight" and len(classes) != 2:
        return "fairlearn's parity constraints and per-group thresholds need two classes"
    if method == "threshold":
        if attribute not in X.columns:
            return (f"'{attribute}' is not a model input, so the per-group threshold could "
                    "not be applied when serving")
        if X[attribute].nunique(dropna=False) > MAX_THRESHOLD_GROUPS:
            return (f"'{attribute}' has more than {MAX_THRESHOLD_GROUPS} values; per-group "
                    "thresholds need a categorical attribute")
    return ""


def _fit_one(
    method: str, plan: MitigationPlan, model: Any, template: Any,
    X_train: pd.DataFrame, y_train: pd.Series, X_val: pd.DataFrame, y_val: pd.Series,
    groups_train: np.ndarray, attribute_val: pd.Series, classes: list[Any], seed: int,
) -> tuple[str, Any]:
    if method == "reweight":
        weights = reweighing_weights(y_train.to_numpy(), groups_train)
        model_rw, description = _fit_reweighted(template, X_train, y_train, weights, seed)
        return description, model_rw
    positive = classes[1]
    if method == "threshold":
        optimizer = ThresholdOptimizer(
            estimator=model, constraints=plan.constraint, objective="accuracy_score",
            prefit=True, predict_method="predict_proba",
        )
        optimizer.fit(
            X_val, (np.asarray(y_val) == positive).astype(int),
            sensitive_features=_groups(attribute_val.reset_index(drop=True)),
        )
        return (
            f"fairlearn ThresholdOptimizer ({plan.constraint}): per-group thresholds on the "
            "chosen model, fitted on the validation rows",
            GroupThresholdClassifier(optimizer, plan.attribute, classes, seed),
        )
    y01 = (np.asarray(y_train) == positive).astype(int)
    reduced, description = _fit_reductions(
        template, X_train, y01, groups_train, plan.constraint, seed
    )
    reduced.classes = classes
    return description, reduced
