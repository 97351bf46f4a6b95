"""The diary app over HTTP (no browser): accounts, posts, ownership, bad input, export, storage.

Every test runs on SQLite and on PostgreSQL (the ``database_url`` fixture).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import html
import io
import json
import os
import re
import threading
import time
import zipfile
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import create_engine, func, select, text, update

from conftest import jpeg_bytes
from maeum.app import diary
from maeum.app.models import Base, LoginFailure, PendingPost, Post, User, utcnow
from maeum.app.models import Session as SessionRow
from maeum.labels import display_name

CSRF = re.compile(r'name="csrf" value="([^"]+)"')
ERROR = re.compile(r'id="error">([^<]+)<')


class Visitor:
    """One browser's worth of cookies, with helpers for the diary's forms."""

    def __init__(self, app, address: str = "testclient", forwarded_for: str | None = None) -> None:
        headers = {"x-forwarded-for": forwarded_for} if forwarded_for else None
        self.client = TestClient(
            app, follow_redirects=False, raise_server_exceptions=False, client=(address, 50000), headers=headers
        )

    def csrf(self, path: str = "/posts/new") -> str:
        page = self.client.get(path)
        match = CSRF.search(page.text)
        assert match, f"no CSRF token on {path}: {page.status_code}"
        return match.group(1)

    def signup(self, username: str, password: str = "password123", name: str = "민아") -> None:
        r = self.client.post(
            "/signup",
            data={
                "username": username,
                "password": password,
                "password2": password,
                "name": name,
                "intro": "",
                "csrf": self.csrf("/signup"),
            },
        )
        assert r.status_code == 303, ERROR.findall(r.text)

    def login(self, username: str, password: str = "password123"):  # -> httpx.Response
        return self.client.post(
            "/login", data={"username": username, "password": password, "next": "/", "csrf": self.csrf("/login")}
        )

    def post(self, photo: bytes | None, text: str = "오늘은 좋은 날", day: str = "", name: str = "selfie.jpg"):
        files = {"photo": (name, photo, "image/jpeg")} if photo is not None else None
        return self.client.post("/posts", data={"day": day, "text": text, "csrf": self.csrf()}, files=files)

    def post_id(self, photo: bytes, **kw: str) -> int:
        r = self.post(photo, **kw)
        assert r.status_code == 303, ERROR.findall(r.text)
        return int(re.match(r"/posts/(\d+)", r.headers["location"]).group(1))


def rows(app, model) -> int:
    with app.state.diary.sessions() as db:
        return db.scalar(select(func.count()).select_from(model))


def image_files(app) -> list[Path]:
    return [p for p in app.state.diary.store.root.rglob("*") if p.is_file()]


def today() -> dt.date:
    return dt.datetime.now(ZoneInfo("Asia/Seoul")).date()


def written_comment(v: Visitor, post_id: int, timeout: float = 15.0) -> dict:
    """The post's companion comment once it is written (in the background)."""
    deadline = time.monotonic() + timeout
    while (data := v.client.get(f"/api/posts/{post_id}/comment").json())["status"] != "done":
        assert time.monotonic() < deadline, data
        time.sleep(0.05)
    return data


# ------------------------------------------------------------------------------------------------
# schema


def test_migrations_match_the_models_and_keep_data(diary_settings, analyzer) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from maeum.app.web import create_app

    app = create_app(diary_settings, analyzer)
    Visitor(app).signup("keeper")
    app.state.diary.close()
    engine = create_engine(diary_settings.url)
    with engine.connect() as c:
        assert compare_metadata(MigrationContext.configure(c), Base.metadata) == []
        assert c.execute(text("SELECT version_num FROM alembic_version")).scalar() == "0004"
    engine.dispose()
    again = create_app(diary_settings, analyzer)  # a restart migrates again: nothing lost
    assert Visitor(again).login("keeper").status_code == 303
    again.state.diary.close()


# ------------------------------------------------------------------------------------------------
# accounts


def test_signup_refuses_bad_input_and_keeps_what_was_typed(diary_app) -> None:
    v = Visitor(diary_app)
    cases = [
        ({"username": "A!", "password": "password123", "password2": "password123", "name": "민아"}, "아이디는"),
        ({"username": "mina", "password": "short", "password2": "short", "name": "민아"}, "8자 이상"),
        ({"username": "mina", "password": "password123", "password2": "password124", "name": "민아"}, "서로 다릅니다"),
        ({"username": "mina", "password": "password123", "password2": "password123", "name": "  "}, "이름을"),
        ({"username": "mina", "password": "aaaaaaaa", "password2": "aaaaaaaa", "name": "민아"}, "너무 쉬운"),
        ({"username": "mina", "password": "12345678", "password2": "12345678", "name": "민아"}, "너무 쉬운"),
        ({"username": "mina", "password": "PassWord", "password2": "PassWord", "name": "민아"}, "너무 쉬운"),
        ({"username": "mina1234", "password": "MINA1234", "password2": "MINA1234", "name": "민아"}, "너무 쉬운"),
    ]
    for form, message in cases:
        r = v.client.post("/signup", data={**form, "intro": "안녕", "csrf": v.csrf("/signup")})
        assert r.status_code == 400 and message in ERROR.search(r.text).group(1)
        assert "안녕" in r.text  # the introduction typed is still in the form
    assert rows(diary_app, User) == 0
    v.signup("mina")
    other = Visitor(diary_app)
    r = other.client.post(
        "/signup",
        data={
            "username": "MINA",
            "password": "password123",
            "password2": "password123",
            "name": "다른 민아",
            "csrf": other.csrf("/signup"),
        },
    )
    assert r.status_code == 400 and "이미 사용 중" in r.text
    with diary_app.state.diary.sessions() as db:
        user = db.scalar(select(User))
        assert user.password_hash.startswith("$argon2id$") and "password123" not in user.password_hash


def test_csrf_token_is_required_on_every_form(diary_app, selfie_jpeg) -> None:
    v = Visitor(diary_app)
    v.signup("mina")
    for token in ("", "forged", Visitor(diary_app).csrf("/signup")):  # none, made up, another visitor's
        r = v.client.post(
            "/posts", data={"text": "x", "csrf": token}, files={"photo": ("a.jpg", selfie_jpeg, "image/jpeg")}
        )
        assert r.status_code == 403 and "요청을 확인할 수 없습니다" in r.text
        assert v.client.post("/logout", data={"csrf": token}).status_code == 403
    assert rows(diary_app, Post) == 0 and image_files(diary_app) == []
    assert v.client.get("/posts/new").status_code == 200  # still logged in


def test_login_logout_and_rate_limit(diary_app) -> None:
    Visitor(diary_app).signup("mina")
    v = Visitor(diary_app)
    r = v.login("mina", "wrong-password")
    assert r.status_code == 401 and "올바르지 않습니다" in r.text
    assert v.login("nobody", "whatever1").status_code == 401
    for _ in range(4):
        v.login("mina", "wrong-password")
    r = v.login("mina")  # five failures: even the right password waits
    assert r.status_code == 429 and "분 후에 다시 시도" in r.text
    with diary_app.state.diary.tx() as db:  # the window passes
        db.execute(update(LoginFailure).values(at=utcnow() - dt.timedelta(minutes=16)))
    r = v.login("mina")
    assert r.status_code == 303 and r.headers["location"] == "/"
    assert v.client.get("/posts/new").status_code == 200
    token = v.client.cookies.get("maeum_session")
    assert v.client.post("/logout", data={"csrf": v.csrf()}).status_code == 303
    v.client.cookies.set("maeum_session", token)  # the old cookie no longer opens anything
    assert v.client.get("/posts/new").status_code == 303


def test_signing_up_while_signed_in_ends_the_earlier_session(diary_app) -> None:
    v = Visitor(diary_app)
    v.signup("mina")
    earlier = v.client.cookies.get("maeum_session")
    v.signup("jun")  # the same browser, a second account, as sign-in does
    assert v.client.get("/posts/new").status_code == 200
    v.client.cookies.clear()
    v.client.cookies.set("maeum_session", earlier)  # mina's cookie opens nothing now
    assert v.client.get("/posts/new").status_code == 303


def test_logging_out_in_a_second_tab_after_the_first_says_signed_out(diary_app) -> None:
    v = Visitor(diary_app)
    v.signup("mina")
    stale = v.csrf("/calendar")  # the page another tab shows, its token tied to this session
    assert v.client.post("/logout", data={"csrf": v.csrf()}).headers["location"] == "/login?signed_out=1"
    r = v.client.post("/logout", data={"csrf": stale})  # that other tab's logout button
    assert r.status_code == 303 and r.headers["location"] == "/login?signed_out=1"
    assert "로그아웃했습니다" in v.client.get(r.headers["location"]).text


