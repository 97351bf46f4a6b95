"""The companion and music: settings, comments, chat messages, imported tracks, picks and ratings.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _user_fk(name: str = "user_id", primary_key: bool = False, nullable: bool = False) -> sa.Column:
    return sa.Column(
        name, sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=primary_key, nullable=nullable
    )


def upgrade() -> None:
    op.create_table(
        "companion_settings",
        _user_fk(primary_key=True),
        sa.Column("attitude", sa.String(16), nullable=False),
        sa.Column("composition", sa.JSON(), nullable=False),
        sa.Column("intensity", sa.String(16), nullable=False),
        sa.Column("length", sa.String(16), nullable=False),
        sa.Column("endpoint_url", sa.String(300), nullable=False),
        sa.Column("endpoint_model", sa.String(100), nullable=False),
        sa.Column("endpoint_key", sa.String(300), nullable=False),
        sa.Column("genres", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "comments",
        sa.Column("post_id", sa.Integer(), sa.ForeignKey("posts.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("error", sa.String(300), nullable=True),
        sa.Column("text_emotion", sa.String(32), nullable=True),
        sa.Column("disagree", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_comments_status", "comments", ["status"])
    op.create_table(
        "chat_messages",
        sa.Column("id", sa.Integer(), primary_key=True),
        _user_fk(),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_chat_messages_user_id", "chat_messages", ["user_id"])
    op.create_index("ix_chat_messages_day", "chat_messages", ["day"])
    op.create_table(
        "tracks",
        sa.Column("id", sa.Integer(), primary_key=True),
        _user_fk("owner_id", nullable=True),
        sa.Column("track_id", sa.String(200), nullable=False),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("artist", sa.String(300), nullable=False),
        sa.Column("valence", sa.Float(), nullable=False),
        sa.Column("energy", sa.Float(), nullable=False),
        sa.Column("genre", sa.String(64), nullable=False),
        sa.Column("language", sa.String(16), nullable=False),
        sa.Column("mood", sa.String(16), nullable=True),
        sa.Column("lyrics_emotion", sa.String(32), nullable=True),
    )
    op.create_index("ix_tracks_owner_id", "tracks", ["owner_id"])
    op.create_table(
        "music_picks",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("post_id", sa.Integer(), sa.ForeignKey("posts.id", ondelete="CASCADE"), nullable=False),
        _user_fk(),
        sa.Column("emotion", sa.String(32), nullable=False),
        sa.Column("track_id", sa.String(200), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_music_picks_post_id", "music_picks", ["post_id"])
    op.create_index("ix_music_picks_user_id", "music_picks", ["user_id"])
    op.create_table(
        "music_ratings",
        sa.Column("id", sa.Integer(), primary_key=True),
        _user_fk(),
        sa.Column("emotion", sa.String(32), nullable=False),
        sa.Column("track_id", sa.String(200), nullable=False),
        sa.Column("rating", sa.String(8), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("user_id", "emotion", "track_id"),
    )
    op.create_index("ix_music_ratings_user_id", "music_ratings", ["user_id"])


def downgrade() -> None:
    for table in ("music_ratings", "music_picks", "tracks", "chat_messages", "comments", "companion_settings"):
        op.drop_table(table)
