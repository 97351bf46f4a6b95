"""Words that may mean suicidal thoughts or self-harm, in Korean and English: a safety net, not a diagnosis.

``crisis_signs`` looks for a short list of phrases (자살, 죽고 싶다, 살고 싶지 않다, 사라지고 싶다,
자해, 목숨을 끊다, 극단적 선택 …; suicide, kill myself, want to die, self-harm …) with their common
spacing and endings, so that the companion can stop cheering and point to help whatever wrote the
comment. It errs on the side of caution (``죽고 싶을 만큼 창피했다`` counts), but the everyday
intensifier ``죽겠다`` (``배고파 죽겠다``, ``웃겨 죽겠어``, ``죽을 만큼 피곤``), the praise ``끝내준다``
(``인생 끝내주네``), the banter ``너 죽을래?``, ``ㅈㅅ`` alone (mostly 죄송, sorry), a task to finish
(``숙제 다 끝내고 싶다``) and dyeing one's hair (``I want to die my hair``) do not. It cannot see
distress that is not put into these words; a missing match never means a person is safe.
"""

from __future__ import annotations

import re

# A space in a pattern is any run of whitespace, or none: 죽고 싶 covers 죽고싶다, 죽고  싶어.
_KOREAN: tuple[str, ...] = (
    r"(?<![남여])자살(?!골)",  # not 자살골 (an own goal), 여자 살빼기 written as one word
    r"자해(?!공갈)",
    r"ㅈㅅ (?:하고 (?:싶|시퍼)|할까|해 버릴)",  # ㅈㅅ alone is mostly 죄송 (sorry)
    r"죽(?:고|구) (?:만 )?(?:싶|시퍼|십)",
    r"죽어 버리(?:고 싶|자)|죽어 버릴(?:까|래|거)",
    r"죽어야겠|죽는 (?:게|것이|편이) (?:낫|나을|나아)|죽었으면 좋겠|차라리 죽",
    r"(?:나|난|나는|그냥) 죽을래(?! ?\?)",  # not the banter 너 죽을래? / 죽을래?
    r"뒤지고 (?:싶|시퍼)",
    r"(?:살고|살아 있고) 싶지 (?:가 |는 |도 )?않",
    r"그만 살고 (?:싶|시퍼)",
    r"살고 싶은 (?:마음|생각)(?:이|도)? 없",
    r"살기 (?:가 |도 )?싫",
    r"(?:살|살아 갈) (?:이유|의미|자신|힘)(?:이|가|도)? 없",
    r"사는 (?:게|것이|것도) (?:의미(?:가|도)? 없|무의미)",
    r"(?:사라지|없어지|사라져 버리|없어져 버리)고 (?:만 )?(?:싶|시퍼)",
    # Not waking up again: 잠들어서 안 깨어났으면 좋겠다, 내일 눈을 뜨지 않았으면 해.
    r"(?:안 깨어났|깨어나지 않았|안 깼|깨지 않았|눈(?:을)? 안 떴|눈(?:을)? 뜨지 않았)으면 (?:좋겠|해)",
    r"영원히 잠들고 (?:싶|시퍼)",
    r"목숨(?:을|까지)? 끊(?!임)",  # not 끊임없이 (endlessly)
    r"(?:삶|인생|목숨)(?:을|를)? 끝내(?!주)",  # not 끝내주다 (awesome): 인생 끝내주네
    # Ending it all, with nothing named to finish: not 숙제 다 끝내고 싶다 (finish the homework).
    r"(?:^|(?<=[.!?…~\n])|(?<=[.!?…~\n]\s)|모든 (?:걸|것을?) |(?:이제|그냥|그만) (?:다 |전부 |모두 )?"
    r"|(?:힘들어서|힘들어|지쳐서|지쳤어|괴로워서|괴로워|버티기 힘들어서) )"
    r"(?:다 |전부 |모두 )?끝내(?: 버리)?고 (?:싶|시퍼)",
    r"극단적 (?:인 )?선택(?!지)",
    r"생을 마감",
    r"세상을 떠나고 싶",
    r"뛰어내리고 (?:싶|시퍼)",
    r"손목(?:을)? (?:긋|그었|그어|그을)",
    r"목을 매(?:달|고|려)|목 매달",
    r"수면제(?:를|을)? (?:모아|모으|모았)",
    r"유서(?:를|을)? (?:쓰|썼|써)",
)
_ENGLISH: tuple[str, ...] = (
    r"\bsuicid(?:e|al)",
    r"\bkill(?:ing|ed)? myself\b",
    # Not dyeing: I want to die my hair.
    r"\b(?:want|wanna|wanted|wanting) (?:to )?die\b(?! (?:my|the) (?:hair|beard|eyebrows|clothes|shirt|jeans|dress)\b)",
    r"\bwish (?:i|I) (?:was|were) dead\b|\bbetter off dead\b",
    r"\bend(?:ing)? (?:my life|it all)\b|\btake my (?:own )?life\b",
    r"\bself[- ]?harm",
    r"\b(?:hurt|hurting|harm|harming|cut|cutting) myself\b",
    r"\b(?:don'?t|do not|no longer) want to (?:live|be alive|exist|wake up)\b",
    r"\bno reason to (?:live|go on)\b",
    r"\bbetter off without me\b",
    r"\b(?:want|wanna|wanted|wanting) to disappear\b",
)
_PATTERN = re.compile(
    "|".join([*(p.replace(" ", r"\s*") for p in _KOREAN), *(p.replace(" ", r"\s+") for p in _ENGLISH)]),
    re.IGNORECASE,
)
_MAX_CHARS = 100_000


def crisis_signs(text: str) -> tuple[str, ...]:
    """The phrases in ``text`` that may mean suicidal thoughts or self-harm, as written, in order.

    Empty when there are none. Raises ``TypeError`` for a value that is not a ``str``. Text beyond
    100,000 characters is ignored.
    """
    if not isinstance(text, str):
        raise TypeError(f"crisis_signs expects str, got {type(text).__name__}; decode bytes first")
    return tuple(m.group(0) for m in _PATTERN.finditer(text[:_MAX_CHARS]))
