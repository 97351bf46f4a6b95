"""Words that may mean suicidal thoughts or self-harm, in Korean and English: a safety net, not a diagnosis.

``crisis_signs`` looks for a short list of phrases (자살, 죽고 싶다, 살고 싶지 않다, 사라지고 싶다,
태어나지 말았어야, 자해, 목숨을 끊다, 극단적 선택, 내가 없으면 다들 편할 …; suicide, kill myself, want
to die, self-harm, wish I was never born …) with their common spacing and endings, so that the
companion can stop cheering and point to help whatever wrote the comment. It errs on the side of
caution (``죽고 싶을 만큼 창피했다`` and ``사라지고 싶을 만큼 창피했다`` count), but the everyday
intensifier ``죽겠다`` (``배고파 죽겠다``, ``웃겨 죽겠어``, ``죽을 만큼 피곤``), ``죽고 못 사는 사이``,
the praise ``끝내준다`` (``인생 끝내주네``), the banter ``너 죽을래?``, ``ㅈㅅ`` alone (mostly 죄송,
sorry), a task to finish (``숙제 다 끝내고 싶다``, ``빨리 일 다 끝내고 싶다``), buying (``새 폰을 살 이유가
없다``), dyeing one's hair (``I want to die my hair``) and slicing cake (``cut myself a slice``) do
not. It cannot see distress that is not put into these words; a missing match never means a person
is safe.
"""

from __future__ import annotations

import re

# A space in a pattern is any run of whitespace, or none: 죽고 싶 covers 죽고싶다, 죽고  싶어. A lookbehind
# keeps a fixed width, so it never holds a space: it says \s.

# Ending it all (다 끝내고 싶다) is a crisis when nothing named is to be finished, a task when something is
# (숙제 다 끝내고 싶다, 빨리 일 다 끝내고 싶다, 오늘 안에 보고서 다 끝내고 싶다). So the verb counts only after
# a run of adverbs that begins where a sentence or a clause begins, with no noun in between.
_ALL = r"(?:다|전부|모두|몽땅)"
_SPEED = r"(?:빨리|얼른)"  # task words: they count before 다 (빨리 다 끝내고 싶다), never alone (빨리 끝내고 싶다)
_ADVERB = (
    r"(?:정말(?:로)?|진짜(?:로)?|진심(?:으로)?|너무|그냥|그저|이제(?:는)?|이젠|차라리|그만|제발|아예|확|솔직히"
    r"|요즘|요새|자꾸|계속|오늘따라)"
)
_END_IT = r"(?:끝내(?: 버리)?고 (?:싶|시퍼)|(?:끝냈|끝내 버렸)으면 좋겠)"
# The text's start, or just after a sentence's stop (and one space).
_SENTENCE = r"(?:^|(?<=[.!?…~,;ㅠㅜ\n])|(?<=[.!?…~,;ㅠㅜ\n]\s))"
# Being worn out, at the end of a clause: 너무 힘들어서 다 끝내고 싶다, 지쳤어 그냥 끝내고 싶어.
_WORN_OUT = (
    r"(?:힘들(?:어서|어요|어|다|고|었어|었다|지만|네)|힘드니까|힘든데|지쳐(?:서|요)?|지쳤(?:어요|어|다|고)|지친다"
    r"|(?:괴로|외로|버거|지겨|서러)워(?:서|요)?|(?:괴롭|외롭|버겁|지겹|서럽)다|(?:우울|답답|지긋지긋)해(?:서|요)?"
    r"|(?:우울|답답|지긋지긋)하다|싫어(?:서|요)?|싫다|버티기 힘들어서)"
)
# Any other end of a clause (혼났다 그냥 다…, 지겹고 그냥 다…, 했는데 정말 다 끝내고 싶어): an adverb must follow.
_CLAUSE = r"(?:(?<=\S[다요고]\s)|(?<=\S(?:는데|은데|니까|지만|어서|아서|해서|워서)\s)|(?<=때문에\s))"
# Or a word of when (오늘도 그냥 다 끝내고 싶다), likewise followed by an adverb: 오늘은 다 끝내고 싶다 is a plan.
_WHEN = r"(?<!\S)(?:오늘은|오늘도|요즘은|요즘도|이번엔|가끔은|가끔|문득|밤마다|매일|맨날)"
_END_IT_ALL: tuple[str, ...] = (
    rf"{_SENTENCE}(?:(?:{_ADVERB}|{_SPEED}|{_ALL}) ){{0,4}}{_ALL} (?:{_ADVERB} ){{0,2}}{_END_IT}",
    rf"(?:{_SENTENCE}|{_WORN_OUT} |(?<!\S)(?:나|난|나는|나도) |모든 (?:걸|것을?) )(?:(?:{_ADVERB}|{_ALL}) ){{0,5}}"
    rf"{_END_IT}",
    rf"(?:{_CLAUSE}|{_WHEN} )(?:{_ALL} )?{_ADVERB} (?:(?:{_ADVERB}|{_ALL}) ){{0,4}}{_END_IT}",
)
# Oneself as the subject, not part of a longer word (하나, 하나같이).
_ME = r"(?<![가-힣])(?:내가|나는|난|나|제가|저는)"

