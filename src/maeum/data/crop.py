"""Cutting training crops out of large photos: from annotators' boxes, or re-detected and aligned.

Phone selfies are 3000x4000 JPEGs while crops are 48-224 px, so JPEG files are decoded at
a reduced size (libjpeg's DCT scaling, 1/2 to 1/8) whenever the crop keeps full detail.
Annotator boxes are in stored-pixel coordinates; crops come out upright per EXIF.
"""

from __future__ import annotations

import io
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, UnidentifiedImageError

from maeum.data.records import Box
from maeum.errors import ImageError
from maeum.imageio import DEFAULT_MAX_PIXELS

CROP_MODES: tuple[str, ...] = ("box", "detect", "whole")
COLORS: tuple[str, ...] = ("rgb", "gray")
IMAGE_FORMATS: tuple[str, ...] = ("png", "jpg")  # how crops are saved
# Re-detection runs on a reduced copy no larger than this (RetinaFace's own working size).
DETECT_MAX_SIDE = 1280
# A box with less than this share of its area inside the image is not trusted.
MIN_INSIDE = 0.5

_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


@dataclass(frozen=True)
class CropConfig:
    mode: str = "box"  # box: annotators' mean box; detect: maeum's detector + aligner; whole: the whole image
    size: int = 224
    color: str = "rgb"
    margin: float = 0.2  # box mode: added on each side, as a share of the box's longer side
    detector: str = "retinaface"
    aligner: str = "similarity"
    reduced_decode: bool = True
    max_pixels: int = DEFAULT_MAX_PIXELS

    def __post_init__(self) -> None:
        if self.mode not in CROP_MODES:
            raise ValueError(f"unknown crop mode {self.mode!r}; choose one of {', '.join(CROP_MODES)}")
        if self.color not in COLORS:
            raise ValueError(f"unknown colour mode {self.color!r}; choose one of {', '.join(COLORS)}")
        if not 8 <= self.size <= 1024:
            raise ValueError(f"crop size {self.size} out of range; choose 8 to 1024 pixels")
        if not 0 <= self.margin <= 2:
            raise ValueError(f"margin {self.margin} out of range; choose 0 to 2")


@dataclass(frozen=True)
class Crop:
    image: np.ndarray  # (size, size, 3) RGB or (size, size) gray, uint8
    crop_box: Box  # the region cut, in upright full-resolution coordinates
    width: int  # the upright image's size
    height: int
    warnings: tuple[str, ...] = ()
    mask: np.ndarray | None = None  # (size, size) uint8 class ids, when a mask was given


def mean_box(boxes: Sequence[Box]) -> Box:
    a = np.asarray(boxes, dtype=np.float64).mean(axis=0)
    return (float(a[0]), float(a[1]), float(a[2]), float(a[3]))


def square_region(box: Box, margin: float) -> Box:
    """A square around ``box``'s centre, its side the longer box side plus ``margin`` on each side."""
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    half = max(box[2] - box[0], box[3] - box[1]) * (0.5 + margin)
    return (cx - half, cy - half, cx + half, cy + half)


def usable_boxes(boxes: Sequence[Box | None], width: int, height: int) -> tuple[list[Box], list[str]]:
    """Boxes mostly inside a ``width`` x ``height`` image, and a warning for each one dropped."""
    kept, notes = [], []
    for letter, box in zip("ABCDEFGH", boxes, strict=False):
        if box is None:
            continue
        iw = max(0.0, min(box[2], width) - max(box[0], 0.0))
        ih = max(0.0, min(box[3], height) - max(box[1], 0.0))
        area = (box[2] - box[0]) * (box[3] - box[1])
        if area <= 0 or iw * ih < MIN_INSIDE * area:
            notes.append(f"box outside the {width}x{height} image from annotator {letter}: {list(box)}")
        else:
            kept.append(box)
    return kept, notes


def crop_face(
    data: bytes,
    boxes: Sequence[Box | None],
    cfg: CropConfig,
    detector=None,  # a maeum Detector, needed in detect mode
    template: np.ndarray | None = None,  # (5, 2) landmark positions in a 1x1 crop, detect mode
    mask: np.ndarray | None = None,
) -> Crop:
    """Cut one face out of encoded image ``data``. Raises ImageError saying why it cannot."""
    try:
        return _crop(data, boxes, cfg, detector, template, mask)
    except (OSError, SyntaxError, ValueError) as e:  # Pillow's ways of saying the file is damaged
        raise ImageError(f"corrupt or truncated image ({e})") from None


