"""Write one companion comment: ask the configured LLM endpoint, fall back to the offline generator.

Endpoint problems (a refused URL, a timeout, an error status, a garbage or non-Korean reply) never raise:
the offline generator writes the comment instead and :attr:`Comment.error` says what went wrong. A diary
with words of suicidal thoughts or self-harm is never sent to the endpoint: it gets the fixed answer
with help lines of :mod:`maeum.companion.safety`, so safety does not depend on a model.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from maeum.companion.context import CommentContext
from maeum.companion.endpoint import ChatClient, check_endpoint_url
from maeum.companion.offline import offline_comment
from maeum.companion.prompt import build_messages
from maeum.companion.settings import CompanionError, CompanionSettings, Endpoint
from maeum.text.emotion import can_read

log = logging.getLogger(__name__)

MAX_LLM_CHARS = 2000
SENTENCE_END = r"[.!?~…。]"  # what ends a sentence (Korean uses the same marks)
_HANGUL = re.compile(r"[가-힣]")


class Completer(Protocol):
    """What :func:`write_comment` needs from a client."""

    def complete(self, messages: Sequence[dict[str, str]], temperature: float, max_tokens: int) -> str: ...


ClientFactory = Callable[[Endpoint], Completer]


def default_client(endpoint: Endpoint) -> Completer:
    """A :class:`ChatClient` for ``endpoint`` with the default timeout and retries."""
    return ChatClient(endpoint.base_url, endpoint.model, endpoint.api_key)


@dataclass(frozen=True)
class Comment:
    """A written comment: ``source`` is "llm" or "offline"; ``error`` says why the endpoint was not used;
    ``shortened``: the text was cut to a length limit (a diary draft from a long chat)."""

    text: str
    source: Literal["llm", "offline"]
    error: str | None = None
    shortened: bool = False


def _is_korean(text: str) -> bool:
    """Whether a reply is Korean: it has Hangul, and no more words in Latin letters than with Hangul (an
    English word or two is fine; a model that answers in English or Chinese is not)."""
    return bool(_HANGUL.search(text)) and can_read(text)


def ask_or_offline(
    settings: CompanionSettings,
    messages: Sequence[dict[str, str]],
    max_tokens: int,
    offline: Callable[[], str],
    client_factory: ClientFactory,
    what: str,
) -> Comment:
    """The endpoint's reply to ``messages`` when ``settings`` has one and it works, else ``offline()``.

    Endpoint problems (a refused URL, a timeout, an error status, a garbage reply, a reply that is not
    Korean) never raise; :attr:`Comment.error` says what went wrong. ``what`` names the text in the log
    ("comment", "draft").
    """
    endpoint = settings.endpoint
    if endpoint is None:
        return Comment(offline(), "offline")
    try:
        check_endpoint_url(endpoint.base_url, settings.allow_private_endpoint)
        text = client_factory(endpoint).complete(messages, temperature=settings.temperature, max_tokens=max_tokens)
        if not _is_korean(text):
            raise CompanionError("endpoint replied in another language; the companion writes Korean")
        return Comment(shorten(text, MAX_LLM_CHARS), "llm")  # a long reply ends after a whole sentence
    except CompanionError as e:
        error = str(e)
    except Exception as e:  # the diary must never break on the companion: fall back on anything
        error = f"{type(e).__name__}: {e}"
    log.warning("companion endpoint %s not used for the %s, writing it offline: %s", endpoint.base_url, what, error)
    return Comment(offline(), "offline", error)


def write_comment(
    context: CommentContext,
    settings: CompanionSettings,
    client_factory: ClientFactory = default_client,
    seed: int = 0,
) -> Comment:
    """A comment on one user's ``context``; the endpoint in ``settings`` if any, else offline.

    A diary with words of suicidal thoughts or self-harm gets the offline writer's safety answer
    without asking the endpoint.
    """
    if context.in_crisis:
        log.info("the diary may speak of suicide or self-harm: the comment shows help lines, no endpoint asked")
        return Comment(offline_comment(context, settings, seed), "offline")
    return ask_or_offline(
        settings,
        build_messages(context, settings),
        settings.target_chars * 3,
        lambda: offline_comment(context, settings, seed),
        client_factory,
        "comment",
    )


def shorten(text: str, max_chars: int) -> str:
    """``text`` if it fits in ``max_chars``, else cut there: after the last sentence within the limit, or
    else at the last space (a word is never cut in two), or where the limit falls in a text without one.
    A cut that would keep less than half the limit falls back to the next rule."""
    if len(text) <= max_chars:
        return text
    head = text[: max_chars + 1]  # + 1: a sentence or word that ends exactly at the limit is kept whole
    ends = [m.end() for m in re.finditer(SENTENCE_END + r"(?=\s)", head) if m.end() <= max_chars]
    if ends and ends[-1] >= max_chars // 2:
        return text[: ends[-1]]
    space = head.rfind(" ")
    if space >= max_chars // 2:
        return text[:space].rstrip()
    return text[:max_chars]
