"""The built-in offline companion: a Korean comment from templates, no network, deterministic per seed.

Every template comes in two speech levels, 반말 (friendly, playful) and 존댓말 (polite); playful adds light
emoji. Sentences are drawn from empathy / comfort / advice pools per emotion family until the comment
reaches roughly the target length; the family is the diary text's feeling when it is clear, else the
face's. A couple of nouns from the diary are mentioned; they are Hangul-only, so the diary can never
put markup or instructions into the comment. A diary with words of suicidal thoughts or self-harm gets
the fixed answer of :mod:`maeum.companion.safety` instead, whatever the settings.
"""

from __future__ import annotations

import html
import logging
import random
import re
from collections import Counter

from maeum.companion.context import CommentContext
from maeum.companion.safety import crisis_comment
from maeum.companion.settings import CompanionSettings
from maeum.labels import display_name

log = logging.getLogger(__name__)

# (반말, 존댓말) pairs.
Pair = tuple[str, str]

_FAMILY = {
    "neutral": "neutral",
    "happiness": "happy",
    "surprise": "surprise",
    "embarrassment": "surprise",
    "sadness": "sad",
    "hurt": "sad",
    "anger": "angry",
    "disgust": "angry",
    "contempt": "angry",
    "fear": "fear",
    "anxiety": "fear",
}

# Empathy for a feeling, whether the face or the words showed it. The neutral family is used only when
# neither the face nor the words show a clear feeling, so its lines may say the day was quiet.
_EMPATHY: dict[str, list[Pair]] = {
    "neutral": [
        ("오늘은 잔잔하게 흘러간 하루였구나.", "오늘은 잔잔하게 흘러간 하루였군요."),
        (
            "특별한 일이 없어도 하루를 기록한 건 참 멋진 일이야.",
            "특별한 일이 없어도 하루를 기록하신 건 참 멋진 일이에요.",
        ),
        ("평범한 하루도 충분히 소중해.", "평범한 하루도 충분히 소중해요."),
    ],
    "happy": [
        (
            "좋은 일이 있었나 봐, 그 설렘이 나한테까지 전해져.",
            "좋은 일이 있으셨나 봐요, 그 설렘이 저에게까지 전해져요.",
        ),
        ("오늘 하루가 반짝였구나.", "오늘 하루가 반짝이셨군요."),
        ("기분 좋은 하루를 보냈구나, 듣기만 해도 신나.", "기분 좋은 하루를 보내셨군요, 듣기만 해도 신나요."),
    ],
    "surprise": [
        ("깜짝 놀랄 만한 일이 있었구나.", "깜짝 놀랄 만한 일이 있으셨군요."),
        (
            "예상하지 못한 일이 생기면 마음이 한동안 두근거리지.",
            "예상하지 못한 일이 생기면 마음이 한동안 두근거리지요.",
        ),
        ("놀란 마음이 아직 가라앉지 않았을 수도 있겠다.", "놀란 마음이 아직 가라앉지 않으셨을 수도 있겠어요."),
        ("하루가 생각과 다르게 흘러갔구나.", "하루가 생각과 다르게 흘러갔군요."),
    ],
    "sad": [
        ("오늘 마음이 많이 무거웠구나.", "오늘 마음이 많이 무거우셨군요."),
        ("슬픈 마음을 이렇게 글로 꺼내 준 게 고마워.", "슬픈 마음을 이렇게 글로 꺼내 주셔서 고마워요."),
        ("말로 다 못 한 속상함이 있었을 것 같아.", "말로 다 못 하신 속상함이 있었을 것 같아요."),
        ("그런 날엔 눈물이 나도 괜찮아.", "그런 날엔 눈물이 나도 괜찮아요."),
    ],
    "angry": [
        ("오늘 정말 화가 났구나, 그럴 만했어.", "오늘 정말 화가 나셨군요, 그럴 만하셨어요."),
        ("마음에 안 드는 일이 겹치면 누구라도 속이 끓지.", "마음에 들지 않는 일이 겹치면 누구라도 속이 끓지요."),
        ("불편한 감정을 솔직하게 적은 게 멋져.", "불편한 감정을 솔직하게 적으신 게 멋져요."),
        ("참느라 애쓴 순간도 있었을 것 같아.", "참으시느라 애쓰신 순간도 있었을 것 같아요."),
    ],
    "fear": [
        ("오늘 많이 불안하고 무서웠구나.", "오늘 많이 불안하고 무서우셨군요."),
        ("걱정이 꼬리를 물면 마음이 쉽게 지치지.", "걱정이 꼬리를 물면 마음이 쉽게 지치지요."),
        (
            "두려운 마음을 적어 내려간 것만으로도 용기 있는 일이야.",
            "두려운 마음을 적어 내려가신 것만으로도 용기 있는 일이에요.",
        ),
        ("긴장한 몸도 오늘 고생 많았어.", "긴장한 몸도 오늘 고생 많으셨어요."),
    ],
}