def test_expired_session_sends_to_login_with_a_message(diary_app, selfie_jpeg) -> None:
    v = Visitor(diary_app)
    v.signup("mina")
    csrf = v.csrf()
    with diary_app.state.diary.tx() as db:
        db.execute(update(SessionRow).values(expires_at=utcnow() - dt.timedelta(seconds=1)))
    r = v.client.post(
        "/posts",
        data={"text": "lost?", "csrf": csrf},
        files={"photo": ("a.jpg", selfie_jpeg)},
        headers={"referer": "http://testserver/posts/new"},
    )
    assert r.status_code == 303 and r.headers["location"] == "/login?next=/posts/new&expired=1"
    assert "세션이 만료되었습니다" in v.client.get(r.headers["location"]).text
    assert v.client.get("/api/posts").status_code == 401
    assert rows(diary_app, Post) == 0 and rows(diary_app, SessionRow) == 0
    r = v.client.post(
        "/login", data={"username": "mina", "password": "password123", "next": "/posts/new", "csrf": v.csrf("/login")}
    )
    assert r.headers["location"] == "/posts/new"  # back to the form, where the browser's draft waits
    with diary_app.state.diary.tx() as db:
        db.execute(update(SessionRow).values(expires_at=utcnow() - dt.timedelta(seconds=1)))
    r = v.client.post("/posts", data={"csrf": csrf}, headers={"referer": "https://elsewhere.example/posts/new"})
    assert r.headers["location"] == "/login?next=/&expired=1"  # another site's page is not followed


def test_login_limit_counts_per_username_and_address(diary_settings, analyzer) -> None:
    """Behind a trusted proxy each visitor has their own address; made-up usernames and wrong passwords
    lock out only the address they came from."""
    from dataclasses import replace

    from maeum.app.web import create_app

    app = create_app(replace(diary_settings, trusted_proxies=("10.0.0.0/8",)), analyzer)
    try:
        Visitor(app).signup("victim")
        attacker = Visitor(app, "10.0.0.1", forwarded_for="203.0.113.9")
        victim = Visitor(app, "10.0.0.1", forwarded_for="198.51.100.7")
        for _ in range(5):
            assert attacker.login("victim", "wrong-password").status_code == 401
        assert attacker.login("victim").status_code == 429  # that address waits for this username
        assert victim.login("victim").status_code == 303  # the user, elsewhere, does not
        for n in range(25):
            assert attacker.login(f"made-up-{n}", "whatever1").status_code == 401
        assert attacker.login("someone-else", "whatever1").status_code == 429  # 30 from one address
        assert Visitor(app, "10.0.0.1", forwarded_for="198.51.100.7").login("victim").status_code == 303
        # X-Forwarded-For from anyone but a trusted proxy is not believed: a forger stays at its own address
        forger = Visitor(app, "192.0.2.1", forwarded_for="198.51.100.7")
        for _ in range(5):
            forger.login("victim", "wrong-password")
        assert forger.login("victim").status_code == 429
        assert Visitor(app, "10.0.0.1", forwarded_for="198.51.100.7").login("victim").status_code == 303
    finally:
        app.state.diary.close()


def test_client_address_believes_only_trusted_proxies() -> None:
    from maeum.app.security import client_address, proxy_networks
    from maeum.errors import MaeumError

    trusted = proxy_networks(("10.0.0.0/8", "::1"))
    assert client_address("10.0.0.1", ["1.2.3.4, 10.0.0.2"], trusted) == "1.2.3.4"
    assert client_address("10.0.0.1", ["6.6.6.6", "1.2.3.4"], trusted) == "1.2.3.4"  # the forged part is left
    assert client_address("::1", ["1.2.3.4"], trusted) == "1.2.3.4"
    assert client_address("10.0.0.1", ["garbage"], trusted) == "10.0.0.1"
    assert client_address("10.0.0.1", [], trusted) == "10.0.0.1"
    assert client_address("5.5.5.5", ["1.2.3.4"], trusted) == "5.5.5.5"
    assert client_address("10.0.0.1", ["1.2.3.4"], ()) == "10.0.0.1"  # off by default
    with pytest.raises(MaeumError, match="not an IP address"):
        proxy_networks(("proxy.example",))


def test_control_characters_are_dropped_from_every_form(diary_app, selfie_jpeg) -> None:
    """NUL is refused by PostgreSQL and invisible anyway: every text field loses it, on both databases."""
    v = Visitor(diary_app)
    r = v.client.post(
        "/signup",
        data={
            "username": "nul",
            "password": "password123",
            "password2": "password123",
            "name": "피지\x00유저",
            "intro": "소개\x00\x07",
            "csrf": v.csrf("/signup"),
        },
    )
    assert r.status_code == 303
    anonymous = Visitor(diary_app)
    r = anonymous.client.post(
        "/login", data={"username": "pg\x00user2", "password": "x\x00", "csrf": anonymous.csrf("/login")}
    )
    assert r.status_code == 401 and 'value="pguser2"' in r.text
    r = v.client.post("/profile", data={"name": "이름\x00", "intro": "", "csrf": v.csrf("/profile")})
    assert r.status_code == 303
    post_id = v.post_id(selfie_jpeg, text="널 문자\x00 포함\n두 줄\t탭")
    assert v.client.get(f"/api/posts/{post_id}").json()["text"] == "널 문자 포함\n두 줄\t탭"
    assert v.client.post("/chat", data={"message": "안녕\x00하세요", "csrf": v.csrf("/chat")}).status_code == 303
    assert "안녕하세요" in v.client.get("/chat").text
    assert v.client.get("/pending/%00abc").status_code == 404
    catalogue = b"name,artist,id,valence,energy\nSo\x00ng,Ba\x00nd,t-1,0.5,0.5\n"
    r = v.client.post(
        "/companion/music",
        data={"format": "spotify", "csrf": v.csrf("/companion")},
        files={"catalogue": ("songs.csv", catalogue, "text/csv")},
    )
    assert r.status_code == 303
    with diary_app.state.diary.sessions() as db:
        user = db.scalar(select(User))
        assert (user.name, user.intro) == ("이름", "")
        assert db.execute(text("SELECT title, artist FROM tracks")).one() == ("Song", "Band")


def test_profile_edit_keeps_posts(diary_app, selfie_jpeg) -> None:
    v = Visitor(diary_app)
    v.signup("mina")
    v.post_id(selfie_jpeg)
    form = {"name": "", "intro": "소개", "csrf": v.csrf("/profile")}
    assert "이름을" in v.client.post("/profile", data=form).text
    r = v.client.post("/profile", data={**form, "name": "김민아", "lang": "en", "share_labels": "1"})
    assert r.status_code == 303
    page = v.client.get("/profile?saved=1").text
    assert "김민아" in page and "Profile saved." in page  # the language follows the profile
    assert len(v.client.get("/api/posts").json()) == 1


def test_delete_account_removes_everything(diary_app, selfie_jpeg) -> None:
    v = Visitor(diary_app)
    v.signup("mina")
    v.post_id(selfie_jpeg)
    keep = Visitor(diary_app)
    keep.signup("jisu")
    kept_post = keep.post_id(selfie_jpeg)
    assert v.client.post("/account/delete", data={"password": "nope", "csrf": v.csrf()}).status_code == 400
    r = v.client.post("/account/delete", data={"password": "password123", "csrf": v.csrf()})
    assert r.status_code == 200 and "삭제했습니다" in r.text
    assert rows(diary_app, Post) == 1 and len(image_files(diary_app)) == 1
    assert Visitor(diary_app).login("mina").status_code == 401
    assert keep.client.get(f"/posts/{kept_post}/image").status_code == 200


def test_change_password_signs_out_other_sessions(diary_app) -> None:
    v = Visitor(diary_app)
    v.signup("mina.kim")
    phone = Visitor(diary_app)  # the same user on another device
    assert phone.login("mina.kim").status_code == 303
    old_cookie = v.client.cookies.get("maeum_session")

    def change(current: str, new: str, again: str | None = None, csrf: str | None = None):  # -> httpx.Response
        form = {"current": current, "password": new, "password2": new if again is None else again}
        return v.client.post("/account/password", data={**form, "csrf": v.csrf("/account") if csrf is None else csrf})

    assert 'id="password-form"' in v.client.get("/account").text
    for new, again, message in (  # the rules of sign-up
        ("short", None, "8자 이상"),
        ("12345678", None, "너무 쉬운"),
        ("zzzzzzzzzz", None, "너무 쉬운"),
        ("MINA.KIM", None, "너무 쉬운"),  # the username
        ("new-secret-42", "new-secret-43", "서로 다릅니다"),
        ("password123", None, "지금 비밀번호와 같습니다"),  # no change at all
    ):
        r = change("password123", new, again)
        assert r.status_code == 400 and message in ERROR.search(r.text).group(1), (new, ERROR.findall(r.text))
    assert change("password123", "new-secret-42", csrf="forged").status_code == 403
    r = change("not-my-password", "new-secret-42")
    assert r.status_code == 400 and ERROR.search(r.text).group(1) == "비밀번호가 올바르지 않습니다."
    assert rows(diary_app, LoginFailure) == 1  # counted like a failed login
    assert Visitor(diary_app).login("mina.kim", "new-secret-42").status_code == 401  # nothing changed yet

    r = change("password123", "new-secret-42")
    assert r.status_code == 303 and r.headers["location"] == "/account?password_changed=1"
    assert v.client.cookies.get("maeum_session") not in (None, old_cookie)  # this browser: a new session
    page = v.client.get(r.headers["location"])
    assert page.status_code == 200 and ERROR.search(page.text) is None
    assert 'id="notice">비밀번호를 바꿨습니다.' in page.text
    assert rows(diary_app, LoginFailure) == 0  # the right password clears this address's failures, as a login does
    assert rows(diary_app, SessionRow) == 1  # the other device's session is gone
    assert phone.client.get("/posts/new").status_code == 303  # and it is sent to the login page
    leaked = Visitor(diary_app)
    leaked.client.cookies.set("maeum_session", old_cookie)  # the cookie from before no longer opens anything
    assert leaked.client.get("/api/posts").status_code == 401
    assert Visitor(diary_app).login("mina.kim").status_code == 401
    assert Visitor(diary_app).login("mina.kim", "new-secret-42").status_code == 303
    with diary_app.state.diary.sessions() as db:
        assert db.scalar(select(User.password_hash)).startswith("$argon2id$")


