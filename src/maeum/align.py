"""Five-point face alignment: a similarity transform onto a model's canonical landmarks.

Plain functions, used identically by data preparation, training and serving. Aligners are
chosen by name (``create_aligner``): ``similarity`` (default) levels the eyes; ``upright``
only scales and shifts, keeping the head's tilt.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from maeum.errors import UnknownNameError

# An aligner maps (image, landmarks (5, 2), template (5, 2), size) to a (size, size) crop.
Aligner = Callable[[np.ndarray, np.ndarray, np.ndarray, int], np.ndarray]


def estimate_similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, shift) mapping ``src`` onto ``dst``.

    Both are (K, 2) point arrays; returns the (2, 3) matrix (Umeyama, 1991).
    """
    src = np.asarray(src, np.float64)
    dst = np.asarray(dst, np.float64)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s, d = src - mu_s, dst - mu_d
    cov = d.T @ s / len(src)
    u, sig, vt = np.linalg.svd(cov)
    sign = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[1] = -1
    rot = u @ np.diag(sign) @ vt
    var = (s**2).sum() / len(src)
    scale = (sig * sign).sum() / var if var > 0 else 1.0
    m = np.empty((2, 3))
    m[:, :2] = scale * rot
    m[:, 2] = mu_d - scale * rot @ mu_s
    return m


def estimate_scale_shift(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares uniform scale and shift (no rotation) mapping ``src`` onto ``dst``; (2, 3)."""
    src = np.asarray(src, np.float64)
    dst = np.asarray(dst, np.float64)
    s, d = src - src.mean(0), dst - dst.mean(0)
    var = (s**2).sum()
    scale = (s * d).sum() / var if var > 0 else 1.0
    m = np.zeros((2, 3))
    m[0, 0] = m[1, 1] = scale
    m[:, 2] = dst.mean(0) - scale * src.mean(0)
    return m


def align_face(image: np.ndarray, landmarks: np.ndarray, template: np.ndarray, size: int) -> np.ndarray:
    """Warp ``image`` so ``landmarks`` (5, 2) land on ``template`` (5, 2, in output pixels).

    Returns a (size, size, C) crop of the same dtype, eyes level and centred.
    """
    return warp(image, estimate_similarity(landmarks, template), size)


def align_upright(image: np.ndarray, landmarks: np.ndarray, template: np.ndarray, size: int) -> np.ndarray:
    """Like ``align_face`` but without rotation: the crop keeps the head's tilt."""
    return warp(image, estimate_scale_shift(landmarks, template), size)


def warp(image: np.ndarray, m: np.ndarray, size: int) -> np.ndarray:
    """Apply the (2, 3) affine ``m`` to get a (size, size) crop.

    Large downscales are warped at an intermediate size and area-resized, so small crops
    from big photos do not alias.
    """
    scale = float(np.sqrt(abs(np.linalg.det(m[:, :2]))))  # output px per input px
    factor = int(min(4, max(1, np.floor(1.0 / max(scale, 1e-6)))))
    if factor > 1:
        big = m * factor
        crop = cv2.warpAffine(
            image, big, (size * factor, size * factor), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
        )
        return cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)
    return cv2.warpAffine(image, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


_ALIGNERS: dict[str, Aligner] = {"similarity": align_face, "upright": align_upright}


def list_aligners() -> list[str]:
    return sorted(_ALIGNERS)


def create_aligner(name: str) -> Aligner:
    """The aligner registered as ``name`` (see ``list_aligners()``)."""
    if name not in _ALIGNERS:
        raise UnknownNameError("aligner", name, list_aligners())
    return _ALIGNERS[name]


def square_crop(image: np.ndarray, size: int) -> np.ndarray:
    """Resize a whole image (a pre-cropped face) to (size, size), centre-cropping to square first."""
    h, w = image.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    crop = image[top : top + side, left : left + side]
    interp = cv2.INTER_AREA if side > size else cv2.INTER_LINEAR
    return cv2.resize(crop, (size, size), interpolation=interp)
