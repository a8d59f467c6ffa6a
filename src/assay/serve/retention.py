"""The retention policy of the prediction log: old predictions are deleted, the file compacted.

The policy has two bounds, either or both (assay.yaml ``monitoring.log_retention_days``
and ``monitoring.log_max_rows``):

- age: predictions that arrived more than ``max_age_days`` ago are deleted;
- rows: of the rest, only the newest ``max_rows`` are kept.

Labelled predictions (those with feedback) are always kept: they are the ground truth
monitoring and retraining learn from, and feedback is authenticated and one label per
prediction, so they cannot grow without bound the way anonymous traffic can.

Whoever drains the log applies the policy every :data:`RETENTION_SECONDS` (the drainer
process of ``assay serve``, or the log's writer thread), deleting in chunks of
:data:`DELETE_CHUNK` rows so a long clean-up never holds the write lock for long.
SQLite does not give deleted pages back to the file system (later inserts reuse them);
after a clean-up that leaves at least :data:`COMPACT_MIN_BYTES` and a quarter of the file
free, the database is compacted with ``VACUUM``. PostgreSQL's autovacuum does that job.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, delete, exists, func, select

from assay.errors import ConfigError
from assay.store.database import Store, utcnow
from assay.store.tables import feedback, predictions

__all__ = [
    "COMPACT_MIN_BYTES",
    "DELETE_CHUNK",
    "RETENTION_SECONDS",
    "LogRetention",
    "RetentionResult",
    "apply_retention",
]

#: seconds between two applications of the policy by a drain
RETENTION_SECONDS = 60.0
#: rows deleted per transaction
DELETE_CHUNK = 5000
#: free bytes in the SQLite file (with a quarter of it free) that make a clean-up compact it
COMPACT_MIN_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True)
class LogRetention:
    """How long predictions stay in the log.

    Attributes:
        max_age_days: delete predictions older than this many days (None: no age bound).
        max_rows: keep at most this many unlabelled predictions, the newest (None: no bound).
    """

    max_age_days: float | None = None
    max_rows: int | None = None

    def __post_init__(self) -> None:
        if self.max_age_days is not None and not (
            math.isfinite(self.max_age_days) and self.max_age_days > 0
        ):
            raise ConfigError(
                "the prediction log retention must be a positive number of days",
                key="monitoring.log_retention_days",
                expected="a number of days > 0, or null to keep predictions of any age",
                received=self.max_age_days,
            )
        if self.max_rows is not None and self.max_rows < 1:
            raise ConfigError(
                "the prediction log row bound must be positive",
                key="monitoring.log_max_rows",
                expected="an integer >= 1, or null for no bound",
                received=self.max_rows,
            )

    @property
    def enabled(self) -> bool:
        """True when the policy deletes anything at all."""
        return self.max_age_days is not None or self.max_rows is not None

    def to_args(self) -> list[str]:
        """Command-line arguments of the drainer process carrying this policy."""
        args: list[str] = []
        if self.max_age_days is not None:
            args += ["--retention-days", repr(float(self.max_age_days))]
        if self.max_rows is not None:
            args += ["--max-rows", str(int(self.max_rows))]
        return args

    @classmethod
    def from_monitoring(cls, monitoring: Any) -> LogRetention:
        """The policy of assay.yaml's ``monitoring`` section."""
        return cls(
            max_age_days=getattr(monitoring, "log_retention_days", None),
            max_rows=getattr(monitoring, "log_max_rows", None),
        )


@dataclass(frozen=True)
class RetentionResult:
    """What one application of the policy did: predictions deleted and whether the database
    was compacted (``freed_bytes``: what compacting gave back to the file system)."""

    deleted: int
    compacted: bool = False
    freed_bytes: int = 0


def apply_retention(
    store: Store, retention: LogRetention, *, now: datetime | None = None
) -> RetentionResult:
    """Delete the predictions ``retention`` no longer keeps, then compact when worth it."""
    if not retention.enabled:
        return RetentionResult(0)
    unlabelled = ~exists().where(feedback.c.prediction_id == predictions.c.id)
    deleted = 0
    if retention.max_age_days is not None:
        cutoff = (now or utcnow()) - timedelta(days=retention.max_age_days)
        deleted += _delete_where(store, [predictions.c.at < cutoff, unlabelled])
    if retention.max_rows is not None:
        with store.connect() as conn:
            count = (
                conn.execute(select(func.count()).select_from(predictions).where(unlabelled))
                .scalar() or 0
            )
            oldest_kept = None
            if count > retention.max_rows:
                oldest_kept = conn.execute(
                    select(predictions.c.at, predictions.c.id)
                    .where(unlabelled)
                    .order_by(predictions.c.at.desc(), predictions.c.id.desc())
                    .offset(retention.max_rows - 1)
                    .limit(1)
                ).first()
        if oldest_kept is not None:
            at, pid = oldest_kept
            older = (predictions.c.at < at) | ((predictions.c.at == at) & (predictions.c.id < pid))
            deleted += _delete_where(store, [older, unlabelled])
    if deleted == 0:
        return RetentionResult(0)
    freed = _compact(store)
    return RetentionResult(deleted, compacted=freed is not None, freed_bytes=freed or 0)


def _delete_where(store: Store, conditions: Sequence[ColumnElement[bool]]) -> int:
    deleted = 0
    while True:
        with store.transaction() as conn:
            ids = list(
                conn.execute(select(predictions.c.id).where(*conditions).limit(DELETE_CHUNK))
                .scalars()
            )
            if ids:
                conn.execute(delete(predictions).where(predictions.c.id.in_(ids)))
        deleted += len(ids)
        if len(ids) < DELETE_CHUNK:
            return deleted


def _compact(store: Store) -> int | None:
    """VACUUM a SQLite database with enough free pages; the bytes freed, or None."""
    if store.dialect != "sqlite" or store.engine.url.database in (None, "", ":memory:"):
        return None
    with store.engine.connect() as conn:
        # the raw connection: VACUUM cannot run inside the transaction SQLAlchemy would begin
        raw: Any = conn.connection.driver_connection
        page_size = int(raw.execute("PRAGMA page_size").fetchone()[0])
        pages = int(raw.execute("PRAGMA page_count").fetchone()[0])
        free = int(raw.execute("PRAGMA freelist_count").fetchone()[0])
        if free * page_size < COMPACT_MIN_BYTES or free * 4 < pages:
            return None
        raw.execute("VACUUM")
        # in WAL mode the compacted pages sit in the -wal file until a checkpoint
        raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        after = int(raw.execute("PRAGMA page_count").fetchone()[0])
    return max(pages - after, 0) * page_size
