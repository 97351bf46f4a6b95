"""The database: an engine per URL (SQLite in WAL mode, or PostgreSQL) brought to the newest schema."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from maeum.errors import ConfigError, MaeumError

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).with_name("migrations")
EXAMPLE_URL = "postgresql+psycopg://user:pass@host/db or sqlite:////path/to/maeum.db"


def create_db_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite files get WAL, foreign keys and a busy timeout, and are readable
    by their owner only. ConfigError says what is wrong with a URL that cannot be used."""
    try:
        return _create_db_engine(url)
    except (ArgumentError, ValueError) as e:  # not a URL (a port that is no number), an unknown database
        raise ConfigError(f"cannot use the database URL {_shown(url)}: {e}; e.g. {EXAMPLE_URL}") from None
    except ImportError as e:
        raise ConfigError(f"the database URL {_shown(url)} needs the Python package {e.name or e}") from None
    except OSError as e:
        raise ConfigError(f"cannot create the database file of {_shown(url)} ({e.strerror})") from None


def _shown(url: str) -> str:
    """``url`` as it may be shown in a message: without its password."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return repr(url) if "@" not in url else "given (not shown: it may hold a password)"


def _create_db_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        _owner_only_sqlite(url)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, pool_size=20)

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


def _owner_only_sqlite(url: str) -> None:
    """Create the SQLite file (and its folder) for the server's user only, before SQLite creates it
    with the umask's mode; tighten a file an older version left readable. SQLite gives its -wal and
    -shm files the database file's mode."""
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    path = Path(database)
    if not path.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        if file.exists() and file.stat().st_mode & 0o077:
            file.chmod(0o600)


def migrate(engine: Engine) -> None:
    """Bring the database to the newest schema (Alembic ``upgrade head``); existing rows are kept. MaeumError
    says why a database that cannot be reached or written to (a server that is down, a wrong password, a
    read-only file) cannot be used."""
    if logging.getLogger("alembic").level == logging.NOTSET:  # its per-step notes are noise at INFO
        logging.getLogger("alembic").setLevel(logging.WARNING)
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    try:
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    except OperationalError as e:
        reason = str(e.orig).strip().partition("\n")[0] or type(e.orig).__name__
        shown = engine.url.render_as_string(hide_password=True)
        raise MaeumError(f"cannot use the database {shown}: {reason}") from None


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session whose changes are committed together at the end, or not at all."""
    with factory() as session, session.begin():
        yield session