def _crop(data, boxes, cfg, detector, template, mask) -> Crop:
    with _open(data, cfg.max_pixels) as im:
        raw_w, raw_h = im.size
        orientation = _orientation(im)
        kept, notes = usable_boxes(boxes, raw_w, raw_h)
        if cfg.mode == "detect":
            if mask is not None:
                notes.append("segmentation masks are cut in box and whole crop modes only; left out")
            return _detect_crop(im, kept, notes, orientation, cfg, detector, template)
        if cfg.mode == "box":
            if not kept:
                raise ImageError("no usable face box" + (f" ({'; '.join(notes)})" if notes else ""))
            region = square_region(mean_box(kept), cfg.margin)
        else:
            side = min(raw_w, raw_h)
            region = ((raw_w - side) / 2, (raw_h - side) / 2, (raw_w + side) / 2, (raw_h + side) / 2)
        mode = "L" if cfg.color == "gray" else "RGB"
        if cfg.reduced_decode:
            k = cfg.size / (region[2] - region[0])
            im.draft(mode, (max(1, math.ceil(raw_w * k)), max(1, math.ceil(raw_h * k))))
        scale = im.size[0] / raw_w
        cut = im.crop(tuple(round(v * scale) for v in region))  # pads with black outside the image
        out = _transpose(cut.convert(mode).resize((cfg.size, cfg.size), Image.Resampling.BILINEAR), orientation)
        cropped_mask = None
        if mask is not None:
            if mask.shape[:2] != (raw_h, raw_w):
                notes.append(f"mask of shape {mask.shape} does not match the {raw_w}x{raw_h} image; left out")
            else:
                m = Image.fromarray(mask.astype(np.uint8)).crop(tuple(round(v) for v in region))
                cropped_mask = np.asarray(
                    _transpose(m.resize((cfg.size, cfg.size), Image.Resampling.NEAREST), orientation)
                )
        width, height = (raw_h, raw_w) if orientation in (5, 6, 7, 8) else (raw_w, raw_h)
        return Crop(
            np.asarray(out), _orient_box(region, orientation, raw_w, raw_h), width, height, tuple(notes), cropped_mask
        )


def _detect_crop(im, kept, notes, orientation, cfg, detector, template) -> Crop:
    from maeum.results import Box as FaceBox

    if detector is None or template is None:
        raise ValueError("detect mode needs a detector and a landmark template")
    raw_w, raw_h = im.size
    k = min(1.0, DETECT_MAX_SIDE / max(raw_w, raw_h))
    if cfg.reduced_decode:
        im.draft("RGB", (max(1, math.ceil(raw_w * k)), max(1, math.ceil(raw_h * k))))
    scale = im.size[0] / raw_w
    upright = np.asarray(_transpose(im.convert("RGB"), orientation))
    faces = detector.detect(upright)
    if not faces:
        raise ImageError(f"no face found by the {detector.name} detector")
    face = faces[0]
    if kept:
        x0, y0, x1, y1 = (v * scale for v in _orient_box(mean_box(kept), orientation, raw_w, raw_h))
        target = FaceBox(x0, y0, x1 - x0, y1 - y0)
        face = max(faces, key=lambda f: f.box.iou(target))
        if face.box.iou(target) < 0.2:
            raise ImageError("no detected face matches the annotators' box")
    from maeum.align import create_aligner

    crop = create_aligner(cfg.aligner)(upright, np.asarray(face.landmarks), template * cfg.size, cfg.size)
    if cfg.color == "gray":
        crop = np.asarray(Image.fromarray(crop).convert("L"))
    b = face.box
    width, height = (raw_h, raw_w) if orientation in (5, 6, 7, 8) else (raw_w, raw_h)
    box = (b.x / scale, b.y / scale, (b.x + b.w) / scale, (b.y + b.h) / scale)
    return Crop(crop, box, width, height, tuple(notes))


def _open(data: bytes, max_pixels: int) -> Image.Image:
    if not data:
        raise ImageError("empty file (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise ImageError("not an image file maeum can read") from None
    except Image.DecompressionBombError:
        raise ImageError("image too large (a possible decompression bomb)") from None
    w, h = im.size
    if w * h > max_pixels:
        im.close()
        raise ImageError(f"image too large ({w}x{h} pixels, limit {max_pixels:,})")
    return im


def _orientation(im: Image.Image) -> int:
    try:
        value = im.getexif().get(0x0112, 1)
    except Exception:  # a damaged EXIF block should not lose the image
        return 1
    return value if value in _TRANSPOSE else 1


def _transpose(im: Image.Image, orientation: int) -> Image.Image:
    method = _TRANSPOSE.get(orientation)
    return im.transpose(method) if method is not None else im


def _orient_box(box: Box, orientation: int, w: int, h: int) -> Box:
    """Map a box in stored-pixel coordinates to the upright image that EXIF ``orientation`` gives."""
    x0, y0, x1, y1 = box
    maps = {
        1: lambda x, y: (x, y),
        2: lambda x, y: (w - x, y),
        3: lambda x, y: (w - x, h - y),
        4: lambda x, y: (x, h - y),
        5: lambda x, y: (y, x),
        6: lambda x, y: (h - y, x),
        7: lambda x, y: (h - y, w - x),
        8: lambda x, y: (y, w - x),
    }
    pts = [maps.get(orientation, maps[1])(x, y) for x, y in ((x0, y0), (x1, y1))]
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    return (min(xs), min(ys), max(xs), max(ys))
