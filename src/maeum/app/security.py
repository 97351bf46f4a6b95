"""Passwords, session tokens, CSRF tokens and the login rate limit."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import ipaddress
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session as DbSession

from maeum.app.models import LoginFailure, Session, User, utcnow
from maeum.errors import MaeumError

_hasher = PasswordHasher()  # argon2id with the library's current recommended cost


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(stored_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False


# The most common passwords of 8 or more characters in public breach lists (shorter ones are refused anyway).
COMMON_PASSWORDS = frozenset(
    {
        "password",
        "password1",
        "passw0rd",
        "12345678",
        "123456789",
        "1234567890",
        "0987654321",
        "87654321",
        "12341234",
        "11223344",
        "qwertyui",
        "qwertyuiop",
        "qwerty123",
        "1q2w3e4r",
        "1q2w3e4r5t",
        "q1w2e3r4",
        "1qaz2wsx",
        "qwer1234",
        "asdf1234",
        "abcd1234",
        "abc12345",
        "a1b2c3d4",
        "zxcvbnm1",
        "iloveyou",
        "sunshine",
        "princess",
        "football",
        "baseball",
        "superman",
        "trustno1",
        "welcome1",
        "letmein1",
        "admin123",
    }
)


def weak_password(password: str, username: str) -> bool:
    """Whether ``password`` is one character repeated, the username, or one of :data:`COMMON_PASSWORDS`
    (case ignored). Length is checked apart."""
    lowered = password.lower()
    return len(set(lowered)) <= 1 or lowered == username.lower() or lowered in COMMON_PASSWORDS


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
    """Refuses logins after too many failures within a window: ``per_user`` for one username from one
    address, ``per_ip`` for any usernames from one address.

    Counting a username's failures per address means nobody elsewhere can lock a known user out by
    guessing wrong on purpose, and made-up usernames only ever lock out their own address.
    """

    def __init__(self, per_user: int, per_ip: int, window_minutes: int) -> None:
        self.per_user, self.per_ip = per_user, per_ip
        self.window = dt.timedelta(minutes=window_minutes)

    def retry_after(self, db: DbSession, username: str, ip: str) -> int:
        """Seconds until a login may be tried again; 0 when it may be tried now."""
        since = utcnow() - self.window
        db.execute(delete(LoginFailure).where(LoginFailure.at < since))
        worst = 0
        from_ip = LoginFailure.ip == ip[:64]
        pair = (from_ip, LoginFailure.username == username[:64])
        for conditions, limit in ((pair, self.per_user), ((from_ip,), self.per_ip)):
            count, oldest = db.execute(
                select(func.count(), func.min(LoginFailure.at)).where(*conditions, LoginFailure.at >= since)
            ).one()
            if count >= limit and oldest is not None:
                worst = max(worst, int((oldest + self.window - utcnow()).total_seconds()) + 1)
        return worst

    def failed(self, db: DbSession, username: str, ip: str) -> None:
        db.add(LoginFailure(username=username[:64], ip=ip[:64]))

    def succeeded(self, db: DbSession, username: str, ip: str) -> None:
        db.execute(delete(LoginFailure).where(LoginFailure.username == username[:64], LoginFailure.ip == ip[:64]))


IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def proxy_networks(proxies: tuple[str, ...]) -> tuple[IPNetwork, ...]:
    """The trusted proxies setting as networks; MaeumError names an entry that is neither an address nor a network."""
    networks = []
    for entry in proxies:
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise MaeumError(
                f"trusted proxy {entry!r} is not an IP address or network (e.g. 127.0.0.1 or 10.0.0.0/8)"
            ) from None
    return tuple(networks)


def client_address(peer: str, forwarded_for: list[str], trusted: tuple[IPNetwork, ...]) -> str:
    """The address a request came from: ``peer`` (the TCP peer) unless it is a trusted proxy; then the
    nearest address in X-Forwarded-For (``forwarded_for``, the header's values in order) that is not a
    trusted proxy. Each proxy appends the address it heard from, so only the entries added by trusted
    proxies, read from the right, can be believed; anything left of the first untrusted one may be made up."""
    if not _trusted(peer, trusted):
        return peer
    hops = [hop.strip() for value in forwarded_for for hop in value.split(",")]
    for hop in reversed(hops):
        if _ip(hop) is None:  # garbage: the last proxy is all that is known
            break
        if not _trusted(hop, trusted):
            return hop
        peer = hop
    return peer


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def _trusted(address: str, trusted: tuple[IPNetwork, ...]) -> bool:
    ip = _ip(address)
    return ip is not None and any(ip in network for network in trusted)
