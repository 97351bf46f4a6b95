"""The diary's tables. Every change here comes with an Alembic migration in ``migrations/versions``."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Boolean, Date, DateTime, ForeignKey, Integer, String, Text
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

    user: Mapped[User] = relationship(back_populates="posts")


class PendingPost(Base):
    """An upload with several faces, waiting for its owner to pick theirs. Expires after a day."""

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
