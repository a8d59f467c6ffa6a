"""Runs record the process that runs them, so a run whose process died can be told apart.

Revision ID: 0005
Revises: 0004
Create Date: 2026-05-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add runs.pid and runs.host (empty for the runs recorded before)."""
    op.add_column("runs", sa.Column("pid", sa.Integer(), nullable=True))
    op.add_column("runs", sa.Column("host", sa.String(255), nullable=True))


def downgrade() -> None:
    """Drop runs.pid and runs.host."""
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("host")
        batch.drop_column("pid")
