"""ASGI middleware: a cap on request size, and the security headers every response carries."""

from __future__ import annotations

from typing import Any

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
    """Answers 413 to a request body larger than ``max_bytes``, declared or streamed, without
    passing the excess to the app."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

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
        mb = self.max_bytes // (1024 * 1024)
        cookies = dict(scope.get("headers", [])).get(b"cookie", b"").decode("latin-1")
        english = "maeum_lang=en" in cookies
        text = (
            f"The request is too large (at most {mb} MB). Go back and choose a smaller photo."
            if english
            else f"요청이 너무 큽니다 (최대 {mb}MB). 뒤로 돌아가 더 작은 사진을 골라 주세요."
        )
        body = (
            f'<!doctype html><html lang="{"en" if english else "ko"}"><meta charset="utf-8">'
            f'<title>413</title><p class="error">{text}</p><p><a href="/">maeum</a></p></html>'
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"text/html; charset=utf-8"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                    *HEADERS,
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
