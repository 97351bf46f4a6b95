"""``maeum serve``: the inference API server (``maeum.serve``) on uvicorn."""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

from maeum.app_cli import check_address, port_number
from maeum.errors import MaeumError
from maeum.imageio import DEFAULT_MAX_PIXELS
from maeum.video_cli import positive_int

log = logging.getLogger("maeum")

API_KEY_ENV = "MAEUM_SERVE_API_KEY"
# Open connections (idle keep-alive ones too) beyond this many times --max-concurrent get uvicorn's
# plain-text 503: a bound on sockets, far above the analyze requests the app itself admits.
CONNECTIONS_PER_REQUEST = 16


def add_serve_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``maeum serve``."""
    s = sub.add_parser(
        "serve",
        help="the inference API server: POST an image, get its faces' emotions as JSON",
        description="POST /v1/analyze (an image as the body), POST /v1/analyze/batch (a multipart form of "
        "'images'), GET /v1/model, GET /healthz; see docs/serve.md. The API key, if any, comes from "
        f"--api-key-file or {API_KEY_ENV}.",
    )
    s.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    s.add_argument("--port", type=port_number, default=8080, help="port, 1 to 65535 (default: 8080)")
    s.add_argument("--model", default=None, help="emotion model name or .onnx path (default: the bundled model)")
    s.add_argument("--detector", default="retinaface", help="face detector name (see `maeum models`)")
    s.add_argument(
        "--detector-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="detector option, e.g. score_threshold=0.8 (repeatable)",
    )
    s.add_argument("--aligner", default="similarity", help="face aligner: similarity (levels the eyes) or upright")
    s.add_argument(
        "--whole-image-if-no-face",
        action="store_true",
        help="when no face is found, classify the image's centred square as one face",
    )
    s.add_argument(
        "--threads", type=positive_int, default=None, help="CPU threads for inference (default: cores, max 4)"
    )
    s.add_argument(
        "--max-mb", type=positive_int, default=20, help="refuse request bodies larger than this many MiB (default 20)"
    )
    s.add_argument(
        "--max-pixels",
        type=positive_int,
        default=DEFAULT_MAX_PIXELS,
        help=f"refuse images with more pixels (default {DEFAULT_MAX_PIXELS:,})",
    )
    s.add_argument("--max-images", type=positive_int, default=32, help="images per batch request (default 32)")
    s.add_argument(
        "--max-concurrent",
        type=positive_int,
        default=64,
        help="analyze requests handled or waiting at once; more are answered 503 (default 64)",
    )
    s.add_argument(
        "--body-timeout",
        type=positive_int,
        default=60,
        metavar="SECONDS",
        help="answer 408 to a request whose body has not all arrived in this time (default 60)",
    )
    s.add_argument(
        "--shutdown-timeout",
        type=positive_int,
        default=10,
        metavar="SECONDS",
        help="on Ctrl-C or SIGTERM, wait this long for requests in progress, then close them (default 10)",
    )
    s.add_argument(
        "--api-key-file", type=Path, help=f"a file holding the API key clients must send (else {API_KEY_ENV}, if set)"
    )
    s.add_argument(
        "--allow-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="a web page origin whose scripts may call the API, e.g. https://example.com, or * (repeatable)",
    )
    s.set_defaults(run=_serve)


def _api_key(path: Path | None) -> str:
    if path is None:
        where, key = API_KEY_ENV, os.environ.get(API_KEY_ENV, "").strip()
    else:
        where = f"--api-key-file {path}"
        try:
            key = path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as e:
            raise MaeumError(f"{where}: cannot read it ({e})") from None
        if not key:
            raise MaeumError(f"{where} is empty; write the key in it, or drop the option")
    if any(ord(c) < 32 or ord(c) == 127 for c in key):  # no client could send it in a header
        raise MaeumError(f"{where}: the API key holds a line break or control character; make it one line")
    return key


def _serve(args: argparse.Namespace) -> int:
    check_address(args.host, args.port)  # before the models, which take a second or two
    api_key = _api_key(args.api_key_file)
    try:
        import uvicorn

        from maeum.serve import ServeLimits, create_server
    except ImportError as e:
        raise MaeumError(f"maeum serve needs its extra: pip install 'maeum[serve]' ({e.name} is missing)") from None
    from maeum.analyzer import Analyzer
    from maeum.classify import DEFAULT_MODEL
    from maeum.detect import parse_options

    analyzer = Analyzer(
        args.detector,
        args.model or DEFAULT_MODEL,
        detector_options=parse_options(args.detector_option),
        aligner=args.aligner,
        threads=args.threads,
        whole_image_fallback=args.whole_image_if_no_face,
    )
    limits = ServeLimits(
        max_bytes=args.max_mb * 1024 * 1024,
        max_pixels=args.max_pixels,
        max_images=args.max_images,
        max_concurrent=args.max_concurrent,
        body_seconds=args.body_timeout,
    )
    app = create_server(analyzer, limits, api_key=api_key, allow_origins=tuple(args.allow_origin))
    if not api_key and args.host not in ("127.0.0.1", "localhost", "::1"):
        log.warning("listening on %s without an API key: anyone who reaches it can use it", args.host)
    log.info(
        "maeum serve on http://%s:%d (model %s, detector %s)",
        args.host,
        args.port,
        analyzer.classifier.info.name,
        args.detector,
    )
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_level="info",
        limit_concurrency=args.max_concurrent * CONNECTIONS_PER_REQUEST,
        timeout_graceful_shutdown=args.shutdown_timeout,
        proxy_headers=False,
    )
    return 0
