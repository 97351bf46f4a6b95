"""Measure a model's alignment template: where the five landmarks sit in its training crops.

Serving aligns each detected face onto this template, so a face from a photo is framed the
way the training crops were (for FER+: the dataset's loose 48x48 crops).
"""

from __future__ import annotations

import logging

import cv2
import numpy as np

from maeum.detect import Detector

log = logging.getLogger(__name__)


def measure_template(
    crops: np.ndarray, detector: Detector, upscale: int | None = None, pad: float = 0.5, min_score: float = 0.9
) -> tuple[np.ndarray, int]:
    """Median landmark positions (5, 2) in crop pixels over crops (N, S, S) gray or (N, S, S, 3) RGB,
    and how many were used.

    Each crop is upscaled (to about 192 px by default) and padded (detectors need some context
    around a face) before detection.
    """
    size = crops.shape[1]
    upscale = upscale or max(1, round(192 / size))
    border = int(size * upscale * pad)
    points = []
    for crop in crops:
        big = cv2.resize(crop, None, fx=upscale, fy=upscale, interpolation=cv2.INTER_CUBIC)
        big = cv2.copyMakeBorder(big, border, border, border, border, cv2.BORDER_REPLICATE)
        faces = detector.detect(np.repeat(big[..., None], 3, axis=2) if big.ndim == 2 else big)
        if faces and faces[0].score >= min_score:
            points.append((np.asarray(faces[0].landmarks) - border) / upscale)
    if not points:
        raise ValueError("no landmarks found on any crop; cannot measure a template")
    log.info("template measured on %d of %d crops", len(points), len(crops))
    return symmetrize(np.median(np.stack(points), axis=0), size), len(points)


def symmetrize(template: np.ndarray, size: int) -> np.ndarray:
    """Average a (5, 2) template with its mirror image, so the eyes are level and centred."""
    mirrored = template[[1, 0, 2, 4, 3]].copy()
    mirrored[:, 0] = size - mirrored[:, 0]
    return (template + mirrored) / 2
