"""Drift of a window of traffic against the training reference: :func:`detect_drift`.

Config (:class:`DriftThresholds`), computation (:func:`detect_drift`, the tests of
:mod:`assay.monitor.drift_tests`) and result (:class:`DriftReport`, one
:class:`ColumnDrift` per column) are kept apart.

Decisions use effect sizes, never p-values: with a window of a million rows every p-value
is tiny, even for a change nobody would act on. Per column:

- ``severity`` follows the usual PSI bands: ``none`` below ``psi_moderate`` (0.1),
  ``moderate`` up to ``psi_significant`` (0.2), ``significant`` from there;
- ``drifted`` needs both effect sizes past their thresholds: PSI >= ``psi_significant``
  and JS distance >= ``js_threshold`` (0.1). For a smooth change the JS distance is about
  ``sqrt(PSI / (8 ln 2))`` (0.19 at PSI 0.2), so the JS condition rarely binds; it keeps a
  PSI inflated by a nearly empty bin (the log of a floored share) from raising an alarm on
  its own. So a drifted column is always ``significant``.

The KS (numeric) or chi-squared (categorical) statistic and its p-value are reported for
reading, not used. With fewer than ``min_rows`` rows in the window nothing is computed or
flagged and the report says why. Below a few hundred rows, expect noise: with ``k`` bins
the PSI of two samples of one distribution is about ``(k - 1) * (1/n_reference +
1/n_current)``, 0.3 for ten bins and a window of 30 rows.

A free-text column has no bins: it is judged by several tests at once (its length, its
unknown tokens, its embeddings), added by :func:`assay.monitor.text_drift.add_text_drift`;
its row carries each test's verdict as a :class:`DriftCheck`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import pandas as pd

from assay.errors import ConfigError, DataError
from assay.monitor.drift_tests import (
    DRIFT_TESTS,
    BaseDriftTest,
    CurrentColumn,
    js_distance,
    psi,
)
from assay.monitor.reference import (
    ColumnProfile,
    ReferenceProfile,
    Role,
    SkippedColumn,
)

__all__ = [
    "ColumnDrift",
    "DriftCheck",
    "DriftKind",
    "DriftReport",
    "DriftThresholds",
    "Severity",
    "detect_drift",
]

Severity = Literal["none", "moderate", "significant"]
#: how a column was compared: on numeric or categorical bins, or as free text
DriftKind = Literal["numeric", "categorical", "text"]


@dataclass(frozen=True)
class DriftThresholds:
    """The configuration of a drift check (assay.yaml ``monitoring``).

    Attributes:
        psi_moderate: PSI from which a column's drift is ``moderate``.
        psi_significant: PSI from which it is ``significant`` (and may be drifted).
        js_threshold: JS distance (base 2) a drifted column must reach as well.
        min_rows: the smallest window that is checked.
        drift_share: the share of drifted features from which the data set has drifted.
        numeric_test: the alias of the reported test of numeric columns (``ks``).
        categorical_test: the alias of the reported test of categorical columns (``chi2``).
    """

    psi_moderate: float = 0.1
    psi_significant: float = 0.2
    js_threshold: float = 0.1
    min_rows: int = 30
    drift_share: float = 0.5
    numeric_test: str = "ks"
    categorical_test: str = "chi2"

    def validate(self) -> None:
        """Raise a :class:`ConfigError` naming the key when a value is out of range."""
        _check(self.psi_moderate > 0, "psi_moderate", "a number > 0", self.psi_moderate)
        _check(
            self.psi_significant >= self.psi_moderate,
            "psi_significant",
            f"a number >= psi_moderate ({self.psi_moderate})",
            self.psi_significant,
        )
        _check(0 < self.js_threshold <= 1, "js_threshold", "a number in (0, 1]", self.js_threshold)
        _check(
            isinstance(self.min_rows, int) and self.min_rows >= 1,
            "min_rows",
            "an integer >= 1",
            self.min_rows,
        )
        _check(0 < self.drift_share <= 1, "drift_share", "a number in (0, 1]", self.drift_share)
        for key, kind in (("numeric_test", "numeric"), ("categorical_test", "categorical")):
            alias = getattr(self, key)
            test_cls = DRIFT_TESTS.get(alias, key=key)
            if kind not in test_cls.kinds:
                raise ConfigError(
                    f"drift test '{alias}' does not apply to {kind} columns",
                    key=key,
                    expected=f"a test for {kind} columns",
                    received=alias,
                    fix="Use 'ks' for numeric and 'chi2' for categorical columns.",
                )

    def severity(self, psi: float) -> Severity:
        """The PSI band of ``psi``."""
        if psi >= self.psi_significant:
            return "significant"
        if psi >= self.psi_moderate:
            return "moderate"
        return "none"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable form."""
        return {
            "psi_moderate": self.psi_moderate,
            "psi_significant": self.psi_significant,
            "js_threshold": self.js_threshold,
            "min_rows": self.min_rows,
            "drift_share": self.drift_share,
            "numeric_test": self.numeric_test,
            "categorical_test": self.categorical_test,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DriftThresholds:
        """Rebuild from :meth:`to_dict` output."""
        return cls(**data)


@dataclass(frozen=True)
class DriftCheck:
    """One test's verdict on a column that several tests judge (a free-text column).

    Attributes:
        test: the test's alias (``mmd``, ``text_length``, ``unknown_tokens``, ...).
        statistic: the statistic the test decides on; None when nothing could be compared.
        p_value: the test's p-value, when it has one.
        threshold: what decided: the significance level for a p-value, else the effect
            size the statistic must reach (the test's docstring says which).
        drifted: the test's verdict.
        evidence: further numbers for a reader (sample sizes, the other side's value...).
    """

    test: str
    statistic: float | None
    p_value: float | None
    threshold: float
    drifted: bool
    evidence: dict[str, float | int | str | None] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable form."""
        return {
            "test": self.test,
            "statistic": self.statistic,
            "p_value": self.p_value,
            "threshold": self.threshold,
            "drifted": self.drifted,
            "evidence": dict(self.evidence),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DriftCheck:
        """Rebuild from :meth:`to_dict` output."""
        return cls(
            test=str(data["test"]),
            statistic=data["statistic"],
            p_value=data.get("p_value"),
            threshold=float(data["threshold"]),
            drifted=bool(data["drifted"]),
            evidence=dict(data.get("evidence", {})),
        )


@dataclass(frozen=True)
class ColumnDrift:
    """The drift of one column (a feature, the predictions or the confidences).

    Attributes:
        name: the column (``__prediction__`` / ``__confidence__`` for the model outputs).
        role: ``feature``, ``prediction`` or ``confidence``.
        kind: ``numeric`` or ``categorical`` (how the reference binned it), or ``text``
            (a free-text column: see ``checks``).
        psi: population stability index on the reference bins (for text: of the length
            in tokens).
        js: Jensen-Shannon distance (base 2) on the same bins.
        test: the reported hypothesis test (``ks`` for numeric, ``chi2`` for categorical).
        statistic: its statistic (None when it could not be computed).
        p_value: its p-value, reported only.
        severity: the PSI band: ``none``, ``moderate`` or ``significant``.
        drifted: PSI >= psi_significant and JS >= js_threshold.
        missing_reference: the share of reference rows without a value.
        missing_current: the share of current rows without a value.
        unseen_current: the share of current rows with a level the reference never had
            (categorical columns; None for numeric ones).
        checks: for a text column, every test's verdict; ``test``, ``statistic`` and
            ``p_value`` are then those of the first drifted check (else the first check),
            and ``drifted`` is true when any check drifted. Empty for other columns.
    """

    name: str
    role: Role
    kind: DriftKind
    psi: float
    js: float
    test: str
    statistic: float | None
    p_value: float | None
    severity: Severity
    drifted: bool
    missing_reference: float
    missing_current: float
    unseen_current: float | None = None
    checks: tuple[DriftCheck, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable form (``checks`` only when there are some)."""
        out: dict[str, Any] = {
            "name": self.name,
            "role": self.role,
            "kind": self.kind,
            "psi": self.psi,
            "js": self.js,
            "test": self.test,
            "statistic": self.statistic,
            "p_value": self.p_value,
            "severity": self.severity,
            "drifted": self.drifted,
            "missing_reference": self.missing_reference,
            "missing_current": self.missing_current,
            "unseen_current": self.unseen_current,
        }
        if self.checks:
            out["checks"] = [c.to_dict() for c in self.checks]
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ColumnDrift:
        """Rebuild from :meth:`to_dict` output."""
        checks = tuple(DriftCheck.from_dict(c) for c in data.get("checks", ()))
        return cls(**{**data, "checks": checks})


@dataclass(frozen=True)
class DriftReport:
    """The drift of one window of traffic against the training reference.

    Attributes:
        columns: per profiled column present in the window, features first, then the
            predictions and confidences; empty when the window is too small.
        n_reference: the number of reference (training) rows.
        n_current: the number of rows in the window.
        thresholds: the configuration used.
        skipped: the columns not checked, with the reason (not profiled, or a model
            output missing from the window).
        note: why nothing was checked (window too small), else empty.
    """

    columns: tuple[ColumnDrift, ...]
    n_reference: int
    n_current: int
    thresholds: DriftThresholds = field(default_factory=DriftThresholds)
    skipped: tuple[SkippedColumn, ...] = ()
    note: str = ""

    @property
    def checked(self) -> bool:
        """True when the window was large enough to be checked."""
        return self.n_current >= self.thresholds.min_rows

    @property
    def features(self) -> tuple[ColumnDrift, ...]:
        """The drift of the input features."""
        return tuple(c for c in self.columns if c.role == "feature")

    @property
    def prediction(self) -> ColumnDrift | None:
        """The drift of the predictions, when profiled and logged."""
        return next((c for c in self.columns if c.role == "prediction"), None)

    @property
    def confidence(self) -> ColumnDrift | None:
        """The drift of the confidences, when profiled and logged."""
        return next((c for c in self.columns if c.role == "confidence"), None)

    @property
    def ranked(self) -> tuple[str, ...]:
        """The drifted features, by PSI, largest first (ties by name)."""
        drifted = [c for c in self.features if c.drifted]
        return tuple(c.name for c in sorted(drifted, key=lambda c: (-c.psi, c.name)))

    @property
    def share_drifted(self) -> float:
        """The share of checked features that drifted (0 when none was checked)."""
        features = self.features
        return sum(c.drifted for c in features) / len(features) if features else 0.0

    @property
    def dataset_drift(self) -> bool:
        """True when the share of drifted features reaches ``thresholds.drift_share``."""
        return bool(self.features) and self.share_drifted >= self.thresholds.drift_share

    def __getitem__(self, name: str) -> ColumnDrift:
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable form, the derived fields included."""
        return {
            "columns": [c.to_dict() for c in self.columns],
            "n_reference": self.n_reference,
            "n_current": self.n_current,
            "thresholds": self.thresholds.to_dict(),
            "skipped": [s.to_dict() for s in self.skipped],
            "note": self.note,
            "checked": self.checked,
            "ranked": list(self.ranked),
            "share_drifted": self.share_drifted,
            "dataset_drift": self.dataset_drift,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DriftReport:
        """Rebuild from :meth:`to_dict` output (the derived fields are recomputed)."""
        return cls(
            columns=tuple(ColumnDrift.from_dict(c) for c in data["columns"]),
            n_reference=int(data["n_reference"]),
            n_current=int(data["n_current"]),
            thresholds=DriftThresholds.from_dict(data["thresholds"]),
            skipped=tuple(SkippedColumn.from_dict(s) for s in data.get("skipped", ())),
            note=str(data.get("note", "")),
        )


def detect_drift(
    reference: ReferenceProfile,
    current: pd.DataFrame,
    *,
    psi_moderate: float = 0.1,
    psi_significant: float = 0.2,
    js_threshold: float = 0.1,
    min_rows: int = 30,
    drift_share: float = 0.5,
    prediction: str | None = "prediction",
    confidence: str | None = "confidence",
    numeric_test: str = "ks",
    categorical_test: str = "chi2",
) -> DriftReport:
    """Compare a window of traffic with the training reference, column by column.

    Args:
        reference: the profile of the training rows (:func:`build_reference`).
        current: the window: one row per request, a column per reference feature (other
            columns are ignored), plus the logged model outputs.
        psi_moderate, psi_significant, js_threshold, min_rows, drift_share: see
            :class:`DriftThresholds` and the module docstring.
        prediction: the column of ``current`` holding the predictions, compared with the
            reference's ``__prediction__`` profile (skipped, with a note, when absent).
        confidence: the column holding the confidences, compared with ``__confidence__``.
        numeric_test, categorical_test: aliases of the reported tests (:data:`DRIFT_TESTS`).

    Raises:
        ConfigError: a threshold out of range or an unknown test alias.
        DataError: ``current`` is not a data frame, or lacks a reference feature.
    """
    thresholds = DriftThresholds(
        psi_moderate=psi_moderate,
        psi_significant=psi_significant,
        js_threshold=js_threshold,
        min_rows=min_rows,
        drift_share=drift_share,
        numeric_test=numeric_test,
        categorical_test=categorical_test,
    )
    thresholds.validate()
    if not isinstance(current, pd.DataFrame):
        raise DataError(
            "the current window is not a data frame",
            where="detect_drift(current=...)",
            expected="a pandas DataFrame with one column per reference feature",
            received=type(current).__name__,
            fix="Pass the logged traffic as a DataFrame (e.g. from read_predictions).",
        )
    absent = [p.name for p in reference.features if p.name not in current.columns]
    if absent:
        raise DataError(
            f"reference feature '{absent[0]}' is not in the current window",
            column=absent[0],
            expected="every profiled feature: " + ", ".join(p.name for p in reference.features),
            received="columns: " + ", ".join(map(str, current.columns)),
            fix="Pass the logged inputs with the training column names, or rebuild the "
            "reference without the missing features.",
        )
    pairs: list[tuple[ColumnProfile, str]] = [(p, p.name) for p in reference.features]
    skipped = list(reference.skipped)
    for profile, column in ((reference.prediction, prediction), (reference.confidence, confidence)):
        if profile is None:
            continue
        if column is not None and column in current.columns:
            pairs.append((profile, column))
        else:
            skipped.append(
                SkippedColumn(
                    profile.name,
                    profile.column_kind,
                    f"no column '{column}' with the model's {profile.role} in the window",
                )
            )
    n_current = len(current)
    if n_current < thresholds.min_rows:
        note = (
            f"window too small: {n_current} rows, fewer than min_rows={thresholds.min_rows}; "
            "nothing was checked or flagged"
        )
        return DriftReport((), reference.n_rows, n_current, thresholds, tuple(skipped), note)
    tests = {
        "numeric": DRIFT_TESTS.get(numeric_test)(),
        "categorical": DRIFT_TESTS.get(categorical_test)(),
    }
    results = tuple(
        _column_drift(profile, current[column], thresholds, tests[profile.kind])
        for profile, column in pairs
    )
    return DriftReport(results, reference.n_rows, n_current, thresholds, tuple(skipped))


def _column_drift(
    profile: ColumnProfile, series: pd.Series, thresholds: DriftThresholds, test: BaseDriftTest
) -> ColumnDrift:
    current = CurrentColumn.from_series(profile, series)
    distribution = current.distribution
    expected = profile.distribution
    psi_value = psi(expected, distribution)
    js_value = js_distance(expected, distribution)
    reported = test.compute(current)
    return ColumnDrift(
        name=profile.name,
        role=profile.role,
        kind=profile.kind,
        psi=psi_value,
        js=js_value,
        test=reported.test,
        statistic=reported.statistic,
        p_value=reported.p_value,
        severity=thresholds.severity(psi_value),
        drifted=psi_value >= thresholds.psi_significant and js_value >= thresholds.js_threshold,
        missing_reference=profile.missing_share,
        missing_current=float(distribution[-1]),
        unseen_current=float(distribution[-2]) if profile.kind == "categorical" else None,
    )


#: the thresholds that are keys of assay.yaml's ``monitoring`` section
_YAML_KEYS = ("psi_moderate", "psi_significant", "js_threshold")


def _check(ok: bool, key: str, expected: str, received: Any) -> None:
    if ok:
        return
    if key in _YAML_KEYS:
        where, fix = f"monitoring.{key}", f"Set monitoring.{key} in assay.yaml to {expected}."
    else:
        where, fix = key, f"Pass {key} as {expected}."
    raise ConfigError(
        f"drift threshold {key} is out of range",
        key=where,
        expected=expected,
        received=received,
        fix=fix,
    )
