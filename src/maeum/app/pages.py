"""What every page shares: who is asking (session or anonymous cookie), the language, CSRF, rendering."""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from sqlalchemy.orm import Session as DbSession
from starlette.datastructures import FormData

from maeum.app.errors import UserError
from maeum.app.i18n import LANGS, emotion_name, translate
from maeum.app.models import User
from maeum.app.security import csrf_token, csrf_valid, session_user
from maeum.app.state import Diary

SESSION_COOKIE, ANON_COOKIE, LANG_COOKIE = "maeum_session", "maeum_anon", "maeum_lang"
# Control characters nobody types on purpose (tab, newline and carriage return stay). PostgreSQL refuses
# NUL in text, so they are dropped from every form field before any route sees them, on every database.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def clean_text(value: str) -> str:
    return _CONTROL.sub("", value)


class _CleanFormRequest(Request):
    async def form(self, **limits: Any) -> FormData:  # type: ignore[override]
        form = await super().form(**limits)
        return FormData([(k, clean_text(v) if isinstance(v, str) else v) for k, v in form.multi_items()])


class CleanFormRoute(APIRoute):
    """A route whose form fields (not files) come without control characters."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def clean_handler(request: Request) -> Response:
            return await handler(_CleanFormRequest(request.scope, request.receive))

        return clean_handler


class LoginRequired(Exception):
    def __init__(self, expired: bool) -> None:
        self.expired = expired


@dataclass
class Ctx:
    """What every page needs: who is asking, in which language, and the CSRF token for its forms."""

    request: Request
    user: User | None
    lang: str
    csrf: str
    anon: str
    new_anon: bool

    def t(self, key: str, **params: object) -> str:
        return translate(key, self.lang, **params)


def request_context(request: Request, d: Diary, db: DbSession) -> tuple[Ctx, bool]:
    token = request.cookies.get(SESSION_COOKIE)
    user, expired = session_user(db, token)
    anon = request.cookies.get(ANON_COOKIE) or ""
    new_anon = not re.fullmatch(r"[A-Za-z0-9_-]{20,64}", anon)
    if new_anon:
        anon = secrets.token_urlsafe(24)
    lang = user.lang if user else request.cookies.get(LANG_COOKIE, d.settings.default_lang)
    lang = lang if lang in LANGS else d.settings.default_lang
    anchor = token if user and token else anon
    return Ctx(request, user, lang, csrf_token(d.settings.secret_key, anchor), anon, new_anon), expired


def check_csrf(request: Request, d: Diary, token: str) -> None:
    session = request.cookies.get(SESSION_COOKIE)
    secret = d.settings.secret_key
    if not (csrf_valid(secret, session, token) or csrf_valid(secret, request.cookies.get(ANON_COOKIE), token)):
        raise UserError("csrf_failed", 403)


def render(d: Diary, ctx: Ctx, name: str, status: int = 200, **values: Any) -> HTMLResponse:
    values.update(
        ctx=ctx,
        t=ctx.t,
        user=ctx.user,
        lang=ctx.lang,
        csrf=ctx.csrf,
        labels=d.labels,
        name_of=lambda label: emotion_name(label, ctx.lang),
    )
    response = d.templates.TemplateResponse(ctx.request, name, values, status_code=status)
    return finish(d, ctx, response)


def finish(d: Diary, ctx: Ctx, response: Response) -> Response:
    if ctx.new_anon:
        response.set_cookie(ANON_COOKIE, ctx.anon, httponly=True, samesite="lax", secure=d.settings.secure_cookies)
    return response


def redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def safe_next(target: str | None) -> str:
    """Only same-site paths are followed after login."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


def return_path(request: Request) -> str:
    """Where to go back to after logging in: the page itself for a GET, else the page the form was
    sent from (the Referer, when it is this site), else the home page."""
    if request.method == "GET":
        return request.url.path + ("?" + request.url.query if request.url.query else "")
    referer = urlsplit(request.headers.get("referer", ""))
    if referer.netloc and referer.netloc == request.url.netloc:
        return safe_next(referer.path + ("?" + referer.query if referer.query else ""))
    return "/"


@contextmanager
def page(d: Diary, request: Request, login: bool = True) -> Iterator[tuple[Ctx, DbSession]]:
    """A transaction with the request's context; LoginRequired (after the commit) when ``login`` and no user."""
    with d.tx() as db:
        ctx, expired = request_context(request, d, db)
        if ctx.user is not None or not login:
            yield ctx, db
            return
    raise LoginRequired(expired)  # after the commit, so an expired session's row is gone


def user_of(ctx: Ctx) -> User:
    assert ctx.user is not None
    return ctx.user


def form_error(
    d: Diary, request: Request, template: str, error: UserError, form: dict[str, Any], **values: Any
) -> Response:
    """The form again, with what the user typed and what to fix."""
    with d.tx() as db:
        ctx, expired = request_context(request, d, db)
        if template in ("login.html", "signup.html") or ctx.user is not None:
            return render(d, ctx, template, error.status, form=form, error=ctx.t(error.key, **error.params), **values)
    raise LoginRequired(expired)  # after the commit, so an expired session's row is gone
