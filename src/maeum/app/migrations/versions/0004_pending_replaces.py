"""An entry's photo can be replaced: an upload waiting for a face choice may be for an existing entry.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A database whose revision was set back by hand (as tests of older upgrades do) may have the column.
    if "replaces" in {c["name"] for c in sa.inspect(op.get_bind()).get_columns("pending_posts")}:
        return
    with op.batch_alter_table("pending_posts") as batch:
        batch.add_column(
            sa.Column(
                "replaces",
                sa.Integer(),
                sa.ForeignKey("posts.id", name="fk_pending_posts_replaces", ondelete="CASCADE"),
                nullable=True,
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("pending_posts") as batch:
        batch.drop_column("replaces")
