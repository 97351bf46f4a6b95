"""Decoding images from files or bytes into the canonical RGB uint8 (H, W, 3) array."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import stat
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from maeum.errors import ImageError, ImageTooLargeError, MaeumError

log = logging.getLogger(__name__)

# Larger images are refused before decoding (a 30000 x 30000 PNG would need 2.7 GB); 120 MP
# admits the 108 MP photos of current phones.
DEFAULT_MAX_PIXELS = 120_000_000
# .jfif and .jpe are JPEG files by other names (Windows saves images from the web as .jfif).
IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".jfif", ".jpe", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif", ".ppm", ".pgm"}
)

# Phone and web photo formats Pillow reads only in some builds (AVIF from Pillow 11.3, HEIC with a
# plugin): a folder search tries them too, so that one it cannot read is reported, never skipped.
OTHER_PHOTO_SUFFIXES = frozenset({".heic", ".heif", ".avif"})


def load_image(
    source: str | Path | bytes, max_pixels: int = DEFAULT_MAX_PIXELS, *, name: str | None = None
) -> np.ndarray:
    """Read an image file (or its bytes) as RGB uint8 (H, W, 3), upright per its EXIF orientation.

    Gray, palette, RGBA (composited on white), 16-bit, float and CMYK images are all normalised.
    ``bytearray`` and ``memoryview`` are read like ``bytes``; ``name`` (say, the file they came
    from) is what errors about bytes call them, else ``<bytes>``. Raises ImageError naming the file
    and what is wrong, TypeError for anything that is neither a path nor bytes.
    """
    if isinstance(source, (bytearray, memoryview)):
        source = bytes(source)
    if not isinstance(source, (str, bytes, os.PathLike)):
        raise TypeError(f"load_image reads a path (str or Path) or the bytes of an image file, not {_hint(source)}")
    if not isinstance(source, bytes):
        name = str(os.fspath(source))
    elif not name:
        name = "<bytes>"
    if isinstance(source, bytes):
        if not source:
            raise ImageError(f"{name}: empty data; pass the bytes of an image file")
        stream: io.BytesIO | Path = io.BytesIO(source)
    elif not name:  # Path("") would be the current folder
        raise ImageError("empty path; pass the path of an image file")
    else:
        stream = check_file(Path(source), "an image file", ImageError)
    try:
        # Pillow's warnings (corrupt EXIF data, a damaged TIFF tag) are kept, to be logged as one line
        # naming the file: printed by Python they name a line of Pillow's source, not the image.
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            # max_pixels decides, checked below before decoding; Pillow's own guard (a warning
            # above 89 MP, an error above 179 MP) would otherwise refuse a raised max_pixels.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with _pillow_limit(max_pixels), Image.open(stream) as im:
                w, h = im.size
                if w * h > max_pixels:
                    raise _too_large(name, f"{w}x{h} pixels", max_pixels)
                im.load()
                image = pil_to_rgb(ImageOps.exif_transpose(im))
    except ImageError:
        raise
    except UnidentifiedImageError:
        suffix = Path(name).suffix.lower()
        if suffix in OTHER_PHOTO_SUFFIXES:
            raise ImageError(
                f"{name}: this installation cannot read {suffix[1:].upper()} images; convert it to JPEG or PNG"
            ) from None
        raise ImageError(f"{name}: not an image file maeum can read (JPEG, PNG, BMP, WebP, TIFF, GIF)") from None
    except Image.DecompressionBombError:  # only above twice Pillow's limit, so above max_pixels too
        raise _too_large(name, f"over {2 * (Image.MAX_IMAGE_PIXELS or 0):,} pixels", max_pixels) from None
    except PermissionError:
        raise ImageError(f"{name}: permission denied; check the file's permissions") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise ImageError(f"{name}: corrupt or truncated image ({e}); re-export or re-download it") from None
    if caught:
        messages = list(dict.fromkeys(" ".join(str(w.message).split()) for w in caught))
        more = f" (and {len(messages) - 1} more)" if len(messages) > 1 else ""
        log.warning("%s: read, with a warning from the decoder: %s%s", name, messages[0], more)
    return image


def _too_large(name: str, size: str, max_pixels: int) -> ImageTooLargeError:
    return ImageTooLargeError(
        f"{name}: image too large ({size}, limit {max_pixels:,}); "
        "downscale the image or raise the limit (max_pixels; on the command line --max-pixels)"
    )


# Image.MAX_IMAGE_PIXELS is one setting for the whole process: changed under this lock only.
_PILLOW_LIMIT_LOCK = threading.Lock()


@contextlib.contextmanager
def _pillow_limit(max_pixels: int) -> Iterator[None]:
    """Lift Pillow's decompression-bomb limit while opening when ``max_pixels`` is above it."""
    limit = Image.MAX_IMAGE_PIXELS
    if limit is None or max_pixels <= 2 * limit:  # Pillow refuses only above twice its limit
        yield
        return
    with _PILLOW_LIMIT_LOCK:
        Image.MAX_IMAGE_PIXELS = max(max_pixels, limit)
        try:
            yield
        finally:
            Image.MAX_IMAGE_PIXELS = limit


