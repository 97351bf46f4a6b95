"""dlib's HOG face detector (frontal faces), with dlib's five-point landmarks. ``pip install 'maeum[hog]'``.

The detector is built into dlib (dlib-bin). Its landmark model, ``shape_predictor_5_face_landmarks.dat``
(the corners of the eyes and the bottom of the nose, trained by Davis King on faces he annotated
himself; dlib's 68-point model is not used, as its training data rules out commercial use), comes
from the face-recognition-models package, or from ``landmarks=PATH``. From the two eye centres the
five points maeum aligns on are placed at their mean layout (``BOX_LANDMARKS``): levelled and
scaled by the eyes, as no mouth corners are given.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from maeum.detect import register_detector
from maeum.detect._common import BOX_LANDMARKS, PIXELS, SIDE, downscale, make_face, number_option
from maeum.errors import ModelError
from maeum.filenames import opencv_readable
from maeum.results import Face

_LANDMARKS_FILE = "shape_predictor_5_face_landmarks.dat"


@register_detector("hog")
class HogDetector:
    """Faces at up to ``max_side`` pixels (downscaled, never upscaled). ``upsample`` doubles the image
    that many times first, to find faces under 80 pixels (each costs about 4x the time).
    ``score_threshold`` is the least SVM margin kept (dlib's own default is 0; higher keeps fewer,
    surer faces); a face's score is the margin squashed into (0, 1). ``min_face`` drops faces
    smaller than that many pixels of the original image."""

    name = "hog"

    def __init__(
        self,
        upsample: int = 1,
        score_threshold: float = 0.3,
        max_side: int = 1280,
        min_face: int = 0,
        landmarks: str | None = None,
    ) -> None:
        self.upsample = int(
            number_option(self.name, "upsample", upsample, "0, 1 or 2", lambda v: 0 <= v <= 2, whole=True)
        )
        self.score_threshold = number_option(
            self.name, "score_threshold", score_threshold, "from -1 to 3, e.g. 0.3", lambda v: -1 <= v <= 3
        )
        self.max_side = int(number_option(self.name, "max_side", max_side, *SIDE, whole=True))
        self.min_face = int(number_option(self.name, "min_face", min_face, *PIXELS, whole=True))
        try:
            import dlib
        except ImportError:
            raise ModelError("the hog detector needs dlib: pip install 'maeum[hog]'") from None
        path = Path(landmarks) if landmarks else _packaged_landmarks()
        if not path.is_file():
            raise ModelError(f"dlib landmark model {path} not found")
        try:
            with opencv_readable(path, ModelError) as name:  # dlib, like OpenCV, wants a plain path
                self._landmarks = dlib.shape_predictor(name)
        except RuntimeError as e:
            raise ModelError(f"{path}: not a dlib shape predictor ({e})") from None
        points = self._landmarks(np.zeros((8, 8, 3), np.uint8), dlib.rectangle(0, 0, 7, 7)).num_parts
        if points != 5:
            raise ModelError(f"{path}: a model of {points} points; pass dlib's 5-point {_LANDMARKS_FILE}")
        self._detector = dlib.get_frontal_face_detector()

    def detect(self, image: np.ndarray) -> list[Face]:
        small, scale = downscale(image, self.max_side)
        small = np.ascontiguousarray(small)
        rects, margins, _ = self._detector.run(small, self.upsample, self.score_threshold)
        h, w = image.shape[:2]
        faces = []
        for rect, margin in zip(rects, margins, strict=True):
            x1, y1, x2, y2 = (v / scale for v in (rect.left(), rect.top(), rect.right() + 1, rect.bottom() + 1))
            if min(x2 - x1, y2 - y1) < self.min_face:
                continue
            parts = np.array([(p.x, p.y) for p in self._landmarks(small, rect).parts()], dtype=np.float64) / scale
            left_eye, right_eye = parts[2:4].mean(axis=0), parts[0:2].mean(axis=0)  # the image's left first
            score = 1.0 / (1.0 + np.exp(-float(margin)))
            box = (max(x1, 0), max(y1, 0), min(x2, w), min(y2, h))
            faces.append(make_face(*box, score, _five_points(left_eye, right_eye)))
        return sorted(faces, key=lambda f: -f.score)


def _five_points(left_eye: np.ndarray, right_eye: np.ndarray) -> np.ndarray:
    """The mean five-point layout moved, turned and scaled so that its eyes fall on these."""
    mean_left, mean_right = BOX_LANDMARKS[0], BOX_LANDMARKS[1]
    # A similarity as complex numbers: z -> a * z + b maps the mean eyes onto the found ones.
    a = complex(*(right_eye - left_eye)) / complex(*(mean_right - mean_left))
    b = complex(*left_eye) - a * complex(*mean_left)
    moved = [a * complex(x, y) + b for x, y in BOX_LANDMARKS]
    return np.array([(z.real, z.imag) for z in moved])


def _packaged_landmarks() -> Path:
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            "the hog detector's landmark model comes from face-recognition-models: pip install 'maeum[hog]', "
            "or pass --detector-option landmarks=shape_predictor_5_face_landmarks.dat"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "models" / _LANDMARKS_FILE
