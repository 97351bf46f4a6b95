"""maeum (마음): facial emotion recognition that runs offline on a CPU.

>>> from maeum import Analyzer, load_image
>>> with Analyzer() as analyzer:
...     for result in analyzer.analyze(load_image("photo.jpg")):
...         print(result.face.box, result.emotion.label)
"""

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
