"""The inference API server (``maeum serve``): images in over HTTP, the faces' emotions out as JSON.

Endpoints (``docs/serve.md``):

- ``POST /v1/analyze``: an image file as the request body; answers ``[{rect, label, probs, ...}]``,
  one entry per face, best detection first (``FaceResult.to_dict``, as ``maeum analyze`` writes).
- ``POST /v1/analyze/batch``: a multipart form with one or more ``images`` files; answers
  ``[{"name", "faces"} | {"name", "error"}]`` in the order sent, the faces classified together (a
  batch per ``_GROUP_PIXELS`` of images). One unreadable image fails alone.
- ``GET /v1/model``: the model, its labels and input, the detector and the aligner.
- ``GET /healthz`` (or HEAD): ``{"ok": true}``, without the API key.

Both analyze endpoints take ``?lang=ko`` (Korean label names) and ``?cropped=true`` (the images are
pre-cropped faces: the centred square of each is classified, no detection). Errors are JSON
``{"error": code, "message": text}``: 400 an unreadable image or option, 401 a missing or wrong API
key, 408 a body that did not arrive in time, 413 a body over the limit, 503 too many analyze requests
at once. One analysis (decoding included) runs at a time, in a worker thread, so the event loop stays
free for /healthz; onnxruntime spreads each analysis over the server's threads.
"""

from __future__ import annotations

import contextlib
import hmac
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import anyio
import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from python_multipart.multipart import parse_options_header
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
# A batch's images are decoded and analysed a group of about this many pixels at a time (as
# `maeum analyze` does): a PNG of a few hundred KB can decode to 360 MB, and 32 of them fit in a body.
_GROUP_PIXELS = 64_000_000
# EPS is rendered by Ghostscript, a PostScript interpreter: not a program to hand a stranger's file.
_POSTSCRIPT_MAGIC = (b"%!PS", b"\xc5\xd0\xd3\xc6")


@dataclass(frozen=True)
class ServeLimits:
    """What one request may send (bytes of body, pixels per image, images per batch, seconds to send
    the body), and how many analyze requests may be handled or waiting at once."""

    max_bytes: int = 20 * MB
    max_pixels: int = DEFAULT_MAX_PIXELS
    max_images: int = 32
    max_concurrent: int = 64
    body_seconds: float = 60.0