def test_change_password_waits_after_too_many_wrong_passwords(diary_app) -> None:
    """A session left open on a shared computer is no way around the login limit."""
    v = Visitor(diary_app)
    v.signup("mina")
    form = {"password": "new-secret-42", "password2": "new-secret-42"}
    for _ in range(5):
        r = v.client.post("/account/password", data={**form, "current": "guess-1234", "csrf": v.csrf("/account")})
        assert r.status_code == 400
    r = v.client.post("/account/password", data={**form, "current": "password123", "csrf": v.csrf("/account")})
    assert r.status_code == 429 and "분 후에 다시 시도" in ERROR.search(r.text).group(1)
    assert Visitor(diary_app).login("mina").status_code == 429  # the same address logging in waits too
    assert Visitor(diary_app).login("mina", "new-secret-42").status_code == 429
    with diary_app.state.diary.tx() as db:  # the window passes
        db.execute(update(LoginFailure).values(at=utcnow() - dt.timedelta(minutes=16)))
    r = v.client.post("/account/password", data={**form, "current": "password123", "csrf": v.csrf("/account")})
    assert r.status_code == 303


# ------------------------------------------------------------------------------------------------
# posting


def test_post_stores_the_emotion_and_a_clean_image(diary_app, hopper) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: the camera was turned; the upright photo is portrait
    exif.get_ifd(0x8825).update({1: "N", 2: (37.0, 33.0, 59.0), 3: "E", 4: (126.0, 58.0, 41.0)})  # GPS: Seoul
    out = io.BytesIO()
    Image.fromarray(hopper).transpose(Image.Transpose.ROTATE_90).save(out, "JPEG", exif=exif)
    with Image.open(io.BytesIO(out.getvalue())) as im:
        assert im.getexif().get_ifd(0x8825) and im.size[0] > im.size[1]  # the upload has GPS, stored sideways
    v = Visitor(diary_app)
    v.signup("mina")
    post_id = v.post_id(out.getvalue(), text="<b>굵게</b> & <script>alert(1)</script>")
    page = v.client.get(f"/posts/{post_id}").text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>alert" not in page
    data = v.client.get(f"/api/posts/{post_id}").json()
    assert data["label"] == data["predicted"] and data["feedback"] is None
    assert f'id="emotion-label">{display_name(data["label"], "ko")}<' in page
    assert abs(sum(data["scores"].values()) - 1) < 1e-3
    stored = v.client.get(f"/posts/{post_id}/image")
    assert stored.headers["content-type"] == "image/jpeg"
    with Image.open(io.BytesIO(stored.content)) as im:
        assert im.format == "JPEG" and not im.getexif()  # no GPS, no camera, no orientation left
        assert im.size[1] > im.size[0]  # turned upright
    (path,) = image_files(diary_app)
    assert re.fullmatch(r"[A-Za-z0-9_-]{32}\.jpg", path.name) and "selfie" not in path.name
    assert v.client.get(f"/static/../images/{path.parent.name}/{path.name}").status_code == 404


def test_no_face_is_refused_and_nothing_saved(diary_app, no_face_jpeg) -> None:
    v = Visitor(diary_app)
    v.signup("mina")
    r = v.post(no_face_jpeg, text="커피만 찍었다")
    assert r.status_code == 422
    assert "이미지에서 얼굴을 인식하지 못했습니다" in ERROR.search(r.text).group(1)
    assert "커피만 찍었다" in r.text  # the text comes back in the form
    assert rows(diary_app, Post) == 0 and image_files(diary_app) == []


