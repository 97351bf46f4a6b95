"""maeum's own Korean emotion lexicon for diary text.

Written for maeum (not derived from any external lexicon). Each entry is a *stem*: a word
matches when it starts with the stem, so ``슬프`` covers 슬프다, 슬프고, 슬픈 needs its own
stem ``슬픈``. Korean verbs change their stem when conjugated (슬프다 -> 슬퍼서 -> 슬펐다),
so irregular forms are listed next to each other. An entry with a space is a phrase: every
word but the last must equal a word of the text (after particles are stripped), the last
matches by prefix (``화가 나`` covers 화가 났다, 화가 나서).

Weights: 1.0 an explicit emotion word, 0.6 a strong cue, 0.3 a weak or ambiguous cue.
The labels are the keys of maeum's face model (``maeum.labels.FERPLUS7``).

``_SITUATIONS`` adds what diaries write instead of an emotion word: what was done to the
writer (a lie, a broken promise, a theft) for anger, what was seen or smelled (filth, vermin,
rot, vomit) for disgust. ``NOT_CUES`` lists the words that start like a cue but are not one
(거짓말처럼 is no lie, 훔쳐보다 no theft, 쥐가 나다 a cramp, not a rat); they are matched like
entries and count for nothing.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Final

# label -> weight -> whitespace-separated stems ("_" joins the words of a phrase).
_RAW: Final[dict[str, dict[float, str]]] = {
    "happiness": {
        1.0: """
            행복 기쁘 기뻐 기뻤 기쁜 기쁨 즐겁 즐거 즐겼 신나 신난 신났 신남 설레 설렌 설렜 설렘 뿌듯
            행복감 흐뭇 만족 감사 고맙 고마 고마웠 좋았 좋아 좋다 좋은 좋고 좋네 최고 짱 사랑스럽 사랑해
            기분_좋 기분이_좋 기분은_좋 기분은_최고 기분이_최고 웃음 웃었 웃으 웃는 웃고 깔깔 후련 홀가분
            상쾌 개운 들뜨 들떠 들떴 황홀 벅차 벅찬 벅찼 감격 감동 다행 안도 축하 합격 성공 완주 우승
            재밌 재미있 재미났 즐거움 흥겹 신이_나 신이_났 날아갈 편안 편하 포근 따뜻 따스 든든 평화롭
            희망 기대돼 기대된 기대가_된 꿀잼 힐링 만끽 소확행 좋아서 좋아했 반가 반갑 반겨
        """,
        0.6: """
            사랑 칭찬 선물 미소 여유 맛있 맛있었 예쁘 예뻐 예뻤 멋지 멋져 멋졌 귀엽 귀여 뭉클
            가볍 설레이 신기하고_좋 잘됐 잘_됐 잘_풀 술술 풀렸 해냈 이뤘 이루었 자랑스럽 대만족 고대하
            세상을_다 가진_기분 충만 즐길 즐기 기분이_들떠 마음이_따뜻 기분전환 상큼
        """,
        0.3: """
            괜찮았 괜찮은 괜찮 좋 나쁘지_않 맛집 여행 휴가 주말 축제 콘서트
        """,
    },
    "sadness": {
        1.0: """
            슬프 슬퍼 슬펐 슬픈 슬픔 우울 눈물 울었 울고 울어 울컥 울적 외롭 외로 외로웠 외로움 쓸쓸
            서럽 서러 서러웠 서글프 서글퍼 서운 속상 허전 공허 허무 그립 그리워 그리웠 그리운 그리움
            비참 괴롭 괴로 괴로웠 절망 낙담 상실 좌절 실망 섭섭 씁쓸 처량 애통 통곡 오열 침울 무기력
            마음이_아프 마음이_아팠 가슴이_아프 가슴이_아팠 마음이_무겁 가슴이_먹먹 먹먹 한숨 힘들 힘드 힘들었
            지치 지쳐 지쳤 후회 아쉽 아쉬 아쉬웠 안타깝 안타까 포기하고_싶 죽고_싶 눈시울 흐느끼 엉엉
            재미없 재미가_없 재미도_없 의욕이_없 의욕 자존감이_바닥 뒤처 울 한참을_울
            자살 자해 사라지고_싶 없어지고_싶 살기_싫
        """,
        0.6: """
            헤어지 헤어졌 이별 작별 떠나보 무지개다리 돌아가신 돌아가셨 장례 그리워하 잃었 잃어버린
            혼자 혼자라 외톨이 우중충 망쳤 망쳐 떨어졌 탈락 불합격 눈물이_났 속이_상 마음이_공허 상처
            아프 아팠 미안 죄책 아무도 바닥 제자리 뒤처지 최악 망했 망해 망함 좋지_않 좋지는_않 좋지_못
        """,
        0.3: """
            비_오는 피곤 지겹 나쁘 나빴 나쁜
        """,
    },
    "anger": {
        1.0: """
            화나 화난 화났 화내 화냈 화를_내 화를_냈 화가_나 화가_난 화가_났 화가_치밀 화가_머리끝 화가_안_날 화_안_나
            분노
            분하 분해 분했 짜증 열받 열받았 열받아 열이_받 빡치 빡쳐 빡쳤 빡침 빡쳤다 약오르 약올 성질
            부글부글 울화 울화통 억울 어이없 어이가_없 황당 괘씸 불공평 부당 격분 욕 욕하 욕했 개빡
            신경질 짜증나 짜증난 짜증났 짜증이 열폭 뚜껑이_열 미치겠 미치고 환장 속터 속이_터 꼴받
            노발대발 분통 치밀 치밀어 너무한 너무하 무시당 무시했 무시하고 무례 싸가지 적반하장 뻔뻔
        """,
        0.6: """
            싸웠 싸우 다퉜 다투 소리를_질 소리를_지르 고함 따지 항의 참았 참다 참을 못_참 강요 불만
            새치기 클락션 야근을_강요 망쳐버 망쳐놓 도망갔 긁어놓 안_듣 말도_없이 ㅡㅡ 폭발 터졌
            기분이_나쁘 기분이_나빴 기분이_나빠 기분_나쁘 기분_나빴 기분_나빠 기분이_상 기분_상
        """,
        0.3: """
            또 몇_번을 세_번 불친절 층간소음 분실 고장
        """,
    },
    "disgust": {
        1.0: """
            역겹 역겨 역겨웠 역겨움 역하 역해 혐오 구역질 토할 토_나 토가_나 토나 우웩 웩 으웩 메스껍 메스꺼
            징그럽 징그러 비위가_상 비위_상 비위 더럽 더러 더러웠 더러움 불결 지저분 추잡 추하 역한
            정떨어 정이_떨어 밥맛이_떨어 밥맛_떨어 입맛이_떨어 입맛이_싹 꼴불견 꼴보기_싫 꼴도_보기_싫
            소름_끼치 소름끼치 토사물 구더기 곰팡이 속이_뒤집 속이_메스 느끼 끔찍하게_더럽 불쾌 경멸 혐오스럽
            싫다_싫어 위선 음담패설 학대 가증
        """,
        0.6: """
            싫 싫어 싫었 싫은 싫다 싫고 싫네 냄새 썩은 썩었 벌레 쥐가 침을_뱉 머리카락 악취 찝찝 끔찍 바퀴벌레 오물 똥
            쓰레기 담배꽁초 으 위생 오염 상했 비린
        """,
        0.3: """
            쩝 흠 별로
        """,
    },
    "fear": {
        1.0: """
            무섭 무서 무서웠 무서움 무서워 두렵 두려 두려웠 두려움 겁나 겁이_나 겁났 겁에_질 겁먹 겁난
            공포 불안 초조 조마조마 긴장 걱정 떨리 떨려 떨렸 후들 벌벌 오싹 섬뜩 소름이_돋 식은땀 가슴이_철렁
            철렁 심장이_쿵 쿵쾅 두근거리고_불안 마음을_졸 마음_졸 애가_타 기겁 패닉 겁 겁쟁이 위협 위험
            어떡하 어떻게_하지 어쩌지 잘릴까 떨어질까 어떡해 놀라서_숨 숨이_막히 숨죽 공포스럽 겁이
            무서워서 불안해 불안하고 불안했 걱정돼 걱정되 걱정이 걱정했 염려 근심 노심초사 심장이_터질
        """,
        0.6: """
            혹시 설마 악몽 떨림 심장이 두근 울렁 흉흉 낯선 어두운 갇혔 갇혀
            도망치 추락 수술 마취 확진 구조조정 면접 결과 지진 난기류 괴한 따라오
        """,
        0.3: """
            발표 신고 밤길 골목 혼자_걷 시험 검사 병원
        """,
    },
    "surprise": {
        1.0: """
            놀라 놀랐 놀랄 놀란 놀람 놀래 놀랬 놀라운 놀라웠 놀랍 깜짝 깜놀 헐 대박 어머 세상에 충격
            어안이_벙벙 입이_떡 입이_딱 얼떨떨 믿기지 믿을_수_없 믿어지지 뜻밖 의외 예상_못 예상치 예상도_못
            당황 황당하게도 반전 기절초풍 소름_돋았 소름_돋 감탄 신기 신기했 신기하 어리둥절 눈이_휘둥그
            우연히 예고도_없이 처음이라 웬일 이게_무슨 설마_했
        """,
        0.6: """
            알고_보니 알고보니 생각지도 난생처음 처음으로 깜짝이야 와 우와 오 어 엥 에엥 어라 맙소사
            당첨 의외로 몰랐 줄_알았는데 줄은
        """,
        0.3: """
            갑자기 갑작스 급 갑작 미처
        """,
    },
    "neutral": {
        1.0: """
            그저_그렇 그저_그랬 그럭저럭 평범 무난 별일_없 별일 특별한_일_없이 특별한_일은_없 특별한_일_없
            보통이 보통 덤덤 담담 무덤덤 평소와_같 평소처럼 똑같은_하루 일상 무미건조
        """,
        0.6: """
            그냥저냥 그냥_그렇 쏘쏘 특별히 그럭
        """,
        0.3: """
            했다 먹었다 갔다 왔다 일정 예약 정리 확인
        """,
    },
}

# Situations that carry an emotion without naming it, by family; same format as _RAW.
_SITUATIONS: Final[dict[str, dict[float, str]]] = {
    "anger": {
        1.0: (
            # Words of feeling (배신감, 모욕감, 울분) and forms of 무시당하다, which _RAW weighs 1.0.
            " 배신감 모욕감 울분_토 무시_당 무시하는 무시한 무시받"
        ),
        0.6: (
            # Being wronged, unfairness, being used.
            " 누명 덮어씌 뒤집어씌 떠넘 탓으로_돌리 탓만_하 남_탓 갑질 텃세 편애 불이익 차별당 차별받"
            " 차별을 차별하 차별했 바가지_썼 바가지_씌 바가지요금 이용당 이용_당했 이용_당한 농락 호구"
            " 잘못도_없는데 잘못도_아닌데 사기_당 사기당 사기꾼 사기_쳤 사기쳤 사기_치 사기치 먹튀 떼먹"
            # Taking the credit (or the work) of others.
            " 가로채 가로챘 가로챈 가로챌 숟가락_얹 공을_뺏 공을_빼앗 자기_공으로 생색 빼돌 무임승차 묻어가"
            # Broken promises.
            " 어기 어겼 어긴 어길 약속을_깨 약속_깼 약속_깨 바람맞 노쇼 잠수_탔 잠수_타 연락도_없이"
            # Lies: telling one (the bare noun is weak, below).
            " 거짓말하 거짓말했 거짓말한 거짓말해 거짓말_하 거짓말_했 거짓말_한 거짓말_해 거짓말만 거짓말쟁이"
            " 속였 속이고 뻥치 뻥쳤"
            # Betrayal; bare 배신 (a film's plot) stays weak.
            " 배신당 배신했 배신한 배신_당 배신자 뒤통수_맞 뒤통수_쳤 뒤통수_치 바람_피우 바람_피웠 바람_폈"
            " 바람피 바람폈 외도"
            # Being ignored, looked down on, insulted.
            " 읽씹 모욕 조롱 비웃 비꼬 깔보 깔봤 깔본 얕보 얕봤 얕본 업신여 막말 폭언 인신공격 험담 뒷담 악플"
            " 손가락질 삿대질 말_끊 자존심_상 못_본_척 들은_척도_안 본_척도_안 대꾸도_안 인사도_안"
            # Rudeness.
            " 예의_없 버릇없 버릇_없 건방 비아냥 막무가내 진상_부리 진상_손님 진상짓 진상고객 사과도_안"
            " 사과_한마디_없 사과도_없 사과는커녕 사과도_하지_않"
            # Theft.
            " 훔치 훔쳤 훔친 훔쳐 도둑맞 도둑_맞 도둑질 도둑이_들 도둑놈 좀도둑 도난당 도난_당 소매치기 빈집털이"
            # Cutting in (새치기 is in _RAW).
            " 끼어들기 칼치기"
        ),
        0.3: (
            # The bare noun (a lie, a betrayal, an affair in a film's plot) and what may be harmless.
            " 거짓말 배신 불륜 속았 말_바꾸 말_바꿨 말_바꾼 핑계 변명 반말 째려 씹혔 빼앗겼 뺏겼 도난 끼어들"
        ),
    },
    "disgust": {
        1.0: (
            # Nausea words and 역하다 in the past tense.
            " 헛구역질 욕지기 역했 역함"
        ),
        0.6: (
            # Filth, bodily waste, something in the food (머리카락 is in _RAW).
            " 찌든 기름때 찌꺼기 코딱지 코를_후비 가래를 가래침 침_튀 비듬 고름 배설물 분비물 분뇨 시궁창"
            " 손_안_씻 손_씻지_않 이물질"
            # Vermin.
            " 날벌레 쥐를 쥐들 쥐떼 쥐똥 쥐새끼 시궁쥐 날파리 초파리 똥파리 파리떼 파리_떼 파리가_꼬 파리가_날"
            " 진드기 빈대 우글 득실거 득실득실"
            # Rot and smells.
            " 썩어 썩는 부패 곰팡 쉰내 상한 구린 지린내 찌린내 누린내 발냄새 입냄새 암내 땀냄새 똥냄새 담배냄새"
            # Vomit.
            " 토하 토했 토해 구토 게워 오바이트 토쏠 토_쏠"
            # Hypocrisy, flattery, sleaze.
            " 내로남불 이중인격 이중적 앞뒤_다르 앞뒤_다른 겉과_속이_다르 겉과_속이_다른 가식 아첨 알랑 아부를"
            " 아부하 아부했 아부쟁이 속물 꼴값 비굴 성희롱 성추행 추행 변태"
        ),
        0.3: (
            # Mild or often harmless: sticky, drains, not washing, small creatures, out of date.
            " 끈적 하수구 안_씻 생쥐 지렁이 거머리 유통기한_지난"
        ),
    },
    # Look-alikes of the cues above that belong elsewhere.
    "sadness": {
        1.0: " 눈물_훔치 눈물_훔쳤 눈물_훔쳐",
        0.6: " 마음이_상 마음_상했 마음_상한 마음_상해",
    },
    "happiness": {
        0.6: " 마음_훔치 마음_훔쳤 마음_훔쳐",
    },
}

# Words that start like a cue but are not one ("_" joins a phrase): matched like entries, they
# consume their words and count for nothing.
_NOT_CUES: Final[str] = (
    # "Unbelievably", not a lie; peeking, not stealing.
    " 거짓말처럼 거짓말같 거짓말_같 거짓말_처럼 훔쳐보 훔쳐봤 훔쳐본 훔쳐볼 훔쳐_보 훔쳐_봤 훔쳐_본"
    # A cramp (쥐가 나다), not a rat; a price cap, not spoiled food.
    " 쥐가_났 쥐가_나서 쥐가_나는 쥐가_난 상한선 상한가"
    # Speaking with passion (열변을 토하다); humouring someone (비위를 맞추다); waddling (어기적).
    " 열변_토 비위_맞추 비위_맞춰 비위_맞췄 어기적"
)
NOT_CUES: Final[tuple[tuple[str, ...], ...]] = tuple(tuple(item.split("_")) for item in _NOT_CUES.split())


# Words that raise the weight of the next emotion word within a short window.
INTENSIFIERS: Final[frozenset[str]] = frozenset(
    [
        "너무",
        "너무나",
        "정말",
        "정말로",
        "진짜",
        "진짜로",
        "완전",
        "완전히",
        "엄청",
        "엄청나게",
        "되게",
        "매우",
        "아주",
        "몹시",
        "무척",
        "참",
        "굉장히",
        "극도로",
        "진심",
        "레알",
        "겁나",
        "졸라",
        "존나",
        "넘",
        "디게",
        "대단히",
        "심하게",
        "미치도록",
        "미친듯이",
        "하도",
        "제일",
        "가장",
        "더욱",
        "더",
        "훨씬",
        "한없이",
        "끝없이",
        "뼈저리게",
        "너무너무",
        "정말정말",
        "진짜진짜",
        "완전완전",
        "왕",
        "핵",
    ]
)

# Slang prefixes glued to an emotion word: 개짜증, 핵무섭, 존나좋 ...
INTENSIFIER_PREFIXES: Final[tuple[str, ...]] = ("존나", "졸라", "개", "핵", "왕", "초", "극")

# Pre-verbal negation (안 행복하다, 못 자다) and the auxiliaries that negate a preceding ...지.
NEGATORS_BEFORE: Final[frozenset[str]] = frozenset({"안", "못", "전혀", "별로", "딱히", "결코"})
NEGATORS_AFTER: Final[tuple[str, ...]] = ("않", "안", "못", "없", "아니", "아닌", "아냐")

# Contrast markers: the clause after them decides a mixed entry (…지만 결국 행복했다).
CONTRAST_WORDS: Final[frozenset[str]] = frozenset(
    {"하지만", "그러나", "그런데", "근데", "그래도", "결국", "오히려", "사실", "사실은", "막상", "그렇지만"}
)
CONTRAST_SUFFIXES: Final[tuple[str, ...]] = ("지만", "는데도", "었는데", "았는데", "했는데", "인데도")

# Pretence: 기쁜 척, 괜찮은 척 -> the emotion was not felt.
PRETENCE_WORDS: Final[frozenset[str]] = frozenset({"척", "척했", "척했다", "척하", "체", "척을"})

# Regular expressions for cues that are endings rather than stems: (pattern, label, weight).
CUE_PATTERNS: Final[tuple[tuple[str, str, float], ...]] = (
    (r"까\s?봐|ㄹ까\s?봐|을까\s?봐", "fear", 0.6),
    (r"(?:하|였|이었|했|이라|었|았|이)다니(?![가-힣])", "surprise", 0.6),
)

# Emoticons and their emotion: (pattern, label, weight per occurrence).
EMOTICONS: Final[tuple[tuple[str, str, float], ...]] = (
    (r"ㅋ{2,}", "happiness", 0.8),
    (r"ㅎ{2,}", "happiness", 0.8),
    (r"[ㅠㅜ]{1,}", "sadness", 0.9),
    (r"ㅡㅡ|-_-|ㅗ", "anger", 0.9),
    (r"ㄷㄷ|ㄷㄷㄷ|덜덜", "fear", 0.8),
    (r"ㅇㅁㅇ|O_O|o_O|!\?|\?!", "surprise", 0.6),
    (r"[😊😄😁😆🥰😍🙂☺️😀]|\^\^|\^_\^", "happiness", 0.9),
    (r"[😢😭😞😔🥺]|T_T|T\.T", "sadness", 0.9),
    (r"[😡😠🤬💢]", "anger", 0.9),
    (r"[😱😨😰]", "fear", 0.9),
    (r"[😲😮🤯]", "surprise", 0.9),
    (r"[🤮🤢]", "disgust", 0.9),
)


def _build() -> dict[str, tuple[tuple[tuple[str, ...], str, float], ...]]:
    """Stem tables: label -> ((words of the entry), original text, weight), longest entries first."""
    table: dict[str, tuple[tuple[tuple[str, ...], str, float], ...]] = {}
    for label, by_weight in _RAW.items():
        entries: dict[tuple[str, ...], float] = {}
        for weight, blob in (*by_weight.items(), *_SITUATIONS.get(label, {}).items()):
            for item in blob.split():
                words = tuple(item.split("_"))
                entries[words] = max(weight, entries.get(words, 0.0))
        ordered = sorted(entries.items(), key=lambda kv: (-len(kv[0]), -len("".join(kv[0]))))
        table[label] = tuple((words, " ".join(words), w) for words, w in ordered)
    return table


LEXICON: Final = MappingProxyType(_build())


def lexicon_size() -> dict[str, int]:
    """Number of entries per label, for documentation and tests."""
    return {label: len(entries) for label, entries in LEXICON.items()}
