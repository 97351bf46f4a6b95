"""ASGI middleware: a cap on request size, and the security headers every response carries."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

Scope = dict[str, Any]
Receive = Any
Send = Any

CSP = (
    "default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob: mediastream:; style-src 'self'; "
    "script-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(self), microphone=(self), geolocation=()"),
]
# A body this many times over the limit is not read to the end: the connection is closed.
DRAIN_FACTOR = 4


class SecurityHeaders:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                names = {k.lower() for k, _ in message.get("headers", [])}
                message["headers"] = list(message.get("headers", [])) + [h for h in HEADERS if h[0] not in names]
                if b"cache-control" not in names:
                    message["headers"].append((b"cache-control", b"no-store"))
            await send(message)

        await self.app(scope, receive, send_with_headers)


class BodyLimit:
    """Answers a request body larger than ``max_bytes``, declared or streamed, without passing the
    excess to the app: the app's own page at ``error_paths`` (``(page, api)``, GET, no body, the
    original path in ``?from=``) answers instead, so the refusal looks like every other one."""

    def __init__(self, app: Any, max_bytes: int, error_paths: tuple[str, str]) -> None:
        self.app, self.max_bytes, self.error_paths = app, max_bytes, error_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._drain(receive, 0)
            await self._reject(scope, send)
            return
        received, exceeded, started = 0, False, False

        async def limited_receive() -> dict[str, Any]:
            nonlocal received, exceeded
            if exceeded:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    exceeded = True
                    if message.get("more_body"):
                        await self._drain(receive, received)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: dict[str, Any]) -> None:
            nonlocal started
            if exceeded:
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not exceeded:
                raise
        if exceeded and not started:
            await self._reject(scope, send)

    async def _drain(self, receive: Receive, received: int) -> None:
        """Read the rest of the body (up to a cap) so the client sees the answer, not a reset."""
        while received <= DRAIN_FACTOR * self.max_bytes:
            message = await receive()
            if message["type"] != "http.request":
                return
            received += len(message.get("body", b""))
            if not message.get("more_body"):
                return

    async def _reject(self, scope: Scope, send: Send) -> None:
        path = self.error_paths[1] if scope["path"].startswith("/api/") else self.error_paths[0]
        dropped = (b"content-length", b"content-type", b"transfer-encoding")
        error_scope = {
            **scope,
            "method": "GET",
            "path": path,
            "raw_path": path.encode(),
            "query_string": urlencode({"from": scope["path"]}).encode(),
            "headers": [(k, v) for k, v in scope.get("headers", []) if k.lower() not in dropped],
        }

        async def no_body() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send_closing(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":  # the rest of the body was never read
                message["headers"] = [*message.get("headers", []), (b"connection", b"close")]
            await send(message)

        await self.app(error_scope, no_body, send_closing)
