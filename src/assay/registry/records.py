"""The records the model registry returns: frozen, JSON-serialisable with ``to_dict()``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any, Literal, get_args

__all__ = [
    "MODEL_STATUSES",
    "RUN_STATUSES",
    "AuditRecord",
    "Event",
    "GateRecord",
    "Lineage",
    "ModelStatus",
    "ModelVersion",
    "Run",
    "RunStatus",
    "TestAccess",
]

ModelStatus = Literal["registered", "champion", "challenger", "rejected", "archived"]
RunStatus = Literal["running", "succeeded", "failed", "cancelled", "abandoned"]
MODEL_STATUSES: tuple[str, ...] = get_args(ModelStatus)
RUN_STATUSES: tuple[str, ...] = get_args(RunStatus)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _parse(value: str | datetime | None) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value)


#: lineage keys written only when set (a version from ``assay run`` has none of the retrain ones)
_OPTIONAL_KEYS = frozenset(
    {"reason", "training_data", "retrain_id", "retrain", "base", "labels", "explanation"}
)


def _dict_of(obj: Any) -> dict[str, Any]:
    return {f.name: getattr(obj, f.name) for f in fields(obj)}


@dataclass(frozen=True)
class Lineage:
    """Where a registered version comes from: its audit, split, search, evaluation and data.

    The ``str`` fields ending a stage (``split_digest``, ``search``, ``evaluation``,
    ``baseline``, ``reference``, ``training_data``) are digests of JSON or Parquet
    artifacts in the store. A retrain candidate also carries ``training_data`` (the
    refreshed rows), ``retrain_id`` and ``retrain`` (its reason, champion and row counts).
    Keys this class does not know (written by older versions) are kept in ``extra``.

    Attributes:
        audit_id: the data audit the version was trained after.
        split: the split plan's summary (strategy, sizes, fingerprints).
        split_digest: the full split plan (row positions).
        search: the search history.
        evaluation: the evaluation on the sealed test set.
        baseline: the baseline's evaluation on the same rows.
        reference: the drift reference profile (None when it could not be built).
        features: the model's input columns, in order.
        text_column: the free-text column, if any.
        target: the target column.
        classes: the classes the model predicts (classification).
        diagnosis: the learning-curve diagnosis.
        validation_value: the primary metric on the validation rows.
        reason: why the version was trained (``assay run 3``, a retrain's trigger).
        training_data: the training rows as a Parquet artifact (retrain candidates).
        retrain_id: the retrain that registered it.
        retrain: the retrain's reason, champion and data counts.
        base: the pretrained base of a text model (its source, path and SHA-256).
        labels: the label version of the store the training data carried (imported
            annotations' consensus), None when the data had no imported labels.
        explanation: the global explanation on the sealed test rows (what the model
            leans on), None when none could be computed or for older versions.
        extra: keys of older records this class does not name.
    """

    audit_id: int | None = None
    split: dict[str, Any] | None = None
    split_digest: str | None = None
    search: str | None = None
    evaluation: str | None = None
    baseline: str | None = None
    reference: str | None = None
    features: tuple[str, ...] = ()
    text_column: str | None = None
    target: str | None = None
    classes: tuple[Any, ...] = ()
    diagnosis: dict[str, Any] | None = None
    validation_value: float | None = None
    reason: str | None = None
    training_data: str | None = None
    retrain_id: str | None = None
    retrain: dict[str, Any] | None = None
    base: dict[str, Any] | None = None
    labels: int | None = None
    explanation: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The JSON object the store holds (lists for tuples; unset optional keys left out)."""
        data: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "extra" or (f.name in _OPTIONAL_KEYS and value is None):
                continue
            data[f.name] = list(value) if isinstance(value, tuple) else value
        return {**self.extra, **data}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> Lineage:
        """The inverse of :meth:`to_dict`; missing keys take their defaults, unknown ones go
        to ``extra`` (so rows written by any earlier version still read)."""
        data = dict(data or {})
        names = {f.name for f in fields(cls)} - {"extra"}
        known = {k: v for k, v in data.items() if k in names}
        for key in ("features", "classes"):
            if key in known:
                known[key] = tuple(known[key] or ())
        extra = {k: v for k, v in data.items() if k not in names}
        return cls(**known, extra=extra)


@dataclass(frozen=True)
class ModelVersion:
    """One registered model with its lineage.

    Attributes:
        version: the number (1, 2, 3, ...) allocated by the store, never reused.
        run_id: the run that produced it (None if registered outside a run).
        created_at: when it was registered (UTC).
        user: who registered it.
        task: the task of assay.yaml (binary, regression, ...).
        family: the model family alias (``lightgbm``, ``logistic``, ...).
        params: the hyper-parameters.
        metrics: the evaluation metrics (validation and test as recorded by the run).
        data_version: the content hash of the data it was trained on.
        config: the framing document it was trained under.
        code_version: the assay (and project code) version that trained it.
        artifact_digest: the ``sha256:`` name of the pickled model.
        artifact_size: the size of the pickle in bytes.
        schema: the input schema the model expects.
        lineage: audit id, split fingerprint, search history, evaluation and
            learning-curve digests.
        status: registered | champion | challenger | rejected | archived.
        test_fingerprint: the fingerprint of the sealed test set it was scored on.
    """

    version: int
    run_id: int | None
    created_at: datetime
    user: str
    task: str
    family: str
    params: dict[str, Any]
    metrics: dict[str, Any]
    data_version: str
    config: dict[str, Any]
    code_version: str
    artifact_digest: str
    artifact_size: int
    schema: dict[str, Any]
    lineage: Lineage
    status: ModelStatus
    test_fingerprint: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values (``created_at`` as an ISO string)."""
        data = _dict_of(self)
        data["created_at"] = _iso(self.created_at)
        data["lineage"] = self.lineage.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelVersion:
        """The inverse of :meth:`to_dict`."""
        return cls(
            **{
                **data,
                "created_at": _parse(data["created_at"]),
                "lineage": Lineage.from_dict(data.get("lineage")),
            }
        )


@dataclass(frozen=True)
class Run:
    """One ``assay run``: its inputs, seeds, status and summary.

    ``pid`` and ``host`` name the process that ran it (None for runs recorded before
    assay kept them); a ``running`` run whose process is gone is marked ``abandoned``.
    """

    id: int
    created_at: datetime
    finished_at: datetime | None
    status: RunStatus
    config: dict[str, Any]
    data_version: str
    code_version: str
    user: str
    seeds: dict[str, Any]
    summary: dict[str, Any] | None = None
    pid: int | None = None
    host: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values (timestamps as ISO strings)."""
        data = _dict_of(self)
        data["created_at"] = _iso(self.created_at)
        data["finished_at"] = _iso(self.finished_at)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Run:
        """The inverse of :meth:`to_dict`."""
        return cls(
            **{
                **data,
                "created_at": _parse(data["created_at"]),
                "finished_at": _parse(data.get("finished_at")),
            }
        )


@dataclass(frozen=True)
class AuditRecord:
    """A stored data audit: the report of one data version and whether it passed."""

    id: int
    data_version: str
    created_at: datetime
    passed: bool
    report: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values."""
        data = _dict_of(self)
        data["created_at"] = _iso(self.created_at)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AuditRecord:
        """The inverse of :meth:`to_dict`."""
        return cls(**{**data, "created_at": _parse(data["created_at"])})


@dataclass(frozen=True)
class GateRecord:
    """A stored verdict of the promotion gate on one version, with each gate's outcome
    (the record of an :class:`assay.gate.GateDecision`)."""

    id: int
    version: int
    created_at: datetime
    passed: bool
    gates: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values."""
        data = _dict_of(self)
        data["created_at"] = _iso(self.created_at)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GateRecord:
        """The inverse of :meth:`to_dict`."""
        return cls(**{**data, "created_at": _parse(data["created_at"])})


@dataclass(frozen=True)
class TestAccess:
    """One scoring of the sealed test set (counted so nobody tunes against it unnoticed)."""

    __test__ = False  # not a pytest test class despite the name

    id: int
    test_fingerprint: str
    version: int | None
    run_id: int | None
    created_at: datetime
    purpose: str

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values."""
        data = _dict_of(self)
        data["created_at"] = _iso(self.created_at)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TestAccess:
        """The inverse of :meth:`to_dict`."""
        return cls(**{**data, "created_at": _parse(data["created_at"])})


@dataclass(frozen=True)
class Event:
    """One entry of the audit trail.

    Actions written by the registry: ``register``, ``promote``, ``override`` (a
    promotion forced past a failed gate), ``rollback``, ``challenger``, ``reject``,
    ``gate``; other stages add their own (``deploy``, ``token``, ...).
    """

    id: int
    at: datetime
    actor: str
    action: str
    version: int | None
    reason: str | None
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values."""
        data = _dict_of(self)
        data["at"] = _iso(self.at)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Event:
        """The inverse of :meth:`to_dict`."""
        return cls(**{**data, "at": _parse(data["at"])})
