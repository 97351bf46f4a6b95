"""Helpers shared by detector backends."""

from __future__ import annotations

import numbers
from collections.abc import Callable

import cv2
import numpy as np

from maeum.errors import ConfigError
from maeum.results import Box, Face

# Where the five landmarks sit inside a Haar face box, as fractions of the box, for detectors
# that give no landmarks: the median of RetinaFace's landmarks over 33 faces both detectors
# found in the benchmark photos (benchmarks/_photos.py), mirrored to be symmetric.
BOX_LANDMARKS = np.array([[0.319, 0.389], [0.681, 0.389], [0.5, 0.607], [0.34, 0.752], [0.66, 0.752]])


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> np.ndarray:
    """Greedy non-maximum suppression over (N, 4) x1, y1, x2, y2 boxes; returns kept indices."""
    order = scores.argsort()[::-1]
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    keep: list[int] = []
    while order.size:
        i = int(order[0])
        keep.append(i)
        rest = order[1:]
        xx1 = np.maximum(boxes[i, 0], boxes[rest, 0])
        yy1 = np.maximum(boxes[i, 1], boxes[rest, 1])
        xx2 = np.minimum(boxes[i, 2], boxes[rest, 2])
        yy2 = np.minimum(boxes[i, 3], boxes[rest, 3])
        inter = np.clip(xx2 - xx1, 0, None) * np.clip(yy2 - yy1, 0, None)
        overlap = inter / (areas[i] + areas[rest] - inter + 1e-9)
        order = rest[overlap <= iou]
    return np.asarray(keep, dtype=np.int64)


def make_face(
    x1: float, y1: float, x2: float, y2: float, score: float, landmarks: np.ndarray, detected: bool = True
) -> Face:
    pts = tuple((float(x), float(y)) for x, y in np.asarray(landmarks).reshape(5, 2))
    box = Box(float(x1), float(y1), float(x2 - x1), float(y2 - y1))
    return Face(box, float(score), pts, detected)  # type: ignore[arg-type]


def landmarks_from_box(x: float, y: float, w: float, h: float) -> np.ndarray:
    return BOX_LANDMARKS * [w, h] + [x, y]


def downscale(image: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    """``image`` shrunk (never enlarged) so its longer side is at most ``max_side``, and the scale used.

    Each side keeps at least 1 pixel: a 4000 x 1 strip becomes 1280 x 1, not an empty image.
    """
    h, w = image.shape[:2]
    scale = min(1.0, max_side / max(h, w))
    if scale == 1.0:
        return image, scale
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA), scale


def number_option(
    detector: str, name: str, value: object, must: str, valid: Callable[[float], bool], *, whole: bool = False
) -> float:
    """``value`` of the detector option ``name`` as a number, or ConfigError saying what it ``must`` be.

    ``whole`` asks for a whole number (the result is still returned as int then).
    """
    kind = "a whole number" if whole else "a number"
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or (whole and not float(value).is_integer()):
        raise ConfigError(f"the {detector} detector's {name}={value!r}: must be {kind} {must}")
    if not valid(float(value)):
        raise ConfigError(f"the {detector} detector's {name}={value!r}: must be {must}")
    return int(value) if whole else float(value)


# (what the value must be, the check) of the options several detectors share.
SCORE = ("between 0 and 1, both excluded, e.g. 0.7", lambda v: 0.0 < v < 1.0)
OVERLAP = ("above 0 and at most 1, e.g. 0.4", lambda v: 0.0 < v <= 1.0)
SIDE = ("at least 32 (pixels), e.g. 1280", lambda v: v >= 32)
PIXELS = ("0 or more (pixels)", lambda v: v >= 0)