class ApiError(Exception):
    """A request refused: answered as ``{"error": code, "message": message}`` with ``status``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class _TooLarge(Exception):
    """The body went over the limit while it was read."""


class _TooSlow(Exception):
    """The body had not all arrived by the deadline."""


def create_server(
    analyzer: Analyzer,
    limits: ServeLimits | None = None,
    *,
    api_key: str = "",
    allow_origins: tuple[str, ...] = (),
) -> FastAPI:
    """The API app around ``analyzer``, which it uses one request at a time. With ``api_key``, every
    endpoint but /healthz needs ``Authorization: Bearer <api_key>`` (compared as UTF-8 bytes, as
    curl sends it); ``allow_origins`` are the web pages (e.g. ``https://example.com``, or ``*``)
    whose scripts may call it."""
    limits = limits or ServeLimits()
    # Held across the worker thread's analysis: requests waiting their turn hold no thread, so the
    # thread pool stays free for reading uploads.
    lock = anyio.Lock()
    active = 0  # analyze requests handled or waiting; only the event loop's thread changes it
    key = api_key.encode()
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
        headers = {401: {"WWW-Authenticate": "Bearer"}, 503: {"Retry-After": "1"}}.get(e.status)
        return JSONResponse({"error": e.code, "message": e.message}, status_code=e.status, headers=headers)

    def check_key(request: Request) -> None:
        if not api_key:
            return
        # The header's raw bytes: Starlette decodes headers as Latin-1, so a key with non-ASCII
        # characters, sent as UTF-8, would never match its decoded text.
        given = next((v for k, v in request.scope["headers"] if k == b"authorization"), b"")
        scheme, _, token = given.partition(b" ")
        if scheme.lower() != b"bearer" or not hmac.compare_digest(token.strip(), key):
            raise ApiError(401, "unauthorized", "send the server's API key as 'Authorization: Bearer KEY'")

    @contextlib.contextmanager
    def admitted() -> Iterator[None]:
        """One analyze request counted while it is read, waits and is analysed; past the limit, 503."""
        nonlocal active
        if active >= limits.max_concurrent:
            raise ApiError(503, "busy", f"the server has {limits.max_concurrent} requests in hand; retry in a moment")
        active += 1
        try:
            yield
        finally:
            active -= 1

    def options(request: Request) -> tuple[str, bool]:
        lang = request.query_params.get("lang", "en")
        if lang not in LANGUAGES:
            raise ApiError(400, "bad_lang", f"lang must be one of {', '.join(LANGUAGES)}, got {lang[:20]!r}")
        cropped = request.query_params.get("cropped", "false").lower()
        if cropped not in ("true", "false", "1", "0"):
            raise ApiError(400, "bad_cropped", f"cropped must be true or false, got {cropped[:20]!r}")
        return lang, cropped in ("true", "1")

    def analyze(files: list[tuple[str, bytes]], cropped: bool) -> list[list[FaceResult] | ApiError]:
        """Each file's faces, or why it cannot be read, in order; run in a worker thread. Images are
        decoded and analysed a group of about _GROUP_PIXELS at a time, so a batch of small files that
        decode to huge images never sits in memory whole."""
        out: list[list[FaceResult] | ApiError] = []
        group: list[tuple[int, np.ndarray]] = []  # (its place in out, the image (H, W, 3))

        def flush() -> None:
            images = [image for _, image in group]
            found = [[face] for face in analyzer.classify_crops(images)] if cropped else analyzer.analyze_batch(images)
            for (k, _), faces in zip(group, found, strict=True):
                out[k] = faces
            group.clear()

        for name, data in files:
            try:
                image = _decode(data, name, limits.max_pixels)
            except ApiError as e:
                out.append(e)
                continue
            group.append((len(out), image))
            out.append([])
            if sum(im.shape[0] * im.shape[1] for _, im in group) >= _GROUP_PIXELS:
                flush()
        if group:
            flush()
        return out

    async def analyzed(files: list[tuple[str, bytes]], cropped: bool) -> list[list[FaceResult] | ApiError]:
        async with lock:
            return await run_in_threadpool(analyze, files, cropped)

    # Not in the thread pool (a plain `def` would be): answered at once however busy the analyses are.
    @app.api_route("/healthz", methods=["GET", "HEAD"])
    async def healthz() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/v1/model")
    async def model(request: Request) -> dict[str, object]:
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
    async def analyze_one(request: Request) -> Response:
        check_key(request)
        lang, cropped = options(request)
        with admitted():
            body = await _read_body(request, limits)
            (faces,) = await analyzed([("the request body", body)], cropped)
        if isinstance(faces, ApiError):
            raise faces
        return JSONResponse([face.to_dict(lang) for face in faces])

    @app.post("/v1/analyze/batch")
    async def analyze_many(request: Request) -> Response:
        check_key(request)
        lang, cropped = options(request)
        with admitted():
            files = await _read_files(request, limits)
            found = await analyzed(files, cropped)
        answers: list[dict[str, object]] = []
        for (name, _), faces in zip(files, found, strict=True):
            if isinstance(faces, ApiError):
                answers.append({"name": name, "error": {"error": faces.code, "message": faces.message}})
            else:
                answers.append({"name": name, "faces": [face.to_dict(lang) for face in faces]})
        return JSONResponse(answers)

    return app


def _check_declared(request: Request, max_bytes: int) -> None:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise ApiError(413, "too_large", f"the body is {int(declared):,} bytes; the limit is {max_bytes:,}")


def _capped(request: Request, limits: ServeLimits) -> Request:
    """The request, reading its body only up to ``limits.max_bytes`` (raising _TooLarge past it) and
    for ``limits.body_seconds`` (raising _TooSlow after): a client sending a byte a second would
    otherwise hold its place among the ``max_concurrent`` for ever."""
    _check_declared(request, limits.max_bytes)
    received = 0
    deadline = anyio.current_time() + limits.body_seconds

    async def receive() -> dict[str, Any]:
        nonlocal received
        try:
            with anyio.fail_after(max(0.0, deadline - anyio.current_time())):
                message = await request.receive()
        except TimeoutError:
            raise _TooSlow from None
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limits.max_bytes:
                raise _TooLarge
        return message

    return Request(request.scope, receive)


@contextlib.contextmanager
def _reading(limits: ServeLimits) -> Iterator[None]:
    """What went wrong while reading the body, as the ApiError that answers it."""
    try:
        yield
    except _TooLarge:
        raise ApiError(413, "too_large", f"the body is over the limit of {limits.max_bytes:,} bytes") from None
    except _TooSlow:
        raise ApiError(
            408, "timeout", f"the body did not arrive within {limits.body_seconds:g} s; send it again"
        ) from None
    except ClientDisconnect:
        raise ApiError(400, "disconnected", "the client left before sending the whole body") from None


async def _read_body(request: Request, limits: ServeLimits) -> bytes:
    with _reading(limits):
        body = await _capped(request, limits).body()
    if not body:
        raise ApiError(400, "no_image", "send an image file (JPEG, PNG, ...) as the request body")
    return body


async def _read_files(request: Request, limits: ServeLimits) -> list[tuple[str, bytes]]:
    kind, params = parse_options_header(request.headers.get("content-type", ""))
    if kind != b"multipart/form-data":
        raise ApiError(
            400, "not_multipart", "send the images as a multipart/form-data form, each in a field named 'images'"
        )
    if not params.get(b"boundary"):
        raise ApiError(400, "bad_form", "the Content-Type has no boundary=; let the HTTP client build the form")
    try:
        with _reading(limits):
            form = await _capped(request, limits).form(max_files=limits.max_images, max_fields=limits.max_images)
    except (MultiPartException, StarletteHTTPException) as e:  # too many files, a malformed form
        detail = e.message if isinstance(e, MultiPartException) else str(e.detail)
        if "Too many" in detail:
            detail += f" (at most {limits.max_images} images a request)"
        raise ApiError(400, "bad_form", detail) from None
    try:
        uploads = form.getlist("images")
        others = sorted({key for key in form if key != "images"})
        if others:
            raise ApiError(400, "bad_form", f"unknown form field(s) {', '.join(others)}; send files as 'images'")
        if not uploads:
            raise ApiError(
                400,
                "no_image",
                "the form has no complete 'images' file; send one or more, and end the form with its closing boundary",
            )
        files = []
        for k, upload in enumerate(uploads, 1):
            if not isinstance(upload, UploadFile):
                raise ApiError(400, "bad_form", f"'images' number {k} is text, not a file")
            files.append((upload.filename or f"image {k}", await upload.read()))
        return files
    finally:
        await form.close()


def _decode(data: bytes, name: str, max_pixels: int) -> np.ndarray:
    if not data:
        raise ApiError(400, "no_image", f"{name}: empty file")
    if data.startswith(_POSTSCRIPT_MAGIC):
        raise ApiError(400, "bad_image", f"{name}: PostScript (EPS) is not accepted; convert it to PNG or JPEG")
    try:
        return load_image(data, max_pixels=max_pixels, name=name)
    except ImageTooLargeError as e:
        raise ApiError(413, "too_many_pixels", str(e)) from None
    except ImageError as e:
        raise ApiError(400, "bad_image", str(e)) from None
