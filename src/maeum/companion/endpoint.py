"""An OpenAI-compatible chat client on the standard library, and the guard that vets endpoint URLs.

The guard keeps a configured endpoint from reaching the private network (SSRF): loopback is allowed
so a local Ollama or llama.cpp server works, any other non-public address needs ``allow_private``.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import re
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from typing import Any

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


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Refuse redirects: a redirect could lead past the URL guard."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        raise CompanionError(f"endpoint answered with a redirect ({code}) to {newurl!r}; give the final URL")


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
        # No proxies from the environment and no redirects: the request goes where the guard looked.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())

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
        req = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
        deadline = time.monotonic() + self.timeout_s
        try:
            with self._opener.open(req, timeout=self.timeout_s) as resp:
                return _read_capped(resp, deadline)
        except urllib.error.HTTPError as e:
            if e.code in _RETRY_STATUS:
                raise _Retryable(f"HTTP {e.code}") from e
            raise CompanionError(
                f"endpoint {self.url} answered HTTP {e.code} {e.reason}; check URL, model and key"
            ) from e
        except urllib.error.URLError as e:
            if isinstance(e.reason, CompanionError):
                raise e.reason from e
            raise _Retryable(f"cannot connect: {e.reason}") from e
        except (TimeoutError, ConnectionError) as e:
            raise _Retryable(f"{type(e).__name__}: {e}") from e
        except OSError as e:
            raise _Retryable(f"{type(e).__name__}: {e}") from e


def _read_capped(resp: Any, deadline: float) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        if time.monotonic() > deadline:
            raise TimeoutError("reading the reply took longer than the timeout")
        # read1: what one receive brings; read(n) would wait for all n bytes, so a server that sends a
        # byte now and then could hold the reply (and a comment worker) far past the deadline.
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
