"""YuNet (OpenCV's ``FaceDetectorYN``) given its ONNX file: boxes and 5 landmarks.

maeum does not ship YuNet's weights; pass ``model_path`` or set ``MAEUM_YUNET_MODEL`` to
``face_detection_yunet_2023mar.onnx`` (OpenCV Zoo, MIT).
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from maeum.detect import register_detector
from maeum.detect._common import OVERLAP, SCORE, SIDE, downscale, make_face, number_option
from maeum.errors import ModelError
from maeum.filenames import opencv_readable
from maeum.results import Face

_MIN_INPUT = 64  # pixels on each side of what YuNet is given


@register_detector("yunet")
class YuNetDetector:
    name = "yunet"

    def __init__(
        self, model_path: str | None = None, score_threshold: float = 0.7, nms_iou: float = 0.3, max_side: int = 1280
    ) -> None:
        path = model_path or os.environ.get("MAEUM_YUNET_MODEL")
        if not path:
            raise ModelError(
                "the yunet detector needs its ONNX file: pass model_path=... (CLI: "
                "--detector-option model_path=FILE) or set MAEUM_YUNET_MODEL"
            )
        if not Path(path).is_file():
            raise ModelError(f"YuNet model {path} not found")
        score = number_option(self.name, "score_threshold", score_threshold, *SCORE)
        overlap = number_option(self.name, "nms_iou", nms_iou, *OVERLAP)
        self.max_side = int(number_option(self.name, "max_side", max_side, *SIDE, whole=True))
        try:
            with opencv_readable(path, ModelError) as name:
                self._net = cv2.FaceDetectorYN.create(name, "", (320, 320), score, overlap, 5000)
        except cv2.error:
            raise ModelError(f"YuNet model {path} could not be loaded: is it YuNet's ONNX file?") from None

    def detect(self, image: np.ndarray) -> list[Face]:
        h, w = image.shape[:2]
        small, scale = downscale(image, self.max_side)
        bgr = np.ascontiguousarray(small[..., ::-1])
        # YuNet answers an input 32 px high or less with nonsense (boxes of 1e29 px, score 1):
        # pad small images at the bottom and right, which moves no coordinate.
        pad_h, pad_w = max(0, _MIN_INPUT - bgr.shape[0]), max(0, _MIN_INPUT - bgr.shape[1])
        if pad_h or pad_w:
            bgr = cv2.copyMakeBorder(bgr, 0, pad_h, 0, pad_w, cv2.BORDER_CONSTANT, value=(0, 0, 0))
        self._net.setInputSize((bgr.shape[1], bgr.shape[0]))
        _, rows = self._net.detect(bgr)
        faces = []
        for r in [] if rows is None else rows[np.isfinite(rows).all(axis=1)]:
            x, y, bw, bh = (r[:4] / scale).tolist()
            # YuNet order: right eye, left eye, nose, right mouth, left mouth (as RetinaFace).
            faces.append(make_face(max(x, 0), max(y, 0), min(x + bw, w), min(y + bh, h), r[14], r[4:14] / scale))
        return sorted(faces, key=lambda f: -f.score)