# Lines about the face: only when the comment's feeling is the one the face showed.
_FACE_EMPATHY: dict[str, list[Pair]] = {
    "neutral": [("담담한 표정 뒤에 여러 생각이 오갔을 것 같아.", "담담한 표정 뒤에 여러 생각이 오가셨을 것 같아요.")],
    "happy": [
        (
            "얼굴에 기쁨이 가득했구나, 보는 나도 덩달아 기분이 좋아.",
            "얼굴에 기쁨이 가득하셨군요, 저도 덩달아 기분이 좋아요.",
        ),
        ("웃는 얼굴이 정말 잘 어울려.", "웃는 얼굴이 정말 잘 어울리세요."),
    ],
}

# The chat has no photo and a message is not a day: its neutral lines only listen.
_CHAT_NEUTRAL: list[Pair] = [
    ("그랬구나, 이야기해 줘서 고마워.", "그러셨군요, 이야기해 주셔서 고마워요."),
    ("응, 잘 듣고 있어.", "네, 잘 듣고 있어요."),
    ("그런 일이 있었구나.", "그런 일이 있으셨군요."),
]

_COMFORT: dict[str, list[Pair]] = {
    "neutral": [
        ("조용한 하루도 너를 단단하게 채워 주고 있어.", "조용한 하루도 당신을 단단하게 채워 주고 있어요."),
        ("아무 일 없던 날도 잘 버텨 낸 날이야.", "아무 일 없던 날도 잘 버텨 내신 날이에요."),
        ("오늘의 너도 충분히 잘하고 있어.", "오늘도 충분히 잘하고 계세요."),
    ],
    "happy": [
        (
            "이 기쁨은 네가 만들어 낸 거야, 마음껏 누려도 돼.",
            "이 기쁨은 스스로 만들어 내신 거예요, 마음껏 누리셔도 돼요.",
        ),
        ("좋은 날을 기억해 두면 힘든 날에 큰 힘이 돼.", "좋은 날을 기억해 두시면 힘든 날에 큰 힘이 돼요."),
        ("행복한 순간을 알아차린 너의 마음도 참 예뻐.", "행복한 순간을 알아차리신 마음도 참 예뻐요."),
    ],
    "surprise": [
        ("갑작스러운 일 앞에서도 잘 해냈어.", "갑작스러운 일 앞에서도 잘 해내셨어요."),
        (
            "놀란 마음은 시간이 지나면 천천히 자리를 찾아갈 거야.",
            "놀란 마음은 시간이 지나면 천천히 자리를 찾아갈 거예요.",
        ),
        ("당황해도 괜찮아, 누구나 그래.", "당황하셔도 괜찮아요, 누구나 그래요."),
    ],
    "sad": [
        (
            "지금 느끼는 슬픔은 지나가는 구름 같은 거야, 곧 맑아질 거야.",
            "지금 느끼시는 슬픔은 지나가는 구름 같아서 곧 맑아질 거예요.",
        ),
        ("혼자가 아니야, 내가 여기서 네 이야기를 듣고 있어.", "혼자가 아니에요, 제가 여기서 이야기를 듣고 있어요."),
        ("오늘 하루 버틴 것만으로도 정말 잘한 거야.", "오늘 하루 버티신 것만으로도 정말 잘하신 거예요."),
    ],
    "angry": [
        ("화가 나는 건 네가 소중한 걸 지키고 싶어서일 거야.", "화가 나는 건 소중한 걸 지키고 싶으셔서일 거예요."),
        ("그 감정은 잘못된 게 아니야, 충분히 그럴 수 있어.", "그 감정은 잘못된 게 아니에요, 충분히 그러실 수 있어요."),
        ("오늘의 속상함이 너의 전부는 아니야.", "오늘의 속상함이 당신의 전부는 아니에요."),
    ],
    "fear": [
        ("불안은 너를 지키려는 마음의 신호이기도 해.", "불안은 스스로를 지키려는 마음의 신호이기도 해요."),
        ("지금 여기, 너는 안전해.", "지금 여기, 당신은 안전해요."),
        ("걱정하는 일이 모두 일어나지는 않아.", "걱정하시는 일이 모두 일어나지는 않아요."),
    ],
}

