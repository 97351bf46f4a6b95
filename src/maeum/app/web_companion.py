"""Routes of the companion and music: settings, the comment on a post (and reading it aloud), the
day's chat and its diary draft, songs with a post, and importing a song catalogue."""

from __future__ import annotations

import functools
import logging
import tempfile
from pathlib import Path
from typing import Any

from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, JSONResponse, Response
from sqlalchemy.orm import Session as DbSession

from maeum.app import companion, diary, music, pages
from maeum.app.errors import UserError
from maeum.app.models import Post, PostComment, User
from maeum.app.pages import Ctx, check_csrf, redirect, render, user_of
from maeum.app.speech import synthesize, tts_available
from maeum.app.state import Diary
from maeum.companion.chat import MAX_MESSAGE_CHARS
from maeum.companion.safety import in_crisis
from maeum.companion.settings import ATTITUDES, COMPOSITIONS, INTENSITIES, LENGTHS
from maeum.music import CatalogueError

log = logging.getLogger(__name__)


def post_extras(d: Diary, db: DbSession, user: User, post: Post) -> dict[str, Any]:
    """What the post page shows besides the post: the comment, the songs and their ratings.

    A diary with words of suicidal thoughts or self-harm (``crisis``) shows help lines instead of songs.
    """
    crisis = in_crisis(post.text)
    genres = companion.profile_of(db, user).genres
    return {
        "comment": db.get(PostComment, post.id),
        "tracks": [] if crisis else d.music.picks(db, user, post, genres),
        "ratings": {} if crisis else d.music.ratings(db, user, post.label),
        "tts_server": tts_available(),
        "crisis": crisis,
    }


