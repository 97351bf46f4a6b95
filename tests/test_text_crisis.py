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
        # The third audit: ending it all after adverbs only, and common diary wordings that passed unseen.
        "빨리 다 끝내고 싶다",
        "정말 다 끝내고 싶어",
        "진짜 다 끝내버리고 싶다",
        "차라리 다 끝내고 싶다",
        "진짜 전부 끝내 버리고 싶다",
        "정말 다 끝냈으면 좋겠다",
        "진짜 너무 힘들다. 정말 다 끝내고싶어",
        "힘들다ㅠㅠ 진짜 다 끝내고 싶다",
        "오늘 회사에서 혼났다 그냥 다 끝내고 싶다",
        "열심히 했는데 정말 다 끝내고 싶어",
        "모든 게 지겹고 그냥 다 끝내고 싶다",
        "오늘도 정말 다 끝내고 싶다",
        "나 다 끝내고 싶어",
        "죽고파",
        "죽을까 생각했다",
        "요즘 죽을 생각만 한다",
        "안 아프게 죽는 방법을 찾아봤다",
        "죽으면 편해질까",
        "내가 죽으면 다 끝날까",
        "죽음밖에 답이 없다",
        "죽는 것 말고는 방법이 없다",
        "뒤져버리고 싶다",
        "살아가기 싫다",
        "살아야 할 이유를 모르겠다",
        "나는 살 자격이 없다",
        "살아갈 가치가 없다",
        "살아 있는 게 고통이다",
        "사는 게 지옥이다",
        "살아서 뭐 해",
        "더 살아서 뭐 하나",
        "숨 쉬는 것도 싫다",
        "존재하고 싶지 않다",
        "그냥 증발해버리고 싶다",
        "내가 그냥 사라졌으면 좋겠다",
        "태어나지 말았어야 했다",
        "태어나지 말걸",
        "안 태어났으면 좋았을 텐데",
        "태어난 게 죄다",
        "나 같은 건 없어져야 해",
        "나 따위는 죽어야 해",
        "내가 없으면 다들 편할 거야",
        "나만 없으면 다들 행복할 텐데",
        "내가 죽어도 아무도 모를 거야",
        "그냥 잠들고 깨지 않았으면…",
        "세상 떠나고 싶어",
        "이 세상을 뜨고 싶다",
        "옥상에서 뛰어내릴까",
        "달리는 차에 뛰어들고 싶다",
        "차에 치였으면 좋겠다",
        "한강 물 온도를 검색해 봤다",
        "허벅지를 그었다",
        "칼로 긋고 싶다",
        "몸에 상처를 내고 싶다",
        "나 자신을 해치고 싶다",
        "약을 한꺼번에 먹을까",
        "진통제 과다 복용",
        "I wish I was never born",
        "I wish I'd never been born",
        "I should just die",
        "I hope I don't wake up tomorrow",
        "I don't want to be here anymore",
        "life isn't worth living",
        "I'm done with life",
        "I can't go on anymore",
        "Everyone would be better off if I was dead",
        # Borderline, flagged on purpose (see crisis.py): the words of real distress, whatever the occasion.
        "사라지고 싶을 만큼 창피했다",
        "내가 없으면 다들 편하게 쉬겠지",
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
        # The third audit: a task to finish, and everyday words next to the new phrases.
        "빨리 일 다 끝내고 싶다",
        "오늘 안에 보고서 다 끝내고 싶다",
        "빨리 숙제 다 끝내고 싶어",
        "숙제를 그냥 다 끝내고 싶다",
        "정말 이 프로젝트 다 끝내고 싶다",
        "할 게 너무 많다 빨리 다 끝내고 싶다",
        "일이 힘들어서 빨리 끝내고 싶다",
        "내일 시험이다. 빨리 끝내고 싶다",
        "오늘은 다 끝내고 싶다",
        "마감 전 다 끝내고 싶다",
        "숙제가 많아서 다 끝내고 싶다",
        "빨리 다 끝내고 놀고 싶다",
        "우리는 죽고 못 사는 사이",
        "이러다 죽을까 봐 무서웠다",
        "아파서 편하게 죽을 먹었다",
        "죽으면 끝이야, 즐기자",
        "새 폰을 살 이유가 없다",
        "굳이 그걸 살 이유가 없다",
        "이 가방은 살 가치가 없다",
        "혼자 살아서 뭐 해 먹을지 고민이다",
        "서울에 살아서 좋다",
        "나 없으면 다들 심심할 걸",
        "그 사람이 그냥 사라졌으면 좋겠다",
        "태어나서 처음으로 바다를 봤다",
        "할머니가 세상을 떠나셨다",
        "옥상에서 뛰어내리는 장면이 무서웠다",
        "여름이라 바다에 뛰어들고 싶다",
        "차에 치였으면 큰일 날 뻔했다",
        "넘어져서 팔에 상처가 났다",
        "종이를 칼로 그어서 잘랐다",
        "감기약을 다 먹었다",
        "I cut myself a slice of cake",
        "I cut myself shaving",
        "I hurt myself playing football",
        "I hope I don't wake up late tomorrow",
        "I could just die of embarrassment",
        "I should die my hair pink",
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
