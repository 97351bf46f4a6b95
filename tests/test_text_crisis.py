"""Words of suicidal thoughts or self-harm (maeum.text.crisis): what they catch and what they must not."""

from __future__ import annotations

from pathlib import Path

import pytest

from maeum.text import crisis_signs

DATA = Path(__file__).parent / "data"


@pytest.mark.parametrize(
    "text",
    [
        "자살하고 싶다는 생각이 계속 든다.",
        "요즘 너무 힘들어서 죽고 싶다. 다 끝내고 싶어.",
        "죽고싶어",
        "죽고 싶었어",
        "그냥 죽고만 싶다",
        "더 이상 살고 싶지 않아",
        "살고싶지가않다",
        "살기 싫어",
        "살 이유가 없다",
        "사는 게 의미가 없어",
        "그냥 사라지고 싶다",
        "없어지고싶어",
        "어제 또 자해를 했다",
        "목숨을 끊고 싶다",
        "극단적인 선택을 생각했다",
        "극단적 선택",
        "죽어버리고 싶다",
        "차라리 죽는 게 나아",
        "손목을 그었다",
        "I want to die",
        "i wanna die",
        "I keep thinking about suicide",
        "suicidal thoughts again",
        "I want to kill myself",
        "I might end my life",
        "I self-harm when it gets bad",
        "I hurt myself last night",
        "I don't want to live anymore",
        # The audit: these passed unseen.
        "이제 그만 살고 싶다",
        "잠들어서 안 깨어났으면 좋겠다",
        "내일 아침 눈을 뜨지 않았으면 해",
        "그냥 영원히 잠들고 싶어",
        "Everyone would be better off without me",
        "I just want to disappear",
        # The second audit.
        "나 그냥 죽을래",
        "다 끝내고 싶다",
        "오늘도 버텼다.\n다 끝내버리고 싶어",
        "이제 다 끝내고 싶어",
        "모든 걸 끝내고 싶다",
        "너무 힘들어서 다 끝내고 싶다",
        "지쳤어 그냥 끝내고 싶어",
        "ㅈㅅ하고 싶다",
        "I want to die in my sleep",
        "And that made me want to die The idea of me",  # a lyric without stops: not hair dye
    ],
)
def test_crisis_words_are_recognised(text: str) -> None:
    assert crisis_signs(text)


@pytest.mark.parametrize(
    "text",
    [
        "배고파 죽겠다",
        "웃겨 죽겠어",
        "죽을 만큼 피곤",
        "힘들어 죽겠네",
        "귀여워 죽겠다 ㅋㅋ",
        "죽을 뻔했다",
        "죽도록 일했다",
        "이 집 떡볶이 죽여준다",
        "오래오래 살고 싶다",
        "축구에서 자살골을 넣었다",
        "I'm dying to see it",
        "this is killing me",
        "I could kill for a pizza",
        # The audit: a happy diary got the help lines instead of songs.
        "오늘 인생 끝내주네 ㅋㅋ",
        "바다에서 삶을 끝내주게 즐겼다",
        "목숨을 끊임없이 위협하던 태풍이 지나갔다",
        "가장 극단적 선택지는 피했다",
        "알람에 안 깼으면 지각할 뻔했다",
        "너 죽을래? ㅋㅋ",
        "숙제 다 끝내고 싶다",
        "오늘 안에 일을 빨리 끝내고 싶어",
        "ㅈㅅ 늦었어",
        "I want to die my hair blue",
        "",
    ],
)
def test_everyday_intensifiers_are_not_crisis(text: str) -> None:
    assert crisis_signs(text) == ()


def test_signs_are_the_words_as_written_in_order() -> None:
    assert crisis_signs("요즘 죽고  싶고, 자해도 했다. I want to DIE") == ("죽고  싶", "자해", "want to DIE")


def test_no_diary_sentence_of_the_evaluation_sets_is_crisis() -> None:
    # 284 ordinary diary sentences of every emotion, sad and angry ones included: no false alarm.
    for path in sorted(DATA.glob("diary_sentences_ko*.tsv")):
        for line in path.read_text(encoding="utf-8").splitlines()[1:]:
            assert crisis_signs(line) == (), line


def test_non_string_raises_type_error() -> None:
    with pytest.raises(TypeError, match="expects str"):
        crisis_signs(b"\xec\x9e\x90\xec\x82\xb4")  # type: ignore[arg-type]