@pytest.mark.parametrize(
    ("photo", "message"),
    [
        (b"", "셀카를 선택"),
        (b"this is not an image at all", "JPEG, PNG, WebP"),
        ("truncated", "손상되어"),
        ("gif", "JPEG, PNG, WebP"),
        ("huge", "해상도가 너무 큽니다 (최대 6,000만 화소)"),
        ("tiny", "너무 작습니다"),
    ],
)
def test_bad_photos_get_clear_messages(diary_app, selfie_jpeg, photo, message) -> None:
    if photo == "truncated":
        photo = selfie_jpeg[: len(selfie_jpeg) // 3]
    elif photo == "gif":
        out = io.BytesIO()
        Image.new("RGB", (200, 200)).save(out, "GIF")
        photo = out.getvalue()
    elif photo == "huge":  # a PNG header claiming 20000 x 20000 pixels: refused before decoding
        from conftest import _png_bomb

        photo = _png_bomb(20000, 20000)
    elif photo == "tiny":
        photo = jpeg_bytes(np.zeros((20, 20, 3), np.uint8))
    v = Visitor(diary_app)
    v.signup("mina")
    r = v.post(photo, text="그대로 남아야 할 글")
    assert r.status_code in (400, 413) and message in ERROR.search(r.text).group(1)
    assert "그대로 남아야 할 글" in r.text
    assert rows(diary_app, Post) == 0 and image_files(diary_app) == []


def test_missing_or_wrong_fields(diary_app, selfie_jpeg) -> None:
    v = Visitor(diary_app)
    v.signup("mina")
    assert "일기 내용을 입력" in v.post(selfie_jpeg, text="   ").text
    assert "셀카를 선택" in v.post(None).text
    tomorrow = (today() + dt.timedelta(days=1)).isoformat()
    assert "미래 날짜" in v.post(selfie_jpeg, day=tomorrow).text
    assert "날짜 형식" in v.post(selfie_jpeg, day="2026-02-30").text
    assert "5,000자 이하" in v.post(selfie_jpeg, text="가" * 5001).text
    assert "5,000자까지 쓸 수 있어요" in v.client.get("/posts/new").text  # said before, not only after
    r = v.client.post("/posts", content=b"garbage", headers={"content-type": "multipart/form-data; boundary=x"})
    assert r.status_code in (400, 403)
    assert rows(diary_app, Post) == 0 and image_files(diary_app) == []
    past = v.post_id(selfie_jpeg, day="2019-03-01")  # any past day is fine
    assert v.client.get(f"/api/posts/{past}").json()["day"] == "2019-03-01"


def test_request_too_large(diary_app, selfie_jpeg) -> None:
    """Over the request limit (25 MB) a photo gets the same message as over the photo limit (20 MB),
    on the app's own new-entry or edit page."""
    v = Visitor(diary_app)
    v.signup("mina")
    big = os.urandom(26 * 1024 * 1024)
    photo_limit = "사진이 너무 큽니다. 20MB 이하의 사진을 올려 주세요."
    r = v.client.post("/posts", data={"text": "x", "csrf": v.csrf()}, files={"photo": ("big.jpg", big)})
    assert r.status_code == 413 and ERROR.search(r.text).group(1) == photo_limit
    assert 'id="post-form"' in r.text and 'id="nav-new"' in r.text  # the app's page, the form again
    r = v.client.post("/posts", data={"text": "x", "csrf": v.csrf()}, files={"photo": ("big.jpg", big[: 21 << 20])})
    assert r.status_code == 413 and ERROR.search(r.text).group(1) == photo_limit
    r = v.client.post("/api/dictation", data={"csrf": v.csrf()}, files={"audio": ("a.webm", big)})
    assert r.status_code == 413 and r.json()["message"] == "보낸 파일이 너무 큽니다. 더 작은 파일로 다시 시도해 주세요."
    assert rows(diary_app, Post) == 0 and image_files(diary_app) == []

    post_id = v.post_id(selfie_jpeg, text="처음 쓴 글")  # a new photo for an entry: its edit page again
    for photo, shown in ((big, "처음 쓴 글"), (big[: 21 << 20], "고친 글")):  # over 25 MB the request is not read
        r = edit_photo(v, post_id, photo, "고친 글")
        assert r.status_code == 413 and ERROR.search(r.text).group(1) == photo_limit
        assert 'id="edit-form"' in r.text and f">{shown}</textarea>" in r.text
    assert v.client.get(f"/api/posts/{post_id}").json()["text"] == "처음 쓴 글" and len(image_files(diary_app)) == 1


def test_crash_mid_save_leaves_nothing_half_saved(diary_app, selfie_jpeg, monkeypatch) -> None:
    v = Visitor(diary_app)
    v.signup("mina")
    real = diary.new_post

    def crash(*args, **kwargs):
        real(*args, **kwargs)
        raise OSError("disk full")

    monkeypatch.setattr(diary, "new_post", crash)
    r = v.post(selfie_jpeg)
    assert r.status_code == 500 and "서버 오류" in r.text
    assert rows(diary_app, Post) == 0 and image_files(diary_app) == []
    monkeypatch.setattr(diary, "new_post", real)
    v.post_id(selfie_jpeg)
    assert rows(diary_app, Post) == 1 and len(image_files(diary_app)) == 1


def test_files_left_by_a_crash_are_swept_at_start(diary_settings, analyzer, selfie_jpeg) -> None:
    from maeum.app.web import create_app

    app = create_app(diary_settings, analyzer)
    v = Visitor(app)
    v.signup("mina")
    v.post_id(selfie_jpeg)
    orphan = app.state.diary.store.path(app.state.diary.store.save(b"left behind by a crash"))
    old = time.time() - 7200
    os.utime(orphan, (old, old))
    app.state.diary.close()
    app = create_app(diary_settings, analyzer)
    assert not orphan.exists() and len(image_files(app)) == 1
    app.state.diary.close()


# ------------------------------------------------------------------------------------------------
# several faces, feedback, ownership


def test_several_faces_the_user_picks_theirs(diary_app, two_faces_jpeg) -> None:
    v = Visitor(diary_app)
    v.signup("mina")
    r = v.post(two_faces_jpeg)
    assert r.status_code == 303 and r.headers["location"].startswith("/pending/")
    pick = v.client.get(r.headers["location"])
    assert "얼굴을 2개 찾았습니다" in pick.text and rows(diary_app, Post) == 0
    token = r.headers["location"].rsplit("/", 1)[1]
    assert v.client.get(f"/pending/{token}/image").status_code == 200
    assert v.client.post(f"/pending/{token}", data={"face": "5", "csrf": v.csrf()}).status_code == 400
    home = v.client.get("/").text  # the choice can be found again, and it says when it goes
    assert 'id="pending"' in home and f'href="/pending/{token}"' in home and "24시간 안에" in home
    assert "24시간 안에" in pick.text
    r = v.client.post(f"/pending/{token}", data={"face": "1", "csrf": v.csrf()})
    post = v.client.get(r.headers["location"].replace("/posts/", "/api/posts/").split("?")[0]).json()
    assert post["face_count"] == 2 and post["face_box"][0] > 500  # the face on the right
    assert rows(diary_app, PendingPost) == 0 and len(image_files(diary_app)) == 1
    again = v.client.post(f"/pending/{token}", data={"face": "0", "csrf": v.csrf()})  # sent twice
    assert again.status_code == 303 and again.headers["location"] == f"/posts/{post['id']}"
    assert v.client.get(f"/pending/{token}").headers["location"] == f"/posts/{post['id']}"
    assert rows(diary_app, Post) == 1 and 'id="pending"' not in v.client.get("/").text
    other = Visitor(diary_app)
    other.signup("jisu")
    assert other.client.get(f"/pending/{token}").status_code == 404


def test_expired_face_choices_are_removed(diary_app, two_faces_jpeg) -> None:
    v = Visitor(diary_app)
    v.signup("mina")
    token = v.post(two_faces_jpeg).headers["location"].rsplit("/", 1)[1]
    with diary_app.state.diary.tx() as db:
        db.execute(update(PendingPost).values(created_at=utcnow() - dt.timedelta(hours=25)))
    assert v.client.get(f"/pending/{token}").status_code == 404
    diary_app.state.diary.sweep()
    assert rows(diary_app, PendingPost) == 0 and image_files(diary_app) == []


def test_expired_face_choices_are_removed_while_serving(diary_settings, analyzer, two_faces_jpeg) -> None:
    """The face-choice page promises the upload is deleted after a day: a server that keeps running keeps that
    promise too, not only at its next start."""
    from maeum.app.web import create_app

    app = create_app(dataclasses.replace(diary_settings, sweep_interval_s=0.1), analyzer)
    with TestClient(app):  # serving: the app's lifespan runs
        v = Visitor(app)
        v.signup("mina")
        assert v.post(two_faces_jpeg).headers["location"].startswith("/pending/")
        time.sleep(0.3)  # sweeps come and go: a fresh upload stays
        assert rows(app, PendingPost) == 1 and len(image_files(app)) == 1
        with app.state.diary.tx() as db:
            db.execute(update(PendingPost).values(created_at=utcnow() - dt.timedelta(hours=25)))
        deadline = time.monotonic() + 15
        while rows(app, PendingPost) or image_files(app):
            assert time.monotonic() < deadline, "the expired upload was not removed while serving"
            time.sleep(0.05)


def test_feedback_confirms_or_corrects(diary_app, selfie_jpeg) -> None:
    v = Visitor(diary_app)
    v.signup("mina")
    post_id = v.post_id(selfie_jpeg)
    assert 'id="emotion-label">기쁨<' in v.client.get(f"/posts/{post_id}").text  # the astronaut smiles
    assert v.client.post(f"/posts/{post_id}/feedback", data={"label": "joy", "csrf": v.csrf()}).status_code == 400
    v.client.post(f"/posts/{post_id}/feedback", data={"label": "happiness", "csrf": v.csrf()})
    assert v.client.get(f"/api/posts/{post_id}").json()["feedback"] == "confirmed"
    r = v.client.post(f"/posts/{post_id}/feedback", data={"label": "sadness", "csrf": v.csrf()})
    assert r.headers["location"] == f"/posts/{post_id}?saved=1"
    post = v.client.get(f"/api/posts/{post_id}").json()
    assert (post["label"], post["predicted"], post["feedback"]) == ("sadness", "happiness", "corrected")
    assert "직접 고친 감정" in v.client.get(f"/posts/{post_id}").text
    assert v.client.get("/api/stats").json()["counts"]["sadness"] == 1


def test_other_users_posts_are_not_found(diary_app, selfie_jpeg, two_faces_jpeg) -> None:
    owner, other = Visitor(diary_app), Visitor(diary_app)
    owner.signup("mina")
    other.signup("jisu")
    post_id = owner.post_id(selfie_jpeg)
    token = owner.post(two_faces_jpeg).headers["location"].rsplit("/", 1)[1]
    for path in (
        f"/posts/{post_id}",
        f"/posts/{post_id}/image",
        f"/api/posts/{post_id}",
        f"/pending/{token}",
        f"/pending/{token}/image",
        "/posts/999999",
    ):
        assert other.client.get(path).status_code == 404, path
    for path, data in (
        (f"/posts/{post_id}/feedback", {"label": "anger"}),
        (f"/posts/{post_id}/delete", {}),
        (f"/pending/{token}", {"face": "0"}),
    ):
        assert other.client.post(path, data={**data, "csrf": other.csrf()}).status_code == 404, path
    assert other.client.get("/api/posts").json() == []
    assert other.client.get("/posts/abc").status_code == 400
    anonymous = TestClient(diary_app, follow_redirects=False)
    assert anonymous.get(f"/posts/{post_id}/image").status_code == 303
    assert anonymous.get("/api/posts").status_code == 401
    post = owner.client.get(f"/api/posts/{post_id}").json()
    assert post["label"] == "happiness" and post["feedback"] is None  # untouched


def test_delete_post_asks_first_and_says_it_is_done(diary_app, selfie_jpeg) -> None:
    v = Visitor(diary_app)
    v.signup("mina")
    post_id = v.post_id(selfie_jpeg, text="지울 일기")
    r = v.client.post(f"/posts/{post_id}/delete", data={"csrf": v.csrf()})  # the button, without the script
    assert r.status_code == 303 and r.headers["location"] == f"/posts/{post_id}/delete"
    assert rows(diary_app, Post) == 1
    page = v.client.get(f"/posts/{post_id}/delete")
    assert "이 일기를 삭제할까요?" in page.text and "지울 일기" in page.text
    assert 'name="confirm" value="1"' in page.text and f'href="/posts/{post_id}"' in page.text  # delete or cancel
    other = Visitor(diary_app)
    other.signup("jisu")
    assert other.client.get(f"/posts/{post_id}/delete").status_code == 404
    r = v.client.post(f"/posts/{post_id}/delete", data={"csrf": v.csrf(), "confirm": "1"})
    assert r.status_code == 303 and r.headers["location"] == "/?deleted=1"
    assert 'id="notice">일기를 삭제했습니다.<' in v.client.get(r.headers["location"]).text
    assert rows(diary_app, Post) == 0 and image_files(diary_app) == []


# ------------------------------------------------------------------------------------------------
# editing an entry

HAPPY_TEXT = "오늘 친구들과 웃으면서 맛있는 저녁을 먹었다. 정말 행복했다."
SAD_TEXT = "회사에서 발표를 망쳤다. 너무 속상하고 우울하다."


def edit(v: Visitor, post_id: int, text: str, day: str = "", csrf: str | None = None):  # -> httpx.Response
    csrf = v.csrf(f"/posts/{post_id}/edit") if csrf is None else csrf
    return v.client.post(f"/posts/{post_id}/edit", data={"text": text, "day": day, "csrf": csrf})


def test_editing_an_entry_reads_the_new_text_and_keeps_the_rest(diary_app, selfie_jpeg) -> None:
    """A new text gets what a new entry gets from its words (the text's emotion, the companion's comment);
    the photo, the face's emotion, the answer about it, the songs and their likes stay."""
    v = Visitor(diary_app)
    v.signup("mina")
    post_id = v.post_id(selfie_jpeg, text=HAPPY_TEXT, day="2024-05-01")
    v.client.post(f"/posts/{post_id}/feedback", data={"label": "happiness", "csrf": v.csrf()})
    before = v.client.get(f"/api/posts/{post_id}").json()
    assert written_comment(v, post_id)["text_emotion"] == "happiness"
    page = v.client.get(f"/posts/{post_id}").text
    assert f'href="/posts/{post_id}/edit"' in page and 'id="edited"' not in page
    assert 'class="badge edited"' not in v.client.get("/").text
    songs = re.findall(r'data-track="([^"]+)"', page)
    v.client.post(f"/posts/{post_id}/music/rate", data={"track": songs[0], "rating": "like", "csrf": v.csrf()})
    photo = v.client.get(f"/posts/{post_id}/image").content

    form = v.client.get(f"/posts/{post_id}/edit")
    assert form.status_code == 200 and HAPPY_TEXT in form.text and 'value="2024-05-01"' in form.text
    r = edit(v, post_id, f"  {SAD_TEXT}\r\n", day="2024-04-30")
    assert r.status_code == 303 and r.headers["location"] == f"/posts/{post_id}?edited=1"
    after = v.client.get(f"/api/posts/{post_id}").json()
    assert (after["text"], after["day"]) == (SAD_TEXT, "2024-04-30")  # stored as a new entry's text is
    assert after["edited_at"] and before["edited_at"] is None
    unchanged = ("label", "predicted", "feedback", "scores", "face_box", "face_count", "model", "created_at")
    assert {k: after[k] for k in unchanged} == {k: before[k] for k in unchanged}
    assert after["feedback"] == "confirmed"
    data = written_comment(v, post_id)
    assert data["text_emotion"] == "sadness" and data["disagree"] is True  # a smiling face, a sad text
    assert v.client.get(f"/api/posts/{post_id}").json()["comment"]["text_emotion"] == "sadness"
    page = v.client.get(f"/posts/{post_id}?edited=1").text
    assert 'id="edited">수정됨<' in page and 'id="notice">일기를 고쳤습니다.<' in page
    assert re.search(rf'data-clear-draft="maeum-draft:\d+:post:{post_id}"', page)  # the edit's draft goes
    assert re.findall(r'data-track="([^"]+)"', page) == songs  # the songs (for the face's emotion) stay
    assert 'class="badge liked"' in page
    assert v.client.get(f"/posts/{post_id}/image").content == photo
    assert v.client.get("/api/stats").json()["counts"]["happiness"] == 1  # still the face's (confirmed) emotion
    assert 'class="badge edited">수정됨<' in v.client.get("/").text  # marked in the lists too
    assert 'class="badge edited">수정됨<' in v.client.get("/calendar/2024-04-30").text
    v.client.get("/lang/en")
    assert 'id="edited">edited<' in v.client.get(f"/posts/{post_id}").text

    # the same text again changes nothing; a new day alone is an edit, but the comment stays
    with diary_app.state.diary.sessions() as db:
        first_edit = db.get(Post, post_id).edited_at
    assert edit(v, post_id, SAD_TEXT, day="2024-04-30").status_code == 303
    with diary_app.state.diary.sessions() as db:
        assert db.get(Post, post_id).edited_at == first_edit
    assert edit(v, post_id, SAD_TEXT, day="2024-04-29").status_code == 303
    assert v.client.get(f"/api/posts/{post_id}/comment").json()["status"] == "done"
    assert v.client.get(f"/api/posts/{post_id}").json()["day"] == "2024-04-29"
    assert 'data-day="2024-04-29"' in v.client.get("/calendar?month=2024-04").text


def edit_photo(v: Visitor, post_id: int, photo: bytes, text: str, day: str = ""):  # -> httpx.Response
    """The edit form sent with a new photo, as a browser sends it."""
    form = {"text": text, "day": day, "csrf": v.csrf(f"/posts/{post_id}/edit")}
    return v.client.post(f"/posts/{post_id}/edit", data=form, files={"photo": ("new.jpg", photo, "image/jpeg")})


def test_a_new_photo_gives_the_entry_the_emotion_of_its_face(diary_app, selfie_jpeg, hopper, no_face_jpeg) -> None:
    """What a new entry gets from its photo is made again from the new one: the face's emotion (the answer
    about the old face goes), the songs and the comment; the old photo is deleted; the text and day stay.
    A refused photo saves nothing, not even the new text."""
    v = Visitor(diary_app)
    v.signup("mina")
    post_id = v.post_id(selfie_jpeg, text=SAD_TEXT, day="2024-05-01")
    v.client.post(f"/posts/{post_id}/feedback", data={"label": "happiness", "csrf": v.csrf()})
    assert written_comment(v, post_id)["disagree"] is True  # a smiling face, a sad text
    before = v.client.get(f"/api/posts/{post_id}").json()
    assert (before["predicted"], before["label"], before["feedback"]) == ("happiness", "happiness", "confirmed")
    songs = re.findall(r'data-track="([^"]+)"', v.client.get(f"/posts/{post_id}").text)
    (old_file,) = image_files(diary_app)
    form = v.client.get(f"/posts/{post_id}/edit").text
    assert 'enctype="multipart/form-data"' in form and 'id="photo"' in form and 'id="photo-note"' in form

    for photo, message in (
        (no_face_jpeg, "얼굴을 인식하지 못했습니다"),
        (b"not an image at all", "JPEG, PNG, WebP"),
        (b"\xff\xd8\xff" + b"\0" * 5000, "JPEG, PNG, WebP"),  # a broken JPEG
    ):
        r = edit_photo(v, post_id, photo, HAPPY_TEXT)
        assert r.status_code in (400, 422) and message in ERROR.search(r.text).group(1), ERROR.findall(r.text)
        assert 'id="edit-form"' in r.text and HAPPY_TEXT in r.text  # the form again, with what was typed
    assert v.client.get(f"/api/posts/{post_id}").json() == before and image_files(diary_app) == [old_file]

    r = edit_photo(v, post_id, jpeg_bytes(hopper), SAD_TEXT, day="2024-05-01")
    assert r.status_code == 303 and r.headers["location"] == f"/posts/{post_id}?edited=1"
    after = v.client.get(f"/api/posts/{post_id}").json()
    assert (after["text"], after["day"]) == (SAD_TEXT, "2024-05-01") and after["edited_at"]
    assert (after["predicted"], after["label"], after["feedback"]) == ("neutral", "neutral", None)
    assert after["scores"]["neutral"] > 0.5 and after["face_box"] != before["face_box"]
    (new_file,) = image_files(diary_app)  # the old photo is gone
    assert new_file != old_file and v.client.get(f"/posts/{post_id}/image").content == new_file.read_bytes()
    assert Image.open(new_file).size == (hopper.shape[1], hopper.shape[0])
    assert 'width="{}" height="{}"'.format(*Image.open(new_file).size) in v.client.get(f"/posts/{post_id}/edit").text
    assert written_comment(v, post_id)["disagree"] is False  # written again for a calm face
    page = v.client.get(f"/posts/{post_id}?edited=1").text
    assert 'id="edited">수정됨<' in page and 'id="notice">일기를 고쳤습니다.<' in page
    assert re.findall(r'data-track="([^"]+)"', page) != songs  # picked again, for the new emotion
    assert {k: n for k, n in v.client.get("/api/stats").json()["counts"].items() if n} == {"neutral": 1}


def test_a_new_photo_with_several_faces_asks_which_is_the_owners(diary_app, selfie_jpeg, two_faces_jpeg) -> None:
    v = Visitor(diary_app)
    v.signup("mina")
    post_id = v.post_id(selfie_jpeg, text=HAPPY_TEXT)
    before = v.client.get(f"/api/posts/{post_id}").json()
    r = edit_photo(v, post_id, two_faces_jpeg, SAD_TEXT)
    assert r.status_code == 303 and r.headers["location"].startswith("/pending/")
    token = r.headers["location"].rsplit("/", 1)[1]
    waiting = v.client.get(f"/api/posts/{post_id}").json()  # the text is saved; the photo waits for the choice
    assert waiting["text"] == SAD_TEXT and waiting["face_box"] == before["face_box"]
    assert "얼굴을 2개 찾았습니다" in v.client.get(r.headers["location"]).text
    assert len(image_files(diary_app)) == 2

    r = v.client.post(f"/pending/{token}", data={"face": "1", "csrf": v.csrf()})
    assert r.status_code == 303 and r.headers["location"] == f"/posts/{post_id}?edited=1"
    after = v.client.get(f"/api/posts/{post_id}").json()
    assert after["face_count"] == 2 and after["face_box"][0] > 500  # the face on the right
    assert rows(diary_app, Post) == 1 and rows(diary_app, PendingPost) == 0 and len(image_files(diary_app)) == 1
    assert v.client.get(f"/posts/{post_id}/image").content == image_files(diary_app)[0].read_bytes()
    again = v.client.post(f"/pending/{token}", data={"face": "0", "csrf": v.csrf()})  # sent twice
    assert again.headers["location"] == f"/posts/{post_id}"
    assert v.client.get(f"/api/posts/{post_id}").json()["face_box"] == after["face_box"]

    # an entry deleted while its new photo waits takes the upload with it
    r = edit_photo(v, post_id, two_faces_jpeg, SAD_TEXT)
    token = r.headers["location"].rsplit("/", 1)[1]
    v.client.post(f"/posts/{post_id}/delete", data={"confirm": "1", "csrf": v.csrf()})
    assert rows(diary_app, PendingPost) == 0 and image_files(diary_app) == []
    assert v.client.get(f"/pending/{token}").status_code == 404


def test_a_new_photo_waiting_for_its_face_choice_says_the_entry_stays(diary_app, selfie_jpeg, two_faces_jpeg) -> None:
    """An entry's new photo left without a face choice is deleted after a day, but the entry is not: the pages
    say so, rather than the new entry's warning that the photo and the text are deleted."""
    v = Visitor(diary_app)
    v.signup("mina")
    new_entry = v.post(two_faces_jpeg).headers["location"]
    assert "사진과 글이 지워집니다" in v.client.get(new_entry).text
    v.client.post(new_entry, data={"face": "0", "csrf": v.csrf()})
    post_id = v.post_id(selfie_jpeg, text=HAPPY_TEXT)
    new_photo = edit_photo(v, post_id, two_faces_jpeg, SAD_TEXT).headers["location"]
    for page in (v.client.get(new_photo).text, v.client.get("/").text):
        assert "새 사진만 지워지고, 일기는 지금 모습 그대로 남습니다" in page and "사진과 글이 지워집니다" not in page
    with diary_app.state.diary.tx() as db:
        db.execute(update(PendingPost).values(created_at=utcnow() - dt.timedelta(hours=25)))
    diary_app.state.diary.sweep()
    kept = v.client.get(f"/api/posts/{post_id}").json()
    assert kept["text"] == SAD_TEXT and v.client.get(f"/posts/{post_id}/image").status_code == 200


def test_editing_refuses_what_posting_refuses(diary_app, selfie_jpeg) -> None:
    v = Visitor(diary_app)
    v.signup("mina")
    post_id = v.post_id(selfie_jpeg, text="처음 쓴 글")
    tomorrow = (today() + dt.timedelta(days=1)).isoformat()
    for text_, day, message in (
        ("   ", "", "일기 내용을 입력"),
        ("가" * 5001, "", "5,000자 이하"),
        ("고친 글", tomorrow, "미래 날짜"),
        ("고친 글", "2026-02-30", "날짜 형식"),
        ("고친 글", "1899-12-31", "날짜 형식"),
    ):
        r = edit(v, post_id, text_, day)
        assert r.status_code == 400 and message in ERROR.search(r.text).group(1), (day, ERROR.findall(r.text))
        assert 'id="edit-form"' in r.text and (text_.strip() in r.text)  # the form again, with what was typed
    assert edit(v, post_id, "고친 글", csrf="forged").status_code == 403
    r = v.client.post(f"/posts/{post_id}/edit", data={"text": "고친 글"})
    assert r.status_code == 403
    post = v.client.get(f"/api/posts/{post_id}").json()
    assert post["text"] == "처음 쓴 글" and post["edited_at"] is None
    assert "5,000자까지 쓸 수 있어요" in v.client.get(f"/posts/{post_id}/edit").text
    assert edit(v, post_id, "고친\x00 글\x07\n둘째 줄").status_code == 303  # control characters dropped
    assert v.client.get(f"/api/posts/{post_id}").json()["text"] == "고친 글\n둘째 줄"
    assert edit(v, post_id, "가" * 5000).status_code == 303


def test_editing_into_words_of_crisis_gets_help_not_songs(diary_app, selfie_jpeg) -> None:
    v = Visitor(diary_app)
    v.signup("sora")
    post_id = v.post_id(selfie_jpeg, text="오늘 회사에서 칭찬을 받아서 정말 기뻤다.")
    written_comment(v, post_id)
    assert 'id="music"' in v.client.get(f"/posts/{post_id}").text
    assert edit(v, post_id, "자살하고 싶다는 생각이 계속 든다.").status_code == 303
    data = written_comment(v, post_id)
    assert "자살예방상담전화 109 (24시간)" in data["text"] and "정신건강위기상담 1577-0199" in data["text"]
    page = v.client.get(f"/posts/{post_id}").text
    assert 'id="crisis-help"' in page and 'id="music"' not in page
    assert edit(v, post_id, "오늘은 조금 나아졌다. 산책을 했다.").status_code == 303
    data = written_comment(v, post_id)
    assert "109" not in data["text"]
    page = v.client.get(f"/posts/{post_id}").text
    assert 'id="crisis-help"' not in page and 'id="music"' in page


def test_only_the_owner_can_edit_an_entry(diary_app, selfie_jpeg) -> None:
    owner, other = Visitor(diary_app), Visitor(diary_app)
    owner.signup("mina")
    other.signup("jisu")
    post_id = owner.post_id(selfie_jpeg, text="내 일기")
    assert other.client.get(f"/posts/{post_id}/edit").status_code == 404
    for target in (post_id, 999999, 2**40):
        r = other.client.post(f"/posts/{target}/edit", data={"text": "남의 글", "csrf": other.csrf()})
        assert r.status_code == 404 and "내 일기" not in r.text, target
    anonymous = Visitor(diary_app)
    r = anonymous.client.get(f"/posts/{post_id}/edit")
    assert r.status_code == 303 and r.headers["location"] == f"/login?next=/posts/{post_id}/edit"
    assert owner.client.get(f"/api/posts/{post_id}").json()["text"] == "내 일기"
    assert owner.client.get(f"/api/posts/{post_id}").json()["edited_at"] is None


def test_an_old_comment_never_overwrites_the_edited_texts(diary_app, selfie_jpeg, monkeypatch) -> None:
    """A comment being written for the old text when the entry is edited is dropped, not stored over the new."""
    from maeum.app import companion

    v = Visitor(diary_app)
    v.signup("mina")
    post_id = v.post_id(selfie_jpeg, text=HAPPY_TEXT)
    written_comment(v, post_id)
    started, release = threading.Event(), threading.Event()
    real = companion.write_comment

    def slow(context, *args, **kwargs):
        if "정말 행복했다" in context.diary_text:  # the old text's comment waits until the entry is edited
            started.set()
            release.wait(10)
        return real(context, *args, **kwargs)

    monkeypatch.setattr(companion, "write_comment", slow)
    try:
        v.client.post(f"/posts/{post_id}/comment", data={"csrf": v.csrf()})  # "write again": the old text
        assert started.wait(10)
        assert edit(v, post_id, SAD_TEXT).status_code == 303  # written by the second worker meanwhile
        assert written_comment(v, post_id)["text_emotion"] == "sadness"
    finally:
        release.set()
    diary_app.state.diary.companion.close()  # waits for the old text's comment, which is dropped
    assert v.client.get(f"/api/posts/{post_id}/comment").json()["text_emotion"] == "sadness"


# ------------------------------------------------------------------------------------------------
# calendar and statistics


def test_calendar_and_statistics(diary_app, selfie_jpeg) -> None:
    v = Visitor(diary_app)
    v.signup("mina")
    assert v.client.get("/api/stats").json()["total"] == 0
    day = today()
    for back in (0, 1, 1, 3):
        v.post_id(selfie_jpeg, day=(day - dt.timedelta(days=back)).isoformat())
    page = v.client.get(f"/calendar?month={day:%Y-%m}").text
    if (day - dt.timedelta(days=1)).month == day.month:
        assert f'data-day="{day - dt.timedelta(days=1)}" data-label="happiness"' in page and "×2" in page
    assert "작성한 일기가 없습니다" in v.client.get("/calendar?month=1999-01").text
    assert v.client.get("/calendar?month=2026-13").status_code == 400
    summary = v.client.get("/api/stats").json()
    assert summary == {
        "total": 4,
        "counts": {**dict.fromkeys(diary_app.state.diary.labels, 0), "happiness": 4},
        "streak_current": 2,
        "streak_longest": 2,
    }
    page = v.client.get("/stats").text
    assert 'data-label="happiness">4<' in page and "연속 기록 2일째" in page and "<svg" in page


def test_streaks_and_month_grid() -> None:
    from maeum.app import stats

    d = dt.date(2026, 11, 21)
    days = [d - dt.timedelta(days=n) for n in (1, 2, 3, 5, 6, 10, 11, 12, 13)]
    assert stats.streaks(days, d) == (3, 4)
    assert stats.streaks(days, d + dt.timedelta(days=2)) == (0, 4)
    assert stats.streaks([], d) == (0, 0)
    weeks = stats.month_weeks(2026, 2, {dt.date(2026, 2, 14): ("happiness", 2, 7)})
    cells = [c for week in weeks for c in week if c is not None]
    assert len(cells) == 28 and weeks[0][0].day == dt.date(2026, 2, 1)  # 1 Feb 2026 is a Sunday
    assert [c for c in cells if c.label] == [stats.DayCell(dt.date(2026, 2, 14), "happiness", 2, 7)]
    assert stats.shift_month(2026, 1, -1) == (2025, 12) and stats.shift_month(2026, 12, 1) == (2027, 1)


def test_every_entry_is_reachable_from_home_and_calendar(diary_app, selfie_jpeg) -> None:
    """Three entries on one day and twenty on others: the home page pages through all of them, and the
    calendar's day with several entries lists each."""
    v = Visitor(diary_app)
    v.signup("mina")
    first = v.post_id(selfie_jpeg, day="2020-06-01")
    with diary_app.state.diary.tx() as db:  # the rest as copies of the first, without analysing 22 photos
        row = db.get(Post, first)
        columns = {c.key: getattr(row, c.key) for c in Post.__table__.columns if c.key not in ("id", "image")}
        for n in range(22):
            day = dt.date(2020, 6, 1) if n < 2 else dt.date(2020, 6, 2) + dt.timedelta(days=n)
            db.add(Post(**{**columns, "day": day, "image": f"{n:032d}.jpg"}))
    ids = [p["id"] for p in v.client.get("/api/posts").json()]
    assert len(ids) == 23
    seen = []
    page = v.client.get("/").text
    seen += re.findall(r'href="/posts/(\d+)"', page)
    assert len(seen) == 20 and 'href="/?page=2"' in page and 'id="newer-posts"' not in page
    page = v.client.get("/?page=2").text
    seen += re.findall(r'href="/posts/(\d+)"', page)
    assert 'href="/?page=1"' in page and 'id="older-posts"' not in page
    assert sorted(map(int, seen)) == sorted(ids)
    assert 'id="page-empty"' in v.client.get("/?page=99").text
    assert v.client.get("/?page=99999999999999999999").status_code == 200
    month = v.client.get("/calendar?month=2020-06").text
    assert 'href="/calendar/2020-06-01"' in month and "×3" in month
    day = v.client.get("/calendar/2020-06-01").text
    on_day = [p["id"] for p in v.client.get("/api/posts?month=2020-06").json() if p["day"] == "2020-06-01"]
    assert sorted(map(int, re.findall(r'href="/posts/(\d+)"', day))) == sorted(on_day) and len(on_day) == 3
    assert "2020년 6월 1일" in day and 'href="/calendar?month=2020-06"' in day
    assert 'id="day-empty"' in v.client.get("/calendar/2020-05-01").text
    assert v.client.get("/calendar/2020-13-01").status_code == 400


def test_entries_are_found_by_their_words_and_emotion(diary_app, selfie_jpeg) -> None:
    """A diary of many days: the home page finds the entries that mention something, or felt some way."""
    v = Visitor(diary_app)
    v.signup("mina")
    assert 'id="search"' not in v.client.get("/").text  # nothing to search yet
    first = v.post_id(selfie_jpeg, day="2020-06-01", text="친구와 바다에 갔다")
    with diary_app.state.diary.tx() as db:
        row = db.get(Post, first)
        columns = {c.key: getattr(row, c.key) for c in Post.__table__.columns if c.key not in ("id", "image", "day")}
        texts = {"Sea breeze at 100% joy_": "sadness", "회사에서 BAD day": "anger", "바다가 보고 싶다": "sadness"}
        for n, (text, label) in enumerate(texts.items()):
            db.add(
                Post(
                    **{
                        **columns,
                        "day": dt.date(2020, 6, 2 + n),
                        "text": text,
                        "label": label,
                        "image": f"{n:032d}.jpg",
                    }
                )
            )
        for n in range(25):  # more matches than one page holds
            day = dt.date(2021, 1, 1) + dt.timedelta(days=n)
            db.add(Post(**{**columns, "day": day, "text": f"산책 {n}", "label": "neutral", "image": f"w{n:031d}.jpg"}))
    other = Visitor(diary_app)
    other.signup("other")
    other.post_id(selfie_jpeg, text="나도 바다에 갔다")

    def found(query: str) -> list[str]:
        page = v.client.get("/?" + query).text
        return [html.unescape(t) for t in re.findall(r'<span class="excerpt">([^<]*)</span>', page)]

    assert found("q=바다") == ["바다가 보고 싶다", "친구와 바다에 갔다"]  # latest first, no one else's
    assert found("q=bad") == ["회사에서 BAD day"]  # any case
    assert found("q=100%25") == ["Sea breeze at 100% joy_"] and found("q=_") == ["Sea breeze at 100% joy_"]
    assert found("emotion=sadness") == ["바다가 보고 싶다", "Sea breeze at 100% joy_"]
    assert found("q=바다&emotion=sadness") == ["바다가 보고 싶다"]
    assert found("q=%20%20바다%20") == found("q=바다")  # spaces around the words do not count
    assert found("emotion=nonsense") == found("")  # an emotion the diary does not show: every entry
    page = v.client.get("/?q=없는말").text
    assert 'id="search-empty"' in page and 'id="home-empty"' not in page and 'value="없는말"' in page
    page = v.client.get("/?q=산책").text  # the pager keeps the search
    assert len(re.findall(r'class="excerpt"', page)) == 20
    assert 'href="/?q=%EC%82%B0%EC%B1%85&amp;page=2"' in page
    assert len(found("q=산책&page=2")) == 5
    assert v.client.get("/?q=" + "가" * 5000).status_code == 200  # long words are cut, not an error
    api = v.client.get("/api/posts", params={"q": "바다", "emotion": "sadness"}).json()
    assert [p["text"] for p in api] == ["바다가 보고 싶다"]
    assert [p["text"] for p in v.client.get("/api/posts?month=2020-06&q=BAD").json()] == ["회사에서 BAD day"]
    r = v.client.get("/api/posts?emotion=nonsense")
    assert r.status_code == 400 and "sadness" in r.json()["message"]


def test_out_of_range_ids_and_months_are_not_found_or_refused(diary_app, selfie_jpeg) -> None:
    v = Visitor(diary_app)
    v.signup("mina")
    v.post_id(selfie_jpeg)
    for path in (
        "/posts/99999999999999999999999",
        "/posts/99999999999999999999999/image",
        "/api/posts/99999999999999999999999",
        "/api/posts/9223372036854775808",
        "/posts/2147483648",
        "/posts/0",
        "/posts/-1",
    ):
        r = v.client.get(path)
        assert r.status_code == 404, (path, r.status_code)
    assert v.client.get("/api/posts/9223372036854775808").json()["message"] == "일기를 찾을 수 없습니다."
    last = v.client.get("/calendar?month=9999-12")
    assert last.status_code == 200 and 'id="next-month"' not in last.text and "month=9999-11" in last.text
    assert v.client.get("/api/posts?month=9999-12").json() == []
    first = v.client.get("/calendar?month=1900-01")
    assert first.status_code == 200 and 'id="prev-month"' not in first.text and "month=1900-02" in first.text
    for month in ("1899-12", "10000-01", "2026-00"):
        assert v.client.get(f"/calendar?month={month}").status_code == 400
        assert v.client.get(f"/api/posts?month={month}").json()["error"] == "month_invalid"


def test_form_addresses_opened_in_the_browser(diary_app) -> None:
    v = Visitor(diary_app)
    v.signup("mina")
    r = v.client.get("/posts")  # the address a refused upload leaves in the bar
    assert r.status_code == 303 and r.headers["location"] == "/posts/new"
    for path in ("/logout", "/account/delete", "/chat/draft"):
        r = v.client.get(path)
        assert r.status_code == 405 and r.headers["content-type"].startswith("text/html"), path
        assert "양식을 보낼 때만" in ERROR.search(r.text).group(1) and 'href="/"' in r.text
        assert "POST" in r.headers["allow"]


def test_messages_are_in_the_visitors_language(diary_app) -> None:
    anonymous = Visitor(diary_app)
    r = anonymous.client.get("/api/posts")
    assert r.status_code == 401 and r.json() == {"error": "login_required", "message": "로그인이 필요합니다."}
    anonymous.client.get("/lang/en")
    assert anonymous.client.get("/api/posts").json()["message"] == "Please log in."
    v = Visitor(diary_app)
    v.signup("mina")
    form = {"attitude": "friendly", "intensity": "normal", "length": "medium", "endpoint_model": "m"}
    r = v.client.post("/companion", data={**form, "endpoint_url": "http://192.168.1.1:11434/v1", "csrf": v.csrf()})
    message = ERROR.search(r.text).group(1)
    assert r.status_code == 400 and "사설망" in message
    assert not re.search(r"allow_private|resolves|endpoint", message)  # no developer's English, no parameters


def test_cookies_and_dictation_language(diary_app) -> None:
    v = Visitor(diary_app)
    r = v.client.get("/lang/en")
    assert "httponly" in r.headers["set-cookie"].lower()  # no script reads the language
    v.signup("mina")
    r = v.client.post("/api/dictation", data={"lang": "fr", "csrf": v.csrf()}, files={"audio": ("a.wav", b"RIFF")})
    assert r.status_code == 400 and r.json()["error"] == "dictation_lang_invalid"


def test_statistics_wording(diary_app, selfie_jpeg) -> None:
    v = Visitor(diary_app)
    v.signup("mina")
    v.post_id(selfie_jpeg, day="2020-01-01")
    page = v.client.get("/stats").text
    assert "연속 기록 0일째" not in page and "오늘 일기를 쓰면 연속 기록이 시작돼요" in page
    v.post_id(selfie_jpeg)
    v.client.get("/lang/en")
    page = v.client.get("/stats").text
    assert "Current streak: 1 day<" in page and "Longest streak: 1 day<" in page and "2 entries in all" in page
    with diary_app.state.diary.tx() as db:
        db.execute(Post.__table__.delete().where(Post.day == dt.date(2020, 1, 1)))
    assert "1 entry in all" in v.client.get("/stats").text


def test_chat_draft_says_when_it_was_shortened(diary_app) -> None:
    v = Visitor(diary_app)
    v.signup("mina")
    v.client.post("/chat", data={"message": "짧은 하루", "csrf": v.csrf("/chat")})
    assert 'id="draft-shortened"' not in v.client.post("/chat/draft", data={"csrf": v.csrf("/chat")}).text
    for n in range(6):  # six messages of 997 characters: more than a diary entry holds
        r = v.client.post("/chat", data={"message": f"{n}" + "가나다라마 " * 166, "csrf": v.csrf("/chat")})
        assert r.status_code == 303
    page = v.client.post("/chat/draft", data={"csrf": v.csrf("/chat")}).text
    assert 'id="draft-shortened"' in page and "5,000자 안으로 줄였어요" in page
    text = re.search(r'<textarea name="text"[^>]*>([^<]*)</textarea>', page).group(1)
    long = [f"{n}" + "가나다라마 " * 165 + "가나다라마." for n in range(6)]
    assert text == " ".join(["짧은 하루.", *long[:5]])  # whole messages, as many as fit


def test_data_files_are_private_to_the_server_user(diary_app, selfie_jpeg) -> None:
    v = Visitor(diary_app)
    v.signup("mina")
    v.post_id(selfie_jpeg)
    d = diary_app.state.diary
    (image,) = image_files(diary_app)
    modes = {
        "images": d.store.root.stat().st_mode & 0o777,
        "image folder": image.parent.stat().st_mode & 0o777,
        "image": image.stat().st_mode & 0o777,
        "secret.key": (d.settings.data_dir / "secret.key").stat().st_mode & 0o777,
    }
    if d.settings.url.startswith("sqlite"):
        modes["database"] = Path(d.engine.url.database).stat().st_mode & 0o777
    assert modes == {name: 0o600 if name in ("image", "secret.key", "database") else 0o700 for name in modes}


# ------------------------------------------------------------------------------------------------
# taking data out


def test_export_everything_as_a_zip(diary_app, selfie_jpeg) -> None:
    v = Visitor(diary_app)
    v.signup("mina")
    post_id = v.post_id(selfie_jpeg, text="내보낼 일기")
    other = Visitor(diary_app)
    other.signup("jisu")
    other.post_id(selfie_jpeg, text="남의 일기")
    r = v.client.get("/account/export")
    assert r.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(r.content)) as z:
        assert sorted(z.namelist()) == ["companion.json", f"images/{post_id}.jpg", "posts.json", "profile.json"]
        posts = json.loads(z.read("posts.json"))
        assert [p["text"] for p in posts] == ["내보낼 일기"]
        assert json.loads(z.read("profile.json"))["username"] == "mina"
        assert z.read(f"images/{post_id}.jpg") == v.client.get(f"/posts/{post_id}/image").content


