"""What the companion says when a diary or a chat message holds words of suicidal thoughts or self-harm.

Such text gets this fixed, careful answer whoever would have written the comment (an LLM endpoint is
not asked, so nothing depends on how a model reacts): it does not cheer, does not quote the words
back, and says where help is right now. Recognising the words is :func:`maeum.text.crisis_signs`, a
short word list: a safety net, not a diagnosis.
"""

from __future__ import annotations

from maeum.text.crisis import crisis_signs

# Korean help lines: the 24-hour suicide prevention line and the mental health crisis line.
HELP_LINES: tuple[str, ...] = ("자살예방상담전화 109 (24시간)", "정신건강위기상담 1577-0199")

# (반말, 존댓말) pairs, in the order they are said.
_CARE = (
    (
        "요즘 정말 많이 힘들었구나. 그런 마음까지 들 만큼 버거웠다는 게 느껴져.",
        "요즘 정말 많이 힘드셨군요. 그런 마음까지 드실 만큼 버거우셨다는 게 느껴져요.",
    ),
    (
        "이렇게 털어놓아 줘서 고마워. 혼자 견디지 않아도 돼.",
        "이렇게 털어놓아 주셔서 고마워요. 혼자 견디지 않으셔도 돼요.",
    ),
)
_HELP = (
    f"지금 바로 이야기 나눌 사람이 필요하면 {HELP_LINES[0]}, {HELP_LINES[1]}에 전화해 줘. "
    "당장 위험하다면 119에 연락해 줘.",
    f"지금 바로 이야기 나눌 사람이 필요하시면 {HELP_LINES[0]}, {HELP_LINES[1]}에 전화해 주세요. "
    "당장 위험하다면 119에 연락해 주세요.",
)
_CLOSING = (
    "믿을 수 있는 사람에게도 지금 마음을 꼭 말해 줘. 나도 여기서 네 이야기를 계속 들을게.",
    "믿을 수 있는 분께도 지금 마음을 꼭 말씀해 주세요. 저도 여기서 계속 이야기를 들을게요.",
)
_CHAT_CARE = (
    "그런 마음이 들 만큼 많이 힘들었구나. 말해 줘서 고마워, 혼자 견디지 않아도 돼.",
    "그런 마음이 드실 만큼 많이 힘드셨군요. 말씀해 주셔서 고마워요, 혼자 견디지 않으셔도 돼요.",
)
_CHAT_QUESTION = ("지금 곁에 있어 줄 수 있는 사람이 있을까?", "지금 곁에 있어 줄 수 있는 분이 계실까요?")


def in_crisis(text: str) -> bool:
    """Whether ``text`` holds words of suicidal thoughts or self-harm (:func:`maeum.text.crisis_signs`)."""
    return bool(crisis_signs(text))


def crisis_comment(greeting: str, polite: bool) -> list[tuple[str, str]]:
    """The comment on such a diary as ``(kind, sentence)`` pairs after ``greeting``: care, help, closing."""
    level = int(polite)
    return [
        ("greeting", greeting),
        *(("care", pair[level]) for pair in _CARE),
        ("help", _HELP[level]),
        ("closing", _CLOSING[level]),
    ]


def crisis_reply(polite: bool) -> str:
    """The chat's answer to such a message: care, help, and a gentle question about who is near."""
    level = int(polite)
    return " ".join((_CHAT_CARE[level], _HELP[level], _CHAT_QUESTION[level]))
