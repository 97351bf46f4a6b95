"""The diary's rules: posting a selfie with a day's text, picking one's face, confirming the emotion."""

from __future__ import annotations

import datetime as dt
import math
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, delete, func, select
from sqlalchemy.orm import Session as DbSession

from maeum.analyzer import Analyzer
from maeum.app.errors import UserError
from maeum.app.models import PendingPost, Post, User, utcnow
from maeum.app.uploads import ImageStore, PreparedImage
from maeum.results import FaceResult

# Faces much smaller than the largest one (people in the background) are not offered as choices.
MIN_FACE_RATIO = 0.2
PENDING_HOURS = 24
FIRST_DAY = dt.date(1900, 1, 1)
MAX_SEARCH_CHARS = 100  # longer search words are cut
MAX_ID = 2**31 - 1  # ids are 32-bit on PostgreSQL; anything larger is simply not found
_TOKEN = re.compile(r"[A-Za-z0-9_-]{20,64}")


@dataclass(frozen=True)
class FaceChoice:
    """One face found in an upload: its box (x, y, w, h) in stored-image pixels and its emotion."""

    box: list[float]
    label: str
    scores: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        return {"box": self.box, "label": self.label, "scores": self.scores}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FaceChoice:
        return cls(list(d["box"]), str(d["label"]), {k: float(v) for k, v in d["scores"].items()})


class FaceReader:
    """maeum's analyzer shared by all requests, with at most ``slots`` images analysed at once."""

    def __init__(self, analyzer: Analyzer, slots: int) -> None:
        self.analyzer = analyzer
        self.labels: tuple[str, ...] = analyzer.classifier.labels
        self.model = analyzer.classifier.info.name
        self._slots = threading.BoundedSemaphore(slots)

    def faces(self, image: PreparedImage) -> list[FaceChoice]:
        with self._slots:
            results = self.analyzer.analyze(image.rgb)
        return choices(results)


def choices(results: list[FaceResult]) -> list[FaceChoice]:
    """The faces worth offering, largest first."""
    if not results:
        return []
    results = sorted(results, key=lambda r: r.face.box.w * r.face.box.h, reverse=True)
    largest = max(results[0].face.box.w, results[0].face.box.h)
    return [
        FaceChoice(r.face.box.as_list(), r.emotion.label, {k: round(v, 4) for k, v in r.emotion.scores.items()})
        for r in results
        if max(r.face.box.w, r.face.box.h) >= MIN_FACE_RATIO * largest
    ]


def check_entry(day: str, text: str, today: dt.date, max_chars: int) -> tuple[dt.date, str]:
    """The post's day and text, or a UserError saying what to fix."""
    text = text.replace("\r\n", "\n").strip()
    if not text:
        raise UserError("text_required")
    if len(text) > max_chars:
        raise UserError("text_too_long", chars=max_chars)
    try:
        parsed = dt.date.fromisoformat(day.strip()) if day.strip() else today
    except ValueError:
        raise UserError("day_invalid") from None
    if parsed > today:
        raise UserError("day_future")
    if parsed < FIRST_DAY:
        raise UserError("day_invalid")
    return parsed, text


def edit_entry(post: Post, day: dt.date, text: str) -> bool:
    """Give ``post`` the day and text its owner changed it to (checked by :func:`check_entry`, as for a
    new entry) and record when; whether the text changed, so that what is made from the words (the
    companion's comment and the text's emotion) must be made again. The photo, the face's emotion and
    the owner's answer about it stay. An edit that changes nothing is not recorded."""
    text_changed = text != post.text
    if text_changed or day != post.day:
        post.day, post.text, post.edited_at = day, text, utcnow()
    return text_changed


def save_new_image(store: ImageStore, jpeg: bytes, commit: Callable[[str], Any]) -> Any:
    """Write the image, then run ``commit(name)``; if the commit fails the image is removed again,
    so a failure leaves neither a post without its image nor an image without its post."""
    name = store.save(jpeg)
    try:
        return commit(name)
    except BaseException:
        store.delete(name)
        raise


def new_post(
    user: User,
    day: dt.date,
    text: str,
    image: str,
    size: tuple[int, int],
    model: str,
    face: FaceChoice,
    face_count: int,
) -> Post:
    return Post(
        user_id=user.id,
        day=day,
        text=text,
        image=image,
        width=size[0],
        height=size[1],
        face_box=face.box,
        face_count=face_count,
        model=model,
        scores=face.scores,
        predicted=face.label,
        label=face.label,
    )


def new_pending(
    user: User,
    day: dt.date,
    text: str,
    image: str,
    size: tuple[int, int],
    model: str,
    faces: list[FaceChoice],
    replaces: Post | None = None,
) -> PendingPost:
    """The upload waiting for a face choice, for a new entry or as ``replaces``'s new photo. Its token is
    the stored image's random name, which the post keeps, so a choice sent twice finds the post the first
    one made or changed (:func:`post_of_pending`)."""
    return PendingPost(
        token=image.removesuffix(".jpg"),
        user_id=user.id,
        day=day,
        text=text,
        image=image,
        width=size[0],
        height=size[1],
        model=model,
        faces=[f.to_dict() for f in faces],
        replaces=replaces.id if replaces is not None else None,
    )


