"""The diary's tables. Every change here comes with an Alembic migration in ``migrations/versions``."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Boolean, Date, DateTime, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(32), unique=True, index=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(50))
    intro: Mapped[str] = mapped_column(String(500), default="")
    lang: Mapped[str] = mapped_column(String(5), default="ko")
    share_labels: Mapped[bool] = mapped_column(Boolean, default=False)  # corrections may train shared models
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)

    posts: Mapped[list[Post]] = relationship(back_populates="user", cascade="all, delete-orphan", passive_deletes=True)


class Session(Base):
    """A login. The cookie holds a random token; only its SHA-256 is stored."""

    __tablename__ = "sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime)


class LoginFailure(Base):
    """A failed login, kept for the rate limit window."""

    __tablename__ = "login_failures"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), index=True)
    ip: Mapped[str] = mapped_column(String(64), index=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, index=True)


class Post(Base):
    """A diary entry: the day, the text, the selfie and the emotion of the chosen face.

    ``predicted`` is the model's label; ``label`` is what the diary shows: the prediction until
    the user confirms it (``feedback='confirmed'``) or picks another (``feedback='corrected'``).
    """

    __tablename__ = "posts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    day: Mapped[dt.date] = mapped_column(Date, index=True)
    text: Mapped[str] = mapped_column(Text)
    image: Mapped[str] = mapped_column(String(64), unique=True)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    face_box: Mapped[list[float]] = mapped_column(JSON)
    face_count: Mapped[int] = mapped_column(Integer)
    model: Mapped[str] = mapped_column(String(100))
    scores: Mapped[dict[str, Any]] = mapped_column(JSON)
    predicted: Mapped[str] = mapped_column(String(32))
    label: Mapped[str] = mapped_column(String(32))
    feedback: Mapped[str | None] = mapped_column(String(16), default=None)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)
    edited_at: Mapped[dt.datetime | None] = mapped_column(DateTime, default=None)  # its owner last changed text or day

    user: Mapped[User] = relationship(back_populates="posts")
    comment: Mapped[PostComment | None] = relationship(
        back_populates="post", cascade="all, delete-orphan", passive_deletes=True
    )


class PendingPost(Base):
    """An upload with several faces, waiting for its owner to pick theirs (for a new entry, or a new photo
    for an existing one). Expires after a day."""

    __tablename__ = "pending_posts"

    token: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    day: Mapped[dt.date] = mapped_column(Date)
    text: Mapped[str] = mapped_column(Text)
    image: Mapped[str] = mapped_column(String(64), unique=True)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    model: Mapped[str] = mapped_column(String(100))
    faces: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    # The entry whose photo this upload replaces once a face is chosen (migration 0004); None: a new entry.
    replaces: Mapped[int | None] = mapped_column(
        ForeignKey("posts.id", name="fk_pending_posts_replaces", ondelete="CASCADE"), default=None
    )


# ----------------------------------------------------------------------------------------------
# the companion and music (migration 0002)


class CompanionProfile(Base):
    """How a user's companion writes, which LLM endpoint it asks (if any) and genre preferences per emotion.

    ``composition`` lists the chosen parts (empty = all); ``genres`` maps an emotion to genres.
    The endpoint key is never shown back in a page.
    """

    __tablename__ = "companion_settings"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    attitude: Mapped[str] = mapped_column(String(16), default="friendly")
    composition: Mapped[list[str]] = mapped_column(JSON, default=list)
    intensity: Mapped[str] = mapped_column(String(16), default="normal")
    length: Mapped[str] = mapped_column(String(16), default="medium")
    endpoint_url: Mapped[str] = mapped_column(String(300), default="")
    endpoint_model: Mapped[str] = mapped_column(String(100), default="")
    endpoint_key: Mapped[str] = mapped_column(String(300), default="")
    genres: Mapped[dict[str, list[str]]] = mapped_column(JSON, default=dict)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


class PostComment(Base):
    """The companion's comment on a post. Written in the background: ``status`` is pending, then done.

    ``source`` is "llm" or "offline"; ``error`` says why the endpoint was not used.
    """

    __tablename__ = "comments"

    post_id: Mapped[int] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"), primary_key=True)
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    text: Mapped[str] = mapped_column(Text, default="")
    source: Mapped[str] = mapped_column(String(16), default="")
    error: Mapped[str | None] = mapped_column(String(300), default=None)
    text_emotion: Mapped[str | None] = mapped_column(String(32), default=None)
    disagree: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)

    post: Mapped[Post] = relationship(back_populates="comment")


class ChatMessage(Base):
    """One message of the day's chat with the companion: ``role`` is "user" or "companion"."""

    __tablename__ = "chat_messages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    day: Mapped[dt.date] = mapped_column(Date, index=True)
    role: Mapped[str] = mapped_column(String(16))
    text: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(16), default="")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class ImportedTrack(Base):
    """A song imported from a CSV catalogue: shared by everyone (``owner_id`` None) or one user's own."""

    __tablename__ = "tracks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    track_id: Mapped[str] = mapped_column(String(200))
    title: Mapped[str] = mapped_column(String(300))
    artist: Mapped[str] = mapped_column(String(300))
    valence: Mapped[float] = mapped_column(Float)
    energy: Mapped[float] = mapped_column(Float)
    genre: Mapped[str] = mapped_column(String(64), default="")
    language: Mapped[str] = mapped_column(String(16), default="")
    mood: Mapped[str | None] = mapped_column(String(16), default=None)
    lyrics_emotion: Mapped[str | None] = mapped_column(String(32), default=None)


class MusicPick(Base):
    """A song recommended with a post, in ``rank`` order; recent picks are not recommended again soon."""

    __tablename__ = "music_picks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    post_id: Mapped[int] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    emotion: Mapped[str] = mapped_column(String(32))
    track_id: Mapped[str] = mapped_column(String(200))
    rank: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class MusicRating(Base):
    """A like or skip of a song for an emotion; the recommender learns from these."""

    __tablename__ = "music_ratings"
    __table_args__ = (UniqueConstraint("user_id", "emotion", "track_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    emotion: Mapped[str] = mapped_column(String(32))
    track_id: Mapped[str] = mapped_column(String(200))
    rating: Mapped[str] = mapped_column(String(8))  # like or skip
    at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
