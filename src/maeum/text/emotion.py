"""Rule-based Korean text emotion for diary entries, with no model and no morphological analyser.

Only Korean is read: :func:`can_read` tells when a text is mostly in Latin letters (an English
diary), which the lexicon would call neutral; callers should then claim no text emotion at all.

``analyze_text`` splits the text into words (eojeol) on whitespace and punctuation, matches
the stems of maeum's lexicon (:mod:`maeum.text.lexicon`) by prefix, and applies a few rules:

- negation: ``행복하지 않다``, ``안 행복하다``, ``걱정 없다`` — a negated happiness word counts
  towards sadness, a negated negative word only towards neutral (not being angry is not joy);
  ``화가 안 날 수가 없다`` (double negation) stays anger;
- intensifiers (``너무``, ``정말``, ``진짜``, ``완전``, slang prefixes ``개``/``핵``) raise a word's weight;
- contrast (``…지만``, ``하지만``, ``결국``, ``사실은``) halves what came before, so a mixed entry
  is decided by its last clause; pretence (``기쁜 척``) nearly cancels a word;
- emoticons (``ㅋㅋ``, ``ㅎㅎ``, ``ㅠㅠ``, ``ㅡㅡ``, emoji) count as evidence;
- look-alikes (``거짓말처럼``, ``훔쳐보다``, :data:`maeum.text.lexicon.NOT_CUES`) are read past,
  so the cue they start like (``거짓말``, ``훔쳐``) is not counted;
- a plain verb right after a cue belongs to it (``거짓말을 했다``, ``훔쳐 갔다``), so it does not
  count as the weak evidence for neutral it is in a factual entry (``회사에 갔다``).

Empty or whitespace-only text gives neutral with no evidence (a diary entry may be a photo
alone); a value that is not a ``str`` raises ``TypeError``. The text is only ever matched
against the lexicon, never executed or followed, so instruction-like text is just words.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field

from maeum.labels import FERPLUS7
from maeum.text.lexicon import (
    CONTRAST_SUFFIXES,
    CONTRAST_WORDS,
    CUE_PATTERNS,
    EMOTICONS,
    INTENSIFIER_PREFIXES,
    INTENSIFIERS,
    LEXICON,
    NEGATORS_AFTER,
    NEGATORS_BEFORE,
    NOT_CUES,
    PRETENCE_WORDS,
)

logger = logging.getLogger(__name__)

LABELS: tuple[str, ...] = FERPLUS7
NEGATIVE: frozenset[str] = frozenset({"sadness", "anger", "disgust", "fear"})
# Valence of face labels, including the AI Hub Korean classes maeum's face models may emit.
_FACE_VALENCE: dict[str, int] = {
    "happiness": 1,
    "neutral": 0,
    "surprise": 0,
    "sadness": -1,
    "anger": -1,
    "disgust": -1,
    "fear": -1,
    "contempt": -1,
    "embarrassment": -1,
    "anxiety": -1,
    "hurt": -1,
}

# Particles and endings removed to find a word's stem (longest first): 행복은 -> 행복, 화가 -> 화.
_SUFFIXES: tuple[str, ...] = tuple(
    sorted(
        [
            "은",
            "는",
            "이",
            "가",
            "을",
            "를",
            "에",
            "에서",
            "에게",
            "한테",
            "께",
            "도",
            "만",
            "와",
            "과",
            "랑",
            "이랑",
            "으로",
            "로",
            "의",
            "까지",
            "부터",
            "보다",
            "처럼",
            "이나",
            "나",
            "했다",
            "했어",
            "했고",
            "했는데",
            "해서",
            "하고",
            "하다",
            "하게",
            "한",
            "할",
            "해",
            "였다",
            "이었다",
            "었다",
            "았다",
            "였고",
            "었고",
            "았고",
            "이다",
            "입니다",
            "였어",
            "었어",
            "았어",
            "에는",
            "에도",
            "으로는",
            "이라",
            "라",
        ],
        key=len,
        reverse=True,
    )
)
_NEG_STEM_ENDINGS: tuple[str, ...] = ("지", "지가", "지는", "지도", "지를", "진", "지만은", "지는않")
_WORD = re.compile(r"[가-힣A-Za-z0-9]+")
_HANGUL_CHAR = re.compile(r"[가-힣ㄱ-ㅎㅏ-ㅣ]")
_LATIN_CHAR = re.compile(r"[A-Za-z]")
_NEUTRAL_PRIOR = 0.5
_INTENSIFY = 1.6
_CONTRAST = 0.5
_PRETENCE = 0.15
_WEAK = 0.3  # the lexicon's weight for a weak cue
_MAX_CHARS = 100_000


@dataclass(frozen=True)
class TextEmotionConfig:
    """Which rules ``analyze_text`` applies; all off is the keyword-only baseline."""

    negation: bool = True
    intensifiers: bool = True
    contrast: bool = True
    emoticons: bool = True


@dataclass(frozen=True)
class TextEmotion:
    """The emotion of a text: ``label``, ``scores`` over :data:`LABELS` summing to 1, ``evidence``.

    ``evidence`` lists the matched words as they appear in the text, in order; negated
    words carry a ``(부정)`` mark, e.g. ``"행복하지(부정)"``. Empty evidence means neutral.
    """

    label: str
    scores: dict[str, float]
    evidence: tuple[str, ...] = field(default_factory=tuple)

    @property
    def confidence(self) -> float:
        """The score of ``label``."""
        return self.scores[self.label]


def _strip(word: str) -> str:
    """Remove one common particle or verb ending, keeping at least one syllable."""
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) > len(suffix):
            return word[: -len(suffix)]
    return word


def _build_index() -> dict[str, list[tuple[tuple[str, ...], str, float]]]:
    """Lexicon entries by the first character of their first word, longest entries first.

    A look-alike (``NOT_CUES``) is an entry with the empty label, so it wins over the shorter
    cue it starts like.
    """
    index: dict[str, list[tuple[tuple[str, ...], str, float]]] = {}
    for label, entries in LEXICON.items():
        for words, _text, weight in entries:
            index.setdefault(words[0][0], []).append((words, label, weight))
    for words in NOT_CUES:
        index.setdefault(words[0][0], []).append((words, "", 0.0))
    for entries in index.values():
        entries.sort(key=lambda e: (-len(e[0]), -len("".join(e[0])), -e[2]))
    return index


_INDEX = _build_index()


def _word_matches(stem: str, token: str, last: bool, phrase: bool) -> bool:
    """A phrase's last word or a stem matches by prefix; a one-syllable stem alone or an inner word exactly."""
    if last and (phrase or len(stem) > 1):
        return token.startswith(stem)
    return token == stem or _strip(token) == stem


