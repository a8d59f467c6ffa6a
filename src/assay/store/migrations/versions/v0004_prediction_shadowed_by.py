"""Predictions: the challenger version that shadowed a champion answer.

Revision ID: 0004
Revises: 0003
Create Date: 2026-06-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add predictions.shadowed_by (null for rows logged before it, and without a shadow)."""
    with op.batch_alter_table("predictions") as batch:
        batch.add_column(sa.Column("shadowed_by", sa.Integer(), nullable=True))


def downgrade() -> None:
    """Drop predictions.shadowed_by."""
    with op.batch_alter_table("predictions") as batch:
        batch.drop_column("shadowed_by")
