"""OpenCV's Haar cascade (ships with opencv-python-headless 4.x): fast, frontal faces only.

Haar gives no landmarks; the five points are placed at their mean positions in the box,
so faces are not de-rotated. Use it where speed matters more than tilted heads.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from maeum.detect import register_detector
from maeum.detect._common import landmarks_from_box, make_face
from maeum.errors import ModelError
from maeum.results import Face


class HaarDetector:
    name = "haar"

    def __init__(
        self, scale_factor: float = 1.1, min_neighbors: int = 5, min_face: int = 24, cascade: str | None = None
    ) -> None:
        path = Path(cascade) if cascade else Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml"
        self._cascade = cv2.CascadeClassifier(str(path))
        if self._cascade.empty():
            raise ModelError(f"could not load Haar cascade {path}; install opencv-python-headless<5")
        self.scale_factor, self.min_neighbors, self.min_face = scale_factor, min_neighbors, min_face

    def detect(self, image: np.ndarray) -> list[Face]:
        gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        rects, _, weights = self._cascade.detectMultiScale3(
            gray, self.scale_factor, self.min_neighbors, minSize=(self.min_face, self.min_face), outputRejectLevels=True
        )
        faces = []
        for (x, y, w, h), weight in zip(rects, np.ravel(weights), strict=True):
            score = 1.0 / (1.0 + np.exp(-float(weight)))  # cascade stage sum squashed to (0, 1)
            faces.append(make_face(x, y, x + w, y + h, score, landmarks_from_box(x, y, w, h)))
        return sorted(faces, key=lambda f: -f.score)


@register_detector("haar")
def _create(**options: object) -> HaarDetector:
    return HaarDetector(**options)  # type: ignore[arg-type]
