"""The result types every stage returns: frozen dataclasses, never bare dicts or None."""

from __future__ import annotations

from dataclasses import dataclass

from maeum.labels import display_name


@dataclass(frozen=True)
class Box:
    """An axis-aligned box in pixels: top-left corner, width and height."""

    x: float
    y: float
    w: float
    h: float

    def as_list(self) -> list[float]:
        return [round(self.x, 1), round(self.y, 1), round(self.w, 1), round(self.h, 1)]

    def iou(self, other: Box) -> float:
        """Intersection over union with ``other`` (0 when they do not overlap)."""
        ix = max(0.0, min(self.x + self.w, other.x + other.w) - max(self.x, other.x))
        iy = max(0.0, min(self.y + self.h, other.y + other.h) - max(self.y, other.y))
        inter = ix * iy
        union = self.w * self.h + other.w * other.h - inter
        return inter / union if union > 0 else 0.0


# Five landmarks in the RetinaFace/InsightFace order: right eye, left eye (of the person,
# i.e. image-left eye first), nose tip, mouth right corner, mouth left corner, as (x, y).
Landmarks = tuple[
    tuple[float, float], tuple[float, float], tuple[float, float], tuple[float, float], tuple[float, float]
]


@dataclass(frozen=True)
class Face:
    """A face: its box, the detector's confidence and five landmarks.

    ``detected`` is False when no detector ran and the whole image stands for the face;
    its score is then 0 and its landmarks are the mean positions inside the box.
    """

    box: Box
    score: float
    landmarks: Landmarks
    detected: bool = True


@dataclass(frozen=True)
class Emotion:
    """A classifier's answer for one face: the top label and a probability per class."""

    label: str
    scores: dict[str, float]

    @classmethod
    def from_probs(cls, labels: tuple[str, ...], probs: list[float]) -> Emotion:
        scores = dict(zip(labels, (float(p) for p in probs), strict=True))
        return cls(label=max(scores, key=scores.__getitem__), scores=scores)


@dataclass(frozen=True)
class FaceResult:
    """One face in an image and its emotion."""

    face: Face
    emotion: Emotion

    def to_dict(self, lang: str = "en") -> dict[str, object]:
        """The field's JSON convention (``rect``, ``label``, ``probs``) plus maeum's extra fields."""
        return {
            # Rounded from the box itself: rounding its 1-decimal form again would turn 112.52 into 112.
            "rect": [round(v) for v in (self.face.box.x, self.face.box.y, self.face.box.w, self.face.box.h)],
            "label": display_name(self.emotion.label, lang),
            "probs": {display_name(k, lang): round(v, 4) for k, v in self.emotion.scores.items()},
            "box": self.face.box.as_list(),
            "score": round(self.face.score, 4),
            "landmarks": [[round(x, 1), round(y, 1)] for x, y in self.face.landmarks],
            "detected": self.face.detected,
        }
