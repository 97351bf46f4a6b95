"""The data one comment is written from: one user's name, introduction, diary text and emotions."""

from __future__ import annotations

from dataclasses import dataclass

from maeum.companion.settings import CompanionError
from maeum.text.crisis import crisis_signs

MAX_DIARY_CHARS = 4000
MAX_INTRO_CHARS = 500
MAX_NAME_CHARS = 40


@dataclass(frozen=True)
class CommentContext:
    """One user's entry: ``face_emotion`` is a label key (e.g. "sadness").

    ``text_emotion`` is the diary text's emotion when it was read clearly (``maeum.text.is_clear``), else
    None: a text that says too little, or one ``maeum.text`` cannot read (not Korean); the comment then
    claims no feeling from the words. A clear text feeling leads the offline comment. ``emotions_disagree``
    says the face and the text emotion do not match; the companion then asks gently. ``crisis`` marks a
    diary with words of suicidal thoughts or self-harm that ``diary_text`` may have been cut before;
    the diary text itself is always checked too (:attr:`in_crisis`).
    """

    user_name: str
    diary_text: str
    face_emotion: str
    user_intro: str = ""
    text_emotion: str | None = None
    emotions_disagree: bool = False
    crisis: bool = False

    def __post_init__(self) -> None:
        if not self.face_emotion:
            raise CompanionError("face_emotion is empty; pass a label such as 'happiness'")
        if len(self.user_name) > MAX_NAME_CHARS:
            raise CompanionError(f"user_name is longer than {MAX_NAME_CHARS} characters")
        if len(self.user_intro) > MAX_INTRO_CHARS:
            raise CompanionError(f"user_intro is longer than {MAX_INTRO_CHARS} characters")
        if len(self.diary_text) > MAX_DIARY_CHARS:
            raise CompanionError(f"diary_text is longer than {MAX_DIARY_CHARS} characters; shorten it")

    @property
    def in_crisis(self) -> bool:
        """Whether the diary holds words of suicidal thoughts or self-harm: the comment then shows help."""
        return self.crisis or bool(crisis_signs(self.diary_text))
