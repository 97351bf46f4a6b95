"""Image -> faces -> emotions: a detector, the aligner and a classifier, each chosen by name."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from maeum.align import create_aligner, square_crop
from maeum.classify import DEFAULT_MODEL, EmotionClassifier
from maeum.detect import Detector, create_detector
from maeum.detect._common import landmarks_from_box, make_face
from maeum.errors import ConfigError, MaeumError
from maeum.imageio import as_rgb_array
from maeum.results import Face, FaceResult

log = logging.getLogger(__name__)

DEFAULT_DETECTOR = "retinaface"
DEFAULT_ALIGNER = "similarity"


class Analyzer:
    """Finds faces, aligns each onto the classifier's template and classifies them.

    >>> with Analyzer() as analyzer:
    ...     results = analyzer.analyze(load_image("photo.jpg"))

    ``detector`` is a registered name (``list_detectors()``) or a Detector; ``detector=None``
    treats every image as one pre-cropped face. ``aligner`` is a name from ``list_aligners()``.
    ``whole_image_fallback`` classifies the image's centred square as one face when none is found.
    """

    def __init__(
        self,
        detector: str | Detector | None = DEFAULT_DETECTOR,
        model: str | Path = DEFAULT_MODEL,
        *,
        aligner: str = DEFAULT_ALIGNER,
        detector_options: dict[str, object] | None = None,
        threads: int | None = None,
        whole_image_fallback: bool = False,
    ) -> None:
        self.classifier = EmotionClassifier(model, threads=threads)
        self.aligner = create_aligner(aligner)
        if isinstance(detector, str):
            options = dict(detector_options or {})
            if detector == "retinaface":  # the one ONNX Runtime detector: share the thread budget
                options.setdefault("threads", threads)
            self.detector: Detector | None = create_detector(detector, **options)
        elif detector is not None and not callable(getattr(detector, "detect", None)):
            raise TypeError(
                "detector must be a detector's name (list_detectors()), a Detector or None, "
                f"not {type(detector).__name__}"
            )
        elif detector_options:  # options configure a detector built here from its name, not one given built
            given = "detector=None" if detector is None else "a built detector"
            raise ConfigError(f"detector_options apply to a detector named by a string, not to {given}; drop them")
        else:
            self.detector = detector
        self.whole_image_fallback = whole_image_fallback
        # What was asked for, to describe the analyzer (``maeum serve``'s /v1/model).
        self.detector_name = detector if detector is None or isinstance(detector, str) else type(detector).__name__
        self.aligner_name = aligner

    def analyze(self, image: np.ndarray) -> list[FaceResult]:
        """Emotions of every face in an RGB uint8 (H, W, 3) image, best detection first."""
        return self.analyze_batch([image])[0]

    def analyze_batch(self, images: Iterable[np.ndarray]) -> list[list[FaceResult]]:
        """``analyze`` for many images, with all their faces classified in one batch."""
        _check_many(images, "analyze_batch", "analyze(image)")
        faces_per_image: list[list[Face]] = []
        crops: list[np.ndarray] = []
        for image in images:
            image = as_rgb_array(image)
            faces = self.detect(image)
            faces_per_image.append(faces)
            crops.extend(self._crop(image, f) for f in faces)
        emotions = self.classifier.classify(np.stack(crops)) if crops else []
        out, k = [], 0
        for faces in faces_per_image:
            out.append([FaceResult(f, emotions[k + i]) for i, f in enumerate(faces)])
            k += len(faces)
        return out

    def detect(self, image: np.ndarray) -> list[Face]:
        """The faces the analyzer would classify (the image's centred square when it has no detector)."""
        self._check_open()
        image = as_rgb_array(image)
        h, w = image.shape[:2]
        if self.detector is not None:
            faces = self.detector.detect(image)
            if faces or not self.whole_image_fallback:
                return faces
            log.info("no face found; classifying the image's centred square as one face")
        return [_whole_image_face(w, h)]

    def align(self, image: np.ndarray, face: Face) -> np.ndarray:
        """The classifier's input crop for ``face``: (S, S, 3) uint8."""
        return self._crop(as_rgb_array(image), face)

    def _crop(self, image: np.ndarray, face: Face) -> np.ndarray:
        self._check_open()
        size = self.classifier.info.input.size
        if not face.detected:  # the whole image stands for the face: resize, do not warp
            return square_crop(image, size)
        return self.aligner(image, np.asarray(face.landmarks), self.classifier.info.template, size)

    def classify_crops(self, crops: Sequence[np.ndarray]) -> list[FaceResult]:
        """Classify pre-cropped face images (any size) without detection, in one batch."""
        _check_many(crops, "classify_crops", "classify_crops([crop])")
        self._check_open()
        arrays = [as_rgb_array(c) for c in crops]
        faces = [_whole_image_face(a.shape[1], a.shape[0]) for a in arrays]
        if not arrays:
            return []
        emotions = self.classifier.classify(np.stack([self._crop(a, f) for a, f in zip(arrays, faces, strict=True)]))
        return [FaceResult(f, e) for f, e in zip(faces, emotions, strict=True)]

    def close(self) -> None:
        """Release the ONNX sessions; the analyzer cannot be used after this."""
        self.detector = None
        self.classifier = None  # type: ignore[assignment]

    def _check_open(self) -> None:
        if self.classifier is None:  # closed: the detector is gone too, so do not fall back to the whole image
            raise MaeumError("this Analyzer is closed (its `with` block ended or close() was called); create a new one")

    def __enter__(self) -> Analyzer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _check_many(images: object, method: str, one: str) -> None:
    """Refuse one image (or a path) where a collection of images is expected: iterating over it would
    yield its rows, each taken for an image, and answer hundreds of results without an error."""
    if isinstance(images, np.ndarray) and images.ndim != 4:
        raise ValueError(
            f"{method} takes a list of images (or an (N, H, W, 3) array), got one array of shape {images.shape}; "
            f"for one image call {one}"
        )
    if isinstance(images, (str, bytes, Path)):
        raise TypeError(
            f"{method} takes a list of RGB uint8 arrays, got {type(images).__name__}; read files with load_image"
        )


def _whole_image_face(w: int, h: int) -> Face:
    side = min(w, h)
    x, y = (w - side) / 2, (h - side) / 2
    return make_face(x, y, x + side, y + side, 0.0, landmarks_from_box(x, y, side, side), detected=False)