_ADVICE: dict[str, list[Pair]] = {
    "neutral": [
        (
            "오늘 고마웠던 작은 일 하나를 떠올려 보는 건 어때?",
            "오늘 고마웠던 작은 일 하나를 떠올려 보시는 건 어떨까요?",
        ),
        ("내일은 좋아하는 음악 한 곡으로 하루를 시작해 봐.", "내일은 좋아하시는 음악 한 곡으로 하루를 시작해 보세요."),
        ("잠들기 전 가볍게 스트레칭을 해 보자.", "잠들기 전 가볍게 스트레칭을 해 보세요."),
    ],
    "happy": [
        ("이 기분을 고마운 사람과 나눠 보면 더 커질 거야.", "이 기분을 고마운 분과 나눠 보시면 더 커질 거예요."),
        ("오늘 좋았던 순간을 사진이나 메모로 남겨 두자.", "오늘 좋았던 순간을 사진이나 메모로 남겨 두세요."),
        ("내일도 작은 즐거움 하나를 계획해 봐.", "내일도 작은 즐거움 하나를 계획해 보세요."),
    ],
    "surprise": [
        ("따뜻한 물 한 잔 마시며 천천히 숨을 골라 봐.", "따뜻한 물 한 잔 드시며 천천히 숨을 골라 보세요."),
        (
            "있었던 일을 순서대로 적어 보면 마음이 정리될 거야.",
            "있었던 일을 순서대로 적어 보시면 마음이 정리될 거예요.",
        ),
        ("결정은 마음이 가라앉은 뒤에 해도 늦지 않아.", "결정은 마음이 가라앉은 뒤에 하셔도 늦지 않아요."),
    ],
    "sad": [
        ("오늘은 좋아하는 음식을 먹고 일찍 쉬어 보자.", "오늘은 좋아하시는 음식을 드시고 일찍 쉬어 보세요."),
        (
            "믿을 수 있는 사람에게 마음을 조금 나눠 보는 것도 좋아.",
            "믿을 수 있는 분께 마음을 조금 나눠 보시는 것도 좋아요.",
        ),
        ("잠깐 산책하며 바깥 공기를 마셔 보는 건 어때?", "잠깐 산책하며 바깥 공기를 마셔 보시는 건 어떨까요?"),
    ],
    "angry": [
        ("숨을 깊게 네 번 들이쉬고 내쉬어 봐.", "숨을 깊게 네 번 들이쉬고 내쉬어 보세요."),
        ("화난 이유를 한 줄로 적어 보면 생각이 또렷해져.", "화가 난 이유를 한 줄로 적어 보시면 생각이 또렷해져요."),
        ("중요한 대화는 마음이 식은 뒤에 해 보자.", "중요한 대화는 마음이 식은 뒤에 해 보세요."),
    ],
    "fear": [
        (
            "걱정되는 일을 적고, 지금 할 수 있는 일 하나만 골라 봐.",
            "걱정되는 일을 적고, 지금 할 수 있는 일 하나만 골라 보세요.",
        ),
        (
            "천천히 발바닥의 감각에 집중해 보면 마음이 가라앉을 거야.",
            "천천히 발바닥의 감각에 집중해 보시면 마음이 가라앉을 거예요.",
        ),
        (
            "불안이 오래가면 전문가와 이야기해 보는 것도 좋은 방법이야.",
            "불안이 오래가면 전문가와 이야기해 보시는 것도 좋은 방법이에요.",
        ),
    ],
}

