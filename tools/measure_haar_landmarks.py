"""Measure ``maeum.detect._common.BOX_LANDMARKS``: where landmarks sit inside Haar face boxes.

    python tools/measure_haar_landmarks.py

Runs Haar and RetinaFace on the benchmark photos, pairs boxes that overlap (IoU > 0.4), and
prints the median RetinaFace landmark positions as fractions of the Haar box, mirrored so the
left and right points are symmetric.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from _photos import real_photos
from maeum import create_detector, load_image

log = logging.getLogger("measure_haar_landmarks")


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    retina, haar = create_detector("retinaface"), create_detector("haar")
    rel = []
    for photo in real_photos():
        image = load_image(photo.path)
        found = retina.detect(image)
        for face in haar.detect(image):
            match = [f for f in found if f.box.iou(face.box) > 0.4]
            if match:
                b = face.box
                rel.append((np.asarray(match[0].landmarks) - [b.x, b.y]) / [b.w, b.h])
    med = np.median(np.stack(rel), axis=0)
    mirrored = np.c_[1 - med[[1, 0, 2, 4, 3], 0], med[[1, 0, 2, 4, 3], 1]]
    log.info("%d faces; BOX_LANDMARKS = %s", len(rel), np.round((med + mirrored) / 2, 3).tolist())


if __name__ == "__main__":
    main()
