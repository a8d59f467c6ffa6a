"""The labelling records of the store: annotation imports, their annotations, label versions.

An import is one annotation file: its name, its SHA-256 (a file already imported is not
imported again), its format, counts and who imported it. Its annotations are kept as the
file gave them. A label version is the consensus over all annotations at one point,
stored as a Parquet table (:data:`assay.data.labels.LABEL_TABLE_COLUMNS`) in the
content-addressed artifacts, with the imports it was computed from and its parent.

:meth:`LabelStore.record_import` writes the files, their annotations, the new label
version and the audit-trail events in one transaction: an import is all or nothing, and
two imports at once are serialised, so each label version sees every annotation before
it. The consensus itself is the labelling stage's; it is passed in as a function.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Row, insert, select
from sqlalchemy.engine import make_url

from assay.errors import NotFoundError, StoreError
from assay.registry import _sql
from assay.registry.registry import current_user
from assay.store.database import DB_NAME, STATE_DIR, Store, as_utc, utcnow
from assay.store.serialize import to_jsonable
from assay.store.tables import annotation_imports, annotations_table, label_versions

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "ANNOTATION_ROW_COLUMNS",
    "LABELS_ACTION",
    "AnnotationImport",
    "ImportOutcome",
    "ImportedFile",
    "LabelStore",
    "LabelTable",
    "LabelVersion",
    "NewImport",
    "store_exists",
    "stored_labels",
]

#: The columns of the annotation rows an import stores and :meth:`LabelStore.annotation_rows`
#: returns (which adds ``source``, the file name, and ``import_id``).
ANNOTATION_ROW_COLUMNS = ("item_id", "annotator", "label", "time_spent", "annotated_at")
#: The audit-trail action of imports and label versions.
LABELS_ACTION = "labels"
# any fixed number: the PostgreSQL lock that serialises imports (SQLite's write lock does)
_PG_LABELS_LOCK = 7_215_470_512


@dataclass(frozen=True)
class AnnotationImport:
    """One imported annotation file.

    Attributes:
        id: the import number, in import order.
        file_name: the file's name as it was imported.
        sha256: the SHA-256 of its bytes (a file is imported once).
        format: ``table``, ``label-studio`` or ``label-studio-min``.
        n_labels: the judgements stored from it.
        n_skipped: the annotations in it that were no label (cancelled, empty).
        actor: who imported it.
        at: when (UTC).
        options: how it was read (column names, skipped counts by reason, its path).
    """

    id: int
    file_name: str
    sha256: str
    format: str
    n_labels: int
    n_skipped: int
    actor: str
    at: datetime
    options: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "file_name": self.file_name,
            "sha256": self.sha256,
            "format": self.format,
            "n_labels": self.n_labels,
            "n_skipped": self.n_skipped,
            "actor": self.actor,
            "at": self.at.isoformat(),
            "options": self.options,
        }


@dataclass(frozen=True)
class LabelVersion:
    """The consensus labels at one point, computed from ``import_ids``.

    Attributes:
        id: the label version number.
        parent_id: the version it replaced (None for the first).
        method: how the consensus was chosen (``majority``, ``dawid_skene``).
        min_confidence: items less sure than this are held out for adjudication.
        digest: the Parquet artifact of the table (item_id, label, confidence,
            n_annotations, held_out).
        import_ids: the imports whose annotations it is computed from.
        n_items: the items with at least one judgement.
        n_held_out: the items held out for adjudication.
        actor: who caused it.
        at: when (UTC).
    """

    id: int
    parent_id: int | None
    method: str
    min_confidence: float
    digest: str
    import_ids: tuple[int, ...]
    n_items: int
    n_held_out: int
    actor: str
    at: datetime

    @property
    def n_confident(self) -> int:
        """The items whose consensus label goes into the data."""
        return self.n_items - self.n_held_out

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "parent_id": self.parent_id,
            "method": self.method,
            "min_confidence": self.min_confidence,
            "digest": self.digest,
            "import_ids": list(self.import_ids),
            "n_items": self.n_items,
            "n_held_out": self.n_held_out,
            "actor": self.actor,
            "at": self.at.isoformat(),
        }


@dataclass(frozen=True)
class NewImport:
    """An annotation file read and checked, ready to be stored.

    ``rows`` has the columns of :data:`ANNOTATION_ROW_COLUMNS`: text item ids, annotators
    and labels, ``time_spent`` in seconds (NaN when unknown), ``annotated_at`` (NaT when
    unknown).
    """

    file_name: str
    sha256: str
    format: str
    rows: pd.DataFrame
    n_skipped: int
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LabelTable:
    """A consensus ready to become a label version: ``frame`` has the label table columns."""

    method: str
    min_confidence: float
    frame: pd.DataFrame


@dataclass(frozen=True)
class ImportedFile:
    """One file of an import: its record, and whether it had been imported before."""

    record: AnnotationImport
    already: bool

    def to_dict(self) -> dict[str, Any]:
        return {**self.record.to_dict(), "already_imported": self.already}


@dataclass(frozen=True)
class ImportOutcome:
    """What :meth:`LabelStore.record_import` did: each file, and the new label version (None
    when every file had been imported before: nothing changed)."""

    files: tuple[ImportedFile, ...]
    label_version: LabelVersion | None


#: The consensus of the stage: all annotation rows (:meth:`LabelStore.annotation_rows`)
#: in, the label table out.
BuildLabels = Callable[["pd.DataFrame"], LabelTable]


class LabelStore:
    """The labelling records of one :class:`Store`."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # -- imports --------------------------------------------------------------

    def record_import(
        self,
        files: Sequence[NewImport],
        *,
        consensus: BuildLabels,
        actor: str | None = None,
    ) -> ImportOutcome:
        """Store ``files``, their annotations and the label version they lead to, at once.

        A file whose SHA-256 is already imported is left as it is (reported with
        ``already=True``); so is a second copy of a file in ``files``. When at least one
        file is new, ``consensus`` is called on all annotation rows, old and new, and
        its table is recorded as the next label version, with one ``labels`` event per
        new file. Any failure leaves the store as it was.
        """
        who = actor or current_user()
        outcomes: list[ImportedFile] = []
        with self.store.transaction() as conn:
            self._serialise(conn)
            new: list[tuple[AnnotationImport, NewImport]] = []
            for file in files:
                existing = self._import_by_hash(conn, file.sha256)
                if existing is not None:
                    outcomes.append(ImportedFile(existing, already=True))
                    continue
                record = self._insert_import(conn, file, who)
                outcomes.append(ImportedFile(record, already=False))
                new.append((record, file))
            if not new:
                return ImportOutcome(tuple(outcomes), None)
            table = consensus(self._rows(conn))
            version = self._insert_version(conn, table, who)
            for record, file in new:
                annotators = sorted(set(map(str, file.rows["annotator"])))
                reason = (
                    f"imported {record.file_name}: {record.n_labels} labels from "
                    f"{len(annotators)} annotator{'s' if len(annotators) != 1 else ''}"
                    + (f" ({record.n_skipped} skipped)" if record.n_skipped else "")
                    + f"; label version {version.id}"
                )
                _sql.insert_event(
                    conn, LABELS_ACTION, who, None, reason,
                    {
                        "import_id": record.id,
                        "file_name": record.file_name,
                        "sha256": record.sha256,
                        "n_labels": record.n_labels,
                        "n_skipped": record.n_skipped,
                        "annotators": annotators[:50],
                        "n_annotators": len(annotators),
                        "label_version": version.id,
                    },
                )
            return ImportOutcome(tuple(outcomes), version)

    def imports(self) -> list[AnnotationImport]:
        """Every import, oldest first."""
        with self.store.connect() as conn:
            rows = conn.execute(select(annotation_imports).order_by(annotation_imports.c.id))
            return [_to_import(row) for row in rows]

    def find_import(self, sha256: str) -> AnnotationImport | None:
        """The import of the file with this SHA-256, if it was imported."""
        with self.store.connect() as conn:
            return self._import_by_hash(conn, sha256)

    def annotation_rows(self) -> pd.DataFrame:
        """Every stored judgement in import order, with ``source`` (the file) and ``import_id``.

        Rows are as imported: when an annotator judged an item twice, both rows are
        here, the later last (:class:`assay.label.annotations.Annotations` keeps it).
        """
        with self.store.connect() as conn:
            return self._rows(conn)

    # -- label versions -------------------------------------------------------

    def record_label_version(
        self, table: LabelTable, *, actor: str | None = None, reason: str | None = None
    ) -> LabelVersion:
        """Record ``table`` as the next label version over all imports (a recomputed
        consensus: another method or minimum confidence), with a ``labels`` event."""
        who = actor or current_user()
        with self.store.transaction() as conn:
            self._serialise(conn)
            version = self._insert_version(conn, table, who)
            why = f"label version {version.id} ({version.method})" + (
                f": {reason}" if reason else ""
            )
            _sql.insert_event(
                conn, LABELS_ACTION, who, None, why, {"label_version": version.id}
            )
            return version

    def current_label_version(self) -> LabelVersion | None:
        """The newest label version, or None when no annotations were imported."""
        with self.store.connect() as conn:
            row = conn.execute(
                select(label_versions).order_by(label_versions.c.id.desc()).limit(1)
            ).first()
        return _to_version(row) if row is not None else None

    def label_versions(self) -> list[LabelVersion]:
        """Every label version, oldest first."""
        with self.store.connect() as conn:
            rows = conn.execute(select(label_versions).order_by(label_versions.c.id))
            return [_to_version(row) for row in rows]

    def get_label_version(self, version_id: int) -> LabelVersion:
        """The label version ``version_id``."""
        with self.store.connect() as conn:
            row = conn.execute(
                select(label_versions).where(label_versions.c.id == version_id)
            ).first()
        if row is None:
            raise NotFoundError(
                f"label version {version_id} does not exist",
                where=self.store.url,
                received=version_id,
                fix="List the label versions with `assay label status`.",
            )
        return _to_version(row)

    def label_table(self, version: LabelVersion | int) -> pd.DataFrame:
        """The table of a label version (its Parquet artifact, verified by its hash)."""
        import pandas as pd

        record = version if isinstance(version, LabelVersion) else self.get_label_version(version)
        data = self.store.artifacts.get_bytes(record.digest)
        return pd.read_parquet(io.BytesIO(data))

    # -- helpers --------------------------------------------------------------

    def _serialise(self, conn: Connection) -> None:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_LABELS_LOCK})")

    def _import_by_hash(self, conn: Connection, sha256: str) -> AnnotationImport | None:
        row = conn.execute(
            select(annotation_imports).where(annotation_imports.c.sha256 == sha256)
        ).first()
        return _to_import(row) if row is not None else None

    def _insert_import(self, conn: Connection, file: NewImport, actor: str) -> AnnotationImport:
        missing = [c for c in ANNOTATION_ROW_COLUMNS if c not in file.rows.columns]
        if missing:
            raise StoreError(
                "annotation rows lack columns",
                where=file.file_name,
                expected=", ".join(ANNOTATION_ROW_COLUMNS),
                received=", ".join(map(str, file.rows.columns)),
            )
        values = {
            "file_name": file.file_name,
            "sha256": file.sha256,
            "format": file.format,
            "n_labels": int(len(file.rows)),
            "n_skipped": int(file.n_skipped),
            "actor": actor,
            "at": utcnow(),
            "options": to_jsonable(dict(file.options), "options"),
        }
        import_id = _sql.new_id(conn.execute(insert(annotation_imports).values(**values)))
        records = [
            {
                "import_id": import_id,
                "item_id": str(item),
                "annotator": str(annotator),
                "label": str(label),
                "time_spent": _number(spent),
                "annotated_at": _timestamp(at),
            }
            for item, annotator, label, spent, at in file.rows[
                list(ANNOTATION_ROW_COLUMNS)
            ].itertuples(index=False, name=None)
        ]
        if records:
            conn.execute(insert(annotations_table), records)
        return AnnotationImport(id=import_id, **values)

    def _rows(self, conn: Connection) -> pd.DataFrame:
        import pandas as pd

        query = (
            select(
                annotations_table.c.item_id,
                annotations_table.c.annotator,
                annotations_table.c.label,
                annotations_table.c.time_spent,
                annotations_table.c.annotated_at,
                annotation_imports.c.file_name.label("source"),
                annotations_table.c.import_id,
            )
            .join(annotation_imports, annotation_imports.c.id == annotations_table.c.import_id)
            .order_by(annotations_table.c.import_id, annotations_table.c.id)
        )
        rows = conn.execute(query).all()
        columns = [*ANNOTATION_ROW_COLUMNS, "source", "import_id"]
        frame = pd.DataFrame([tuple(row) for row in rows], columns=columns)
        frame["time_spent"] = pd.to_numeric(frame["time_spent"], errors="coerce")
        frame["annotated_at"] = pd.to_datetime(
            [as_utc(v) if v is not None else None for v in frame["annotated_at"]], utc=True
        )
        return frame

    def _insert_version(self, conn: Connection, table: LabelTable, actor: str) -> LabelVersion:
        from assay.data.labels import LABEL_TABLE_COLUMNS

        frame = table.frame.reset_index(drop=True)
        missing = [c for c in LABEL_TABLE_COLUMNS if c not in frame.columns]
        if missing:
            raise StoreError(
                "a label table lacks columns",
                expected=", ".join(LABEL_TABLE_COLUMNS),
                received=", ".join(map(str, frame.columns)),
            )
        frame = frame[list(LABEL_TABLE_COLUMNS)]
        buffer = io.BytesIO()
        frame.to_parquet(buffer, index=False)
        digest = self.store.artifacts.put_bytes(buffer.getvalue())
        parent = conn.execute(
            select(label_versions.c.id).order_by(label_versions.c.id.desc()).limit(1)
        ).scalar()
        import_ids = [
            int(i)
            for i in conn.execute(
                select(annotation_imports.c.id).order_by(annotation_imports.c.id)
            ).scalars()
        ]
        version = LabelVersion(
            id=0,
            parent_id=int(parent) if parent is not None else None,
            method=table.method,
            min_confidence=float(table.min_confidence),
            digest=digest,
            import_ids=tuple(import_ids),
            n_items=int(len(frame)),
            n_held_out=int(frame["held_out"].astype(bool).sum()),
            actor=actor,
            at=utcnow(),
        )
        values = {k: v for k, v in version.to_dict().items() if k != "id"}
        values["at"] = version.at
        version_id = _sql.new_id(conn.execute(insert(label_versions).values(**values)))
        return replace(version, id=version_id)