# Emotion-agnostic sentences that lengthen a comment without repeating.
_EXTRA: dict[str, list[Pair]] = {
    "empathy": [
        ("네 마음을 이렇게 들여다볼 수 있어서 고마워.", "마음을 이렇게 나눠 주셔서 고마워요."),
        ("오늘의 감정 모두 너의 소중한 일부야.", "오늘의 감정 모두 소중한 일부예요."),
        ("글을 읽는 동안 네 하루가 눈앞에 그려지는 것 같았어.", "글을 읽는 동안 하루가 눈앞에 그려지는 것 같았어요."),
        ("그 순간 어떤 마음이었을지 나도 조금은 알 것 같아.", "그 순간 어떤 마음이셨을지 저도 조금은 알 것 같아요."),
        ("이런 하루를 보낸 너를 꼭 안아 주고 싶어.", "이런 하루를 보내신 마음을 따뜻하게 안아 드리고 싶어요."),
        ("솔직하게 적어 준 덕분에 네 마음이 잘 전해졌어.", "솔직하게 적어 주신 덕분에 마음이 잘 전해졌어요."),
        ("하루 동안 느낀 것들을 차분히 돌아본 게 대단해.", "하루 동안 느끼신 것들을 차분히 돌아보신 게 대단해요."),
    ],
    "comfort": [
        ("어떤 하루였든 너는 충분히 애썼어.", "어떤 하루였든 충분히 애쓰셨어요."),
        ("내가 늘 네 편이라는 걸 잊지 마.", "제가 늘 곁에 있다는 걸 잊지 마세요."),
        ("완벽하지 않아도 괜찮아, 지금 그대로 충분해.", "완벽하지 않아도 괜찮아요, 지금 그대로 충분해요."),
        ("천천히 가도 괜찮아, 너만의 속도가 있으니까.", "천천히 가셔도 괜찮아요, 나만의 속도가 있으니까요."),
        ("오늘 하루를 끝까지 살아 낸 너에게 박수를 보내.", "오늘 하루를 끝까지 살아 내신 것에 박수를 보내요."),
        ("힘이 들 땐 언제든 여기에 마음을 내려놓아도 돼.", "힘이 드실 땐 언제든 여기에 마음을 내려놓으셔도 돼요."),
        ("내일은 오늘보다 조금 더 가벼울 거야.", "내일은 오늘보다 조금 더 가벼우실 거예요."),
    ],
    "advice": [
        ("오늘 밤은 휴대폰을 조금 일찍 내려놓고 푹 자 보자.", "오늘 밤은 휴대폰을 조금 일찍 내려놓고 푹 주무세요."),
        ("물 한 잔 마시고 어깨를 한 번 쭉 펴 봐.", "물 한 잔 드시고 어깨를 한 번 쭉 펴 보세요."),
        (
            "자기 전에 오늘 잘한 일 세 가지를 적어 보는 건 어때?",
            "자기 전에 오늘 잘한 일 세 가지를 적어 보시는 건 어떨까요?",
        ),
        ("내일 아침엔 창문을 열고 햇빛을 잠깐 쬐어 보자.", "내일 아침엔 창문을 열고 햇빛을 잠깐 쬐어 보세요."),
        ("좋아하는 노래를 들으며 십 분만 걸어 봐.", "좋아하시는 노래를 들으며 십 분만 걸어 보세요."),
        ("따뜻한 차 한 잔과 함께 천천히 숨을 쉬어 보자.", "따뜻한 차 한 잔과 함께 천천히 숨을 쉬어 보세요."),
        (
            "내일 할 일은 딱 하나만 정해 두고 나머지는 내려놓자.",
            "내일 할 일은 딱 하나만 정해 두시고 나머지는 내려놓으세요.",
        ),
    ],
}

_POOLS = {"empathy": _EMPATHY, "comfort": _COMFORT, "advice": _ADVICE}

_EMOJI = {
    "neutral": ["🙂", "☕", "🌿"],
    "happy": ["😆", "🎉", "✨"],
    "surprise": ["😲", "🫢", "💫"],
    "sad": ["🫂", "🌧️", "💙"],
    "angry": ["😤", "🔥", "🧊"],
    "fear": ["🫶", "🌙", "🍀"],
}
_PLAYFUL_OPENERS = ["오호~", "짜잔!", "헤헤,", "어머나,"]
# On a heavy day the playful companion stays warm but drops the jokes in its greeting.
_SOFT_OPENERS = ["토닥토닥,", "음…", "있잖아,"]
_HEAVY = frozenset({"sad", "angry", "fear"})