_KOREAN: tuple[str, ...] = (
    r"(?<![남여])자살(?!골)",  # not 자살골 (an own goal), 여자 살빼기 written as one word
    r"자해(?!공갈)",
    r"ㅈㅅ (?:하고 (?:싶|시퍼)|할까|해 버릴)",  # ㅈㅅ alone is mostly 죄송 (sorry)
    r"죽(?:고|구) (?:만 )?(?:싶|시퍼|십|파(?!티))",  # 죽고 싶다, 죽고파; not 죽고 못 사는 사이 (inseparable)
    r"죽어 버리(?:고 싶|자)|죽어 버릴(?:까|래|거)",
    r"죽어야겠|죽는 (?:게|것이|편이) (?:낫|나을|나아)|죽었으면 좋겠|차라리 죽",
    r"(?:나|난|나는|그냥) 죽을래(?! ?\?)",  # not the banter 너 죽을래? / 죽을래?
    r"(?:뒤지|디지)고 (?:싶|시퍼)|(?:뒤져|디져) 버리고 (?:싶|시퍼)",
    # Thinking of dying: not the fear 이러다 죽을까 봐, nor porridge (편하게 죽을 먹었다).
    r"(?:그냥|차라리|확|콱) 죽을까|죽을까 (?:생각|고민)|죽을 (?:생각|궁리)",
    r"(?:편하게|안 아프게|아프지 않게|고통 없이) 죽(?:는|을 수|고)",
    r"죽으면 (?:편해|편할|편하|편안|나을|나아|낫|(?:다 |모든 게 )?끝날(?:까| 텐데| 것 같| 거))",  # not 죽으면 끝이야
    r"죽(?:음|는 것|는 거|는 길)(?: 말고는|밖에|뿐)(?:이)? (?:답|방법|길|없)",
    r"(?:살고|살아 있고) 싶지 (?:가 |는 |도 )?않",
    r"그만 살고 (?:싶|시퍼)",
    r"살고 싶은 (?:마음|생각)(?:이|도)? 없",
    r"(?:살기|살아 가기|살아 있기) (?:가 |도 )?싫",
    # Not buying: 새 폰을 살 이유가 없다, 그걸 살 이유가 없다.
    r"(?<![을를걸])(?<![을를걸]\s)(?:살|살아 갈|살아야 (?:할|하는)) (?:이유|의미|자신|힘|자격)(?:이|가|도|을|를)?"
    r" (?:없|모르)",
    # 살 가치가 없다 alone is mostly "not worth buying": only with oneself as the subject.
    rf"(?:살아 갈|살아 있을) 가치(?:가|도)? 없|{_ME} (?:더 이상 |이제 )?살 가치(?:가|도)? 없",
    r"사는 (?:게|것이|것도|거) (?:의미(?:가|도)? 없|무의미|지옥|고통)",
    r"살아 있는 (?:게|것이|것도|거|것 자체가) (?:의미(?:가|도)? 없|무의미|싫|지옥|고통|괴롭)",
    # What for: not 혼자 살아서 뭐 해 먹을지 (what to cook) nor 부산에 살아서 (because I live in Busan).
    r"(?<!에)(?<!에\s)(?:살아서|살아 봤자|살아 봐야|살아 있어 봤자) (?:(?:뭐|뭣|무엇) (?:해|하|할|함)(?! 먹)"
    r"|(?:무슨|아무) (?:의미|소용))",
    r"숨 (?:쉬는|쉬기) (?:것|게|거)?(?:도|조차)? 싫",
    r"존재하고 싶지 (?:가 |는 )?않",
    # Wanting to vanish. ``사라지고 싶을 만큼 창피했다`` counts too: embarrassment is the likelier meaning, but the
    # words are the same as real distress, and a false alarm costs a kind note where a miss costs far more.
    r"(?:사라지|없어지|사라져 버리|없어져 버리|증발하|증발해 버리)고 (?:만 )?(?:싶|시퍼)",
    rf"(?:{_ME}|세상에서) (?:그냥 |차라리 |영영 |이대로 )?(?:없어졌|사라졌|없어져 버렸|사라져 버렸|존재하지 않았)으면"
    r" (?:좋겠|해|한다)",
    r"태어나지 (?:말았어야|말 걸|말았으면)|(?:태어나지 않았|안 태어났)으면 (?:좋았|좋겠|했)|태어난 게 (?:죄|잘못|실수)",
    # Not worth anything to anyone: 나 같은 건 없어져야 해, 내가 없으면 다들 편할 거야, 내가 죽어도 아무도 모를 거야.
    # ``내가 없으면 다들 편하게 쉬겠지`` counts too: feeling a burden is a warning sign, whatever the occasion.
    r"(?<![가-힣])(?:나|저) (?:같은|따위) (?:건|게|거|애|놈|년|사람|인간|존재)?(?:은|는|이|가)?"
    r" (?:그냥 |차라리 |빨리 )?(?:없어져야|사라져야|죽어야|없어지는 게|사라지는 게|죽는 게|없는 게|태어나지)",
    r"(?<![가-힣])(?:내가|나만|나 하나(?:만)?|나|제가|저만)"
    r" (?:없으면|없어지면|사라지면|죽으면|죽어도|없어져도|사라져도)[^.!?\n]{0,15}?"
    r"(?:편하|편할|편해|행복하|행복할|행복해|나을|나아|낫|아무도 (?:모|안 슬|슬퍼|신경|찾))",
    # Not waking up again: 잠들어서 안 깨어났으면 좋겠다, 내일 눈을 뜨지 않았으면 해, 잠들고 깨지 않았으면….
    # Not 알람에 안 깼으면 지각할 뻔했다.
    r"(?:안 깨어났|깨어나지 않았|안 깼|깨지 않았|눈(?:을)? 안 떴|눈(?:을)? 뜨지 않았)으면"
    r"(?: (?:좋겠|해)|(?=\s*(?:[.…~\n]|$)))",
    r"영원히 잠들고 (?:싶|시퍼)",
    r"목숨(?:을|까지)? 끊(?!임)",  # not 끊임없이 (endlessly)
    r"(?:삶|인생|목숨)(?:을|를)? 끝내(?!주)",  # not 끝내주다 (awesome): 인생 끝내주네
    *_END_IT_ALL,
    r"극단적 (?:인 )?선택(?!지)",
    r"생을 마감",
    r"세상(?:을)? (?:떠나|뜨)고 (?:싶|시퍼)",  # not 세상을 떠나신 할머니
    # Jumping: not 뛰어내리는 장면 (a scene in a film).
    r"뛰어내리고 (?:싶|시퍼)|뛰어내릴까|뛰어내려 버릴"
    r"|(?:옥상|난간|다리|한강|베란다|창문|창밖|아파트)(?:에서|으로|로)? (?:그냥 |확 )?(?:뛰어내리고|뛰어내릴|투신)",
    r"(?:차|차도|도로|선로|철로|지하철|기차|트럭)(?:에|로|으로)? (?:그냥 |확 )?뛰어들(?:고 (?:싶|시퍼)|까|어 버릴)",
    r"(?:차|트럭|버스)에 (?:그냥 |확 )?치였으면 (?:좋겠|해)",
    r"한강 (?:물 )?(?:온도|수온)",  # a euphemism
    r"(?:손목|팔|허벅지)(?:을|를)? (?:긋|그었|그어|그을)",
    r"칼로 (?:긋|그어 버리)고 (?:싶|시퍼)",
    r"(?:몸|팔|손목|허벅지)에 (?:일부러 )?상처(?:를)? (?:내|냈)",  # not 팔에 상처가 났다 (an accident)
    r"(?:나 자신|내 자신|자기 자신|스스로)(?:을|를)? (?:죽이|해치|해쳤|다치게 하|다치게 했)",
    r"목을 매(?:달|고|려)|목 매달",
    r"수면제(?:를|을)? (?:모아|모으|모았)",
    r"(?:약|알약|수면제|진통제|타이레놀)(?:을|를)? (?:한꺼번에|잔뜩|왕창|통째로|한 통) (?:먹|삼키|삼켰)|과다 복용",
    r"유서(?:를|을)? (?:쓰|썼|써)",
)
# Not dyeing: I want to die my hair.
_NOT_DYE = r"(?! (?:my|the) (?:hair|beard|eyebrows|clothes|shirt|jeans|dress)\b)"
_ENGLISH: tuple[str, ...] = (
    r"\bsuicid(?:e|al)",
    r"\bkill(?:ing|ed)? myself\b",
    rf"\b(?:want|wanna|wanted|wanting) (?:to )?die\b{_NOT_DYE}",
    rf"\bI (?:should|might as well) (?:just )?die\b{_NOT_DYE}",  # not I could just die (of embarrassment)
    r"\bwish (?:i|I) (?:was|were) dead\b|\bbetter off dead\b",
    r"\bwish I(?: was| were|'d| had)? never (?:been )?born\b",
    r"\bend(?:ing)? (?:my life|it all)\b|\btake my (?:own )?life\b",
    r"\bself[- ]?harm",
    # Not cutting myself a slice of cake, nor cut myself shaving.
    r"\b(?:hurt|hurting|harm|harming|cut|cutting) myself\b(?! (?:a|an|some|another|the|shaving|while|cooking|chopping"
    r"|slicing|playing|on (?:a|an|the|some|glass|paper)|at (?:the gym|work|practice)|by accident|accidentally)\b)",
    r"\b(?:don'?t|do not|no longer) want to (?:live|be alive|exist|wake up)\b",
    r"\b(?:don'?t|do not) want to be (?:here|around) any\s?more\b",
    r"\bhope I (?:don'?t|do not|never|won'?t) wake up(?=\s*(?:again|tomorrow|ever\s+again)?\s*(?:[.!…,;\n]|$))",
    r"\bno reason to (?:live|go on)\b|\bcan'?t go on (?:any\s?more|any longer|living)\b",
    r"\bnot worth living\b|\blife (?:isn'?t|is not) worth (?:it|living)\b|\bdone with (?:life|living)\b",
    r"\bbetter off without me\b|\bbetter off (?:if|when) I(?:'m| am| was| were) (?:dead|gone)\b",
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
