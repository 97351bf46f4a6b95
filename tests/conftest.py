"""Shared fixtures: real face photos from installed packages, bad files, the shared data folder."""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from maeum.analyzer import Analyzer
from maeum.results import Box

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
SHARED = Path(os.environ.get("MAEUM_SHARED", REPO.parent / "shared"))
YUNET = SHARED / "models" / "face_detection_yunet_2023mar.onnx"

# Reference face boxes measured by hand on the photos.
ASTRONAUT_FACE = Box(178, 60, 90, 115)
HOPPER_FACE = Box(175, 110, 180, 215)


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    import skimage.data

    return skimage.data.astronaut()


@pytest.fixture(scope="session")
def hopper() -> np.ndarray:
    import matplotlib.cbook

    with Image.open(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)) as im:
        return np.asarray(im.convert("RGB"))


@pytest.fixture(scope="session")
def cat() -> np.ndarray:
    import skimage.data

    return skimage.data.chelsea()


@pytest.fixture(scope="session")
def analyzer() -> Analyzer:
    return Analyzer(threads=2)


@pytest.fixture(scope="session")
def shared() -> Path:
    if not (SHARED / "data" / "ferplus" / "fer2013new.csv").is_file():
        pytest.skip(f"shared data not found at {SHARED} (set MAEUM_SHARED)")
    return SHARED


@pytest.fixture(scope="session")
def bad_files(tmp_path_factory: pytest.TempPathFactory, astronaut: np.ndarray) -> dict[str, Path]:
    """Real broken inputs: empty, truncated JPEG, text named .jpg, a 30000x30000 PNG bomb."""
    d = tmp_path_factory.mktemp("bad")
    good = d / "good.jpg"
    Image.fromarray(astronaut).save(good, quality=90)
    data = good.read_bytes()
    (d / "empty.jpg").write_bytes(b"")
    (d / "truncated.jpg").write_bytes(data[: len(data) // 3])
    (d / "text.jpg").write_text("this is not an image\n")
    (d / "bomb.png").write_bytes(_png_bomb(30000, 30000))
    return {
        name: d / f"{name}.{ext}"
        for name, ext in (("good", "jpg"), ("empty", "jpg"), ("truncated", "jpg"), ("text", "jpg"), ("bomb", "png"))
    }


def _png_bomb(w: int, h: int) -> bytes:
    """A valid gray PNG of w x h black pixels: a few hundred KB that decode to w*h bytes."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    comp = zlib.compressobj(9)
    row = b"\x00" * (w + 1)  # filter byte + pixels
    idat = b"".join(comp.compress(row) for _ in range(h)) + comp.flush()
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
