"""The records every dataset source yields: one image, its annotations, who is in it.

Sources (AI Hub layouts, FER2013, FER+, image folders) read their own formats into
``Record``; label policies, splitting and cropping only ever see ``Record``.
Label keys are English (``happiness``); Korean names are for display (``maeum.labels``).
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from maeum.errors import MaeumError

# AI Hub's seven classes in one fixed order: 기쁨 당황 분노 불안 상처 슬픔 중립 (Korean
# alphabetical). Repositories built on this data disagree about the order; this one is ours.
AIHUB7: tuple[str, ...] = ("happiness", "embarrassment", "anger", "anxiety", "hurt", "sadness", "neutral")

# Every spelling of an emotion seen in annotation files, mapped to a label key.
_ALIASES: dict[str, str] = {
    "기쁨": "happiness",
    "행복": "happiness",
    "happy": "happiness",
    "happiness": "happiness",
    "joy": "happiness",
    "당황": "embarrassment",
    "embarrassed": "embarrassment",
    "embarrassment": "embarrassment",
    "panic": "embarrassment",
    "분노": "anger",
    "anger": "anger",
    "angry": "anger",
    "불안": "anxiety",
    "anxiety": "anxiety",
    "anxious": "anxiety",
    "상처": "hurt",
    "hurt": "hurt",
    "슬픔": "sadness",
    "sad": "sadness",
    "sadness": "sadness",
    "중립": "neutral",
    "neutral": "neutral",
    "놀람": "surprise",
    "surprise": "surprise",
    "surprised": "surprise",
    "혐오": "disgust",
    "disgust": "disgust",
    "공포": "fear",
    "fear": "fear",
    "afraid": "fear",
    "경멸": "contempt",
    "contempt": "contempt",
}

Box = tuple[float, float, float, float]  # (x0, y0, x1, y1) in stored-pixel coordinates
ErrorSink = Callable[[str, str], None]  # (file or record, reason)


class DataError(MaeumError):
    """A dataset that cannot be prepared as asked: missing source, unknown format or option."""


def nfc(text: str) -> str:
    """Unicode NFC: macOS writes Hangul file names decomposed (NFD); matching needs one form."""
    return unicodedata.normalize("NFC", text)


def label_key(text: object) -> str | None:
    """The label key for an emotion as written in a dataset (Korean or English), or None."""
    if not isinstance(text, str):
        return None
    return _ALIASES.get(nfc(text).strip().lower())


def class_key(text: object, labels: tuple[str, ...]) -> tuple[str | None, str | None]:
    """(label key, None) for an emotion that is one of ``labels``; (None, why not) for any other.

    An emotion can be a word maeum knows that is no class of this dataset (놀람 in AI Hub data,
    whose seven classes lack surprise): its vote counts as none, like a word nobody knows.
    """
    key = label_key(text)
    if key is None:
        return None, f"unknown emotion {text!r}"
    if key not in labels:
        return None, f"unknown emotion {text!r} ({key} is not one of the dataset's classes: {', '.join(labels)})"
    return key, None


@dataclass(frozen=True)
class Annotation:
    """One annotator's judgement: emotion key (None when unreadable), face box, background."""

    emotion: str | None
    box: Box | None = None
    background: str | None = None


@dataclass(frozen=True)
class Record:
    """One image of a dataset and everything known about it before it is opened."""

    name: str  # unique within the dataset: the NFC file name (AI Hub) or a relative path
    person: str  # who is in it; splits never share a person
    annotations: tuple[Annotation, ...] = ()
    uploader_emotion: str | None = None  # the emotion the person meant to show (AI Hub)
    votes: tuple[int, ...] | None = None  # vote counts per class, in the source's label order (FER+)
    label: str | None = None  # a label given outright (FER2013, image folders)
    split: str | None = None  # a split given by the source (FER2013 Usage, folder layout)
    gender: str | None = None
    age: int | None = None
    background: str | None = None
    url: str | None = None  # where to download the image (AI Hub layout B)
    extra: dict[str, str] = field(default_factory=dict)
    where: str | None = None  # where the record was read (label file and record, CSV line), for error messages

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Record:
        data = json.loads(text)
        data["annotations"] = tuple(
            Annotation(a["emotion"], tuple(a["box"]) if a["box"] is not None else None, a["background"])
            for a in data["annotations"]
        )
        if data["votes"] is not None:
            data["votes"] = tuple(data["votes"])
        return cls(**data)