def _match(tokens: list[str], i: int) -> tuple[str, float, int, int] | None:
    """The longest lexicon entry starting at ``tokens[i]``: (label, weight, words used, stem length).

    The label is empty for a look-alike (``NOT_CUES``): its words are no cue.
    """
    token = tokens[i]
    for words, label, weight in _INDEX.get(token[0], ()):
        n = len(words)
        if i + n > len(tokens):
            continue
        if all(_word_matches(w, tokens[i + k], last=k == n - 1, phrase=n > 1) for k, w in enumerate(words)):
            return label, weight, n, len(words[-1])
    return None


def _is_negated(tokens: list[str], i: int, n: int, stem_len: int) -> bool:
    """Negation of the entry at tokens[i : i + n] whose last word's stem has ``stem_len`` characters."""
    last = tokens[i + n - 1]
    rest = last[stem_len:]
    after = tokens[i + n] if i + n < len(tokens) else ""
    negated = False
    if (
        (i > 0 and tokens[i - 1] in NEGATORS_BEFORE)
        or "지않" in rest
        or "지못" in rest
        or rest.endswith(("않", "않다", "않았다", "않아"))
        or (rest.endswith(_NEG_STEM_ENDINGS) and after.startswith(NEGATORS_AFTER))
    ):
        negated = True
    elif after in ("게", "건", "것", "것은", "것이") and i + n + 1 < len(tokens):
        # 웃는 게 아니다.
        negated = tokens[i + n + 1].startswith(("아니", "아냐"))
    elif _strip(last) == last[:stem_len] or rest in ("", "이", "가", "은", "는", "도"):
        # A noun: 걱정 없다, 짜증 안 나게.
        negated = after.startswith(("없", "안", "못", "아니"))
    if negated:
        # Double negation: 화가 안 날 수가 없다.
        window = tokens[i + n : i + n + 4]
        for k in range(len(window) - 1):
            if window[k] in ("수", "수가", "수도") and window[k + 1].startswith("없"):
                return False
    return negated


def _tokens(text: str) -> list[str]:
    return _WORD.findall(text)