def test_confirmed_emotions_export_as_a_training_dataset(diary_app, diary_settings, selfie_jpeg, tmp_path) -> None:
    from maeum.cli import main
    from maeum.preprocess import InputSpec
    from maeum.training.datasets import load_training_data

    v = Visitor(diary_app)
    v.signup("mina")
    ids = [v.post_id(selfie_jpeg) for _ in range(3)]
    v.post_id(selfie_jpeg)  # no answer: not labelled data
    for post_id, label in zip(ids, ("happiness", "sadness", "happiness"), strict=True):
        v.client.post(f"/posts/{post_id}/feedback", data={"label": label, "csrf": v.csrf()})
    r = v.client.get("/account/dataset")
    with zipfile.ZipFile(io.BytesIO(r.content)) as z:
        z.extractall(tmp_path / "mine")
    data = load_training_data(tmp_path / "mine", InputSpec(64, "rgb", (0.0,), (1.0,)))
    labels = [data.labels[i] for split in data.splits.values() for i in split.labels]
    assert sorted(labels) == ["happiness", "happiness", "sadness"] and set(data.splits) == {"train", "val", "test"}
    assert data.splits["train"].images.shape[1:] == (64, 64, 3)
    # maeum train learns from it, and fine-tunes a model on it with --init.
    base = ["train", "--data", str(tmp_path / "mine"), "--epochs", "1", "--threads", "1", "--no-bf16"]
    assert main([*base, "--out", str(tmp_path / "run")]) == 0
    run = str(tmp_path / "run" / "best.pt")
    assert main([*base, "--out", str(tmp_path / "tuned"), "--init", run]) == 0
    assert (tmp_path / "tuned" / "best.pt").is_file()
    assert main([*base, "--out", str(tmp_path / "x"), "--init", run, "--model", "vgg13"]) == 2
    assert main([*base, "--out", str(tmp_path / "bundled"), "--init", "ferplus-resnet-s"]) == 0  # as docs/app.md says

    # The operator's export takes only users who agreed to share.
    args = ["app", "export-dataset", "--data-dir", str(diary_settings.data_dir), "--database-url", diary_settings.url]
    assert main([*args, "--out", str(tmp_path / "shared")]) == 2
    v.client.post("/profile", data={"name": "민아", "share_labels": "1", "csrf": v.csrf("/profile")})
    assert main([*args, "--out", str(tmp_path / "shared")]) == 0
    assert (
        len(load_training_data(tmp_path / "shared", InputSpec(48, "gray", (0.0,), (1.0,))).splits["train"].labels) >= 1
    )


