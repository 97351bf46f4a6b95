"""Entries can be edited: when their owner last changed the text or the day.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A database whose revision was set back by hand (as tests of older upgrades do) may have the column.
    if "edited_at" in {c["name"] for c in sa.inspect(op.get_bind()).get_columns("posts")}:
        return
    with op.batch_alter_table("posts") as batch:
        batch.add_column(sa.Column("edited_at", sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("posts") as batch:
        batch.drop_column("edited_at")