def analyze_text(text: str, config: TextEmotionConfig | None = None) -> TextEmotion:
    """The emotion of a Korean text (a diary entry, a message, lyrics).

    Empty or whitespace-only text gives neutral with no evidence. Raises ``TypeError`` for a
    value that is not a ``str``. Text beyond 100,000 characters is ignored.
    """
    if not isinstance(text, str):
        raise TypeError(f"analyze_text expects str, got {type(text).__name__}; decode bytes first")
    cfg = config or TextEmotionConfig()
    text = text[:_MAX_CHARS]
    raw = dict.fromkeys(LABELS, 0.0)
    evidence: list[str] = []

    if cfg.emoticons:
        for pattern, label, weight in (*EMOTICONS, *CUE_PATTERNS):
            for m in re.finditer(pattern, text):
                length = len(m.group(0))
                raw[label] += weight * (min(1.0 + 0.25 * (length - 2), 1.8) if length > 2 else 1.0)
                evidence.append(m.group(0))

    tokens = _tokens(text)
    # Word evidence as (label, weight, text), kept apart so contrast can damp what came before.
    found: list[list] = []
    cue_end = -1  # index just past the last non-neutral cue, for the plain verb that may follow it
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if cfg.contrast and token in CONTRAST_WORDS:
            for f in found:
                f[1] *= _CONTRAST
            i += 1
            continue
        hit = _match(tokens, i)
        if hit is not None and not hit[0]:
            i += hit[2]  # a look-alike: 거짓말처럼 is no lie
            continue
        boost = 1.0
        if hit is None and cfg.intensifiers:
            for prefix in INTENSIFIER_PREFIXES:
                if token.startswith(prefix) and len(token) > len(prefix) + 1:
                    sub = _match([token[len(prefix) :], *tokens[i + 1 :]], 0)
                    if sub is not None and sub[0]:
                        hit, boost = sub, _INTENSIFY
                        break
        if hit is None:
            i += 1
            continue
        label, weight, n, stem_len = hit
        if label == "neutral" and weight <= _WEAK and i == cue_end:
            i += n  # 거짓말을 했다: 했다 is part of the cue before it
            continue
        if label != "neutral":
            cue_end = i + n
        words = " ".join(tokens[i : i + n])
        weight *= boost
        if cfg.intensifiers and any(t in INTENSIFIERS for t in tokens[max(0, i - 2) : i]):
            weight *= _INTENSIFY
        end = tokens[i + n - 1]
        if cfg.negation and boost == 1.0 and _is_negated(tokens, i, n, stem_len):
            words += "(부정)"
            if label == "happiness":
                label, weight = "sadness", weight * 0.6
            elif label == "neutral":
                weight = 0.0
            else:
                label, weight = "neutral", weight * 0.4
        if cfg.negation and i + n < len(tokens) and tokens[i + n] in PRETENCE_WORDS:
            weight *= _PRETENCE
        found.append([label, weight, words])
        if cfg.contrast and end.endswith(CONTRAST_SUFFIXES):
            for f in found:
                f[1] *= _CONTRAST
        i += n

    for label, weight, words in found:
        raw[label] += weight
        evidence.append(words)

    if not evidence:
        return TextEmotion("neutral", {lab: float(lab == "neutral") for lab in LABELS}, ())
    raw["neutral"] += _NEUTRAL_PRIOR
    total = sum(raw.values())
    scores = {lab: raw[lab] / total for lab in LABELS}
    best = max(LABELS, key=lambda lab: scores[lab])  # ties go to the earlier label in LABELS
    logger.debug("text emotion %s from %s", best, evidence)
    return TextEmotion(best, scores, tuple(evidence))


def can_read(text: str) -> bool:
    """Whether :func:`analyze_text` can read ``text``: False when words in Latin letters outnumber
    words with Hangul (an English diary), since the lexicon is Korean and would call it neutral.

    Text with neither (empty, emoji, numbers) counts as readable: it is neutral or read from its
    emoticons either way.
    """
    text = text[:_MAX_CHARS]
    hangul = latin = 0
    for word in text.split():
        if _HANGUL_CHAR.search(word):
            hangul += 1
        elif _LATIN_CHAR.search(word):
            latin += 1
    return latin <= hangul


def is_clear(text: TextEmotion, *, min_confidence: float = 0.5, min_evidence: int = 1) -> bool:
    """Whether ``text``'s label is clear: it holds at least ``min_confidence`` of the scores and
    rests on at least ``min_evidence`` matched words or emoticons (a text with none is never clear)."""
    return bool(text.evidence) and text.confidence >= min_confidence and len(text.evidence) >= min_evidence


def disagreement(
    face_label: str,
    text: TextEmotion,
    *,
    min_confidence: float = 0.5,
    min_evidence: int = 2,
) -> bool:
    """Whether a face and a text clearly disagree: a happy face with a sad/angry/fearful/disgusted
    text, or a negative face with a happy text.

    "Clearly" is :func:`is_clear` with ``min_confidence`` and ``min_evidence``. Neutral and
    surprise agree with everything. Raises ``ValueError`` for an unknown face label.
    """
    if face_label not in _FACE_VALENCE:
        raise ValueError(f"unknown face label {face_label!r}; known: {', '.join(_FACE_VALENCE)}")
    face = _FACE_VALENCE[face_label]
    words = _FACE_VALENCE[text.label]
    if face == 0 or words == 0 or face == words:
        return False
    return is_clear(text, min_confidence=min_confidence, min_evidence=min_evidence)
