"""How a model behaves on inputs worse than its test set.

Families of cases, each scored with the same metric as the clean rows:

* ``noise`` - Gaussian noise on every numeric feature, with a standard deviation of
  5 % of that feature's standard deviation in the reference (training) data;
* ``missing:<feature>`` - one feature missing in every row, one feature at a time;
* ``out_of_range_high`` / ``out_of_range_low`` - every numeric feature pushed ten
  times beyond the reference maximum (or minimum). Only whether the model still
  answers matters here; if it does not, each feature is tried alone to name it;
* for each free-text column (``text_columns``), the ways real text differs from
  curated text: ``typos:<col>`` (one in ten words gets two neighbouring letters
  swapped, seeded), ``lowercase:<col>``, ``uppercase:<col>``,
  ``no_punctuation:<col>`` and ``truncated:<col>`` (only the first half of the
  words). They count toward the worst case like noise and missing values;
* for each categorical column (neither numeric, boolean, datetime nor free text):
  ``unseen_level:<col>`` (5 % of the rows, seeded, get a level the training data
  never had, as when a new product or country appears) and ``level_swap:<col>``
  (5 % of the rows get another level the training data had, drawn by its training
  frequency, as an entry error would).

A case is ``answered`` when predict (and predict_proba for classifiers) returns
without an exception and with finite outputs. A model that fails is recorded,
never allowed to crash the evaluation.

**What the promotion gate holds a model to** (:func:`judge`, :data:`GATED`): every
case must be answered; the *cost* of the ``gated`` cases must stay within the
tolerance. The gated cases are the small, realistic changes the model should shrug
off: ``noise``, ``unseen_level:<col>`` and the surface changes of text,
``typos:<col>``, ``lowercase:<col>`` and ``uppercase:<col>``. The others are
diagnostics, shown with their cost but not judged on it: ``missing:<col>`` empties a
whole feature (its cost is how much the model relies on it), ``level_swap:<col>``,
``no_punctuation:<col>`` and ``truncated:<col>`` change what a row says (losing
skill there is the model using its input), and the out-of-range rows are absurd on
purpose (only answering counts).

The cost of a case has one definition (:func:`case_cost`): the share of the model's
skill over the dummy baseline that the case loses, ``drop / (clean - baseline)``
oriented by the metric's direction; without a baseline (or with no skill over it),
the relative drop ``drop / |clean|``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from assay.config.metrics import CLASSIFICATION_TASKS, HIGHER_IS_BETTER
from assay.errors import DataError
from assay.evaluate.inputs import as_array, check_metrics, check_task, is_numeric_column
from assay.evaluate.metrics import metric_value

__all__ = [
    "GATED",
    "CaseVerdict",
    "RobustnessCase",
    "RobustnessJudgement",
    "RobustnessReport",
    "case_cost",
    "is_gated",
    "judge",
    "robustness",
]

CaseKind = Literal["noise", "missing", "out_of_range", "text", "categorical"]
CostMeasure = Literal["skill lost", "relative drop"]
Verdict = Literal["ok", "over", "unanswered", "informational"]

#: the case names (before any ``:<column>``) whose cost the promotion gate judges
GATED = ("noise", "unseen_level", "typos", "lowercase", "uppercase")
#: the share of rows given an unseen level / another known level in a categorical column
UNSEEN_SHARE = 0.05
SWAP_SHARE = 0.05

_PUNCTUATION = re.compile(r"[^\w\s]", re.UNICODE)


@dataclass(frozen=True)
class RobustnessCase:
    """One perturbation and the model's response.

    ``drop`` is oriented so that a positive value is worse than on clean rows, and
    ``relative_drop`` is ``drop / |clean|`` (None when the clean score is zero).
    ``gated``: the promotion gate judges this case's cost (see :data:`GATED`).
    """

    name: str
    kind: CaseKind
    feature: str | None
    answered: bool
    value: float | None
    drop: float | None
    relative_drop: float | None
    error: str | None = None
    gated: bool = False

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable fields."""
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RobustnessCase:
        """Inverse of :meth:`to_dict`; a case stored without ``gated`` gets it from its name."""
        if "gated" not in data:
            data = {**data, "gated": is_gated(str(data["name"]))}
        return cls(**data)


