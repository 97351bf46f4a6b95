"""The diary's companion: each user's settings, comments written in the background, and the day's chat.

A post is saved with a pending comment row in the same transaction; a small thread pool then writes
the comment (the user's LLM endpoint, or the offline writer when there is none or it fails) and
stores it. Saving a post never waits on the model. Comments still pending when the server stopped
are written when it starts again.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session as DbSession

from maeum.app.errors import UserError
from maeum.app.models import ChatMessage, CompanionProfile, Post, PostComment, User
from maeum.app.settings import AppSettings
from maeum.companion import CommentContext, CompanionError, CompanionSettings, Endpoint, write_comment
from maeum.companion.chat import ChatTurn, check_message, diary_draft, reply
from maeum.companion.comment import Comment
from maeum.companion.context import MAX_DIARY_CHARS, MAX_INTRO_CHARS, MAX_NAME_CHARS
from maeum.companion.endpoint import ChatClient, check_endpoint_url
from maeum.companion.safety import in_crisis
from maeum.companion.settings import ATTITUDES, COMPOSITIONS, INTENSITIES, LENGTHS
from maeum.text.emotion import analyze_text, can_read, disagreement, is_clear

log = logging.getLogger(__name__)

MAX_CHAT_MESSAGES_PER_DAY = 200


def profile_of(db: DbSession, user: User) -> CompanionProfile:
    """The user's companion settings row; a default one (not yet saved) when they never changed them."""
    row = db.get(CompanionProfile, user.id)
    if row is None:
        row = CompanionProfile(
            user_id=user.id,
            attitude="friendly",
            composition=[],
            intensity="normal",
            length="medium",
            endpoint_url="",
            endpoint_model="",
            endpoint_key="",
            genres={},
        )
    return row


def companion_settings(profile: CompanionProfile, allow_private: bool) -> CompanionSettings:
    """The library's settings for a stored profile (a broken stored endpoint means: offline)."""
    endpoint = None
    if profile.endpoint_url and profile.endpoint_model:
        endpoint = Endpoint(profile.endpoint_url, profile.endpoint_model, profile.endpoint_key or None)
    try:
        return CompanionSettings(
            attitude=profile.attitude,
            composition=frozenset(profile.composition or ()),
            intensity=profile.intensity,
            length=profile.length,
            endpoint=endpoint,
            allow_private_endpoint=allow_private,
        )
    except CompanionError as e:  # a row from an older version with a value no longer known
        log.warning("companion settings of user %s are unusable (%s); using the defaults", profile.user_id, e)
        return CompanionSettings(endpoint=endpoint, allow_private_endpoint=allow_private)


def update_profile(
    profile: CompanionProfile,
    form: dict[str, Any],
    genre_choices: dict[str, list[str]],
    known_genres: set[str],
    labels: tuple[str, ...],
    allow_private: bool,
) -> None:
    """Check a settings form and copy it into ``profile``; UserError names the field to fix.

    ``form`` holds attitude, composition (list), intensity, length, endpoint_url, endpoint_model,
    endpoint_key (empty keeps the stored key) and forget_key.
    """
    for name, known in (("attitude", ATTITUDES), ("intensity", INTENSITIES), ("length", LENGTHS)):
        if form[name] not in known:
            raise UserError("companion_bad_choice", field=name)
    composition = sorted(set(form["composition"]))
    if any(part not in COMPOSITIONS for part in composition):
        raise UserError("companion_bad_choice", field="composition")
    url, model = form["endpoint_url"].strip(), form["endpoint_model"].strip()
    if bool(url) != bool(model):
        raise UserError("endpoint_incomplete")
    if url:
        if len(url) > 300 or len(model) > 100:
            raise UserError("endpoint_invalid", reason="too long")
        try:
            check_endpoint_url(url, allow_private)
        except CompanionError as e:
            raise UserError("endpoint_invalid", reason=str(e)) from None
    key = form["endpoint_key"].strip()
    if len(key) > 300:
        raise UserError("endpoint_invalid", reason="the API key is longer than 300 characters")
    genres: dict[str, list[str]] = {}
    for emotion, chosen in genre_choices.items():
        if emotion not in labels or any(g not in known_genres for g in chosen):
            raise UserError("companion_bad_choice", field="genres")
        if chosen:
            genres[emotion] = sorted(set(chosen))
    profile.attitude, profile.intensity, profile.length = form["attitude"], form["intensity"], form["length"]
    profile.composition = composition
    profile.endpoint_url, profile.endpoint_model = url, model
    if form.get("forget_key") or not url:
        profile.endpoint_key = ""
    elif key:
        profile.endpoint_key = key
    profile.genres = genres


def start_comment(db: DbSession, post: Post) -> None:
    """Mark the post's comment to be written: a new entry's, or again when its text or its emotion changed
    (or its owner asked). The comment is written from the text as it is then, with the text's emotion and
    whether it disagrees with the face; schedule it with `Companion.schedule` after the commit."""
    row = db.get(PostComment, post.id)
    if row is None:
        db.add(PostComment(post_id=post.id))
    else:
        row.status, row.text, row.source, row.error = "pending", "", "", None
        row.text_emotion, row.disagree = None, False


