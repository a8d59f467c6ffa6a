"""Initial schema: audits, runs, model versions, aliases, gate decisions, test accesses, events.

Revision ID: 0001
Revises:
Create Date: 2026-05-01
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _at() -> sa.Column[Any]:
    return sa.Column("created_at", sa.DateTime(timezone=True), nullable=False)


def upgrade() -> None:
    """Create the tables of the first schema and seed the version counter."""
    counters = op.create_table(
        "counters",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("value", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_counters"),
    )
    op.create_table(
        "audits",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("data_version", sa.String(255), nullable=False),
        _at(),
        sa.Column("passed", sa.Boolean(), nullable=False),
        sa.Column("report", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audits"),
    )
    op.create_index("ix_audits_data_version", "audits", ["data_version"])
    op.create_table(
        "runs",
        sa.Column("id", sa.Integer(), nullable=False),
        _at(),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("data_version", sa.String(255), nullable=False),
        sa.Column("code_version", sa.String(255), nullable=False),
        sa.Column("created_by", sa.String(255), nullable=False),
        sa.Column("seeds", sa.JSON(), nullable=False),
        sa.Column("summary", sa.JSON(none_as_null=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_runs"),
    )
    op.create_table(
        "model_versions",
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
        _at(),
        sa.Column("created_by", sa.String(255), nullable=False),
        sa.Column("task", sa.String(64), nullable=False),
        sa.Column("family", sa.String(128), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("data_version", sa.String(255), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("code_version", sa.String(255), nullable=False),
        sa.Column("artifact_digest", sa.String(128), nullable=False),
        sa.Column("artifact_size", sa.BigInteger(), nullable=False),
        sa.Column("input_schema", sa.JSON(), nullable=False),
        sa.Column("lineage", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("test_fingerprint", sa.String(255), nullable=True),
        sa.PrimaryKeyConstraint("version", name="pk_model_versions"),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name="fk_model_versions_run_id_runs"),
    )
    op.create_index("ix_model_versions_run_id", "model_versions", ["run_id"])
    op.create_table(
        "aliases",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_aliases"),
        sa.ForeignKeyConstraint(
            ["version"], ["model_versions.version"], name="fk_aliases_version_model_versions"
        ),
    )
    op.create_table(
        "gate_decisions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        _at(),
        sa.Column("passed", sa.Boolean(), nullable=False),
        sa.Column("gates", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_gate_decisions"),
        sa.ForeignKeyConstraint(
            ["version"],
            ["model_versions.version"],
            name="fk_gate_decisions_version_model_versions",
        ),
    )
    op.create_index("ix_gate_decisions_version", "gate_decisions", ["version"])
    op.create_table(
        "test_accesses",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("test_fingerprint", sa.String(255), nullable=False),
        sa.Column("version", sa.Integer(), nullable=True),
        sa.Column("run_id", sa.Integer(), nullable=True),
        _at(),
        sa.Column("purpose", sa.String(255), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_test_accesses"),
        sa.ForeignKeyConstraint(
            ["version"],
            ["model_versions.version"],
            name="fk_test_accesses_version_model_versions",
        ),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name="fk_test_accesses_run_id_runs"),
    )
    op.create_index("ix_test_accesses_test_fingerprint", "test_accesses", ["test_fingerprint"])
    op.create_table(
        "events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_events"),
        sa.ForeignKeyConstraint(
            ["version"], ["model_versions.version"], name="fk_events_version_model_versions"
        ),
    )
    op.create_index("ix_events_version", "events", ["version"])
    op.create_index("ix_events_action", "events", ["action"])
    op.bulk_insert(counters, [{"name": "model_version", "value": 0}])


def downgrade() -> None:
    """Drop every table of the first schema."""
    for index, table in (
        ("ix_events_action", "events"),
        ("ix_events_version", "events"),
        ("ix_test_accesses_test_fingerprint", "test_accesses"),
        ("ix_gate_decisions_version", "gate_decisions"),
        ("ix_model_versions_run_id", "model_versions"),
        ("ix_audits_data_version", "audits"),
    ):
        op.drop_index(index, table_name=table)
    for table in (
        "events",
        "test_accesses",
        "gate_decisions",
        "aliases",
        "model_versions",
        "runs",
        "audits",
        "counters",
    ):
        op.drop_table(table)
