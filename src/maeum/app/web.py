"""The diary's web server: FastAPI routes rendering Jinja pages, plus a small JSON API.

Every route that shows or changes a diary looks the post up through its owner, so another
user's post id is simply 'not found'. Every POST carries a CSRF token.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import logging
import re
import tempfile
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import FastAPI, File, Form, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from markupsafe import Markup
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session as DbSession
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from maeum.analyzer import Analyzer
from maeum.app import companion, diary, export, pages, stats, web_companion
from maeum.app.errors import UserError
from maeum.app.i18n import LANGS, emotion_name
from maeum.app.middleware import BodyLimit, SecurityHeaders
from maeum.app.models import PendingPost, Post, User
from maeum.app.pages import (
    LANG_COOKIE,
    SESSION_COOKIE,
    CleanFormRoute,
    LoginRequired,
    check_csrf,
    finish,
    form_error,
    redirect,
    render,
    request_context,
    return_path,
    safe_next,
    user_of,
)
from maeum.app.security import (
    authenticate,
    client_address,
    end_all_sessions,
    end_session,
    hash_password,
    start_session,
    verify_password,
    weak_password,
)
from maeum.app.settings import AppSettings
from maeum.app.state import HERE, Diary
from maeum.app.uploads import prepare_upload

log = logging.getLogger(__name__)

USERNAME = re.compile(r"^[a-z0-9._-]{3,32}$")
MONTH = re.compile(r"^(\d{4})-(\d{2})$")
FIRST_MONTH, LAST_MONTH = (1900, 1), (9999, 12)  # the months the calendar shows (dates run out at 9999)
PAGE_SIZE = 20  # entries per page of the home list
# The internal pages a request over the size limit is answered with (see BodyLimit).
TOO_LARGE_PATHS = ("/too-large", "/api/too-large")


def create_app(settings: AppSettings | None = None, analyzer: Analyzer | None = None) -> FastAPI:
    """The diary as an ASGI app; the database is migrated to the newest schema first.

    Comments left pending by an earlier run are written again. While serving, expired uploads are
    swept every ``sweep_interval_s``. Call ``app.state.diary.close()`` when done with an app that
    never served (a served one closes at shutdown).
    """
    app_state = Diary(settings or AppSettings.from_env(), analyzer)
    app_state.sweep()
    app_state.companion.resume()
    s = app_state.settings

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        sweeper = asyncio.create_task(_sweep_every(app_state, s.sweep_interval_s))
        yield
        sweeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sweeper  # a sweep under way finishes before the database is released
        app_state.close()

    app = FastAPI(title="maeum diary", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    app.state.diary = app_state
    app.router.route_class = CleanFormRoute  # every route's form text without control characters (NUL, …)
    app.add_middleware(SecurityHeaders)
    app.add_middleware(BodyLimit, max_bytes=s.max_request_bytes, error_paths=TOO_LARGE_PATHS)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    _routes(app, app_state)
    web_companion.routes(app, app_state)
    _error_handlers(app, app_state)
    return app


async def _sweep_every(d: Diary, seconds: float) -> None:
    """Sweep every ``seconds`` while serving, so that an upload left waiting for a face choice is deleted
    a day later, as its page promises, not only at the next start."""
    while True:
        await asyncio.sleep(seconds)
        try:
            await run_in_threadpool(d.sweep)
        except Exception:  # e.g. the database away for a moment: the next sweep tries again
            log.exception("removing expired uploads failed")


# ----------------------------------------------------------------------------------------------
# routes


def _routes(app: FastAPI, d: Diary) -> None:
    s = d.settings

    page = functools.partial(pages.page, d)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/", response_class=HTMLResponse)
    def home(
        request: Request, page_no: int = Query(1, alias="page"), deleted: int = 0, q: str = "", emotion: str = ""
    ) -> Response:
        page_no = min(max(page_no, 1), 1_000_000)
        words = diary.search_words(q)
        label = emotion if emotion in d.labels else ""  # an emotion the diary does not show: no filter

        def page_href(number: int) -> str:
            query = {"q": words, "emotion": label, "page": number}
            return "/?" + urlencode({k: v for k, v in query.items() if v})

        with page(request, login=False) as (ctx, db):
            if ctx.user is None:
                return render(d, ctx, "welcome.html")
            found = diary.recent_posts(db, ctx.user, PAGE_SIZE + 1, (page_no - 1) * PAGE_SIZE, words=words, label=label)
            searching = bool(words or label)
            return render(
                d,
                ctx,
                "home.html",
                posts=found[:PAGE_SIZE],
                page_no=page_no,
                more=len(found) > PAGE_SIZE,
                pending=diary.waiting_pending(db, ctx.user) if page_no == 1 and not searching else [],
                hours_left=diary.pending_hours_left,
                notice=ctx.t("post_deleted") if deleted else None,
                q=words,
                emotion=label,
                labels=d.labels,
                searching=searching,
                page_href=page_href,
            )

    @app.get("/lang/{code}")
    def set_lang(request: Request, code: str, next: str = "/") -> Response:
        if code not in LANGS:
            raise UserError("not_found", 404)
        with page(request, login=False) as (ctx, _db):
            if ctx.user is not None:
                ctx.user.lang = code
            response = redirect(safe_next(next))
            response.set_cookie(
                LANG_COOKIE, code, max_age=365 * 86400, httponly=True, samesite="lax", secure=s.secure_cookies
            )
            return finish(d, ctx, response)

    # accounts ---------------------------------------------------------------------------------

    @app.get("/signup", response_class=HTMLResponse)
    def signup_form(request: Request) -> Response:
        with page(request, login=False) as (ctx, _db):
            return render(d, ctx, "signup.html", form={})

    @app.post("/signup")
    def signup(
        request: Request,
        username: str = Form(""),
        password: str = Form(""),
        password2: str = Form(""),
        name: str = Form(""),
        intro: str = Form(""),
        csrf: str = Form(""),
    ) -> Response:
        form = {"username": username, "name": name, "intro": intro}
        try:
            with page(request, login=False) as (ctx, db):
                check_csrf(request, d, csrf)
                username = username.strip().lower()
                if not USERNAME.match(username):
                    raise UserError("username_invalid")
                _check_new_password(password, password2, username)
                name, intro = _check_profile(name, intro)
                if db.scalar(select(User.id).where(User.username == username)) is not None:
                    raise UserError("username_taken")
                user = User(
                    username=username, password_hash=hash_password(password), name=name, intro=intro, lang=ctx.lang
                )
                db.add(user)
                db.flush()
                end_session(db, request.cookies.get(SESSION_COOKIE))  # a signed-in visitor's earlier account
                token = start_session(db, user, s.session_days)
        except IntegrityError:  # the same username, registered a moment earlier
            return form_error(d, request, "signup.html", UserError("username_taken"), form)
        except UserError as e:
            return form_error(d, request, "signup.html", e, form)
        return _login_response(token)

    @app.get("/login", response_class=HTMLResponse)
    def login_form(request: Request, next: str = "/", expired: int = 0, signed_out: int = 0) -> Response:
        with page(request, login=False) as (ctx, _db):
            if ctx.user is not None:
                return redirect(safe_next(next))
            return render(
                d,
                ctx,
                "login.html",
                form={},
                next=safe_next(next),
                error=ctx.t("session_expired") if expired else None,
                notice=ctx.t("signed_out") if signed_out else None,
                forget_drafts=bool(signed_out),  # the next person on this browser must not find them
            )

    @app.post("/login")
    def login(
        request: Request,
        username: str = Form(""),
        password: str = Form(""),
        next: str = Form("/"),
        csrf: str = Form(""),
    ) -> Response:
        username = username.strip().lower()
        ip = _address(request)
        form = {"username": username}
        try:
            check_csrf(request, d, csrf)
        except UserError as e:
            return form_error(d, request, "login.html", e, form, next=safe_next(next))
        with page(request, login=False) as (ctx, db):
            wait = d.limiter.retry_after(db, username, ip)
            if wait:
                error = UserError("login_limited", 429, minutes=max(1, (wait + 59) // 60))
                return render(
                    d, ctx, "login.html", 429, form=form, next=safe_next(next), error=ctx.t(error.key, **error.params)
                )
            user = authenticate(db, username, password)
            if user is None:  # the failure is committed when the block ends, like the new session below
                d.limiter.failed(db, username, ip)
                return render(d, ctx, "login.html", 401, form=form, next=safe_next(next), error=ctx.t("login_failed"))
            d.limiter.succeeded(db, username, ip)
            end_session(db, request.cookies.get(SESSION_COOKIE))
            return _login_response(start_session(db, user, s.session_days), safe_next(next))

    def _address(request: Request) -> str:
        """The visitor's address, for the login limits: the proxy's client when the proxy is trusted."""
        peer = request.client.host if request.client else "?"
        return client_address(peer, request.headers.getlist("x-forwarded-for"), d.trusted_proxies)

    def _login_response(token: str, target: str = "/") -> Response:
        response = redirect(target)
        response.set_cookie(
            SESSION_COOKIE,
            token,
            max_age=s.session_days * 86400,
            httponly=True,
            samesite="lax",
            secure=s.secure_cookies,
        )
        return response

    @app.post("/logout")
    def logout(request: Request, csrf: str = Form("")) -> Response:
        """End this browser's session. A visitor signed out already (in another tab, whose page token is stale
        now) is simply shown the login page: there is no session to protect and nothing to end."""
        with page(request, login=False) as (ctx, db):
            if ctx.user is not None:
                check_csrf(request, d, csrf)
                end_session(db, request.cookies.get(SESSION_COOKIE))
        response = redirect("/login?signed_out=1")
        response.delete_cookie(SESSION_COOKIE)
        return response

    # profile and account ------------------------------------------------------------------------

    @app.get("/profile", response_class=HTMLResponse)
    def profile_form(request: Request, saved: int = 0) -> Response:
        with page(request) as (ctx, _db):
            u = user_of(ctx)
            return render(
                d,
                ctx,
                "profile.html",
                form={"name": u.name, "intro": u.intro, "share": u.share_labels},
                notice=ctx.t("profile_saved") if saved else None,
            )

    @app.post("/profile")
    def profile(
        request: Request,
        name: str = Form(""),
        intro: str = Form(""),
        share_labels: str = Form(""),
        lang: str = Form(""),
        csrf: str = Form(""),
    ) -> Response:
        form = {"name": name, "intro": intro, "share": bool(share_labels)}
        try:
            with page(request) as (ctx, _db):
                check_csrf(request, d, csrf)
                u = user_of(ctx)
                u.name, u.intro = _check_profile(name, intro)
                u.share_labels = bool(share_labels)
                if lang in LANGS:
                    u.lang = lang
        except UserError as e:
            return form_error(d, request, "profile.html", e, form)
        return redirect("/profile?saved=1")

    def account_page(ctx: pages.Ctx, db: DbSession, status: int = 200, **values: Any) -> Response:
        """The account page; its dataset link only when there is enough for ``maeum train``."""
        labelled = export.labelled_count(db, user_of(ctx))
        return render(
            d, ctx, "account.html", status, labelled=labelled, min_labelled=export.MIN_DATASET_POSTS, **values
        )

    @app.get("/account", response_class=HTMLResponse)
    def account(request: Request, password_changed: int = 0) -> Response:
        with page(request) as (ctx, db):
            return account_page(ctx, db, notice=ctx.t("password_changed") if password_changed else None)

    @app.post("/account/password")
    def change_password(
        request: Request,
        current: str = Form(""),
        password: str = Form(""),
        password2: str = Form(""),
        csrf: str = Form(""),
    ) -> Response:
        """A new password, given the current one. A wrong current password counts as a failed login (and
        waits as one), so a session left open is no way around the login limit. On success every session of
        the user ends and this browser gets a new one: anyone signed in elsewhere is signed out."""
        ip = _address(request)
        with page(request) as (ctx, db):
            check_csrf(request, d, csrf)
            u = user_of(ctx)
            wait = d.limiter.retry_after(db, u.username, ip)
            try:
                if wait:
                    raise UserError("login_limited", 429, minutes=max(1, (wait + 59) // 60))
                if not verify_password(u.password_hash, current):
                    d.limiter.failed(db, u.username, ip)  # committed with the page's transaction
                    raise UserError("password_wrong")
                _check_new_password(password, password2, u.username)
                if verify_password(u.password_hash, password):
                    raise UserError("password_same")
            except UserError as e:
                return account_page(ctx, db, e.status, error=ctx.t(e.key, **e.params))
            d.limiter.succeeded(db, u.username, ip)
            u.password_hash = hash_password(password)
            end_all_sessions(db, u.id)
            token = start_session(db, u, s.session_days)
        return _login_response(token, "/account?password_changed=1")

    @app.get("/account/export")
    def account_export(request: Request) -> Response:
        with page(request) as (ctx, db):
            u = user_of(ctx)
            out = tempfile.SpooledTemporaryFile(max_size=32 * 1024 * 1024)  # noqa: SIM115 - the response closes it
            export.write_user_archive(db, d.store, u, out)
        return _zip_response(out, f"maeum-{u.username}-{d.today().isoformat()}.zip")

    @app.get("/account/dataset")
    def account_dataset(request: Request) -> Response:
        with page(request) as (ctx, db), tempfile.TemporaryDirectory() as tmp:
            u = user_of(ctx)
            posts = export.labelled_posts(db, [u])
            if len(posts) < export.MIN_DATASET_POSTS:  # maeum train would refuse it
                raise UserError("dataset_too_small", 409, n=len(posts), min=export.MIN_DATASET_POSTS)
            folder = Path(tmp) / "dataset"
            export.write_dataset(posts, d.store, d.labels, folder)
            out = tempfile.SpooledTemporaryFile(max_size=32 * 1024 * 1024)  # noqa: SIM115 - the response closes it
            export.zip_folder(folder, out)
        return _zip_response(out, f"maeum-dataset-{u.username}.zip")

    @app.post("/account/delete")
    def account_delete(request: Request, password: str = Form(""), csrf: str = Form("")) -> Response:
        with page(request) as (ctx, db):
            check_csrf(request, d, csrf)
            u = user_of(ctx)
            if not verify_password(u.password_hash, password):
                return account_page(ctx, db, 400, error=ctx.t("password_wrong"))
            images = list(db.scalars(select(Post.image).where(Post.user_id == u.id)))
            images += [p.image for p in db.scalars(select(PendingPost).where(PendingPost.user_id == u.id))]
            end_all_sessions(db, u.id)
            db.delete(u)
        for name in images:  # after the commit: a failed delete leaves files the sweep removes later
            d.store.delete(name)
        with page(request, login=False) as (ctx, _db):
            response = render(d, ctx, "message.html", message=ctx.t("account_deleted"), forget_drafts=True)
        response.delete_cookie(SESSION_COOKIE)
        return response

    # posts --------------------------------------------------------------------------------------

    @app.get("/posts/new", response_class=HTMLResponse)
    def new_post_form(request: Request) -> Response:
        with page(request) as (ctx, _db):
            return render(
                d,
                ctx,
                "new_post.html",
                form={"day": d.today().isoformat(), "text": ""},
                today=d.today().isoformat(),
                mb=s.max_image_bytes // (1024 * 1024),
            )

    @app.get("/posts")
    def posts_page() -> Response:
        # The address a refused upload leaves in the browser's bar: opening it again starts a new entry.
        return redirect("/posts/new")

    @app.post("/posts")
    def create_post(
        request: Request,
        photo: UploadFile | None = File(None),
        day: str = Form(""),
        text: str = Form(""),
        csrf: str = Form(""),
    ) -> Response:
        form = {"day": day or d.today().isoformat(), "text": text}
        try:
            with page(request) as (ctx, _db):
                check_csrf(request, d, csrf)
                user = user_of(ctx)
            entry_day, entry_text = diary.check_entry(day, text, d.today(), s.max_text_chars)
            data = photo.file.read(s.max_image_bytes + 1) if photo is not None else b""
            image = prepare_upload(data, d.limits)
            faces = d.reader.faces(image)
            if not faces:
                raise UserError("no_face", 422)
            size = (image.width, image.height)

            def commit(name: str) -> Any:
                with d.tx() as db:
                    row: Any
                    if len(faces) == 1:
                        row = diary.new_post(user, entry_day, entry_text, name, size, d.reader.model, faces[0], 1)
                    else:
                        row = diary.new_pending(user, entry_day, entry_text, name, size, d.reader.model, faces)
                    db.add(row)
                    db.flush()
                    if isinstance(row, Post):
                        companion.start_comment(db, row)
                    return row

            row = diary.save_new_image(d.store, image.jpeg, commit)
        except UserError as e:
            return form_error(
                d, request, "new_post.html", e, form, today=d.today().isoformat(), mb=s.max_image_bytes // (1024 * 1024)
            )
        if isinstance(row, Post):
            d.companion.schedule(row.id)  # after the commit; the page shows the comment when it is written
            return redirect(f"/posts/{row.id}?new=1")
        return redirect(f"/pending/{row.token}")

    @app.get("/pending/{token}", response_class=HTMLResponse)
    def pick_face_form(request: Request, token: str) -> Response:
        with page(request) as (ctx, db):
            if (done := diary.post_of_pending(db, user_of(ctx), token)) is not None:
                return redirect(f"/posts/{done.id}")  # the face was chosen already
            pending = diary.owned_pending(db, user_of(ctx), token)
            faces = [diary.FaceChoice.from_dict(f) for f in pending.faces]
            return render(
                d, ctx, "pick_face.html", pending=pending, faces=faces, hours=diary.pending_hours_left(pending)
            )

    @app.get("/pending/{token}/image")
    def pending_image(request: Request, token: str) -> Response:
        with page(request) as (ctx, db):
            name = diary.owned_pending(db, user_of(ctx), token).image
        return _image_response(d.store.path(name))

    @app.post("/pending/{token}")
    def pick_face(request: Request, token: str, face: int = Form(-1), csrf: str = Form("")) -> Response:
        try:
            with page(request) as (ctx, db):
                check_csrf(request, d, csrf)
                user = user_of(ctx)
                if (done := diary.post_of_pending(db, user, token)) is not None:
                    return redirect(f"/posts/{done.id}")  # a second submit: the first one saved it
                pending = diary.owned_pending(db, user, token)
                replaced = None
                if pending.replaces is None:
                    post = diary.post_from_pending(pending, user, face)
                    db.add(post)
                else:  # a new photo for an entry (its edit page)
                    post = diary.owned_post(db, user, pending.replaces)
                    size, chosen = (pending.width, pending.height), diary.chosen_face(pending, face)
                    replaced = diary.replace_photo(post, pending.image, size, pending.model, chosen, len(pending.faces))
                    d.music.forget(db, post)
                db.delete(pending)
                db.flush()
                post_id = post.id
                companion.start_comment(db, post)
        except IntegrityError:  # the same choice, sent twice at once: the other request saved the post
            with page(request) as (ctx, db):
                done = diary.post_of_pending(db, user_of(ctx), token)
                if done is None:
                    raise
                return redirect(f"/posts/{done.id}")
        d.companion.schedule(post_id)
        if replaced is not None:
            d.store.delete(replaced)
            return redirect(f"/posts/{post_id}?edited=1")
        return redirect(f"/posts/{post_id}?new=1")

    @app.get("/posts/{post_id}", response_class=HTMLResponse)
    def show_post(request: Request, post_id: int, new: int = 0, saved: int = 0, edited: int = 0) -> Response:
        with page(request) as (ctx, db):
            post = diary.owned_post(db, user_of(ctx), post_id)
            ranked = sorted(post.scores.items(), key=lambda kv: -kv[1])
            return render(
                d,
                ctx,
                "post.html",
                post=post,
                ranked=ranked,
                new=bool(new),
                just_edited=bool(edited),
                notice=ctx.t("feedback_saved") if saved else ctx.t("post_edited") if edited else None,
                **web_companion.post_extras(d, db, user_of(ctx), post),
            )

    @app.get("/posts/{post_id}/image")
    def post_image(request: Request, post_id: int) -> Response:
        with page(request) as (ctx, db):
            name = diary.owned_post(db, user_of(ctx), post_id).image
        return _image_response(d.store.path(name))

    @app.post("/posts/{post_id}/feedback")
    def feedback(request: Request, post_id: int, label: str = Form(""), csrf: str = Form("")) -> Response:
        with page(request) as (ctx, db):
            check_csrf(request, d, csrf)
            post = diary.owned_post(db, user_of(ctx), post_id)
            before = post.label
            diary.give_feedback(post, label, d.labels)
            relabelled = post.label != before
            if relabelled:  # the comment and the songs were for the old emotion
                d.music.forget(db, post)
                companion.start_comment(db, post)
        if relabelled:
            d.companion.schedule(post_id)
        return redirect(f"/posts/{post_id}?saved=1")

    def edit_values(post: Post, form: dict[str, str] | None = None) -> dict[str, Any]:
        """The edit page's values: the entry, its day and text as stored (or ``form``, as just sent)."""
        form = form or {"day": post.day.isoformat(), "text": post.text}
        return {"post": post, "form": form, "today": d.today().isoformat(), "mb": s.max_image_bytes // (1024 * 1024)}

    @app.get("/posts/{post_id}/edit", response_class=HTMLResponse)
    def edit_post_form(request: Request, post_id: int) -> Response:
        with page(request) as (ctx, db):
            post = diary.owned_post(db, user_of(ctx), post_id)
            return render(d, ctx, "edit_post.html", **edit_values(post))

    @app.post("/posts/{post_id}/edit")
    def edit_post(
        request: Request,
        post_id: int,
        day: str = Form(""),
        text: str = Form(""),
        photo: UploadFile | None = File(None),
        csrf: str = Form(""),
    ) -> Response:
        """Change an entry's text, day or photo. A new text is read again as a new entry's is (the same checks,
        then the comment with the text's emotion written anew). A new photo is read as a new entry's is: the
        emotion of its face replaces the old one and the owner's answer about it, the songs are picked again
        and the comment rewritten; with several faces its owner picks one first (the text is saved now).
        Anything refused saves nothing."""
        form = {"day": day, "text": text}
        try:
            with page(request) as (ctx, db):
                check_csrf(request, d, csrf)
                user = user_of(ctx)
                diary.owned_post(db, user, post_id)  # someone else's entry: 'not found' before reading a photo
            entry_day, entry_text = diary.check_entry(day, text, d.today(), s.max_text_chars)
            data = photo.file.read(s.max_image_bytes + 1) if photo is not None else b""
            image = prepare_upload(data, d.limits) if data else None
            faces = d.reader.faces(image) if image is not None else []
            if image is not None and not faces:
                raise UserError("no_face", 422)

            def commit(name: str | None) -> tuple[str | None, str | None, bool]:
                """Save the edit; the upload's token if it waits for a face choice, the replaced photo's name,
                and whether the comment is written again."""
                with d.tx() as db:
                    post = diary.owned_post(db, user, post_id)  # it may have been deleted meanwhile
                    rewrite = diary.edit_entry(post, entry_day, entry_text)
                    token, old = None, None
                    if name is not None and image is not None:
                        size, model = (image.width, image.height), d.reader.model
                        if len(faces) == 1:
                            old = diary.replace_photo(post, name, size, model, faces[0], 1)
                            d.music.forget(db, post)
                            rewrite = True
                        else:
                            pending = diary.new_pending(user, entry_day, entry_text, name, size, model, faces, post)
                            db.add(pending)
                            token = pending.token
                    if rewrite:
                        companion.start_comment(db, post)
                    return token, old, rewrite

            if image is None:
                token, replaced, rewrite = commit(None)
            else:
                token, replaced, rewrite = diary.save_new_image(d.store, image.jpeg, commit)
        except UserError as e:
            if e.key == "post_not_found":  # someone else's entry, or none: not a form to show again
                raise
            with page(request) as (ctx, db):
                post = diary.owned_post(db, user_of(ctx), post_id)
                error = ctx.t(e.key, **e.params)
                return render(d, ctx, "edit_post.html", e.status, **edit_values(post, form), error=error)
        if replaced is not None:
            d.store.delete(replaced)  # after the commit: the entry shows the new photo
        if rewrite:
            d.companion.schedule(post_id)  # after the commit, as for a new entry
        if token is not None:
            return redirect(f"/pending/{token}")
        return redirect(f"/posts/{post_id}?edited=1")

    @app.get("/posts/{post_id}/delete", response_class=HTMLResponse)
    def delete_post_form(request: Request, post_id: int) -> Response:
        """The second step of deleting: what goes, and the button that really deletes (works without JS)."""
        with page(request) as (ctx, db):
            return render(d, ctx, "delete_post.html", post=diary.owned_post(db, user_of(ctx), post_id))

    @app.post("/posts/{post_id}/delete")
    def delete_post(request: Request, post_id: int, confirm: str = Form(""), csrf: str = Form("")) -> Response:
        with page(request) as (ctx, db):
            check_csrf(request, d, csrf)
            post = diary.owned_post(db, user_of(ctx), post_id)
            if confirm != "1":  # not confirmed yet (the page's script asks first; without it, this page does)
                return redirect(f"/posts/{post_id}/delete")
            # a new photo still waiting for its face choice goes with the entry (ON DELETE CASCADE)
            names = [post.image, *db.scalars(select(PendingPost.image).where(PendingPost.replaces == post.id))]
            db.delete(post)
        for name in names:
            d.store.delete(name)
        return redirect("/?deleted=1")

    # calendar and statistics --------------------------------------------------------------------

    @app.get("/calendar", response_class=HTMLResponse)
    def calendar_page(request: Request, month: str = "") -> Response:
        with page(request) as (ctx, db):
            year, mon = _month(month, d.today())
            first, last = stats.month_bounds(year, mon)
            posts = diary.posts_between(db, user_of(ctx), first, last)
            days: dict[dt.date, tuple[str, int, int]] = {}
            for p in posts:  # ordered by day then id: the day's latest post wins the mark
                days[p.day] = (p.label, days.get(p.day, ("", 0, 0))[1] + 1, p.id)
            prev_m, next_m = stats.shift_month(year, mon, -1), stats.shift_month(year, mon, 1)
            return render(
                d,
                ctx,
                "calendar.html",
                year=year,
                month=mon,
                weeks=stats.month_weeks(year, mon, days),
                empty=not posts,
                prev=f"{prev_m[0]:04d}-{prev_m[1]:02d}" if prev_m >= FIRST_MONTH else None,
                next=f"{next_m[0]:04d}-{next_m[1]:02d}" if next_m <= LAST_MONTH else None,
                today=d.today(),
                weekdays=ctx.t("weekdays").split(),
                title=ctx.t("calendar_title", year=year, month=mon, month_name=first.strftime("%B")),
            )

    @app.get("/calendar/{day}", response_class=HTMLResponse)
    def day_page(request: Request, day: str) -> Response:
        """Every entry of one day (the calendar links here when a day has several)."""
        try:
            date = dt.date.fromisoformat(day)
        except ValueError:
            raise UserError("day_invalid") from None
        with page(request) as (ctx, db):
            return render(
                d,
                ctx,
                "day.html",
                day=date,
                posts=diary.posts_between(db, user_of(ctx), date, date),
                title=ctx.t(
                    "day_title", year=date.year, month=date.month, day=date.day, month_name=date.strftime("%B")
                ),
            )

    @app.get("/stats", response_class=HTMLResponse)
    def stats_page(request: Request) -> Response:
        with page(request) as (ctx, db):
            summary = _summary(db, user_of(ctx), d)
            names = {label: emotion_name(label, ctx.lang) for label in d.labels}
            counts_svg = stats.bar_chart(summary["counts"], d.labels, names, ctx.t("stats_counts"))
            trend_svg = stats.trend_chart(summary["series"], d.labels, names, ctx.t("stats_trend"))
            return render(
                d, ctx, "stats.html", summary=summary, counts_svg=Markup(counts_svg), trend_svg=Markup(trend_svg)
            )

    # JSON API -----------------------------------------------------------------------------------

    @app.get("/api/posts")
    def api_posts(request: Request, month: str = "", q: str = "", emotion: str = "") -> Response:
        with page(request) as (ctx, db):
            if month:
                year, mon = _month(month, d.today())
                first, last = stats.month_bounds(year, mon)
            else:
                first, last = diary.FIRST_DAY, d.today() + dt.timedelta(days=1)
            if emotion and emotion not in d.labels:
                raise UserError("bad_emotion", 400, emotion=emotion[:40], labels=", ".join(d.labels))
            words = diary.search_words(q)
            posts = diary.posts_between(db, user_of(ctx), first, last, words=words, label=emotion)
            return JSONResponse([_post_json(p) for p in posts])

    @app.get("/api/posts/{post_id}")
    def api_post(request: Request, post_id: int) -> Response:
        with page(request) as (ctx, db):
            return JSONResponse(_post_json(diary.owned_post(db, user_of(ctx), post_id)))

    @app.get("/api/stats")
    def api_stats(request: Request) -> Response:
        with page(request) as (ctx, db):
            summary = _summary(db, user_of(ctx), d)
            return JSONResponse({k: v for k, v in summary.items() if k != "series"})

    # a request over the size limit ------------------------------------------------------------------

    @app.get(TOO_LARGE_PATHS[0], include_in_schema=False)
    @app.get(TOO_LARGE_PATHS[1], include_in_schema=False)
    def too_large(request: Request, origin: str = Query("", alias="from")) -> Response:
        """What BodyLimit answers a request over ``max_request_bytes`` with, without its body: on the
        new-entry and edit forms, the same message as a photo over ``max_image_bytes`` (the text comes
        back from the browser's draft), so there is one limit to know."""
        mb = s.max_image_bytes // (1024 * 1024)
        edited = re.fullmatch(r"/posts/(\d+)/edit", origin)
        with page(request, login=False) as (ctx, db):
            if ctx.user is not None and (origin == "/posts" or edited):
                error = ctx.t("image_too_large_bytes", mb=mb)
                if edited:  # the entry as stored; what was typed comes back from the draft too
                    post = diary.owned_post(db, ctx.user, int(edited.group(1)))
                    return render(d, ctx, "edit_post.html", 413, **edit_values(post), error=error)
                today = d.today().isoformat()
                form = {"day": today, "text": ""}
                return render(d, ctx, "new_post.html", 413, form=form, today=today, mb=mb, error=error)
        raise UserError("request_too_large", 413)


def _post_json(post: Post) -> dict[str, Any]:
    record = export.post_record(post)
    record["image"] = f"/posts/{post.id}/image"
    return record


def _summary(db: DbSession, user: User, d: Diary) -> dict[str, Any]:
    rows = db.execute(select(Post.day, Post.label).where(Post.user_id == user.id)).all()
    today = d.today()
    current, longest = stats.streaks((day for day, _ in rows), today)
    counts = Counter(label for _, label in rows)
    return {
        "total": len(rows),
        "counts": {label: counts.get(label, 0) for label in d.labels},
        "streak_current": current,
        "streak_longest": longest,
        "series": stats.weekly(((day, label) for day, label in rows), today, 12),
    }


def _month(text: str, today: dt.date) -> tuple[int, int]:
    if not text:
        return today.year, today.month
    m = MONTH.match(text)
    if not m or not 1 <= int(m.group(2)) <= 12 or not 1900 <= int(m.group(1)) <= 9999:
        raise UserError("month_invalid")
    return int(m.group(1)), int(m.group(2))


def _check_new_password(password: str, password2: str, username: str) -> None:
    """The rules for a password chosen at sign-up or when changing it; UserError says which one it breaks."""
    if len(password) < 8:
        raise UserError("password_short")
    if weak_password(password, username):
        raise UserError("password_weak")
    if password != password2:
        raise UserError("password_mismatch")


def _check_profile(name: str, intro: str) -> tuple[str, str]:
    name, intro = name.strip(), intro.strip()
    if not name:
        raise UserError("name_required")
    if len(name) > 50:
        raise UserError("name_too_long")
    if len(intro) > 500:
        raise UserError("intro_too_long")
    return name, intro


def _image_response(path: Path) -> Response:
    return FileResponse(path, media_type="image/jpeg", headers={"Cache-Control": "private, no-cache"})


def _zip_response(out: Any, filename: str) -> Response:
    out.seek(0)

    def chunks() -> Iterator[bytes]:
        with out:
            while block := out.read(1 << 20):
                yield block

    return StreamingResponse(
        chunks(),
        media_type="application/zip",
        headers={"Content-Disposition": f"attachment; filename*=UTF-8''{quote(filename)}"},
    )


# ----------------------------------------------------------------------------------------------
# errors


def _error_handlers(app: FastAPI, d: Diary) -> None:
    def error_page(request: Request, status: int, key: str, **params: object) -> Response:
        with d.tx() as db:
            ctx, _ = request_context(request, d, db)
            if request.url.path.startswith("/api/"):  # the message in the visitor's language, for the page's JS
                return JSONResponse({"error": key, "message": ctx.t(key, **params)}, status_code=status)
            return render(d, ctx, "error.html", status, message=ctx.t(key, **params))

    handlers: dict[Any, Callable[..., Any]] = {}

    async def user_error(request: Request, exc: UserError) -> Response:
        return error_page(request, exc.status, exc.key, **exc.params)

    async def login_required(request: Request, exc: LoginRequired) -> Response:
        if request.url.path.startswith("/api/"):
            return error_page(request, 401, "login_required")
        target = return_path(request)
        response = redirect(f"/login?next={quote(target)}" + ("&expired=1" if exc.expired else ""))
        if exc.expired:
            response.delete_cookie(SESSION_COOKIE)
        return response

    async def validation(request: Request, exc: RequestValidationError) -> Response:
        return error_page(request, 400, "bad_request")

    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404:
            return error_page(request, 404, "not_found")
        if exc.status_code == 413:
            return error_page(request, 413, "request_too_large")
        if exc.status_code == 400:  # e.g. a malformed multipart body
            return error_page(request, 400, "bad_request")
        if exc.status_code == 405:  # a form's address opened in the browser's bar
            response = error_page(request, 405, "method_not_allowed")
            response.headers.update(exc.headers or {})  # Allow
            return response
        return JSONResponse({"error": exc.detail}, status_code=exc.status_code)

    async def crash(request: Request, exc: Exception) -> Response:
        log.exception("%s %s failed", request.method, request.url.path)
        return error_page(request, 500, "server_error")

    handlers.update(
        {
            UserError: user_error,
            LoginRequired: login_required,
            RequestValidationError: validation,
            StarletteHTTPException: http_error,
            Exception: crash,
        }
    )
    for exc_type, handler in handlers.items():
        app.add_exception_handler(exc_type, handler)
