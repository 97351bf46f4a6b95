"""The diary app's settings: one frozen dataclass, built from CLI options or environment variables."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field, replace
from pathlib import Path

from maeum.errors import ConfigError

ENV_PREFIX = "MAEUM_APP_"


@dataclass(frozen=True)
class AppSettings:
    """Where the diary keeps its data and the limits it enforces.

    ``database_url`` is an SQLAlchemy URL; empty means ``sqlite:///DATA_DIR/maeum.db``.
    ``data_dir`` holds the database (by default), the secret key and the uploaded images,
    outside any folder the server serves.
    """

    data_dir: Path = Path("maeum-data")
    database_url: str = ""
    secret_key: str = ""  # empty: read or create DATA_DIR/secret.key
    timezone: str = "Asia/Seoul"
    default_lang: str = "ko"
    secure_cookies: bool = False  # set behind HTTPS so cookies never travel in clear text
    session_days: int = 14
    max_request_bytes: int = 25 * 1024 * 1024
    max_image_bytes: int = 20 * 1024 * 1024
    max_image_pixels: int = 60_000_000
    min_image_side: int = 64
    stored_image_side: int = 1600  # uploads are re-encoded at most this large (EXIF dropped)
    max_text_chars: int = 5000
    login_failures_per_user: int = 5
    login_failures_per_ip: int = 30
    login_window_minutes: int = 15
    # How often, while serving, expired face choices, their uploads and expired sessions are removed.
    sweep_interval_s: float = 3600.0
    # Reverse proxies (addresses or networks) whose X-Forwarded-For names the client; empty: the peer is the client.
    trusted_proxies: tuple[str, ...] = ()
    analysis_threads: int | None = None
    analysis_slots: int = field(default_factory=lambda: max(1, os.cpu_count() or 1))
    # The companion: LLM endpoints on private networks (other than loopback) are refused unless allowed
    # here, by whoever runs the server; users cannot allow them for themselves.
    allow_private_endpoints: bool = False
    companion_timeout_s: float = 20.0
    companion_retries: int = 1
    companion_workers: int = 2  # comments written at once, in the background
    music_picks: int = 5  # songs recommended with a post
    max_catalogue_bytes: int = 5 * 1024 * 1024  # a user's CSV catalogue upload
    # Dictation on the server: a CTranslate2 Whisper folder, or None for the packaged Whisper base.
    speech_model: Path | None = None
    max_audio_bytes: int = 10 * 1024 * 1024
    max_audio_seconds: float = 120.0

    @property
    def url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'maeum.db').resolve()}"

    @property
    def images_dir(self) -> Path:
        return self.data_dir / "images"

    def with_secret(self) -> AppSettings:
        """These settings with ``secret_key`` filled from DATA_DIR/secret.key (created on first use)."""
        if self.secret_key:
            return self
        path = self.data_dir / "secret.key"
        if not path.exists():
            self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_urlsafe(48))
        return replace(self, secret_key=path.read_text().strip())

    @classmethod
    def from_env(cls, **overrides: object) -> AppSettings:
        """Settings from MAEUM_APP_* variables (e.g. MAEUM_APP_DATABASE_URL), then ``overrides``."""
        values: dict[str, object] = {}
        env = {
            "DATA_DIR": ("data_dir", Path),
            "DATABASE_URL": ("database_url", str),
            "SECRET_KEY": ("secret_key", str),
            "TIMEZONE": ("timezone", str),
            "SECURE_COOKIES": ("secure_cookies", _flag),
            "ALLOW_PRIVATE_ENDPOINTS": ("allow_private_endpoints", _flag),
            "SPEECH_MODEL": ("speech_model", Path),
            "TRUSTED_PROXIES": ("trusted_proxies", lambda v: tuple(p.strip() for p in v.split(",") if p.strip())),
        }
        for key, (name, cast) in env.items():
            if (value := os.environ.get(ENV_PREFIX + key)) is not None:
                try:
                    values[name] = cast(value)
                except ValueError as e:
                    raise ConfigError(f"{ENV_PREFIX + key}={value!r}: {e}") from None
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]


def _flag(value: str) -> bool:
    """An on/off environment variable; a value that is neither (a typo) is refused, never taken as off."""
    text = value.strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ValueError("write 1 or 0 (true/false, yes/no, on/off)")