def is_gated(name: str) -> bool:
    """Whether the gate judges the cost of the case called ``name`` (e.g. ``typos:review``)."""
    return name.split(":", 1)[0] in GATED


def case_cost(
    case: RobustnessCase, clean: float | None, metric: str, baseline: float | None
) -> tuple[float | None, CostMeasure]:
    """The cost of one case: skill lost over ``baseline``, else the relative drop.

    ``None`` when the case has no drop (not answered, or the metric undefined).
    """
    if case.drop is None or clean is None:
        return None, "relative drop"
    if baseline is not None:
        higher = HIGHER_IS_BETTER.get(metric, True)
        skill = (clean - baseline) if higher else (baseline - clean)
        if skill > 1e-12:
            return case.drop / skill, "skill lost"
    return case.relative_drop, "relative drop"


@dataclass(frozen=True)
class CaseVerdict:
    """What the gate makes of one case.

    ``verdict``: ``unanswered`` (the model failed on it), ``over`` (a gated case costing
    more than the tolerance), ``ok`` (a gated case within it) or ``informational``
    (answered; its cost is shown, not judged).
    """

    name: str
    kind: str
    gated: bool
    answered: bool
    cost: float | None
    verdict: Verdict

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable fields."""
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CaseVerdict:
        """Inverse of :meth:`to_dict`."""
        return cls(**data)


@dataclass(frozen=True)
class RobustnessJudgement:
    """Every case judged against one tolerance with one cost measure.

    ``worst``/``worst_cost``: the gated case that costs most (None without any).
    """

    measure: CostMeasure
    tolerance: float
    baseline: float | None
    cases: tuple[CaseVerdict, ...]
    worst: str | None
    worst_cost: float | None

    @property
    def unanswered(self) -> tuple[str, ...]:
        """Cases the model failed to answer (gated or not: the server would fail too)."""
        return tuple(c.name for c in self.cases if c.verdict == "unanswered")

    @property
    def over(self) -> tuple[str, ...]:
        """Gated cases whose cost exceeds the tolerance."""
        return tuple(c.name for c in self.cases if c.verdict == "over")

    @property
    def passed(self) -> bool:
        """Every case answered and no gated case over the tolerance."""
        return not self.unanswered and not self.over

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable fields."""
        return {
            "measure": self.measure,
            "tolerance": self.tolerance,
            "baseline": self.baseline,
            "cases": [c.to_dict() for c in self.cases],
            "worst": self.worst,
            "worst_cost": self.worst_cost,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RobustnessJudgement:
        """Inverse of :meth:`to_dict`."""
        return cls(
            measure=data["measure"],
            tolerance=float(data["tolerance"]),
            baseline=data.get("baseline"),
            cases=tuple(CaseVerdict.from_dict(c) for c in data.get("cases", [])),
            worst=data.get("worst"),
            worst_cost=data.get("worst_cost"),
        )


@dataclass(frozen=True)
class RobustnessReport:
    """The clean score and every perturbed case.

    ``worst_relative_drop`` and ``worst_case`` cover the noise and missing-value cases
    (out-of-range rows are deliberately absurd; only their ``answered`` counts).
    ``worst_features`` are the features whose absence hurts most, worst first.
    """

    metric: str
    clean: float | None
    n_rows: int
    cases: tuple[RobustnessCase, ...]
    worst_relative_drop: float | None
    worst_case: str | None
    worst_features: tuple[str, ...]

    @property
    def unanswered(self) -> tuple[str, ...]:
        """Names of the cases the model failed to answer."""
        return tuple(c.name for c in self.cases if not c.answered)

    @property
    def all_answered(self) -> bool:
        """True when the model answered every case."""
        return not self.unanswered

    def case(self, name: str) -> RobustnessCase:
        """The case called ``name`` (e.g. ``"missing:age"``)."""
        for c in self.cases:
            if c.name == name:
                return c
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable fields."""
        return {
            "metric": self.metric,
            "clean": self.clean,
            "n_rows": self.n_rows,
            "cases": [c.to_dict() for c in self.cases],
            "worst_relative_drop": self.worst_relative_drop,
            "worst_case": self.worst_case,
            "worst_features": list(self.worst_features),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RobustnessReport:
        """Inverse of :meth:`to_dict`."""
        return cls(
            metric=data["metric"],
            clean=data["clean"],
            n_rows=int(data["n_rows"]),
            cases=tuple(RobustnessCase.from_dict(c) for c in data["cases"]),
            worst_relative_drop=data["worst_relative_drop"],
            worst_case=data["worst_case"],
            worst_features=tuple(data["worst_features"]),
        )


def judge(
    report: RobustnessReport, tolerance: float, baseline: float | None = None
) -> RobustnessJudgement:
    """Judge every case of ``report``: answered, and each gated case's cost within ``tolerance``.

    One cost measure for every case (:func:`case_cost`): skill lost over ``baseline``
    when the model has skill over it, else the relative drop.
    """
    verdicts: list[CaseVerdict] = []
    measure: CostMeasure = "relative drop"
    for case in report.cases:
        cost, measure_of_case = case_cost(case, report.clean, report.metric, baseline)
        if cost is not None:
            measure = measure_of_case
        if not case.answered:
            verdict: Verdict = "unanswered"
        elif not case.gated:
            verdict = "informational"
        else:
            verdict = "over" if cost is not None and cost > tolerance else "ok"
        verdicts.append(CaseVerdict(case.name, case.kind, case.gated, case.answered, cost, verdict))
    gated = [v for v in verdicts if v.gated and v.cost is not None]
    worst = max(gated, key=lambda v: v.cost or 0.0, default=None)
    return RobustnessJudgement(
        measure=measure,
        tolerance=float(tolerance),
        baseline=baseline,
        cases=tuple(verdicts),
        worst=worst.name if worst else None,
        worst_cost=worst.cost if worst else None,
    )


def robustness(
    model: Any,
    X: pd.DataFrame,
    y: Any,
    task: str,
    metric: str,
    seed: int = 0,
    classes: Sequence[Any] | None = None,
    X_reference: pd.DataFrame | None = None,
    noise_fraction: float = 0.05,
    max_rows: int = 2000,
    top_k: int = 5,
    text_columns: Sequence[str] = (),
) -> RobustnessReport:
    """Score ``model`` on perturbed copies of ``X`` (at most ``max_rows`` rows, picked by ``seed``).

    ``X_reference`` (the training features) sets the noise scales and the ranges;
    ``X`` itself is used when it is None. ``text_columns`` are free text: they get the
    text cases and none of the numeric ones.
    """
    check_task(task)
    check_metrics(task, [metric], key="metric")
    if not isinstance(X, pd.DataFrame):
        raise DataError(
            "robustness needs the features as a DataFrame",
            column="X",
            expected="a pandas DataFrame of raw feature columns",
            received=type(X).__name__,
            fix="Pass the feature columns as a DataFrame.",
        )
    yt = as_array(y, "y", len(X))
    rng = np.random.default_rng(seed)
    rows = np.arange(len(X))
    if len(rows) > max_rows:
        rows = np.sort(rng.choice(rows, max_rows, replace=False))
    X = X.iloc[rows].reset_index(drop=True)
    yt = yt[rows]
    ref = X if X_reference is None else X_reference
    if classes is None and task in CLASSIFICATION_TASKS:
        classes = list(getattr(model, "classes_", [])) or None
    scorer = _Scorer(model, yt, task, metric, classes)

    clean_case = scorer.case("clean", "noise", None, X)
    clean = clean_case.value
    scorer.clean = clean
    texts = [c for c in text_columns if c in X.columns]
    numeric = [
        c for c in X.columns if is_numeric_column(X[c]) and c in ref.columns and c not in texts
    ]
    categorical = [
        c for c in X.columns if c in ref.columns and c not in texts and _is_categorical(X[c])
    ]
    cases: list[RobustnessCase] = []

    if numeric:
        noisy = X.copy()
        for col in numeric:
            std = float(pd.to_numeric(ref[col], errors="coerce").std())
            if not np.isfinite(std) or std == 0:
                continue
            noisy[col] = _with_values(
                X[col], X[col] + rng.normal(0.0, noise_fraction * std, len(X))
            )
        cases.append(scorer.case("noise", "noise", None, noisy))

    for col in X.columns:
        missing = X.copy()
        missing[col] = X[col].where(np.zeros(len(X), dtype=bool))
        cases.append(scorer.case(f"missing:{col}", "missing", str(col), missing))

    for side in ("high", "low"):
        extremes = {col: _beyond(ref[col], side) for col in numeric}
        extremes = {col: v for col, v in extremes.items() if v is not None}
        if not extremes:
            continue
        pushed = X.copy()
        for col, v in extremes.items():
            pushed[col] = _with_values(X[col], np.full(len(X), v))
        combined = scorer.case(f"out_of_range_{side}", "out_of_range", None, pushed)
        cases.append(combined)
        if not combined.answered:
            for col, v in extremes.items():
                single = X.copy()
                single[col] = _with_values(X[col], np.full(len(X), v))
                case = scorer.case(f"out_of_range_{side}:{col}", "out_of_range", str(col), single)
                if not case.answered:
                    cases.append(case)

    for col in texts:
        for name, change in _text_changes(seed).items():
            changed = X.copy()
            changed[col] = X[col].map(lambda v, f=change: f(v) if isinstance(v, str) else v)
            cases.append(scorer.case(f"{name}:{col}", "text", str(col), changed))

    for col in categorical:
        levels = _levels(ref[col])
        if not levels:
            continue
        unseen = X.copy()
        picked = _pick(rng, len(X), UNSEEN_SHARE)
        values = X[col].astype(object).to_numpy(copy=True)
        values[picked] = _unseen_level(levels)
        unseen[col] = pd.Series(values, index=X.index, dtype=object)
        cases.append(scorer.case(f"unseen_level:{col}", "categorical", str(col), unseen))
        if len(levels) < 2:
            continue
        swapped = X.copy()
        rows_swapped = _pick(rng, len(X), SWAP_SHARE)
        values = _swap(X[col].astype(object).to_numpy(), rows_swapped, ref[col], rng)
        swapped[col] = pd.Series(values, index=X.index, dtype=object)
        cases.append(scorer.case(f"level_swap:{col}", "categorical", str(col), swapped))

    scored = [c for c in cases if c.kind != "out_of_range" and c.relative_drop is not None]
    worst = max(scored, key=lambda c: c.relative_drop or 0.0, default=None)
    by_drop = sorted(
        (c for c in cases if c.kind == "missing" and c.drop is not None),
        key=lambda c: -(c.drop or 0.0),
    )
    return RobustnessReport(
        metric=metric,
        clean=clean,
        n_rows=len(X),
        cases=tuple(cases),
        worst_relative_drop=worst.relative_drop if worst else None,
        worst_case=worst.name if worst else None,
        worst_features=tuple(c.feature or "" for c in by_drop[:top_k] if (c.drop or 0.0) > 0),
    )


class _Scorer:
    """Runs the model on one variant of the rows and records what happened."""

    def __init__(
        self, model: Any, y: np.ndarray, task: str, metric: str, classes: Sequence[Any] | None
    ) -> None:
        self.model, self.y, self.task, self.metric, self.classes = model, y, task, metric, classes
        self.clean: float | None = None

    def case(
        self, name: str, kind: CaseKind, feature: str | None, X: pd.DataFrame
    ) -> RobustnessCase:
        try:
            pred = np.asarray(self.model.predict(X))
            proba = None
            if self.task in CLASSIFICATION_TASKS and hasattr(self.model, "predict_proba"):
                proba = np.asarray(self.model.predict_proba(X), dtype=float)
        # a user's model may raise anything on odd input; that is the finding, not a crash
        except Exception as exc:  # noqa: BLE001
            return RobustnessCase(
                name, kind, feature, False, None, None, None, _describe(exc), is_gated(name)
            )
        problem = _non_finite(pred, proba, self.task, len(X))
        if problem:
            return RobustnessCase(
                name, kind, feature, False, None, None, None, problem, is_gated(name)
            )
        value = metric_value(self.task, self.metric, self.y, pred, proba, self.classes)
        drop = relative = None
        if value is not None and self.clean is not None:
            sign = 1.0 if HIGHER_IS_BETTER[self.metric] else -1.0
            drop = sign * (self.clean - value)
            # relative to a (near) zero clean score is meaningless, not infinite
            relative = drop / abs(self.clean) if abs(self.clean) > 1e-12 else None
        return RobustnessCase(
            name, kind, feature, True, value, drop, relative, None, is_gated(name)
        )


def _non_finite(pred: np.ndarray, proba: np.ndarray | None, task: str, n: int) -> str | None:
    if len(pred) != n:
        return f"predict returned {len(pred)} values for {n} rows"
    if proba is not None and not np.all(np.isfinite(proba)):
        return "predict_proba returned non-finite values"
    if task not in CLASSIFICATION_TASKS:
        try:
            values = pred.astype(float)
        except (TypeError, ValueError):
            return "predict returned non-numeric values"
        if not np.all(np.isfinite(values)):
            return "predict returned non-finite values"
    elif pd.isna(pd.Series(pred, dtype=object)).any():
        return "predict returned missing labels"
    return None


def _text_changes(seed: int) -> dict[str, Callable[[str], str]]:
    """The text perturbations by case name; typos are seeded per text, so reproducible."""

    def typos(text: str) -> str:
        words = text.split(" ")
        rng = np.random.default_rng([seed, len(text), sum(map(ord, text[:64]))])
        for i, word in enumerate(words):
            if len(word) >= 4 and rng.random() < 0.1:
                j = int(rng.integers(1, len(word) - 2))
                words[i] = word[:j] + word[j + 1] + word[j] + word[j + 2 :]
        return " ".join(words)

    def truncated(text: str) -> str:
        words = text.split()
        return " ".join(words[: max(1, (len(words) + 1) // 2)])

    return {
        "typos": typos,
        "lowercase": str.lower,
        "uppercase": str.upper,
        "no_punctuation": lambda text: _PUNCTUATION.sub("", text),
        "truncated": truncated,
    }


def _describe(exc: Exception) -> str:
    text = f"{type(exc).__name__}: {exc}".replace("\n", " ")
    return text if len(text) <= 300 else text[:297] + "..."


def _with_values(original: pd.Series, values: Any) -> pd.Series:
    """New values in ``original``'s index; integer columns stay integer (rounded)."""
    values = np.asarray(values, dtype=float)
    if pd.api.types.is_integer_dtype(original) and np.all(np.isfinite(values)):
        return pd.Series(np.round(values).astype(np.int64), index=original.index)
    return pd.Series(values, index=original.index)


def _beyond(reference: pd.Series, side: str) -> float | None:
    """Ten times the reference max (or min), further out when that bound is near zero."""
    values = pd.to_numeric(reference, errors="coerce").to_numpy(dtype=float)
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return None
    lo, hi = float(values.min()), float(values.max())
    scale = max(abs(lo), abs(hi)) or 1.0
    return hi + 9.0 * scale if side == "high" else lo - 9.0 * scale


def _is_categorical(series: pd.Series) -> bool:
    """Strings or categories: not numeric, boolean or datetime."""
    if is_numeric_column(series) or pd.api.types.is_bool_dtype(series):
        return False
    if pd.api.types.is_datetime64_any_dtype(series):
        return False
    return bool(
        isinstance(series.dtype, pd.CategoricalDtype)
        or pd.api.types.is_object_dtype(series)
        or pd.api.types.is_string_dtype(series)
    )


def _levels(reference: pd.Series) -> list[Any]:
    """The known levels of a categorical column (non-missing), most frequent first."""
    counts = reference.astype(object).dropna().value_counts()
    return [v for v in counts.index if not isinstance(v, bool)]


def _unseen_level(levels: Sequence[Any]) -> str:
    """A string level that is not among ``levels``."""
    known = {str(v) for v in levels}
    candidate, k = "unseen level", 0
    while candidate in known:
        k += 1
        candidate = f"unseen level {k}"
    return candidate


def _pick(rng: np.random.Generator, n: int, share: float) -> np.ndarray:
    """``share`` of ``n`` row positions (at least one), sorted."""
    k = min(n, max(1, round(share * n)))
    return np.sort(rng.choice(n, k, replace=False))


def _swap(
    original: np.ndarray, rows: np.ndarray, reference: pd.Series, rng: np.random.Generator
) -> np.ndarray:
    """``original`` with its non-missing values at ``rows`` set to another known level,
    drawn by its training frequency."""
    counts = reference.astype(object).dropna().value_counts()
    levels = list(counts.index)
    weights = counts.to_numpy(dtype=float)
    out = original.copy()
    for i in rows:
        if pd.isna(original[i]):
            continue
        others = [k for k, v in enumerate(levels) if v != original[i]]
        if not others:
            continue
        w = weights[others] / weights[others].sum()
        out[i] = levels[others[int(rng.choice(len(others), p=w))]]
    return out