# Particles that follow only nouns, by what the noun ends with (Korean picks the particle by the final
# sound: 사람이, 친구가). What is left when one is stripped is a noun: 할머니가, 바다에, 라면을, 가게에서.
_AFTER_CONSONANT = ("은", "이", "을", "과", "으로", "이랑", "이나", "으로는", "이라", "과는", "이랑은", "으로도")
_AFTER_VOWEL = ("는", "가", "를", "와", "랑", "나", "라", "와는", "랑은", "로", "로는", "로도")
_AFTER_ANY = (
    "에", "에서", "에게", "한테", "께", "도", "만", "의", "까지", "부터", "처럼", "보다", "하고",
    "에는", "에서는", "에도", "에서도", "에게는", "한테는", "까지도", "만큼",
)  # fmt: skip
_PARTICLES = sorted({*_AFTER_CONSONANT, *_AFTER_VOWEL, *_AFTER_ANY}, key=len, reverse=True)
# How sure a particle makes the noun (2 by default): 는 also ends verbs (마시는, 기다리는), so a noun
# found only with it must be seen twice; 이 also ends nouns (고양이, 떡볶이), so it only confirms a noun
# found some other way.
_WEIGHT = {"는": 1, "이": 0}
# Endings of verbs and adjectives; a word without a particle that ends so is not taken for a noun.
_VERB_ENDINGS = (
    "다", "요", "고", "서", "지", "게", "며", "면", "니", "네", "까", "해", "했", "어", "아", "는데", "데",
    "죠", "자", "은", "는", "을", "던", "한", "픈", "쁜", "든",
)  # fmt: skip
# A verb's infinitive before 도, 만 …: 먹어도, 좋아도, 해도.
_INFINITIVE = ("어", "아", "여", "해", "워", "와", "봐", "줘", "셔", "져", "쳐", "려", "겨", "혀")
# Final consonants only verb and adjective stems end with: ㄶ (괜찮), ㅀ (싫), ㅄ (맛없), ㅆ (했, 있, 겠).
_VERB_FINALS = frozenset({6, 15, 18, 20})
# Words that smell of instructions (prompt injection), and fillers too generic to mention.
_BLOCKED = {
    "무시", "지시", "시스템", "프롬프트", "출력", "명령", "규칙", "지침", "역할", "설정", "이전", "모든",
    "대답", "답변", "오늘", "내일", "어제", "정말", "진짜", "너무", "그냥", "나는", "내가", "우리",
    "그리고", "그래", "하지만", "그래서", "그런데", "조금", "많이", "일기", "자신",
    "하루", "종일", "하루종일", "온종일", "요즘", "요새", "지금", "그날", "이날", "오늘밤", "아침", "점심",
    "저녁", "새벽", "오전", "오후", "시간", "생각", "마음", "기분", "느낌", "감정", "정도", "이번", "다음",
    "계속", "다시", "모두", "전부", "아무", "아무도", "아무것", "뭔가", "무언가", "그것", "이것", "저것",
    "그거", "이거", "저거", "여기", "거기", "저기", "때문", "같이", "사람", "자기", "혼자", "제가", "저는",
}  # fmt: skip
_HANGUL_WORD = re.compile(r"[가-힣]{2,12}")


def _final(syllable: str) -> int:
    """The index of a Hangul syllable's final consonant (0: none)."""
    return (ord(syllable) - 0xAC00) % 28 if "가" <= syllable <= "힣" else 0


def _has_batchim(word: str) -> bool:
    return _final(word[-1]) != 0


def _josa(word: str, with_batchim: str, without: str) -> str:
    return word + (with_batchim if _has_batchim(word) else without)


def _fits(particle: str, stem: str) -> bool:
    """Whether ``particle`` can follow ``stem`` by its final sound (로 also follows ㄹ: 서울로)."""
    final = _final(stem[-1])
    if particle.startswith("로"):
        return final in (0, 8)
    if particle in _AFTER_CONSONANT:
        return final != 0
    return final == 0 if particle in _AFTER_VOWEL else True


def _noun(token: str) -> tuple[str, int] | None:
    """The noun in ``token`` with how sure it is (2: a noun particle; 1: a bare word, or 는; 0: 이), or None."""
    short = False  # a one-syllable noun and its particle (집에, 밥이, 댁에서): too short to name, and no word
    for particle in _PARTICLES:
        if not token.endswith(particle):
            continue
        stem = token[: -len(particle)]
        if len(stem) < 2:
            short = short or (len(stem) == 1 and _fits(particle, stem))
            continue
        if _final(stem[-1]) in _VERB_FINALS or stem.endswith(("하", "하기")):
            return None  # 맛있는, 괜찮은, 피곤했을, 공부하기를
        if not _fits(particle, stem):
            continue  # the wrong particle for this word: 고양이 is not 고양 + 이
        if particle in _AFTER_ANY and stem.endswith(_INFINITIVE):
            return None  # 먹어도, 좋아도
        return stem, _WEIGHT.get(particle, 2)
    if short or token.endswith(_VERB_ENDINGS) or _final(token[-1]) in _VERB_FINALS:
        return None
    return token, 1


