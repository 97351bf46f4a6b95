"""Uploaded selfies: checked by content, decoded within limits, re-encoded without EXIF, stored safely.

Stored images live under DATA_DIR/images with random names, outside anything the server
serves directly; the app streams them only to their owner.
"""

from __future__ import annotations

import io
import math
import os
import re
import secrets
import time
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from maeum.app.errors import UserError
from maeum.imageio import pil_to_rgb

ACCEPTED_FORMATS = frozenset({"JPEG", "MPO", "PNG", "WEBP"})  # MPO: the multi-picture JPEG some phones write
_NAME = re.compile(r"^[A-Za-z0-9_-]{32}\.jpg$")


@dataclass(frozen=True)
class UploadLimits:
    max_bytes: int
    max_pixels: int
    min_side: int
    stored_side: int


@dataclass(frozen=True)
class PreparedImage:
    """An upload made safe: upright RGB pixels and their JPEG re-encoding with no metadata."""

    rgb: np.ndarray
    jpeg: bytes

    @property
    def width(self) -> int:
        return int(self.rgb.shape[1])

    @property
    def height(self) -> int:
        return int(self.rgb.shape[0])


def prepare_upload(data: bytes, limits: UploadLimits) -> PreparedImage:
    """Check ``data`` is a JPEG, PNG or WebP photo within the limits; return it upright, at most
    ``stored_side`` pixels on its long side, re-encoded as JPEG without EXIF (no location, no camera)."""
    if not data:
        raise UserError("image_missing")
    if len(data) > limits.max_bytes:
        raise UserError("image_too_large_bytes", 413, mb=limits.max_bytes // (1024 * 1024))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data))
            if im.format not in ACCEPTED_FORMATS:
                raise UserError("image_wrong_type")
            w, h = im.size
            if w * h > limits.max_pixels:
                raise _too_many_pixels(limits)
            if min(w, h) < limits.min_side:
                raise UserError("image_too_small", side=limits.min_side)
            orientation = im.getexif().get(0x0112, 1)
            scale = limits.stored_side / max(w, h)
            if im.format in ("JPEG", "MPO") and scale < 1:
                # The target box with the photo's shape, so the decoder can work at 1/2, 1/4 or 1/8 scale.
                im.draft("RGB", (max(1, math.ceil(w * scale)), max(1, math.ceil(h * scale))))
            im.load()
            im = ImageOps.exif_transpose(im) if orientation != 1 else im
            if max(im.size) > limits.stored_side:
                im.thumbnail((limits.stored_side, limits.stored_side), Image.Resampling.BILINEAR, reducing_gap=2.0)
            rgb = pil_to_rgb(im)
    except UserError:
        raise
    except UnidentifiedImageError:
        raise UserError("image_wrong_type") from None
    except Image.DecompressionBombError:
        raise _too_many_pixels(limits) from None
    except (OSError, SyntaxError, ValueError, EOFError):
        raise UserError("image_corrupt") from None
    out = io.BytesIO()
    Image.fromarray(rgb).save(out, "JPEG", quality=90)
    return PreparedImage(rgb, out.getvalue())


def _too_many_pixels(limits: UploadLimits) -> UserError:
    # megapixels for English, units of 10,000 (만) for Korean: "6,000만 화소"
    return UserError("image_too_many_pixels", 413, mp=limits.max_pixels // 1_000_000, man=limits.max_pixels // 10_000)


class ImageStore:
    """Image files under ``root`` with random names, written atomically, readable by the server's user only."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        if root.stat().st_mode & 0o077:  # made by an older version: close it to other local accounts
            root.chmod(0o700)

    def save(self, jpeg: bytes) -> str:
        """Write ``jpeg`` under a new random name and return the name; the file is complete on disk."""
        name = secrets.token_urlsafe(24) + ".jpg"
        path = self.path(name)
        path.parent.mkdir(mode=0o700, exist_ok=True)
        tmp = path.with_name(f".{name}.partial")
        with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as f:
            f.write(jpeg)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        return name

    def path(self, name: str) -> Path:
        if not _NAME.match(name):
            raise ValueError(f"not a stored image name: {name!r}")
        return self.root / name[:2] / name

    def read(self, name: str) -> bytes:
        return self.path(name).read_bytes()

    def delete(self, name: str) -> None:
        self.path(name).unlink(missing_ok=True)

    def sweep(self, keep: Iterable[str], older_than_s: float = 3600.0) -> int:
        """Delete files no row refers to (left by a crash between writing and committing); return how many.

        Files younger than ``older_than_s`` are kept: a post may be saving them right now.
        """
        keep = set(keep)
        cutoff, removed = time.time() - older_than_s, 0
        for path in self.root.glob("*/*"):
            name = path.name.removeprefix(".").removesuffix(".partial")
            if name not in keep and path.stat().st_mtime < cutoff:
                path.unlink(missing_ok=True)
                removed += 1
        return removed
