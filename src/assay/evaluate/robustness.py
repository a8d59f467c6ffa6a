"""How a model behaves on inputs worse than its test set.

Three families of cases, each scored with the same metric as the clean rows:

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
  words). They count toward the worst case like noise and missing values.

A case is ``answered`` when predict (and predict_proba for classifiers) returns
without an exception and with finite outputs. A model that fails is recorded,
never allowed to crash the evaluation.
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

__all__ = ["RobustnessCase", "RobustnessReport", "robustness"]

CaseKind = Literal["noise", "missing", "out_of_range", "text"]

_PUNCTUATION = re.compile(r"[^\w\s]", re.UNICODE)


@dataclass(frozen=True)
class RobustnessCase:
    """One perturbation and the model's response.

    ``drop`` is oriented so that a positive value is worse than on clean rows, and
    ``relative_drop`` is ``drop / |clean|`` (None when the clean score is zero).
    """

    name: str
    kind: CaseKind
    feature: str | None
    answered: bool
    value: float | None
    drop: float | None
    relative_drop: float | None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable fields."""
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RobustnessCase:
        """Inverse of :meth:`to_dict`."""
        return cls(**data)


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
            return RobustnessCase(name, kind, feature, False, None, None, None, _describe(exc))
        problem = _non_finite(pred, proba, self.task, len(X))
        if problem:
            return RobustnessCase(name, kind, feature, False, None, None, None, problem)
        value = metric_value(self.task, self.metric, self.y, pred, proba, self.classes)
        drop = relative = None
        if value is not None and self.clean is not None:
            sign = 1.0 if HIGHER_IS_BETTER[self.metric] else -1.0
            drop = sign * (self.clean - value)
            # relative to a (near) zero clean score is meaningless, not infinite
            relative = drop / abs(self.clean) if abs(self.clean) > 1e-12 else None
        return RobustnessCase(name, kind, feature, True, value, drop, relative)


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