def _read_upload(file: UploadFile | None, max_bytes: int, missing: str, too_large: str) -> bytes:
    """An uploaded file's bytes; UserError ``missing`` (400) when there are none, ``too_large`` (413,
    with ``mb``) past ``max_bytes``, found without reading more than one byte beyond it."""
    data = file.file.read(max_bytes + 1) if file is not None else b""
    if not data:
        raise UserError(missing)
    if len(data) > max_bytes:
        raise UserError(too_large, 413, mb=max_bytes // (1024 * 1024))
    return data


def _comment_json(row: PostComment | None) -> dict[str, Any]:
    if row is None:
        return {"status": "none"}
    return {
        "status": row.status,
        "text": row.text,
        "source": row.source,
        "text_emotion": row.text_emotion,
        "disagree": row.disagree,
    }


def _settings_page(d: Diary, ctx: Ctx, db: DbSession, status: int = 200, **values: Any) -> Response:
    user = user_of(ctx)
    profile = companion.profile_of(db, user)
    values.setdefault("form", profile)
    return render(
        d,
        ctx,
        "companion.html",
        status,
        attitudes=list(ATTITUDES),
        compositions=list(COMPOSITIONS),
        intensities=list(INTENSITIES),
        lengths=list(LENGTHS),
        genres=d.music.genres(db, user),
        has_key=bool(profile.endpoint_key),
        imported=music.imported_count(db, user),
        upload_genres=music.UPLOAD_GENRES,
        allow_private=d.settings.allow_private_endpoints,
        **values,
    )


def routes(app: FastAPI, d: Diary) -> None:
    s = d.settings
    page = functools.partial(pages.page, d)

    # settings -----------------------------------------------------------------------------------

    @app.get("/companion", response_class=HTMLResponse)
    def companion_form(request: Request, saved: str = "") -> Response:
        with page(request) as (ctx, db):
            notice = ctx.t(f"{saved}_saved") if saved in ("companion", "catalogue", "catalogue_removed") else None
            return _settings_page(d, ctx, db, notice=notice)

    @app.post("/companion")
    def companion_save(
        request: Request,
        attitude: str = Form(""),
        composition: list[str] = Form([]),
        intensity: str = Form(""),
        length: str = Form(""),
        endpoint_url: str = Form(""),
        endpoint_model: str = Form(""),
        endpoint_key: str = Form(""),
        forget_key: str = Form(""),
        genre: list[str] = Form([]),  # "emotion:genre" pairs
        csrf: str = Form(""),
    ) -> Response:
        fields = {
            "attitude": attitude,
            "composition": composition,
            "intensity": intensity,
            "length": length,
            "endpoint_url": endpoint_url,
            "endpoint_model": endpoint_model,
            "endpoint_key": endpoint_key,
            "forget_key": bool(forget_key),
        }
        genre_choices: dict[str, list[str]] = {}
        for pair in genre:
            emotion, _, name = pair.partition(":")
            genre_choices.setdefault(emotion, []).append(name)
        try:
            with page(request) as (ctx, db):
                check_csrf(request, d, csrf)
                user = user_of(ctx)
                profile = companion.profile_of(db, user)
                known = set(d.music.genres(db, user))
                companion.update_profile(
                    profile, fields, genre_choices, known, d.labels, d.settings.allow_private_endpoints
                )
                db.add(profile)
        except UserError as e:
            with page(request) as (ctx, db):
                shown = dict(fields, genres=genre_choices, endpoint_key="")
                return _settings_page(d, ctx, db, e.status, form=_Form(shown), error=ctx.t(e.key, **e.params))
        return redirect("/companion?saved=companion")

    @app.post("/companion/music")
    def catalogue_upload(
        request: Request,
        catalogue: UploadFile | None = File(None),
        format: str = Form("spotify"),
        genre: str = Form(""),
        csrf: str = Form(""),
    ) -> Response:
        try:
            with page(request) as (ctx, _db):
                check_csrf(request, d, csrf)
                user_id = user_of(ctx).id
            data = _read_upload(catalogue, s.max_catalogue_bytes, "catalogue_missing", "catalogue_too_large")
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / "catalogue.csv"
                path.write_bytes(data)
                try:
                    tracks = music.read_catalogue(path, format, genre)
                    with d.tx() as db:  # refuses more songs than one import may hold, changing nothing
                        count = music.replace_imported(db, db.get(User, user_id), tracks)
                except CatalogueError as e:
                    raise UserError("catalogue_invalid", reason=str(e).replace(str(path), "CSV")) from None
            log.info("user %d imported %d songs", user_id, count)
        except UserError as e:
            with page(request) as (ctx, db):
                return _settings_page(d, ctx, db, e.status, error=ctx.t(e.key, **e.params))
        return redirect("/companion?saved=catalogue")

    @app.post("/companion/music/delete")
    def catalogue_delete(request: Request, csrf: str = Form("")) -> Response:
        with page(request) as (ctx, db):
            check_csrf(request, d, csrf)
            music.replace_imported(db, user_of(ctx), music.Catalogue([]))
        return redirect("/companion?saved=catalogue_removed")

    # the comment on a post ----------------------------------------------------------------------

    @app.get("/api/posts/{post_id}/comment")
    def api_comment(request: Request, post_id: int) -> Response:
        with page(request) as (ctx, db):
            post = diary.owned_post(db, user_of(ctx), post_id)
            return JSONResponse(_comment_json(db.get(PostComment, post.id)))

    @app.post("/posts/{post_id}/comment")
    def rewrite_comment(request: Request, post_id: int, csrf: str = Form("")) -> Response:
        with page(request) as (ctx, db):
            check_csrf(request, d, csrf)
            companion.start_comment(db, diary.owned_post(db, user_of(ctx), post_id))
        d.companion.schedule(post_id)
        return redirect(f"/posts/{post_id}#comment")

    @app.get("/posts/{post_id}/comment.wav")
    def comment_speech(request: Request, post_id: int) -> Response:
        with page(request) as (ctx, db):
            post = diary.owned_post(db, user_of(ctx), post_id)
            row = db.get(PostComment, post.id)
        if row is None or row.status != "done":
            raise UserError("comment_not_ready", 409)
        wav = synthesize(row.text)  # comments are written in Korean, whatever the page's language
        return Response(wav, media_type="audio/wav", headers={"Cache-Control": "private, max-age=3600"})

    @app.post("/api/dictation")
    def dictation(
        request: Request, audio: UploadFile | None = File(None), lang: str = Form("ko"), csrf: str = Form("")
    ) -> Response:
        """The words of a recording from the diary page's dictation button, when the browser has no
        speech recogniser of its own: ``{"text": ...}``."""
        with page(request) as (ctx, _db):
            check_csrf(request, d, csrf)
            user_id = user_of(ctx).id
        data = _read_upload(audio, s.max_audio_bytes, "audio_unreadable", "audio_too_large")
        text = d.recognizer.transcribe(data, lang)
        log.info("user %d dictated %d bytes of audio: %d characters", user_id, len(data), len(text))
        return JSONResponse({"text": text})

    # songs with a post ----------------------------------------------------------------------------

    @app.post("/posts/{post_id}/music/refresh")
    def music_refresh(request: Request, post_id: int, csrf: str = Form("")) -> Response:
        with page(request) as (ctx, db):
            check_csrf(request, d, csrf)
            user = user_of(ctx)
            post = diary.owned_post(db, user, post_id)
            d.music.refresh(db, user, post, companion.profile_of(db, user).genres)
        return redirect(f"/posts/{post_id}#music")

    @app.post("/posts/{post_id}/music/rate")
    def music_rate(
        request: Request, post_id: int, track: str = Form(""), rating: str = Form(""), csrf: str = Form("")
    ) -> Response:
        with page(request) as (ctx, db):
            check_csrf(request, d, csrf)
            user = user_of(ctx)
            post = diary.owned_post(db, user, post_id)
            d.music.rate(db, user, post, track, rating, companion.profile_of(db, user).genres)
        return redirect(f"/posts/{post_id}#music")

    # the day's chat -------------------------------------------------------------------------------

    def chat_page(request: Request, status: int = 200, **values: Any) -> Response:
        with page(request) as (ctx, db):
            if "error" in values:
                values["error"] = ctx.t(values["error"].key, **values["error"].params)
            messages = d.companion.chat_history(db, user_of(ctx), d.today())
            crisis = any(m.role == "user" and in_crisis(m.text) for m in messages)
            return render(
                d,
                ctx,
                "chat.html",
                status,
                messages=messages,
                max_chars=MAX_MESSAGE_CHARS,
                day=d.today(),
                crisis=crisis,
                **values,
            )

    @app.get("/chat", response_class=HTMLResponse)
    def chat(request: Request) -> Response:
        return chat_page(request)

    @app.post("/chat")
    def chat_send(request: Request, message: str = Form(""), csrf: str = Form("")) -> Response:
        try:
            with page(request) as (ctx, _db):
                check_csrf(request, d, csrf)
                user_id = user_of(ctx).id
            d.companion.chat(user_id, d.today(), message)
        except UserError as e:
            return chat_page(request, e.status, error=e, draft_message=message)
        return redirect("/chat#last")

    @app.post("/chat/draft")
    def chat_draft(request: Request, csrf: str = Form("")) -> Response:
        with page(request) as (ctx, _db):
            check_csrf(request, d, csrf)
            user_id = user_of(ctx).id
        try:
            draft = d.companion.draft(user_id, d.today(), s.max_text_chars)
        except UserError as e:
            return chat_page(request, e.status, error=e)
        with page(request) as (ctx, _db):
            return render(
                d,
                ctx,
                "new_post.html",
                form={"day": d.today().isoformat(), "text": draft.text},
                today=d.today().isoformat(),
                mb=s.max_image_bytes // (1024 * 1024),
                from_chat=True,
                shortened=draft.shortened,
                notice=ctx.t("draft_ready"),
            )


class _Form(dict[str, Any]):
    """A submitted form shown again: attribute access like a stored profile, for the template."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None