def keywords(diary_text: str, limit: int = 2) -> list[str]:
    """Up to ``limit`` nouns of a diary (Hangul, particles stripped), most mentioned first.

    Without a morphological analyser a noun is recognised by the particle after it (할머니가, 바다에);
    a word seen only bare, or with 는 or 이, must appear twice. Fillers (하루, 종일, 생각 …) are never chosen.
    """
    tokens = _HANGUL_WORD.findall(diary_text)
    parsed = [_noun(token) for token in tokens]
    nouns = {found[0] for found in parsed if found is not None and found[1] == 2}
    score: Counter[str] = Counter()
    first: dict[str, int] = {}
    for i, (token, found) in enumerate(zip(tokens, parsed, strict=True)):
        if token in nouns:  # a known noun used bare, even one that ends like a verb: 할머니, 고양이
            found = (token, 1)
        if found is None or found[0] in _BLOCKED:
            continue
        score[found[0]] += found[1]
        first.setdefault(found[0], i)
    chosen = [w for w in score if score[w] >= 2]
    return sorted(chosen, key=lambda w: (-score[w], first[w]))[:limit]


# Family names, for calling a full name by its given name (김민준 -> 민준아). Compound ones first.
_COMPOUND_FAMILY_NAMES = ("남궁", "황보", "제갈", "선우", "독고", "사공", "서문", "동방")
_FAMILY_NAMES = frozenset(
    "김이박최정강조윤장임한오서신권황안송류유전홍고문양손배백허남심노하곽성차주우구민나진지엄채원천방공현함변염"
    "여추도소석선설마길연위표명기반왕금옥육인맹제모탁국어은편용예경봉사부가복태목형피두감음빈동온호계"
)


def _vocative(name: str) -> str:
    """How 반말 calls ``name``: a Korean name by its given name with the vocative particle (김민준 -> 민준아,
    지은 -> 지은아, 민수 -> 민수야); any other name as it is."""
    if not re.fullmatch(r"[가-힣]{2,10}", name):
        return name
    given = name
    if len(name) == 4 and name[:2] in _COMPOUND_FAMILY_NAMES:
        given = name[2:]
    elif len(name) == 3 and name[0] in _FAMILY_NAMES:
        given = name[1:]
    return _josa(given, "아", "야")


def _clean_name(name: str) -> str:
    name = re.sub(r"[\x00-\x1f<>&\"'`]", "", name).strip()[:20]
    return html.escape(name)


