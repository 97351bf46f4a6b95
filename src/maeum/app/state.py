"""The diary's shared state: settings, database, image store, face reader, companion, music, speech
recognizer, templates."""

from __future__ import annotations

import datetime as dt
import logging
import tempfile
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader

from maeum.analyzer import Analyzer
from maeum.app import diary, stats
from maeum.app.companion import Companion
from maeum.app.db import create_db_engine, migrate, session_factory, transaction
from maeum.app.i18n import EMOJI
from maeum.app.music import Music
from maeum.app.security import LoginLimiter, end_expired_sessions, proxy_networks
from maeum.app.settings import AppSettings
from maeum.app.speech import Recognizer
from maeum.app.uploads import ImageStore, UploadLimits
from maeum.errors import ConfigError

log = logging.getLogger(__name__)

HERE = Path(__file__).parent


class Diary:
    """The app's shared state: settings, database, image store, face reader, speech recognizer, templates."""

    def __init__(self, settings: AppSettings, analyzer: Analyzer | None) -> None:
        self.trusted_proxies = proxy_networks(settings.trusted_proxies)  # first: a typo stops the start
        self.zone = _time_zone(settings.timezone)
        _check_data_dir(settings.data_dir)
        self.settings = settings.with_secret()
        self.recognizer = Recognizer(  # first: a wrong model folder stops the start before anything opens
            self.settings.speech_model, self.settings.max_audio_seconds, self.settings.analysis_threads
        )
        self.engine = create_db_engine(self.settings.url)
        migrate(self.engine)
        self.sessions = session_factory(self.engine)
        self.store = ImageStore(self.settings.images_dir)
        self.reader = diary.FaceReader(
            analyzer or Analyzer(threads=self.settings.analysis_threads), self.settings.analysis_slots
        )
        self.labels = self.reader.labels
        self.limits = UploadLimits(
            self.settings.max_image_bytes,
            self.settings.max_image_pixels,
            self.settings.min_image_side,
            self.settings.stored_image_side,
        )
        self.limiter = LoginLimiter(
            self.settings.login_failures_per_user,
            self.settings.login_failures_per_ip,
            self.settings.login_window_minutes,
        )
        env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=True)
        env.globals.update(
            emoji=lambda label: EMOJI.get(label, "🙂"),
            color=stats.color,
            dictation_server=self.recognizer.available,
            max_audio_seconds=int(self.settings.max_audio_seconds),
            max_text_chars=self.settings.max_text_chars,
        )
        self.templates = Jinja2Templates(env=env)
        self.companion = Companion(self.tx, self.settings)
        self.music = Music(self.settings.music_picks)

    def tx(self) -> Any:
        return transaction(self.sessions)

    def today(self) -> dt.date:
        return dt.datetime.now(self.zone).date()

    def sweep(self) -> None:
        """Remove uploads that waited too long for a face choice and files a crash left behind."""
        with self.tx() as db:
            for name in diary.expired_pending(db):
                self.store.delete(name)
            keep = diary.referenced_images(db)
            end_expired_sessions(db)
        removed = self.store.sweep(keep)
        if removed:
            log.info("removed %d image files no post refers to", removed)

    def close(self) -> None:
        """Wait for the comments being written, then release the database."""
        self.companion.close()
        self.engine.dispose()


def _time_zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"unknown time zone {name!r} (MAEUM_APP_TIMEZONE); use an IANA name such as Asia/Seoul or UTC"
        ) from None


def _check_data_dir(path: Path) -> None:
    """Create the data folder (owner only) and check that the server can write in it, before anything is
    stored there; ConfigError says why it cannot be used."""
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=path).close()
    except OSError as e:
        reason = "it is a file" if path.is_file() else e.strerror
        raise ConfigError(
            f"cannot keep the diary's data in {path} ({reason}); "
            "give --data-dir (MAEUM_APP_DATA_DIR) a folder this user can write to"
        ) from None
