"""Pixels to model input: the one function shared by training, evaluation and serving."""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Literal

import numpy as np

# ITU-R BT.601 luma, the weights OpenCV and Pillow use for RGB -> gray.
LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)
MIN_SIZE = 8  # the smallest face side a model may ask for: below it no expression is left to read


@dataclass(frozen=True)
class InputSpec:
    """How a classifier wants its faces: square side, colour mode and normalisation."""

    size: int
    color: Literal["gray", "rgb"]
    mean: tuple[float, ...]
    std: tuple[float, ...]

    @property
    def channels(self) -> int:
        return 1 if self.color == "gray" else 3

    def to_dict(self) -> dict[str, object]:
        return {"size": self.size, "color": self.color, "mean": list(self.mean), "std": list(self.std)}

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> InputSpec:
        color = data["color"]
        if color not in ("gray", "rgb"):
            raise ValueError(f"input color must be 'gray' or 'rgb', got {color!r}")
        size = data["size"]
        if isinstance(size, bool) or not isinstance(size, numbers.Real) or not float(size).is_integer():
            raise ValueError(f"input size must be a whole number of pixels, got {size!r}")
        if size < MIN_SIZE:
            raise ValueError(f"input size must be at least {MIN_SIZE} pixels, got {size!r}")
        spec = cls(
            size=int(size),
            color=color,
            mean=tuple(float(v) for v in data["mean"]),  # type: ignore[attr-defined]
            std=tuple(float(v) for v in data["std"]),  # type: ignore[attr-defined]
        )
        if len(spec.mean) != spec.channels or len(spec.std) != spec.channels:
            raise ValueError(f"mean/std need {spec.channels} values for color {color!r}")
        if not all(math.isfinite(v) for v in spec.mean) or not all(math.isfinite(v) and v > 0 for v in spec.std):
            raise ValueError(f"mean must be finite and std above 0, got mean {list(spec.mean)}, std {list(spec.std)}")
        return spec


def resize_crops(faces: np.ndarray, size: int) -> np.ndarray:
    """Square uint8 crops (N, S, S[, 3]) at ``size`` x ``size``: resized bilinearly (Pillow), or as given at that size.

    Training, evaluation and serving resize crops of another size (FER2013's 48 px, say) with this
    one function, so a model sees them alike in all three.
    """
    if faces.ndim not in (3, 4) or faces.shape[1] != faces.shape[2]:
        raise ValueError(f"faces must be square crops (N, S, S[, 3]), got {faces.shape}")
    if faces.shape[1] == size:
        return faces
    from PIL import Image

    return np.stack([np.asarray(Image.fromarray(f).resize((size, size), Image.Resampling.BILINEAR)) for f in faces])


def to_model_input(faces: np.ndarray, spec: InputSpec) -> np.ndarray:
    """Turn aligned face crops into a normalised float32 batch (N, C, size, size).

    ``faces`` is uint8, (N, size, size, 3) RGB or (N, size, size) gray.
    """
    if faces.dtype != np.uint8:
        raise TypeError(f"faces must be uint8, got {faces.dtype}")
    if faces.ndim == 3:  # (N, H, W) gray
        faces = faces[..., None]
    if faces.ndim != 4 or faces.shape[1:3] != (spec.size, spec.size) or faces.shape[3] not in (1, 3):
        raise ValueError(f"faces must be (N, {spec.size}, {spec.size}[, 3]), got {faces.shape}")
    x = faces.astype(np.float32) * (1.0 / 255.0)  # (N, H, W, C)
    if spec.color == "gray" and x.shape[3] == 3:
        x = x @ LUMA[:, None]
    elif spec.color == "rgb" and x.shape[3] == 1:
        x = np.repeat(x, 3, axis=3)
    x = (x - np.asarray(spec.mean, np.float32)) / np.asarray(spec.std, np.float32)
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))  # (N, C, H, W)
