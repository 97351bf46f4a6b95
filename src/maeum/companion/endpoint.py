"""An OpenAI-compatible chat client on the standard library, and the guard that vets endpoint URLs.

The guard keeps a configured endpoint from reaching the private network (SSRF): loopback is allowed
so a local Ollama or llama.cpp server works, any other non-public address needs ``allow_private``.
"""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import json
import logging
import re
import socket
import threading
import time
import urllib.parse
from collections.abc import Sequence

from maeum.companion.settings import CompanionError

log = logging.getLogger(__name__)

MAX_RESPONSE_BYTES = 1_000_000
_RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
# Where a reasoning model's thinking ends, and where it starts (some templates leave the opening tag out).
_THINKING_END = re.compile(r"</(?:think|thinking|reasoning)>", re.IGNORECASE)
_THINKING_START = re.compile(r"\s*<(?:think|thinking|reasoning)>", re.IGNORECASE)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def _addresses(host: str, port: int) -> list[IPAddress]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except OSError as e:
        raise CompanionError(f"endpoint host {host!r} does not resolve: {e}") from e
    return [ipaddress.ip_address(info[4][0].split("%", 1)[0]) for info in infos]


def check_endpoint_url(url: str, allow_private: bool = False) -> str:
    """Return ``url`` if it may be called, else raise :class:`CompanionError` saying why.

    Only http and https; the host is resolved and every address must be loopback or public.
    Private, link-local (including 169.254.169.254, the cloud metadata address), unique-local,
    multicast, reserved and unspecified addresses are refused unless ``allow_private`` is True.
    """
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise CompanionError(f"endpoint URL {url!r} must start with http:// or https://")
    host = parts.hostname
    if not host:
        raise CompanionError(f"endpoint URL {url!r} has no host")
    if parts.username or parts.password:
        raise CompanionError("endpoint URL must not carry credentials; set the api_key instead")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as e:
        raise CompanionError(f"endpoint URL {url!r} has a bad port") from e
    if host.lower() == "localhost" or host.lower().endswith(".localhost"):
        return url
    addrs = _addresses(host, port)
    if not addrs:
        raise CompanionError(f"endpoint host {host!r} resolved to no address")
    for addr in addrs:
        if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
            addr = addr.ipv4_mapped
        if addr.is_loopback or (addr.is_global and not addr.is_multicast):
            continue
        if not allow_private:
            raise CompanionError(
                f"endpoint {host!r} resolves to non-public address {addr}; "
                "use a loopback or public endpoint, or set allow_private_endpoint=True if you trust it"
            )
    return url


class _Retryable(Exception):
    pass


class ChatClient:
    """Calls ``POST {base_url}/chat/completions`` on an OpenAI-compatible server (Ollama, llama.cpp, vLLM...).

    Timeouts, connection errors, 429 and 5xx are retried ``retries`` times with exponential backoff;
    other 4xx and malformed replies raise :class:`CompanionError` at once.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None = None,
        timeout_s: float = 20.0,
        retries: int = 2,
        backoff_s: float = 0.5,
    ) -> None:
        if timeout_s <= 0:
            raise CompanionError(f"timeout_s must be positive, got {timeout_s}")
        if retries < 0:
            raise CompanionError(f"retries must be 0 or more, got {retries}")
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        self._api_key = api_key
        self.timeout_s = timeout_s
        self.retries = retries
        self.backoff_s = backoff_s

    def complete(self, messages: Sequence[dict[str, str]], temperature: float, max_tokens: int) -> str:
        """Return the assistant's reply text for ``messages``."""
        body = json.dumps(
            {
                "model": self.model,
                "messages": list(messages),
                "temperature": temperature,
                "max_tokens": max_tokens,
                "stream": False,
            },
            ensure_ascii=False,
        ).encode("utf-8")
        last: Exception | None = None
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff_s * 2 ** (attempt - 1))
            try:
                return _parse(self._post(body))
            except _Retryable as e:
                last = e
                log.warning("companion endpoint attempt %d/%d failed: %s", attempt + 1, self.retries + 1, e)
        raise CompanionError(f"endpoint {self.url} failed after {self.retries + 1} attempts: {last}")

    def _post(self, body: bytes) -> bytes:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        parts = urllib.parse.urlsplit(self.url)
        connection = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        conn = connection(parts.hostname or "", parts.port, timeout=self.timeout_s)
        # The socket timeout bounds each receive; the watchdog bounds the whole exchange, so a server
        # that sends its headers or its body a byte now and then cannot hold a comment worker past it.
        expired = threading.Event()
        too_slow = f"no whole reply within the {self.timeout_s:g} s timeout"
        watchdog = threading.Timer(self.timeout_s, _cut, (conn, expired))
        watchdog.daemon = True
        watchdog.start()
        try:
            conn.request("POST", urllib.parse.urlunsplit(("", "", parts.path, parts.query, "")), body, headers)
            resp = conn.getresponse()
            if 300 <= resp.status < 400:
                where = resp.getheader("Location", "")
                raise CompanionError(
                    f"endpoint answered with a redirect ({resp.status}) to {where!r}; give the final URL"
                )
            if resp.status in _RETRY_STATUS:
                raise _Retryable(f"HTTP {resp.status}")
            if not 200 <= resp.status < 300:
                raise CompanionError(
                    f"endpoint {self.url} answered HTTP {resp.status} {resp.reason}; check URL, model and key"
                )
            declared = resp.getheader("Content-Length", "")
            if declared.isdigit() and int(declared) > MAX_RESPONSE_BYTES:
                raise CompanionError(f"endpoint reply is larger than {MAX_RESPONSE_BYTES} bytes ({declared})")
            raw = _read_capped(resp)
        except (OSError, http.client.HTTPException) as e:
            if expired.is_set():
                raise _Retryable(too_slow) from e
            raise _Retryable(f"cannot connect or read: {type(e).__name__}: {e}") from e
        finally:
            watchdog.cancel()
            conn.close()
        if expired.is_set():  # the cut socket read as the end of the reply
            raise _Retryable(too_slow)
        return raw


def _cut(conn: http.client.HTTPConnection, expired: threading.Event) -> None:
    """Wake a receive that waits on ``conn``: the watchdog's end of the timeout."""
    expired.set()
    if conn.sock is not None:
        with contextlib.suppress(OSError):  # already closed
            conn.sock.shutdown(socket.SHUT_RDWR)


def _read_capped(resp: http.client.HTTPResponse) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        # read1: what one receive brings, so the cap is checked as the bytes come.
        chunk = resp.read1(65536)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > MAX_RESPONSE_BYTES:
            raise CompanionError(f"endpoint reply is larger than {MAX_RESPONSE_BYTES} bytes")
        chunks.append(chunk)


def _parse(raw: bytes) -> str:
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CompanionError(f"endpoint reply is not JSON: {e}") from e
    try:
        content = data["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError) as e:
        raise CompanionError("endpoint reply lacks choices[0].message.content") from e
    if not isinstance(content, str) or not content.strip():
        raise CompanionError("endpoint reply content is empty or not text")
    return _without_thinking(content)


def _without_thinking(content: str) -> str:
    """The answer in ``content`` without a reasoning model's thinking (DeepSeek-R1, Qwen3 …), which comes
    first between <think> tags and retells the system prompt: only what follows the thinking is the reply."""
    *thinking, answer = _THINKING_END.split(content)
    if not thinking and _THINKING_START.match(content):
        answer = ""  # the thinking never ended: the model ran out of tokens before answering
    if not answer.strip():
        raise CompanionError("endpoint reply holds only the model's thinking, no answer")
    return answer.strip()
