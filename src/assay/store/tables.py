"""The store's tables at the head schema revision, as SQLAlchemy Core objects.

Queries use these objects; the database itself is built by the Alembic revisions in
``assay/store/migrations/versions``. When a revision adds or changes a table, change
this module in the same commit: the store contract test compares the migrated
database with :data:`metadata` and fails on any difference.

Types are portable (SQLite and PostgreSQL): no dialect-only column types, JSON
through :class:`sqlalchemy.JSON`, timestamps stored in UTC.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

__all__ = [
    "MODEL_VERSION_COUNTER",
    "NAMING_CONVENTION",
    "alerts",
    "aliases",
    "annotation_imports",
    "annotations_table",
    "audits",
    "counters",
    "deployments",
    "drift_reports",
    "events",
    "feedback",
    "gate_decisions",
    "label_versions",
    "metadata",
    "model_versions",
    "predictions",
    "runs",
    "test_accesses",
    "tokens",
]

#: Constraint names are explicit so that later revisions can alter them on SQLite
#: (batch mode recreates tables and needs the names).
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_name)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

#: The counters row that allocates model version numbers.
MODEL_VERSION_COUNTER = "model_version"

metadata = MetaData(naming_convention=NAMING_CONVENTION)

counters = Table(
    "counters",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", Integer, nullable=False),
)

audits = Table(
    "audits",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("data_version", String(255), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("passed", Boolean, nullable=False),
    Column("report", JSON, nullable=False),
    Index("ix_audits_data_version", "data_version"),
)

runs = Table(
    "runs",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True), nullable=True),
    Column("status", String(32), nullable=False),
    Column("config", JSON, nullable=False),
    Column("data_version", String(255), nullable=False),
    Column("code_version", String(255), nullable=False),
    Column("created_by", String(255), nullable=False),
    Column("seeds", JSON, nullable=False),
    Column("summary", JSON(none_as_null=True), nullable=True),
    # the process running it (revision 0004): a run whose process is gone was abandoned
    Column("pid", Integer, nullable=True),
    Column("host", String(255), nullable=True),
)

model_versions = Table(
    "model_versions",
    metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("run_id", Integer, ForeignKey("runs.id"), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("created_by", String(255), nullable=False),
    Column("task", String(64), nullable=False),
    Column("family", String(128), nullable=False),
    Column("params", JSON, nullable=False),
    Column("metrics", JSON, nullable=False),
    Column("data_version", String(255), nullable=False),
    Column("config", JSON, nullable=False),
    Column("code_version", String(255), nullable=False),
    Column("artifact_digest", String(128), nullable=False),
    Column("artifact_size", BigInteger, nullable=False),
    Column("input_schema", JSON, nullable=False),
    Column("lineage", JSON, nullable=False),
    Column("status", String(32), nullable=False),
    Column("test_fingerprint", String(255), nullable=True),
    Index("ix_model_versions_run_id", "run_id"),
)

aliases = Table(
    "aliases",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("version", Integer, ForeignKey("model_versions.version"), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

gate_decisions = Table(
    "gate_decisions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("version", Integer, ForeignKey("model_versions.version"), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("passed", Boolean, nullable=False),
    Column("gates", JSON, nullable=False),
    Index("ix_gate_decisions_version", "version"),
)

test_accesses = Table(
    "test_accesses",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("test_fingerprint", String(255), nullable=False),
    Column("version", Integer, ForeignKey("model_versions.version"), nullable=True),
    Column("run_id", Integer, ForeignKey("runs.id"), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("purpose", String(255), nullable=False),
    Index("ix_test_accesses_test_fingerprint", "test_fingerprint"),
)

events = Table(
    "events",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("actor", String(255), nullable=False),
    Column("action", String(64), nullable=False),
    Column("version", Integer, ForeignKey("model_versions.version"), nullable=True),
    Column("reason", Text, nullable=True),
    Column("details", JSON, nullable=False),
    Index("ix_events_version", "version"),
    Index("ix_events_action", "action"),
)

# -- serving (revision 0002) ----------------------------------------------------

# no foreign key to model_versions: the log is an append-only history written in
# batches, and one bad row must not make a whole batch fail
predictions = Table(
    "predictions",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("version", Integer, nullable=False),
    Column("route", String(16), nullable=False),
    Column("request_id", String(64), nullable=False),
    Column("inputs", JSON, nullable=False),
    Column("prediction", JSON, nullable=True),
    Column("probabilities", JSON(none_as_null=True), nullable=True),
    Column("confidence", Float, nullable=True),
    Column("latency_ms", Float, nullable=False),
    Column("flags", JSON, nullable=False),
    # revision 0004: on a champion answer, the challenger version the server shadowed it with
    Column("shadowed_by", Integer, nullable=True),
    Index("ix_predictions_at", "at"),
    Index("ix_predictions_version", "version"),
)

feedback = Table(
    "feedback",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("prediction_id", String(36), ForeignKey("predictions.id"), nullable=False),
    Column("label", JSON, nullable=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("actor", String(255), nullable=False),
    Index("ix_feedback_prediction_id", "prediction_id"),
)

tokens = Table(
    "tokens",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("token_hash", String(64), nullable=False),
    Column("scopes", JSON, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("created_by", String(255), nullable=False),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
    Column("last_used_at", DateTime(timezone=True), nullable=True),
)

deployments = Table(
    "deployments",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("version", Integer, ForeignKey("model_versions.version"), nullable=False),
    Column("mode", String(16), nullable=False),
    Column("share", Float, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("actor", String(255), nullable=False),
    Column("active", Boolean, nullable=False),
    Column("ended_at", DateTime(timezone=True), nullable=True),
    Index("ix_deployments_version", "version"),
    Index("ix_deployments_active", "active"),
)

# -- monitoring (revision 0003) -------------------------------------------------

# no foreign key to model_versions: alerts and reports are a history that must
# outlive any cleanup of versions
alerts = Table(
    "alerts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("version", Integer, nullable=True),
    Column("fingerprint", String(64), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("message", Text, nullable=False),
    Column("evidence", JSON, nullable=False),
    Column("delivered", Boolean, nullable=False),
    Column("delivery_error", Text, nullable=True),
    Column("resolved_at", DateTime(timezone=True), nullable=True),
    Index("ix_alerts_at", "at"),
    Index("ix_alerts_fingerprint", "fingerprint"),
)

drift_reports = Table(
    "drift_reports",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("version", Integer, nullable=True),
    Column("window", JSON, nullable=False),
    Column("report", JSON, nullable=False),
    Index("ix_drift_reports_at", "at"),
)

# -- labelling (revision 0006) --------------------------------------------------

# one row per annotation file imported; the file's hash makes a repeated import a no-op
annotation_imports = Table(
    "annotation_imports",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("file_name", Text, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("format", String(32), nullable=False),
    Column("n_labels", Integer, nullable=False),
    Column("n_skipped", Integer, nullable=False),
    Column("actor", String(255), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("options", JSON, nullable=False),
    UniqueConstraint("sha256"),
)

# one judgement of one annotator on one item, as the file gave it (a later import of the
# same item and annotator supersedes it when annotations are read, it is never rewritten);
# not named ``annotations``: that name is the module's ``from __future__`` import
annotations_table = Table(
    "annotations",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("import_id", Integer, ForeignKey("annotation_imports.id"), nullable=False),
    Column("item_id", Text, nullable=False),
    Column("annotator", Text, nullable=False),
    Column("label", Text, nullable=False),
    Column("time_spent", Float, nullable=True),
    Column("annotated_at", DateTime(timezone=True), nullable=True),
    Index("ix_annotations_import_id", "import_id"),
)

# the consensus of the annotations at one point: the label table is a Parquet artifact
label_versions = Table(
    "label_versions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("parent_id", Integer, ForeignKey("label_versions.id"), nullable=True),
    Column("method", String(32), nullable=False),
    Column("min_confidence", Float, nullable=False),
    Column("digest", String(128), nullable=False),
    Column("import_ids", JSON, nullable=False),
    Column("n_items", Integer, nullable=False),
    Column("n_held_out", Integer, nullable=False),
    Column("actor", String(255), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
)
