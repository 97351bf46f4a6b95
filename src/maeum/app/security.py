"""Passwords, session tokens, CSRF tokens and the login rate limit."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session as DbSession

from maeum.app.models import LoginFailure, Session, User, utcnow

_hasher = PasswordHasher()  # argon2id with the library's current recommended cost


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(stored_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False


# A hash to verify against when the user does not exist, so both cases take the same time.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


def authenticate(db: DbSession, username: str, password: str) -> User | None:
    user = db.scalar(select(User).where(User.username == username))
    if user is None:
        verify_password(_DUMMY_HASH, password)
        return None
    if not verify_password(user.password_hash, password):
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    return user


def _token_id(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start_session(db: DbSession, user: User, days: int) -> str:
    """Store a new session for ``user`` and return the token for its cookie."""
    token = secrets.token_urlsafe(32)
    db.add(Session(id=_token_id(token), user_id=user.id, expires_at=utcnow() + dt.timedelta(days=days)))
    return token


def session_user(db: DbSession, token: str | None) -> tuple[User | None, bool]:
    """The user a session cookie belongs to, and whether the cookie named a session that expired."""
    if not token:
        return None, False
    row = db.get(Session, _token_id(token))
    if row is None:
        return None, False
    if row.expires_at <= utcnow():
        db.delete(row)
        return None, True
    return db.get(User, row.user_id), False


def end_session(db: DbSession, token: str | None) -> None:
    if token:
        db.execute(delete(Session).where(Session.id == _token_id(token)))


def end_all_sessions(db: DbSession, user_id: int) -> None:
    db.execute(delete(Session).where(Session.user_id == user_id))


def end_expired_sessions(db: DbSession) -> None:
    db.execute(delete(Session).where(Session.expires_at <= utcnow()))


def csrf_token(secret: str, anchor: str) -> str:
    """The CSRF token for a session (or an anonymous visitor's cookie): an HMAC only the server can make."""
    return hmac.new(secret.encode(), b"csrf:" + anchor.encode(), hashlib.sha256).hexdigest()


def csrf_valid(secret: str, anchor: str | None, token: str | None) -> bool:
    return bool(anchor and token) and hmac.compare_digest(csrf_token(secret, anchor or ""), token or "")


class LoginLimiter:
    """Refuses logins after too many failures for one username or one address within a window."""

    def __init__(self, per_user: int, per_ip: int, window_minutes: int) -> None:
        self.per_user, self.per_ip = per_user, per_ip
        self.window = dt.timedelta(minutes=window_minutes)

    def retry_after(self, db: DbSession, username: str, ip: str) -> int:
        """Seconds until a login may be tried again; 0 when it may be tried now."""
        since = utcnow() - self.window
        db.execute(delete(LoginFailure).where(LoginFailure.at < since))
        worst = 0
        for column, key, limit in (
            (LoginFailure.username, username, self.per_user),
            (LoginFailure.ip, ip, self.per_ip),
        ):
            count, oldest = db.execute(
                select(func.count(), func.min(LoginFailure.at)).where(column == key, LoginFailure.at >= since)
            ).one()
            if count >= limit and oldest is not None:
                worst = max(worst, int((oldest + self.window - utcnow()).total_seconds()) + 1)
        return worst

    def failed(self, db: DbSession, username: str, ip: str) -> None:
        db.add(LoginFailure(username=username[:64], ip=ip[:64]))

    def succeeded(self, db: DbSession, username: str) -> None:
        db.execute(delete(LoginFailure).where(LoginFailure.username == username))
