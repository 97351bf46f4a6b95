"""Face detectors behind one factory: ``create_detector(name, **options)``.

Every detector takes an RGB uint8 (H, W, 3) image and returns a list of ``Face`` (box,
score, five landmarks), best first; an image without faces gives an empty list.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Protocol, TypeVar

import numpy as np

from maeum.errors import ConfigError, UnknownNameError
from maeum.results import Face


class Detector(Protocol):
    name: str

    def detect(self, image: np.ndarray) -> list[Face]: ...


_REGISTRY: dict[str, Callable[..., Detector]] = {}
F = TypeVar("F", bound=Callable[..., Detector])


def register_detector(name: str) -> Callable[[F], F]:
    """Register a detector class (or factory) under ``name``; its keyword arguments are its options."""

    def wrap(factory: F) -> F:
        _REGISTRY[name] = factory
        return factory

    return wrap


def list_detectors() -> list[str]:
    _load_builtins()
    return sorted(_REGISTRY)


def create_detector(name: str, **options: object) -> Detector:
    """Build the detector registered as ``name`` (see ``list_detectors()``).

    Raises ConfigError for an option the detector does not take, or a value out of its range.
    """
    _load_builtins()
    if name not in _REGISTRY:
        raise UnknownNameError("detector", name, sorted(_REGISTRY))
    factory = _REGISTRY[name]
    takes = list(inspect.signature(factory).parameters)
    unknown = sorted(set(options) - set(takes))
    if unknown:
        raise ConfigError(f"the {name} detector has no option {', '.join(unknown)}; its options: {', '.join(takes)}")
    return factory(**options)


def parse_options(pairs: Sequence[str]) -> dict[str, object]:
    """Detector options written ``KEY=VALUE`` (as on the command line), numbers read as int or float."""
    options: dict[str, object] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"detector option {pair!r}: write it as KEY=VALUE, e.g. score_threshold=0.8")
        value: object = raw
        for cast in (int, float):
            try:
                value = cast(raw)
                break
            except ValueError:
                pass
        options[key] = value
    return options


def _load_builtins() -> None:
    # Imported lazily so `import maeum` loads no model and no backend.
    from maeum.detect import haar, hog, mtcnn, retinaface, yunet  # noqa: F401
