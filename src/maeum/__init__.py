"""maeum (마음): facial emotion recognition that runs offline on a CPU.

>>> from maeum import Analyzer, load_image
>>> with Analyzer() as analyzer:
...     for result in analyzer.analyze(load_image("photo.jpg")):
...         print(result.face.box, result.emotion.label)
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: type checkers read it by name
if TYPE_CHECKING:  # for type checkers; at run time each name is imported on first use (below)
    from maeum.align import align_face, create_aligner, estimate_similarity, list_aligners
    from maeum.analyzer import Analyzer
    from maeum.classify import EmotionClassifier, ModelInfo
    from maeum.classify import list_models as list_emotion_models
    from maeum.detect import Detector, create_detector, list_detectors
    from maeum.errors import ImageError, MaeumError, ModelError, OutputError, UnknownNameError
    from maeum.imageio import load_image
    from maeum.labels import display_name
    from maeum.preprocess import InputSpec, to_model_input
    from maeum.results import Box, Emotion, Face, FaceResult

# Public name -> (module, name there). Imported on first use (PEP 562), so `import maeum` loads
# neither OpenCV nor ONNX Runtime (about 0.6 s): the `maeum` command (maeum.__main__) is ready
# for a Ctrl-C before they load, and `from maeum.errors import ...` costs nothing.
_MODULES = {
    "maeum.align": ("align_face", "create_aligner", "estimate_similarity", "list_aligners"),
    "maeum.analyzer": ("Analyzer",),
    "maeum.classify": ("EmotionClassifier", "ModelInfo"),
    "maeum.detect": ("Detector", "create_detector", "list_detectors"),
    "maeum.errors": ("ImageError", "MaeumError", "ModelError", "OutputError", "UnknownNameError"),
    "maeum.imageio": ("load_image",),
    "maeum.labels": ("display_name",),
    "maeum.preprocess": ("InputSpec", "to_model_input"),
    "maeum.results": ("Box", "Emotion", "Face", "FaceResult"),
}
_EXPORTS = {name: (module, name) for module, names in _MODULES.items() for name in names}
_EXPORTS["list_emotion_models"] = ("maeum.classify", "list_models")


def __getattr__(name: str) -> object:
    try:
        module, attribute = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module 'maeum' has no attribute {name!r}") from None
    import importlib

    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value  # the next lookup finds it without coming here
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})


__all__ = [
    "Analyzer",
    "Box",
    "Detector",
    "Emotion",
    "EmotionClassifier",
    "Face",
    "FaceResult",
    "ImageError",
    "InputSpec",
    "MaeumError",
    "ModelError",
    "ModelInfo",
    "OutputError",
    "UnknownNameError",
    "align_face",
    "create_aligner",
    "create_detector",
    "display_name",
    "estimate_similarity",
    "list_aligners",
    "list_detectors",
    "list_emotion_models",
    "load_image",
    "to_model_input",
]
__version__ = "0.1.0"
