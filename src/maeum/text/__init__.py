"""Korean text emotion for diary entries (a lexicon and rules, no model, no external analyser), and a
safety net for words of suicidal thoughts or self-harm in Korean and English."""

from maeum.text.crisis import crisis_signs
from maeum.text.emotion import (
    LABELS,
    TextEmotion,
    TextEmotionConfig,
    analyze_text,
    can_read,
    disagreement,
    is_clear,
)

__all__ = [
    "LABELS",
    "TextEmotion",
    "TextEmotionConfig",
    "analyze_text",
    "can_read",
    "crisis_signs",
    "disagreement",
    "is_clear",
]
