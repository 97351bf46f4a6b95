"""Emotion label sets and their display names.

A model stores its own label list (English keys) in its metadata; this module only
translates keys to the names users see.
"""

from __future__ import annotations

# FER+ order restricted to the seven classes used by the FER+ majority-vote protocol.
FERPLUS7: tuple[str, ...] = (
    "neutral",
    "happiness",
    "surprise",
    "sadness",
    "anger",
    "disgust",
    "fear",
)

# Display names for every label key maeum knows, including the AI Hub Korean classes.
_KOREAN: dict[str, str] = {
    "neutral": "중립",
    "happiness": "기쁨",
    "surprise": "놀람",
    "sadness": "슬픔",
    "anger": "분노",
    "disgust": "혐오",
    "fear": "공포",
    "contempt": "경멸",
    "embarrassment": "당황",
    "anxiety": "불안",
    "hurt": "상처",
}

LANGUAGES: tuple[str, ...] = ("en", "ko")


def display_name(label: str, lang: str = "en") -> str:
    """Return the name of ``label`` in ``lang`` ("en" or "ko"); unknown keys pass through."""
    if lang not in LANGUAGES:
        raise ValueError(f"unknown language {lang!r}; choose one of {', '.join(LANGUAGES)}")
    if lang == "ko":
        return _KOREAN.get(label, label)
    return label