def chosen_face(pending: PendingPost, index: int) -> FaceChoice:
    faces = pending.faces
    if not 0 <= index < len(faces):
        raise UserError("face_choice_invalid")
    return FaceChoice.from_dict(faces[index])


def post_from_pending(pending: PendingPost, user: User, index: int) -> Post:
    size = (pending.width, pending.height)
    face = chosen_face(pending, index)
    return new_post(user, pending.day, pending.text, pending.image, size, pending.model, face, len(pending.faces))


def replace_photo(post: Post, image: str, size: tuple[int, int], model: str, face: FaceChoice, face_count: int) -> str:
    """Give ``post`` a new photo and the emotion of its chosen face, and record when; return the old
    photo's name, to delete once this is committed. The owner's answer about the old face goes with it
    (it was about another photo); the day and the text stay."""
    old = post.image
    post.image, post.width, post.height = image, size[0], size[1]
    post.face_box, post.face_count, post.model, post.scores = face.box, face_count, model, face.scores
    post.predicted = post.label = face.label
    post.feedback = None
    post.edited_at = utcnow()
    return old


def owned_post(db: DbSession, user: User, post_id: int) -> Post:
    """The user's post ``post_id``; anyone else's, or none, is 'not found' (never 'forbidden')."""
    post = db.get(Post, post_id) if 0 < post_id <= MAX_ID else None
    if post is None or post.user_id != user.id:
        raise UserError("post_not_found", 404)
    return post


def owned_pending(db: DbSession, user: User, token: str) -> PendingPost:
    pending = db.get(PendingPost, token) if _TOKEN.fullmatch(token) else None
    expired = pending is not None and pending.created_at < utcnow() - dt.timedelta(hours=PENDING_HOURS)
    if pending is None or pending.user_id != user.id or expired:
        raise UserError("pending_not_found", 404)
    return pending


def post_of_pending(db: DbSession, user: User, token: str) -> Post | None:
    """The user's post made from the upload ``token`` once its face was chosen; None before (or never)."""
    if not _TOKEN.fullmatch(token):
        return None
    return db.scalar(select(Post).where(Post.user_id == user.id, Post.image == f"{token}.jpg"))


def waiting_pending(db: DbSession, user: User) -> list[PendingPost]:
    """The user's uploads still waiting for a face choice, oldest first (they expire first)."""
    cutoff = utcnow() - dt.timedelta(hours=PENDING_HOURS)
    return list(
        db.scalars(
            select(PendingPost)
            .where(PendingPost.user_id == user.id, PendingPost.created_at >= cutoff)
            .order_by(PendingPost.created_at)
        )
    )


def pending_hours_left(pending: PendingPost) -> int:
    """Whole hours (at least 1) until the upload is deleted unless its face is chosen."""
    left = pending.created_at + dt.timedelta(hours=PENDING_HOURS) - utcnow()
    return max(1, math.ceil(left.total_seconds() / 3600))


def give_feedback(post: Post, label: str, labels: tuple[str, ...]) -> None:
    """Record the user's answer to "Is this your feeling?": the model's label (confirmed) or another."""
    if label not in labels:
        raise UserError("label_invalid")
    post.label = label
    post.feedback = "confirmed" if label == post.predicted else "corrected"


def posts_between(
    db: DbSession, user: User, first: dt.date, last: dt.date, *, words: str = "", label: str = ""
) -> list[Post]:
    """The user's posts from ``first`` to ``last``, earliest first; ``words`` and ``label`` as in `recent_posts`."""
    between = _matching(select(Post).where(Post.user_id == user.id, Post.day >= first, Post.day <= last), words, label)
    return list(db.scalars(between.order_by(Post.day, Post.id)))


def recent_posts(
    db: DbSession, user: User, limit: int = 20, offset: int = 0, *, words: str = "", label: str = ""
) -> list[Post]:
    """The user's posts, latest day first, ``limit`` of them after skipping ``offset``.

    ``words``: only posts whose text holds them (as written, any case); ``label``: only posts shown with
    that emotion.
    """
    newest = _matching(select(Post).where(Post.user_id == user.id), words, label)
    newest = newest.order_by(Post.day.desc(), Post.id.desc())
    return list(db.scalars(newest.limit(limit).offset(offset)))


def search_words(q: str) -> str:
    """Search words as the diary matches them: runs of spaces made one, cut at MAX_SEARCH_CHARS."""
    return " ".join(q.split())[:MAX_SEARCH_CHARS]


def _matching(query: Select[tuple[Post]], words: str, label: str) -> Select[tuple[Post]]:
    if words:
        query = query.where(func.lower(Post.text).contains(words.lower(), autoescape=True))
    if label:
        query = query.where(Post.label == label)
    return query


def expired_pending(db: DbSession) -> list[str]:
    """Delete uploads that waited too long for a face choice; return their image names."""
    cutoff = utcnow() - dt.timedelta(hours=PENDING_HOURS)
    names = list(db.scalars(select(PendingPost.image).where(PendingPost.created_at < cutoff)))
    db.execute(delete(PendingPost).where(PendingPost.created_at < cutoff))
    return names


def referenced_images(db: DbSession) -> set[str]:
    return set(db.scalars(select(Post.image))) | set(db.scalars(select(PendingPost.image)))
