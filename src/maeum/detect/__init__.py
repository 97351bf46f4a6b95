"""Face detectors behind one factory: ``create_detector(name, **options)``.

Every detector takes an RGB uint8 (H, W, 3) image and returns a list of ``Face`` (box,
score, five landmarks), best first; an image without faces gives an empty list.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np

from maeum.errors import UnknownNameError
from maeum.results import Face


class Detector(Protocol):
    name: str

    def detect(self, image: np.ndarray) -> list[Face]: ...


_REGISTRY: dict[str, Callable[..., Detector]] = {}


def register_detector(name: str) -> Callable[[Callable[..., Detector]], Callable[..., Detector]]:
    def wrap(factory: Callable[..., Detector]) -> Callable[..., Detector]:
        _REGISTRY[name] = factory
        return factory

    return wrap


def list_detectors() -> list[str]:
    _load_builtins()
    return sorted(_REGISTRY)


def create_detector(name: str, **options: object) -> Detector:
    """Build the detector registered as ``name`` (see ``list_detectors()``)."""
    _load_builtins()
    if name not in _REGISTRY:
        raise UnknownNameError("detector", name, sorted(_REGISTRY))
    return _REGISTRY[name](**options)


def _load_builtins() -> None:
    # Imported lazily so `import maeum` loads no model and no backend.
    from maeum.detect import haar, retinaface, yunet  # noqa: F401
