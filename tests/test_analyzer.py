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


def test_rect_is_the_box_rounded_once_as_the_video_csv_rounds_it() -> None:
    from maeum import Box, Emotion, Face

    # 112.52 is 112.5 to one decimal, which round() would take to the even 112: rect must round the box itself.
    face = Face(Box(112.52, 40.46, 57.3, 69.55), 0.99, ((0.0, 0.0),) * 5)
    d = FaceResult(face, Emotion("neutral", {"neutral": 1.0})).to_dict()
    assert d["rect"] == [113, 40, 57, 70]
    assert d["box"] == [112.5, 40.5, 57.3, 69.5]


def test_a_thin_image_has_no_face_and_its_batch_keeps_the_others(analyzer: Analyzer, astronaut: np.ndarray) -> None:
    strip = np.full((1, 4000, 3), 128, np.uint8)
    results = analyzer.analyze_batch([astronaut, strip, strip.transpose(1, 0, 2)])
    assert [len(r) for r in results] == [1, 0, 0] and results[0][0].emotion.label == "happiness"


def test_one_image_passed_as_a_batch_is_refused_not_read_row_by_row(analyzer: Analyzer, astronaut: np.ndarray) -> None:
    # Iterating over one (H, W, 3) array yields its 512 rows, each a valid (W, 3) gray image.
    with pytest.raises(ValueError, match=r"for one image call analyze\(image\)"):
        analyzer.analyze_batch(astronaut)
    with pytest.raises(ValueError, match=r"classify_crops\(\[crop\]\)"):
        analyzer.classify_crops(astronaut)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="load_image"):
        analyzer.analyze_batch("photo.jpg")  # type: ignore[arg-type]
    stacked = analyzer.analyze_batch(np.stack([astronaut, astronaut]))  # (N, H, W, 3) is a batch
    assert [len(r) for r in stacked] == [1, 1]


@pytest.mark.parametrize(
    ("image", "error", "hint"),
    [
        ("pil", TypeError, r"np\.asarray\(image\.convert\('RGB'\)\)"),
        ("list", TypeError, "analyze_batch"),
        ("float", TypeError, r"\(image \* 255\)\.round\(\)"),
        ("chw", ValueError, r"transpose\(1, 2, 0\)"),
    ],
)
def test_wrong_image_types_say_what_to_pass(
    analyzer: Analyzer, astronaut: np.ndarray, image: str, error: type[Exception], hint: str
) -> None:
    from PIL import Image

    wrong = {
        "pil": lambda: Image.fromarray(astronaut),
        "list": lambda: [astronaut],
        "float": lambda: astronaut / 255.0,
        "chw": lambda: astronaut.transpose(2, 0, 1),
    }[image]()
    with pytest.raises(error, match=hint):
        analyzer.analyze(wrong)


def test_gray_with_a_channel_axis_is_read(analyzer: Analyzer, astronaut: np.ndarray) -> None:
    gray = astronaut.mean(2).astype(np.uint8)[..., None]  # (H, W, 1), as many libraries give gray
    assert [r.emotion.label for r in analyzer.analyze(gray)] == ["happiness"]


def test_an_opencv_frame_reversed_as_the_readme_says_matches_rgb(analyzer: Analyzer, astronaut: np.ndarray) -> None:
    bgr = np.ascontiguousarray(astronaut[..., ::-1])  # what cv2.imread gives
    assert analyzer.analyze(bgr[..., ::-1]) == analyzer.analyze(astronaut)  # a view with a negative stride


def test_a_closed_analyzer_refuses_to_run(astronaut: np.ndarray) -> None:
    from maeum import MaeumError

    with Analyzer(threads=1) as closed:
        assert len(closed.analyze(astronaut)) == 1
    for call in (closed.analyze, closed.detect, lambda im: closed.classify_crops([im])):
        with pytest.raises(MaeumError, match="closed"):
            call(astronaut)


def test_a_detector_that_is_not_one_and_options_without_a_named_detector_are_refused() -> None:
    from maeum import create_detector
    from maeum.errors import ConfigError

    with pytest.raises(TypeError, match="detector must be a detector's name"):
        Analyzer(detector=5)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="detector=None"):
        Analyzer(detector=None, detector_options={"score_threshold": 0.5})
    with pytest.raises(ConfigError, match="a built detector"):
        Analyzer(detector=create_detector("haar"), detector_options={"min_face": 40})
