"""The inference API server (``maeum serve``): images in over HTTP, the faces' emotions out as JSON.

Endpoints (``docs/serve.md``):

- ``POST /v1/analyze``: an image file as the request body; answers ``[{rect, label, probs, ...}]``,
  one entry per face, best detection first (``FaceResult.to_dict``, as ``maeum analyze`` writes).
- ``POST /v1/analyze/batch``: a multipart form with one or more ``images`` files; answers
  ``[{"name", "faces"} | {"name", "error"}]`` in the order sent, all faces classified in one batch.
  One unreadable image fails alone.
- ``GET /v1/model``: the model, its labels and input, the detector and the aligner.
- ``GET /healthz``: ``{"ok": true}``, without the API key.

Both analyze endpoints take ``?lang=ko`` (Korean label names) and ``?cropped=true`` (the images are
pre-cropped faces: the centred square of each is classified, no detection). Errors are JSON
``{"error": code, "message": text}``: 400 an unreadable image or option, 401 a missing or wrong API
key, 413 a body over the limit, 503 (from uvicorn's concurrency limit) too many requests at once.
One analysis runs at a time; onnxruntime spreads each over the server's threads.
"""

from __future__ import annotations

import hmac
import logging
import threading
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.formparsers import MultiPartException
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import ClientDisconnect

from maeum import __version__
from maeum.analyzer import Analyzer
from maeum.errors import ImageError, ImageTooLargeError
from maeum.imageio import DEFAULT_MAX_PIXELS, load_image
from maeum.labels import LANGUAGES, display_name
from maeum.results import FaceResult

log = logging.getLogger("maeum")

MB = 1024 * 1024


@dataclass(frozen=True)
class ServeLimits:
    """What one request may send: bytes of body, pixels per image, images per batch."""

    max_bytes: int = 20 * MB
    max_pixels: int = DEFAULT_MAX_PIXELS
    max_images: int = 32


