"""OpenCV's Haar cascade (ships with opencv-python-headless 4.x): fast, frontal faces only.

Haar gives no landmarks; the five points are placed at their mean positions in the box,
so faces are not de-rotated. Use it where speed matters more than tilted heads.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from maeum.detect import register_detector
from maeum.detect._common import PIXELS, landmarks_from_box, make_face, number_option
from maeum.errors import ModelError
from maeum.filenames import opencv_readable
from maeum.results import Face


@register_detector("haar")
class HaarDetector:
    name = "haar"

    def __init__(
        self, scale_factor: float = 1.1, min_neighbors: int = 5, min_face: int = 24, cascade: str | None = None
    ) -> None:
        self.scale_factor = number_option(self.name, "scale_factor", scale_factor, "above 1, e.g. 1.1", lambda v: v > 1)
        self.min_neighbors = int(
            number_option(self.name, "min_neighbors", min_neighbors, "0 or more, e.g. 5", lambda v: v >= 0, whole=True)
        )
        self.min_face = int(number_option(self.name, "min_face", min_face, *PIXELS, whole=True))
        opencv_data = Path(cv2.data.haarcascades)
        path = Path(cascade) if cascade else opencv_data / "haarcascade_frontalface_default.xml"
        if cascade and not path.is_file() and (opencv_data / path).is_file():  # a bare name: one OpenCV ships
            path = opencv_data / path
        if cascade and not path.is_file():
            raise ModelError(f"Haar cascade {path} not found (nor in OpenCV's {opencv_data})")
        try:
            with opencv_readable(path, ModelError) as name:
                self._cascade = cv2.CascadeClassifier(name)
        except (cv2.error, SystemError):  # a file OpenCV cannot parse raises instead of loading empty
            self._cascade = cv2.CascadeClassifier()
        if self._cascade.empty():
            hint = "is it an OpenCV cascade XML file?" if cascade else "install opencv-python-headless<5"
            raise ModelError(f"could not load Haar cascade {path}; {hint}")

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