def check_file(path: Path, kind: str, error: type[MaeumError]) -> Path:
    """Raise ``error`` naming ``path`` if it is missing, a folder, empty or unreadable; else return it."""
    try:
        info = path.stat()
    except (FileNotFoundError, NotADirectoryError):
        raise error(f"{path}: no such file; check the path") from None
    except PermissionError:
        raise error(f"{path}: permission denied; a folder on its path cannot be entered") from None
    except OSError as e:
        raise error(f"{path}: cannot read it ({e.strerror})") from None
    if stat.S_ISDIR(info.st_mode):
        raise error(f"{path}: is a folder; pass {kind}")
    if info.st_size == 0:
        raise error(f"{path}: empty file (0 bytes); re-export or re-download it")
    try:
        with path.open("rb"):
            pass
    except PermissionError:
        raise error(f"{path}: permission denied; check the file's permissions") from None
    except OSError as e:
        raise error(f"{path}: cannot read it ({e.strerror})") from None
    return path


def pil_to_rgb(im: Image.Image) -> np.ndarray:
    """A decoded Pillow image of any mode as RGB uint8 (H, W, 3); transparency is composited on white."""
    if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        a = np.asarray(im).astype(np.float64)
        hi = 65535.0 if im.mode.startswith("I;16") else max(float(a.max()), 1.0)
        gray = np.clip(a / hi * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return np.asarray(Image.alpha_composite(background, rgba).convert("RGB"))
    return np.asarray(im.convert("RGB"))


def as_rgb_array(image: np.ndarray) -> np.ndarray:
    """Validate an in-memory image and return it as contiguous RGB uint8 (H, W, 3).

    Accepts (H, W) and (H, W, 1) gray and (H, W, 4) RGBA uint8 arrays too (RGBA composited on white,
    as ``load_image`` does); anything else is a TypeError/ValueError saying what to pass instead.
    """
    if not isinstance(image, np.ndarray):
        raise TypeError(f"expected a numpy array (H, W, 3) RGB uint8, got {_hint(image)}")
    if image.dtype != np.uint8:
        scale = " (for values in 0-1: (image * 255).round())" if image.dtype.kind == "f" else ""
        raise TypeError(f"expected dtype uint8, got {image.dtype}; scale to 0-255{scale} and .astype(np.uint8)")
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    elif image.ndim == 3 and image.shape[2] == 1:
        image = np.repeat(image, 3, axis=2)
    elif image.ndim == 3 and image.shape[2] == 4:
        image = _on_white(image)
    elif image.ndim == 3 and image.shape[0] in (1, 3, 4) and image.shape[2] > 4:
        raise ValueError(f"expected shape (H, W, 3), got {image.shape}: channels first; pass image.transpose(1, 2, 0)")
    elif image.ndim != 3 or image.shape[2] != 3:
        several = "; for several images, pass a list of (H, W, 3) arrays" if image.ndim == 4 else ""
        raise ValueError(f"expected shape (H, W, 3), got {image.shape}{several}")
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise ValueError(f"empty image of shape {image.shape}")
    return np.ascontiguousarray(image)


def _on_white(rgba: np.ndarray) -> np.ndarray:
    """(H, W, 4) RGBA uint8 composited on white, as ``pil_to_rgb`` does: (H, W, 3)."""
    alpha = rgba[..., 3:]
    if (alpha == 255).all():
        return rgba[..., :3]
    a = alpha.astype(np.float32) / 255.0
    return np.clip(rgba[..., :3] * a + 255.0 * (1.0 - a) + 0.5, 0, 255).astype(np.uint8)


def _hint(value: object) -> str:
    """``value``'s type, and how to turn it into what maeum takes."""
    kind = type(value).__name__
    if isinstance(value, Image.Image):
        return f"a PIL image ({kind}); pass np.asarray(image.convert('RGB'))"
    if isinstance(value, (str, Path, bytes, bytearray, memoryview)):
        return f"{kind}; read files and bytes with maeum.load_image()"
    if isinstance(value, np.ndarray):
        return "a numpy array; it is decoded already: pass it to Analyzer.analyze as RGB uint8 (H, W, 3)"
    if hasattr(value, "read"):
        return f"an open file ({kind}); pass its bytes to maeum.load_image(f.read())"
    if isinstance(value, (list, tuple)):
        return f"a {kind}; pass one image at a time (several: Analyzer.analyze_batch)"
    return kind