class ApiError(Exception):
    """A request refused: answered as ``{"error": code, "message": message}`` with ``status``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class _TooLarge(Exception):
    """The body went over the limit while it was read."""


def create_server(
    analyzer: Analyzer,
    limits: ServeLimits | None = None,
    *,
    api_key: str = "",
    allow_origins: tuple[str, ...] = (),
) -> FastAPI:
    """The API app around ``analyzer``, which it uses one request at a time. With ``api_key``, every
    endpoint but /healthz needs ``Authorization: Bearer <api_key>``; ``allow_origins`` are the web
    pages (e.g. ``https://example.com``, or ``*``) whose scripts may call it."""
    limits = limits or ServeLimits()
    lock = threading.Lock()
    info = analyzer.classifier.info
    app = FastAPI(title="maeum", version=__version__, docs_url=None, redoc_url=None)
    if allow_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(allow_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"],
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, e: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(e.status_code, "http_error")
        return JSONResponse({"error": code, "message": str(e.detail)}, status_code=e.status_code, headers=e.headers)

    @app.exception_handler(Exception)
    async def failed(request: Request, e: Exception) -> JSONResponse:
        log.exception("%s %s failed", request.method, request.url.path)
        return JSONResponse({"error": "internal", "message": f"the server failed: {type(e).__name__}"}, status_code=500)

    @app.exception_handler(ApiError)
    async def refused(request: Request, e: ApiError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if e.status == 401 else None
        return JSONResponse({"error": e.code, "message": e.message}, status_code=e.status, headers=headers)

    def check_key(request: Request) -> None:
        if not api_key:
            return
        given = request.headers.get("authorization", "")
        scheme, _, token = given.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), api_key.encode()):
            raise ApiError(401, "unauthorized", "send the server's API key as 'Authorization: Bearer KEY'")

    def options(request: Request) -> tuple[str, bool]:
        lang = request.query_params.get("lang", "en")
        if lang not in LANGUAGES:
            raise ApiError(400, "bad_lang", f"lang must be one of {', '.join(LANGUAGES)}, got {lang[:20]!r}")
        cropped = request.query_params.get("cropped", "false").lower()
        if cropped not in ("true", "false", "1", "0"):
            raise ApiError(400, "bad_cropped", f"cropped must be true or false, got {cropped[:20]!r}")
        return lang, cropped in ("true", "1")

    def analyze(images: list[Any], cropped: bool) -> list[list[FaceResult]]:
        with lock:
            if cropped:
                return [[face] for face in analyzer.classify_crops(images)]
            return analyzer.analyze_batch(images)

    @app.get("/healthz")
    def healthz() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/v1/model")
    def model(request: Request) -> dict[str, object]:
        check_key(request)
        return {
            "model": info.name,
            "labels": list(info.labels),
            "labels_ko": [display_name(label, "ko") for label in info.labels],
            "input": {"size": info.input.size, "color": info.input.color},
            "detector": analyzer.detector_name,
            "aligner": analyzer.aligner_name,
            "limits": {"max_bytes": limits.max_bytes, "max_pixels": limits.max_pixels, "max_images": limits.max_images},
            "version": __version__,
        }

    @app.post("/v1/analyze")
    async def analyze_one(request: Request) -> JSONResponse:
        check_key(request)
        lang, cropped = options(request)
        body = await _read_body(request, limits.max_bytes)
        image = _decode(body, "the request body", limits.max_pixels)
        faces = (await run_in_threadpool(analyze, [image], cropped))[0]
        return JSONResponse([face.to_dict(lang) for face in faces])

    @app.post("/v1/analyze/batch")
    async def analyze_many(request: Request) -> JSONResponse:
        check_key(request)
        lang, cropped = options(request)
        files = await _read_files(request, limits)
        images, answers = [], []
        for name, data in files:
            try:
                images.append(_decode(data, name, limits.max_pixels))
                answers.append({"name": name})
            except ApiError as e:
                answers.append({"name": name, "error": {"error": e.code, "message": e.message}})
        found = iter(await run_in_threadpool(analyze, images, cropped) if images else [])
        for answer in answers:
            if "error" not in answer:
                answer["faces"] = [face.to_dict(lang) for face in next(found)]
        return JSONResponse(answers)

    return app


def _check_declared(request: Request, max_bytes: int) -> None:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise ApiError(413, "too_large", f"the body is {int(declared):,} bytes; the limit is {max_bytes:,}")


def _capped(request: Request, max_bytes: int) -> Request:
    """The request, reading its body only up to ``max_bytes`` (raising _TooLarge past it)."""
    _check_declared(request, max_bytes)
    received = 0

    async def receive() -> dict[str, Any]:
        nonlocal received
        message = await request.receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > max_bytes:
                raise _TooLarge
        return message

    return Request(request.scope, receive)


async def _read_body(request: Request, max_bytes: int) -> bytes:
    try:
        body = await _capped(request, max_bytes).body()
    except _TooLarge:
        raise ApiError(413, "too_large", f"the body is over the limit of {max_bytes:,} bytes") from None
    except ClientDisconnect:
        raise ApiError(400, "disconnected", "the client left before sending the whole body") from None
    if not body:
        raise ApiError(400, "no_image", "send an image file (JPEG, PNG, ...) as the request body")
    return body


async def _read_files(request: Request, limits: ServeLimits) -> list[tuple[str, bytes]]:
    kind = request.headers.get("content-type", "")
    if not kind.lower().startswith("multipart/form-data"):
        raise ApiError(
            400, "not_multipart", "send the images as a multipart/form-data form, each in a field named 'images'"
        )
    try:
        form = await _capped(request, limits.max_bytes).form(max_files=limits.max_images, max_fields=limits.max_images)
    except _TooLarge:
        raise ApiError(413, "too_large", f"the body is over the limit of {limits.max_bytes:,} bytes") from None
    except ClientDisconnect:
        raise ApiError(400, "disconnected", "the client left before sending the whole body") from None
    except (MultiPartException, StarletteHTTPException) as e:  # too many files, a malformed form
        detail = e.message if isinstance(e, MultiPartException) else e.detail
        raise ApiError(400, "bad_form", f"{detail} (at most {limits.max_images} images a request)") from None
    try:
        uploads = form.getlist("images")
        others = sorted({key for key in form if key != "images"})
        if others:
            raise ApiError(400, "bad_form", f"unknown form field(s) {', '.join(others)}; send files as 'images'")
        if not uploads:
            raise ApiError(400, "no_image", "the form has no 'images' file; send one or more")
        files = []
        for k, upload in enumerate(uploads, 1):
            if not isinstance(upload, UploadFile):
                raise ApiError(400, "bad_form", f"'images' number {k} is text, not a file")
            files.append((upload.filename or f"image {k}", await upload.read()))
        return files
    finally:
        await form.close()


def _decode(data: bytes, name: str, max_pixels: int) -> Any:
    if not data:
        raise ApiError(400, "no_image", f"{name}: empty file")
    try:
        return load_image(data, max_pixels=max_pixels, name=name)
    except ImageTooLargeError as e:
        raise ApiError(413, "too_many_pixels", str(e)) from None
    except ImageError as e:
        raise ApiError(400, "bad_image", str(e)) from None
