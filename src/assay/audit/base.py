"""The audit's building blocks: findings, the report, the context and ``BaseCheck``."""

from __future__ import annotations

import abc
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Literal, TypeVar

import pandas as pd

from assay.aliases import AliasTable
from assay.config.columns import feature_columns
from assay.data.dataset import Dataset
from assay.errors import ConfigError, DataError

if TYPE_CHECKING:
    from assay.config.spec import ProjectSpec

__all__ = [
    "CHECKS",
    "AuditContext",
    "AuditReport",
    "BaseCheck",
    "Finding",
    "Severity",
    "SEVERITY_ORDER",
    "resolve_text_column",
]

T = TypeVar("T")

Severity = Literal["block", "warn", "info"]
SEVERITY_ORDER: dict[str, int] = {"block": 0, "warn": 1, "info": 2}


@dataclass(frozen=True)
class Finding:
    """One thing the audit found.

    Attributes:
        check: the name of the check (e.g. ``target_leakage``).
        severity: ``block`` stops a run, ``warn`` needs a look, ``info`` is context.
        columns: the columns concerned (empty for row-level findings).
        message: what was found, in one sentence.
        evidence: the numbers behind it (JSON-serialisable).
        fix: what to do about it.
    """

    check: str
    severity: Severity
    columns: tuple[str, ...]
    message: str
    evidence: dict[str, Any] = field(default_factory=dict)
    fix: str = ""

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["columns"] = list(self.columns)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Finding:
        return cls(**{**data, "columns": tuple(data.get("columns", ()))})