def comment_context(post: Post, user: User) -> tuple[CommentContext, str | None, bool]:
    """What a comment on ``post`` is written from, with the diary text's emotion (None for a text
    ``maeum.text`` cannot read, e.g. English) and whether it disagrees with the face.

    The comment hears of the text's emotion only when it is clear, so it never claims a feeling the
    words do not show.
    """
    if not can_read(post.text):
        text_emotion, clear, disagree = None, None, False
    else:
        text = analyze_text(post.text)
        text_emotion, clear = text.label, text.label if is_clear(text) else None
        try:
            disagree = disagreement(post.label, text)
        except ValueError:  # a label the text model does not know (a custom model): no question asked
            disagree = False
    context = CommentContext(
        user_name=user.name[:MAX_NAME_CHARS],
        diary_text=post.text[:MAX_DIARY_CHARS],
        face_emotion=post.label,
        user_intro=user.intro[:MAX_INTRO_CHARS],
        text_emotion=clear,
        emotions_disagree=disagree,
        crisis=in_crisis(post.text),
    )
    return context, text_emotion, disagree


class Companion:
    """Writes comments in the background and answers the chat, with the server's endpoint rules."""

    def __init__(self, tx: Callable[[], Any], settings: AppSettings) -> None:
        self._tx = tx
        self.allow_private = settings.allow_private_endpoints

        def client(endpoint: Endpoint) -> ChatClient:
            timeout, retries = settings.companion_timeout_s, settings.companion_retries
            return ChatClient(endpoint.base_url, endpoint.model, endpoint.api_key, timeout_s=timeout, retries=retries)

        self._client_factory = client
        self._pool = ThreadPoolExecutor(max(1, settings.companion_workers), thread_name_prefix="maeum-comment")

    def settings_for(self, db: DbSession, user: User) -> CompanionSettings:
        return companion_settings(profile_of(db, user), self.allow_private)

    def schedule(self, post_id: int) -> Future[None]:
        """Write the comment of ``post_id`` in the background (its row must be committed as pending)."""
        return self._pool.submit(self._write, post_id)

    def resume(self) -> int:
        """Schedule every comment left pending (e.g. by a restart); returns how many."""
        with self._tx() as db:
            ids = list(db.scalars(select(PostComment.post_id).where(PostComment.status == "pending")))
        for post_id in ids:
            self.schedule(post_id)
        if ids:
            log.info("writing %d companion comments left pending", len(ids))
        return len(ids)

    def close(self) -> None:
        """Stop taking work and wait for the comments being written (pending ones resume at the next start)."""
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _write(self, post_id: int) -> None:
        try:
            with self._tx() as db:
                post = db.get(Post, post_id)
                if post is None or post.comment is None or post.comment.status != "pending":
                    return
                context, text_emotion, disagree = comment_context(post, post.user)
                settings = self.settings_for(db, post.user)
                written_for = (post.text, post.label)
            comment = write_comment(context, settings, self._client_factory, seed=secrets.randbelow(2**31))
            with self._tx() as db:
                row, post = db.get(PostComment, post_id), db.get(Post, post_id)
                if row is None or post is None:  # the post was deleted meanwhile
                    return
                if row.status != "pending" or (post.text, post.label) != written_for:
                    return  # written already, or edited or relabelled meanwhile: the job scheduled then writes it
                row.status, row.text, row.source = "done", comment.text, comment.source
                row.error = comment.error[:300] if comment.error else None
                row.text_emotion, row.disagree = text_emotion, disagree
        except Exception:  # stays pending; written again at the next start
            log.exception("could not write the companion comment of post %d", post_id)

    # chat ---------------------------------------------------------------------------------------

    def chat_history(self, db: DbSession, user: User, day: dt.date) -> list[ChatMessage]:
        return list(
            db.scalars(
                select(ChatMessage)
                .where(ChatMessage.user_id == user.id, ChatMessage.day == day)
                .order_by(ChatMessage.id)
            )
        )

    def _conversation(self, db: DbSession, user_id: int, day: dt.date) -> tuple[list[ChatTurn], CompanionSettings]:
        user = db.get(User, user_id)
        assert user is not None
        turns = [ChatTurn(m.role, m.text) for m in self.chat_history(db, user, day)]  # type: ignore[arg-type]
        return turns, self.settings_for(db, user)

    def chat(self, user_id: int, day: dt.date, text: str) -> Comment:
        """Store the user's message, answer it, store the answer; UserError for a bad or excess message."""
        try:
            text = check_message(text)
        except CompanionError:
            raise UserError("chat_message_invalid") from None
        with self._tx() as db:
            turns, settings = self._conversation(db, user_id, day)
            if len(turns) >= MAX_CHAT_MESSAGES_PER_DAY:
                raise UserError("chat_full", 429)
            db.add(ChatMessage(user_id=user_id, day=day, role="user", text=text, source=""))
        answer = reply([*turns, ChatTurn("user", text)], settings, self._client_factory, seed=secrets.randbelow(2**31))
        with self._tx() as db:  # the user's message is already saved even if this fails
            db.add(ChatMessage(user_id=user_id, day=day, role="companion", text=answer.text, source=answer.source))
        return answer

    def draft(self, user_id: int, day: dt.date, max_chars: int) -> Comment:
        """A diary draft from the day's chat; UserError when there is nothing to draft from."""
        with self._tx() as db:
            turns, settings = self._conversation(db, user_id, day)
        try:
            return diary_draft(turns, settings, self._client_factory, max_chars)
        except CompanionError:
            raise UserError("chat_empty") from None
