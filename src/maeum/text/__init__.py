"""Korean text emotion for diary entries: a lexicon and rules, no model, no external analyser."""

from maeum.text.emotion import LABELS, TextEmotion, TextEmotionConfig, analyze_text, disagreement

__all__ = ["LABELS", "TextEmotion", "TextEmotionConfig", "analyze_text", "disagreement"]