def stored_labels(
    root: Path, url: str | None = None, artifacts: str | None = None
) -> tuple[LabelVersion, pd.DataFrame] | None:
    """The current label version of a project's store and its table; None when there is none.

    Loading the data asks this every time, so it is cheap for a project that never
    labelled: when the store's database file does not exist, it returns None without
    creating it (a server database named by ``url`` is opened).
    """
    if not store_exists(root, url):
        return None
    with Store.open(root=root, url=url, artifacts=artifacts) as store:
        labels = LabelStore(store)
        version = labels.current_label_version()
        if version is None:
            return None
        return version, labels.label_table(version)


def store_exists(root: Path, url: str | None) -> bool:
    """Whether the project's store is there (a server database is assumed to be)."""
    if url is None:
        return (root / STATE_DIR / DB_NAME).is_file()
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return True
    if parsed.database in (None, "", ":memory:"):
        return False
    path = Path(parsed.database)
    return (path if path.is_absolute() else root / path).is_file()


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number == number else None  # NaN is unknown


def _timestamp(value: Any) -> datetime | None:
    if value is None:
        return None
    try:
        import pandas as pd

        if pd.isna(value):
            return None
        stamp = pd.Timestamp(value)
    except (TypeError, ValueError):
        return None
    if stamp.tzinfo is None:
        stamp = stamp.tz_localize("UTC")
    converted: datetime = stamp.tz_convert("UTC").to_pydatetime()
    return converted


def _to_import(row: Row[Any]) -> AnnotationImport:
    m = row._mapping
    return AnnotationImport(
        id=int(m["id"]),
        file_name=m["file_name"],
        sha256=m["sha256"],
        format=m["format"],
        n_labels=int(m["n_labels"]),
        n_skipped=int(m["n_skipped"]),
        actor=m["actor"],
        at=as_utc(m["at"]),
        options=dict(m["options"] or {}),
    )


def _to_version(row: Row[Any]) -> LabelVersion:
    m = row._mapping
    return LabelVersion(
        id=int(m["id"]),
        parent_id=int(m["parent_id"]) if m["parent_id"] is not None else None,
        method=m["method"],
        min_confidence=float(m["min_confidence"]),
        digest=m["digest"],
        import_ids=tuple(int(i) for i in m["import_ids"] or ()),
        n_items=int(m["n_items"]),
        n_held_out=int(m["n_held_out"]),
        actor=m["actor"],
        at=as_utc(m["at"]),
    )
