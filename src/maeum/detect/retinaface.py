"""RetinaFace with a MobileNet-0.25 backbone (1.7 MB ONNX, shipped inside maeum): boxes and 5 landmarks."""

from __future__ import annotations

import itertools
from functools import lru_cache
from importlib import resources

import cv2
import numpy as np

from maeum.detect import register_detector
from maeum.detect._common import OVERLAP, PIXELS, SCORE, SIDE, downscale, make_face, nms, number_option
from maeum.onnx_session import create_session
from maeum.results import Face

_MEAN_BGR = (104.0, 117.0, 123.0)  # the network was trained on BGR minus this; blobFromImage wants it in output order
_STEPS = (8, 16, 32)
_MIN_SIZES = ((16, 32), (64, 128), (256, 512))
_VARIANCE = (0.1, 0.2)


@lru_cache(maxsize=16)
def _priors(height: int, width: int) -> np.ndarray:
    """Anchor centres and sizes (cx, cy, w, h) in pixels for an input of height x width."""
    out = []
    for step, sizes in zip(_STEPS, _MIN_SIZES, strict=True):
        fh, fw = -(-height // step), -(-width // step)
        for i, j in itertools.product(range(fh), range(fw)):
            for s in sizes:
                out.append(((j + 0.5) * step, (i + 0.5) * step, s, s))
    return np.asarray(out, dtype=np.float32)


@register_detector("retinaface")
class RetinaFaceDetector:
    """Detects faces at up to ``max_side`` pixels (the image is downscaled, never upscaled, to it).

    ``score_threshold`` drops weak detections; ``min_face`` drops faces smaller than that many
    pixels (in the original image) on their shorter side.
    """

    name = "retinaface"

    def __init__(
        self,
        score_threshold: float = 0.7,
        nms_iou: float = 0.4,
        max_side: int = 1280,
        min_face: int = 0,
        threads: int | None = None,
    ) -> None:
        self.score_threshold = number_option(self.name, "score_threshold", score_threshold, *SCORE)
        self.nms_iou = number_option(self.name, "nms_iou", nms_iou, *OVERLAP)
        self.max_side = int(number_option(self.name, "max_side", max_side, *SIDE, whole=True))
        self.min_face = int(number_option(self.name, "min_face", min_face, *PIXELS, whole=True))
        model = resources.files("maeum.models") / "retinaface_mnet025.onnx"
        with resources.as_file(model) as path:
            self._session = create_session(path, threads)

    def detect(self, image: np.ndarray) -> list[Face]:
        h, w = image.shape[:2]
        small, scale = downscale(image, self.max_side)
        x = cv2.dnn.blobFromImage(small, 1.0, None, _MEAN_BGR, swapRB=True)  # (1, 3, h, w) BGR - mean
        loc, conf, landms = self._session.run(None, {"input": x})
        scores = conf[0, :, 1]
        idx = np.flatnonzero(scores > self.score_threshold)
        if idx.size == 0:
            return []
        pri = _priors(*small.shape[:2])[idx]
        loc, landms, scores = loc[0, idx], landms[0, idx], scores[idx]
        centre = pri[:, :2] + loc[:, :2] * _VARIANCE[0] * pri[:, 2:]
        size = pri[:, 2:] * np.exp(loc[:, 2:] * _VARIANCE[1])
        boxes = np.concatenate([centre - size / 2, centre + size / 2], 1) / scale
        points = (pri[:, None, :2] + landms.reshape(-1, 5, 2) * _VARIANCE[0] * pri[:, None, 2:]) / scale
        keep = nms(boxes, scores, self.nms_iou)
        faces = []
        for k in keep:
            x1, y1, x2, y2 = boxes[k]
            if min(x2 - x1, y2 - y1) < self.min_face:
                continue
            faces.append(make_face(max(x1, 0), max(y1, 0), min(x2, w), min(y2, h), scores[k], points[k]))
        return faces
