from __future__ import annotations

import numpy as np
import pytest

from conftest import ASTRONAUT_FACE
from maeum import Analyzer, FaceResult
from maeum.labels import FERPLUS7


def test_one_result_per_face(analyzer: Analyzer, astronaut: np.ndarray) -> None:
    results = analyzer.analyze(astronaut)
    assert len(results) == 1
    r = results[0]
    assert isinstance(r, FaceResult)
    assert r.face.box.iou(ASTRONAUT_FACE) > 0.5 and r.face.detected
    assert tuple(r.emotion.scores) == FERPLUS7
    assert sum(r.emotion.scores.values()) == pytest.approx(1, abs=1e-4)
    assert r.emotion.label == max(r.emotion.scores, key=r.emotion.scores.__getitem__)


def test_smiling_astronaut_is_happy(analyzer: Analyzer, astronaut: np.ndarray) -> None:
    assert analyzer.analyze(astronaut)[0].emotion.label == "happiness"


def test_no_face_is_an_empty_list(analyzer: Analyzer, cat: np.ndarray) -> None:
    assert analyzer.analyze(cat) == []


def test_whole_image_fallback(cat: np.ndarray) -> None:
    results = Analyzer(whole_image_fallback=True).analyze(cat)
    assert len(results) == 1 and not results[0].face.detected
    h, w = cat.shape[:2]
    assert results[0].face.box.as_list() == [(w - h) / 2, 0, h, h]


def test_batch_equals_single(analyzer: Analyzer, astronaut: np.ndarray, hopper: np.ndarray, cat: np.ndarray) -> None:
    batch = analyzer.analyze_batch([astronaut, cat, hopper])
    assert [len(b) for b in batch] == [1, 0, 1]
    for image, got in ((astronaut, batch[0]), (hopper, batch[2])):
        single = analyzer.analyze(image)
        np.testing.assert_allclose(
            list(got[0].emotion.scores.values()), list(single[0].emotion.scores.values()), atol=1e-5
        )


def test_gray_and_rgba_inputs(analyzer: Analyzer, astronaut: np.ndarray) -> None:
    gray = astronaut.mean(2).astype(np.uint8)
    rgba = np.dstack([astronaut, np.full(astronaut.shape[:2], 255, np.uint8)])
    assert len(analyzer.analyze(gray)) == 1
    assert len(analyzer.analyze(rgba)) == 1


def test_aligned_crop_is_upright(analyzer: Analyzer, astronaut: np.ndarray) -> None:
    import cv2

    m = cv2.getRotationMatrix2D((224, 118), 30, 1.0)
    tilted = cv2.warpAffine(astronaut, m, (512, 512), borderMode=cv2.BORDER_REFLECT)
    face = analyzer.detect(tilted)[0]
    crop = analyzer.align(tilted, face)
    upright = analyzer.align(astronaut, analyzer.detect(astronaut)[0])
    # The two crops show the same upright face.
    diff = np.abs(crop.astype(int) - upright.astype(int)).mean()
    assert diff < 25, diff


def test_no_detect_classifies_crops(analyzer: Analyzer, astronaut: np.ndarray) -> None:
    crop = astronaut[50:190, 165:285]
    results = Analyzer(detector=None).analyze(crop)
    assert len(results) == 1 and not results[0].face.detected
    assert analyzer.classify_crops([crop])[0].emotion.label == results[0].emotion.label


def test_wrong_input_type(analyzer: Analyzer) -> None:
    with pytest.raises(TypeError, match="load_image"):
        analyzer.analyze("photo.jpg")  # type: ignore[arg-type]


def test_unknown_names(astronaut: np.ndarray) -> None:
    from maeum import UnknownNameError

    with pytest.raises(UnknownNameError, match="retinaface"):
        Analyzer(detector="nope")
    with pytest.raises(UnknownNameError, match="ferplus-resnet-s"):
        Analyzer(model="nope")


def test_box_iou() -> None:
    from maeum import Box

    a = Box(0, 0, 10, 10)
    assert a.iou(a) == 1.0
    assert a.iou(Box(5, 0, 10, 10)) == pytest.approx(50 / 150)
    assert a.iou(Box(20, 20, 5, 5)) == 0.0
    assert Box(0, 0, 0, 0).iou(Box(0, 0, 0, 0)) == 0.0


def test_a_thin_image_has_no_face_and_its_batch_keeps_the_others(analyzer: Analyzer, astronaut: np.ndarray) -> None:
    strip = np.full((1, 4000, 3), 128, np.uint8)
    results = analyzer.analyze_batch([astronaut, strip, strip.transpose(1, 0, 2)])
    assert [len(r) for r in results] == [1, 0, 0] and results[0][0].emotion.label == "happiness"