def compose(context: CommentContext, settings: CompanionSettings, seed: int = 0) -> list[tuple[str, str]]:
    """The comment as ``(kind, sentence)`` pairs.

    Kinds: greeting, question, mention, empathy, comfort, advice, closing; a diary with words of
    suicidal thoughts or self-harm gets only greeting, care, help and closing (:mod:`.safety`).

    The feeling the comment speaks to is the text's when the text shows one clearly (it is what the
    person wrote), else the face's; lines that describe the face are used only when the two are the same.
    """
    if context.face_emotion not in _FAMILY:
        log.info("offline companion: unknown face emotion %r, writing a neutral comment", context.face_emotion)
    face_family = _FAMILY.get(context.face_emotion, "neutral")
    text_family = _FAMILY.get(context.text_emotion or "", "neutral")
    family = text_family if text_family != "neutral" else face_family
    polite = settings.attitude == "polite"
    playful = settings.attitude == "playful"
    level = 1 if polite else 0
    rng = random.Random(f"{seed}:{settings.temperature}:{family}:{settings.attitude}")
    name = _clean_name(context.user_name)
    target = settings.target_chars
    call = _vocative(name)

    def pick(pair: Pair) -> str:
        return pair[level]

    if context.in_crisis:
        if polite:
            greeting = f"{name}님, 오늘의 일기 천천히 읽었어요." if name else "오늘의 일기 천천히 읽었어요."
        else:
            greeting = f"{call}, 오늘 일기 천천히 읽었어." if name else "오늘 일기 천천히 읽었어."
        return crisis_comment(greeting, polite)

    head: list[tuple[str, str]] = []
    if playful:
        heavy = family in _HEAVY
        opener = rng.choice(_SOFT_OPENERS if heavy else _PLAYFUL_OPENERS)
        read = "오늘 일기 잘 읽었어 📖" if heavy else "오늘 일기 잘 읽었지롱 📖"
        head.append(("greeting", f"{opener} {call}, {read}" if name else f"{opener} {read}"))
    elif polite:
        head.append(("greeting", f"{name}님, 오늘의 일기 잘 읽었어요." if name else "오늘의 일기 잘 읽었어요."))
    else:
        head.append(("greeting", f"{call}, 오늘 일기 잘 읽었어." if name else "오늘 일기 잘 읽었어."))

    if context.text_emotion and context.emotions_disagree:
        face = display_name(context.face_emotion, "ko")
        text = display_name(context.text_emotion, "ko")
        if not re.fullmatch(r"[가-힣]{1,6}", text):
            text = "다른 감정"
        face_part = _josa(face, "으로", "로")
        text_part = _josa(text, "이", "가")
        question = (
            f"표정은 {face_part} 보였는데 글에서는 {text_part} 느껴졌어요. "
            "혹시 실제 마음은 어떠셨는지 여쭤봐도 될까요?",
            f"표정은 {face_part} 보였는데 글에서는 {text_part} 느껴졌어. 혹시 진짜 마음은 어땠는지 살짝 물어봐도 될까?",
        )
        head.append(("question", question[1] if not polite else question[0]))

    words = keywords(context.diary_text)
    if words:
        quoted = ", ".join(f"'{w}'" for w in words)
        mention = f"{quoted} 이야기가 특히 마음에 남아." if not polite else f"{quoted} 이야기가 특히 마음에 남네요."
        head.append(("mention", mention))

    # Round-robin over the chosen parts so each appears early, then the shared extras.
    queues: dict[str, list[str]] = {}
    for part in settings.parts:
        pool = list(_POOLS[part][family])
        if part == "empathy" and family == face_family:
            pool += _FACE_EMPATHY.get(family, [])
        rng.shuffle(pool)
        extra = list(_EXTRA[part])
        rng.shuffle(extra)
        queues[part] = [pick(p) for p in pool + extra]
    body: list[tuple[str, str]] = []
    while any(queues.values()):
        for part in settings.parts:
            if queues[part]:
                body.append((part, queues[part].pop(0)))

    if playful:
        emoji = _EMOJI[family]
        body = [
            (k, f"{s} {rng.choice(emoji)}" if rng.random() < 0.4 + 0.3 * settings.temperature else s) for k, s in body
        ]

    closing = (
        "closing",
        "오늘도 수고 많으셨어요." if polite else ("내일 또 이야기해 줘! 🌈" if playful else "오늘도 수고 많았어."),
    )

    def size(parts: list[tuple[str, str]]) -> int:
        return len(" ".join(s for _, s in parts))

    chosen = list(head)
    seen_parts: set[str] = set()
    for kind, sentence in body:
        first_of_kind = kind not in seen_parts
        if size([*chosen, (kind, sentence), closing]) > target * 1.15 and not first_of_kind:
            continue
        chosen.append((kind, sentence))
        seen_parts.add(kind)
        if size([*chosen, closing]) >= target * 0.9 and seen_parts >= set(settings.parts):
            break
    if size([*chosen, closing]) <= target * 1.25:
        chosen.append(closing)
    return chosen


def offline_comment(context: CommentContext, settings: CompanionSettings, seed: int = 0) -> str:
    """A Korean comment for ``context`` written without any network; the same inputs give the same text."""
    return " ".join(sentence for _, sentence in compose(context, settings, seed))


def empathy_sentence(emotion: str, polite: bool, rng: random.Random) -> str:
    """One empathy sentence for a chat message's ``emotion`` (a label key) in 반말 or, when ``polite``,
    존댓말; it never mentions a face (the chat has no photo) nor calls the day quiet."""
    family = _FAMILY.get(emotion, "neutral")
    return rng.choice(_CHAT_NEUTRAL if family == "neutral" else _EMPATHY[family])[1 if polite else 0]
