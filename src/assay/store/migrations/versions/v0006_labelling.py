"""Labelling: annotation imports with their provenance, the annotations, and label versions.

Revision ID: 0006
Revises: 0005
Create Date: 2026-05-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create the annotation_imports, annotations and label_versions tables."""
    op.create_table(
        "annotation_imports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("file_name", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("format", sa.String(32), nullable=False),
        sa.Column("n_labels", sa.Integer(), nullable=False),
        sa.Column("n_skipped", sa.Integer(), nullable=False),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("options", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_annotation_imports"),
        sa.UniqueConstraint("sha256", name="uq_annotation_imports_sha256"),
    )
    op.create_table(
        "annotations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("import_id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Text(), nullable=False),
        sa.Column("annotator", sa.Text(), nullable=False),
        sa.Column("label", sa.Text(), nullable=False),
        sa.Column("time_spent", sa.Float(), nullable=True),
        sa.Column("annotated_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_annotations"),
        sa.ForeignKeyConstraint(
            ["import_id"],
            ["annotation_imports.id"],
            name="fk_annotations_import_id_annotation_imports",
        ),
    )
    op.create_index("ix_annotations_import_id", "annotations", ["import_id"])
    op.create_table(
        "label_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("parent_id", sa.Integer(), nullable=True),
        sa.Column("method", sa.String(32), nullable=False),
        sa.Column("min_confidence", sa.Float(), nullable=False),
        sa.Column("digest", sa.String(128), nullable=False),
        sa.Column("import_ids", sa.JSON(), nullable=False),
        sa.Column("n_items", sa.Integer(), nullable=False),
        sa.Column("n_held_out", sa.Integer(), nullable=False),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_label_versions"),
        sa.ForeignKeyConstraint(
            ["parent_id"], ["label_versions.id"], name="fk_label_versions_parent_id_label_versions"
        ),
    )


def downgrade() -> None:
    """Drop the labelling tables."""
    op.drop_table("label_versions")
    op.drop_index("ix_annotations_import_id", table_name="annotations")
    op.drop_table("annotations")
    op.drop_table("annotation_imports")