def test_a_dataset_needs_entries_maeum_train_can_learn_from(diary_app, diary_settings, selfie_jpeg, tmp_path) -> None:
    """A dataset with fewer than two confirmed emotions is one maeum train refuses ('the train split is empty'):
    the account page says what is missing instead of offering it, and neither download nor export makes one."""
    from maeum.cli import main

    v = Visitor(diary_app)
    v.signup("mina")
    v.client.post("/profile", data={"name": "민아", "share_labels": "1", "csrf": v.csrf("/profile")})
    ids = [v.post_id(selfie_jpeg) for _ in range(2)]
    args = ["app", "export-dataset", "--data-dir", str(diary_settings.data_dir), "--database-url", diary_settings.url]
    for answered in range(2):
        page = v.client.get("/account").text
        assert 'id="export-dataset"' not in page and f"필요합니다 (지금 {answered}편)" in page
        r = v.client.get("/account/dataset")
        assert r.status_code == 409 and "이 감정이 맞나요?" in r.text
        assert main([*args, "--out", str(tmp_path / "shared")]) == 2 and not (tmp_path / "shared").exists()
        v.client.post(f"/posts/{ids[answered]}/feedback", data={"label": "happiness", "csrf": v.csrf()})
    assert 'id="export-dataset"' in v.client.get("/account").text
    assert v.client.get("/account/dataset").headers["content-type"] == "application/zip"
    (tmp_path / "a-file").write_text("")
    assert main([*args, "--out", str(tmp_path / "a-file")]) == 3  # a clear message, not a traceback
    assert main([*args, "--out", str(tmp_path / "shared")]) == 0