@dataclass(frozen=True)
class AuditReport:
    """The findings on one data set, sorted by severity, with timings per check."""

    data_version: str
    rows: int
    columns: int
    findings: tuple[Finding, ...]
    source: str = ""
    checks_run: tuple[str, ...] = ()
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def blocking(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "block"]

    @property
    def passed(self) -> bool:
        """True when no finding blocks."""
        return not self.blocking

    def by_check(self, check: str) -> list[Finding]:
        return [f for f in self.findings if f.check == check]

    def with_findings(self, extra: Sequence[Finding]) -> AuditReport:
        """This report with ``extra`` findings added (blocking ones first)."""
        if not extra:
            return self
        order = {"block": 0, "warn": 1, "info": 2}
        findings = sorted((*self.findings, *extra), key=lambda f: order.get(f.severity, 3))
        checks = tuple(dict.fromkeys((*self.checks_run, *(f.check for f in extra))))
        return replace(self, findings=tuple(findings), checks_run=checks)

    def accepting(self, checks: Iterable[str], *, actor: str) -> AuditReport:
        """Blocking findings of ``checks`` turned into warnings, each saying who accepted it.

        The finding stays in the report (and in the store's copy of it), so the decision
        to go on despite it is visible wherever the audit is.
        """
        names = set(checks)
        if not names:
            return self
        findings = tuple(
            replace(
                f,
                severity="warn",
                message=f"accepted by {actor}: {f.message}",
                evidence={**f.evidence, "accepted_by": actor},
            )
            if f.severity == "block" and f.check in names
            else f
            for f in self.findings
        )
        return replace(self, findings=findings)

    def to_dict(self) -> dict[str, Any]:
        return {
            "data_version": self.data_version,
            "rows": self.rows,
            "columns": self.columns,
            "findings": [f.to_dict() for f in self.findings],
            "source": self.source,
            "checks_run": list(self.checks_run),
            "seconds": {k: round(v, 4) for k, v in self.seconds.items()},
            "passed": self.passed,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AuditReport:
        return cls(
            data_version=data["data_version"],
            rows=data["rows"],
            columns=data["columns"],
            findings=tuple(Finding.from_dict(f) for f in data["findings"]),
            source=data.get("source", ""),
            checks_run=tuple(data.get("checks_run", ())),
            seconds=dict(data.get("seconds", {})),
        )


@dataclass(frozen=True)
class AuditContext:
    """What a check may look at: the data and the roles the framing gives its columns.

    ``target`` and ``task`` may be None when a file is audited without a target;
    checks about the target then find nothing. ``text_column`` is the free-text column
    (``data.text``, or the only text feature of a text-classification task);
    ``model_base``, ``max_length`` and ``root`` (the project folder, against which a
    relative ``model.base`` is read) say which tokenizer and encoder the text checks use;
    ``test_size`` and ``validation_size`` are the shares the split will take.
    """

    dataset: Dataset
    target: str | None = None
    task: str | None = None
    id_column: str | None = None
    time_column: str | None = None
    group_column: str | None = None
    dropped: tuple[str, ...] = ()
    protected: tuple[str, ...] = ()
    slices: tuple[str, ...] = ()
    min_slice_size: int = 30
    label_errors_max_rows: int = 50_000
    seed: int = 42
    text_column: str | None = None
    model_base: str | None = None
    max_length: int | None = None
    root: Path | None = None
    test_size: float = 0.2
    validation_size: float = 0.2
    _shared: dict[str, Any] = field(default_factory=dict, init=False, repr=False, compare=False)

    @property
    def frame(self) -> pd.DataFrame:
        return self.dataset.frame

    @property
    def features(self) -> list[str]:
        """Columns a model would learn from: all but target, id, time, group and dropped."""
        return feature_columns(
            self.frame.columns,
            target=self.target,
            id_column=self.id_column,
            time_column=self.time_column,
            group_column=self.group_column,
            dropped=self.dropped,
        )

    def kind(self, column: str) -> str:
        return self.dataset.schema[column].kind

    def shared(self, key: str, compute: Callable[[], T]) -> T:
        """The value of ``compute()``, computed once per context under ``key``.

        Several checks build on the same scan (the ID-like columns, the leakage
        scores); the first to ask pays for it, the others reuse it.
        """
        if key not in self._shared:
            self._shared[key] = compute()
        value: T = self._shared[key]
        return value

    @classmethod
    def from_spec(
        cls, dataset: Dataset, spec: ProjectSpec, *, root: Path | None = None
    ) -> AuditContext:
        """The context ``spec`` frames ``dataset`` with; ``root`` is the project folder."""
        ctx = cls(
            dataset=dataset,
            target=spec.data.target,
            task=spec.task,
            id_column=spec.data.id,
            time_column=spec.data.time,
            group_column=spec.data.group,
            dropped=tuple(spec.data.drop),
            protected=tuple(spec.fairness.protected),
            slices=tuple(spec.slices),
            min_slice_size=spec.fairness.min_slice_size,
            label_errors_max_rows=spec.audit.label_errors_max_rows,
            seed=spec.seed,
            model_base=spec.model.base,
            max_length=spec.model.max_length,
            root=root,
            test_size=spec.split.test_size,
            validation_size=spec.split.validation_size,
        )
        text = resolve_text_column(dataset, spec.data.text, ctx.features, spec.task)
        return replace(ctx, text_column=text)


def resolve_text_column(
    dataset: Dataset, configured: str | None, features: list[str], task: str
) -> str | None:
    """The free-text column: configured, or the only text feature of a text-classification task.

    Raises:
        ConfigError: on a text-classification task, when there is no text column, or
            ``data.text`` names a column of numbers, booleans or dates (exit 2).
        DataError: when the text column holds no text at all.
    """
    if task != "text-classification":
        return configured
    column = configured
    if column is None:
        texts = [c for c in features if dataset.schema[c].kind == "text"]
        if not texts:
            raise ConfigError(
                "a text-classification task needs a free-text column, and none was found",
                key="data.text",
                expected="the name of the column holding the texts",
                received=f"columns: {', '.join(features[:20])}",
                fix="Set data.text in assay.yaml to the text column, or choose a tabular task.",
            )
        column = texts[0]
    if column not in dataset.schema:
        return column  # the spec loader names a missing column; nothing more to add here
    kind = dataset.schema[column].kind
    if kind in ("numeric", "integer", "boolean", "datetime"):
        raise ConfigError(
            f"column '{column}' holds {kind} values, not free text",
            key="data.text",
            expected="a column of texts (strings)",
            received=f"{kind} values",
            fix="Point data.text at the free-text column; a column of numbers, flags or dates "
            "is a feature of a tabular task.",
        )
    values = dataset.frame[column]
    texts = values[values.map(lambda v: isinstance(v, str) and bool(v.strip()))]
    if texts.empty:
        raise DataError(
            "the text column holds no text: every value is missing or blank",
            path=dataset.source,
            column=column,
            expected="texts to learn from",
            received=f"{len(values):,} missing or blank values",
            fix="Check data.text names the right column and that the file was read with its "
            "encoding (data.encoding).",
        )
    return column


class BaseCheck(abc.ABC):
    """One audit check.

    Subclasses are registered with ``@CHECKS.register("name")`` and implement
    :meth:`run`. The runner calls ``applies(ctx)`` first and skips the check when
    it returns False (e.g. a target check on a file audited without a target),
    then ``run(ctx)``, which returns zero or more findings and must not modify
    the frame.
    """

    alias: ClassVar[str]

    def applies(self, ctx: AuditContext) -> bool:
        """Whether this check has anything to look at (default: always)."""
        return True

    @abc.abstractmethod
    def run(self, ctx: AuditContext) -> list[Finding]:
        """The findings of this check on ``ctx``."""


CHECKS: AliasTable[type[BaseCheck]] = AliasTable("audit check")
