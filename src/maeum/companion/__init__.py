"""The AI companion: a short Korean comment on a diary entry, from an LLM endpoint or offline templates."""

from __future__ import annotations

from maeum.companion.comment import Comment, write_comment
from maeum.companion.context import CommentContext
from maeum.companion.endpoint import ChatClient, check_endpoint_url
from maeum.companion.offline import offline_comment
from maeum.companion.prompt import build_messages, system_prompt
from maeum.companion.settings import CompanionError, CompanionSettings, Endpoint

__all__ = [
    "ChatClient",
    "Comment",
    "CommentContext",
    "CompanionError",
    "CompanionSettings",
    "Endpoint",
    "build_messages",
    "check_endpoint_url",
    "offline_comment",
    "system_prompt",
    "write_comment",
]