# ------------------------------------------------------------------------------------------------
# starting the server


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--data-dir", "{tmp}/a-file"], "a-file (it is a file)"),
        (["--data-dir", "{tmp}/a-file/data"], "cannot keep the diary's data in"),
        (["--database-url", "foo://db"], "cannot use the database URL foo://db"),
        (["--database-url", "not a url"], "cannot use the database URL 'not a url'"),
        (["--database-url", "mysql://u:secret-pw@localhost/db"], "needs the Python package"),
        (
            ["--database-url", "postgresql+psycopg://u:secret-pw@127.0.0.1:1/db"],
            "cannot use the database postgresql+psycopg://u:***@127.0.0.1:1/db",
        ),
        (["--database-url", "sqlite:///{tmp}/a-file/maeum.db"], "cannot create the database file"),
        (["--env", "MAEUM_APP_TIMEZONE=Mars/Olympus"], "unknown time zone 'Mars/Olympus'"),
        (["--env", "MAEUM_APP_SECURE_COOKIES=maybe"], "MAEUM_APP_SECURE_COOKIES='maybe': write 1 or 0"),
    ],
)
def test_the_server_refuses_settings_it_cannot_use_in_one_line(capsys, monkeypatch, tmp_path, options, message) -> None:
    """Each start that cannot work ends with one line that says why (and never shows a password), before
    anything is served or a model is loaded."""
    from maeum.cli import main

    (tmp_path / "a-file").write_text("")
    args = ["app", "--port", "8765", "--data-dir", str(tmp_path / "data")]
    options = [o.replace("{tmp}", str(tmp_path)) for o in options]
    if options[0] == "--env":
        monkeypatch.setenv(*options[1].split("=", 1))
        options = []
    assert main([*args, *options]) == 2
    err = capsys.readouterr().err
    assert err.startswith("maeum: ") and err.count("\n") == 1 and message in err, err
    assert "secret-pw" not in err


def test_the_server_refuses_a_port_in_use_before_loading_anything(capsys, tmp_path) -> None:
    import socket

    from maeum.cli import main

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["app", "--port", str(port), "--data-dir", str(tmp_path / "data")]) == 2
    err = capsys.readouterr().err
    assert f"cannot listen on 127.0.0.1 port {port}" in err and "pass another --port" in err
    assert not (tmp_path / "data").exists()  # refused before the data folder and the database


@pytest.mark.parametrize("port", ["65536", "-1", "99999"])
def test_the_server_refuses_a_port_that_is_none(capsys, tmp_path, port) -> None:
    from maeum.cli import main

    with pytest.raises(SystemExit) as stop:  # argparse's error, before anything starts
        main(["app", f"--port={port}", "--data-dir", str(tmp_path)])
    assert stop.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1].startswith("maeum app: error: argument --port: must be")
