"""Write one companion comment: ask the configured LLM endpoint, fall back to the offline generator.

Endpoint problems (a refused URL, a timeout, an error status, a garbage reply) never raise: the
offline generator writes the comment instead and :attr:`Comment.error` says what went wrong.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from maeum.companion.context import CommentContext
from maeum.companion.endpoint import ChatClient, check_endpoint_url
from maeum.companion.offline import offline_comment
from maeum.companion.prompt import build_messages
from maeum.companion.settings import CompanionError, CompanionSettings, Endpoint

log = logging.getLogger(__name__)

MAX_LLM_CHARS = 2000


class Completer(Protocol):
    """What :func:`write_comment` needs from a client."""

    def complete(self, messages: Sequence[dict[str, str]], temperature: float, max_tokens: int) -> str: ...


ClientFactory = Callable[[Endpoint], Completer]


def default_client(endpoint: Endpoint) -> Completer:
    """A :class:`ChatClient` for ``endpoint`` with the default timeout and retries."""
    return ChatClient(endpoint.base_url, endpoint.model, endpoint.api_key)


@dataclass(frozen=True)
class Comment:
    """A written comment: ``source`` is "llm" or "offline"; ``error`` says why the endpoint was not used."""

    text: str
    source: Literal["llm", "offline"]
    error: str | None = None


def write_comment(
    context: CommentContext,
    settings: CompanionSettings,
    client_factory: ClientFactory = default_client,
    seed: int = 0,
) -> Comment:
    """A comment on one user's ``context``; the endpoint in ``settings`` if any, else offline."""
    endpoint = settings.endpoint
    if endpoint is None:
        return Comment(offline_comment(context, settings, seed), "offline")
    try:
        check_endpoint_url(endpoint.base_url, settings.allow_private_endpoint)
        client = client_factory(endpoint)
        text = client.complete(
            build_messages(context, settings),
            temperature=settings.temperature,
            max_tokens=settings.target_chars * 3,
        )
        return Comment(text[:MAX_LLM_CHARS], "llm")
    except CompanionError as e:
        error = str(e)
    except Exception as e:  # a companion comment must never break the diary: fall back on anything
        error = f"{type(e).__name__}: {e}"
    log.warning("companion endpoint %s not used, writing offline: %s", endpoint.base_url, error)
    return Comment(offline_comment(context, settings, seed), "offline", error)
