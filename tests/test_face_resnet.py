"""``face_resnet``: dlib's face ResNet started from face-api's copy of dlib's weights.

The port is checked against dlib itself: ``tests/data/dlib_descriptors.npz`` holds two real
faces (the astronaut and Grace Hopper, 150x150) and the descriptors dlib computed for them
(``tools/dlib_descriptors.py``).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO, tiny_config
from maeum.errors import ConfigError
from maeum.preprocess import InputSpec, to_model_input

torch = pytest.importorskip("torch")

MANIFEST = REPO / "third_party" / "face-api" / "face_recognition_model-weights_manifest.json"
DLIB = np.load(REPO / "tests" / "data" / "dlib_descriptors.npz")


def _descriptors(spec: InputSpec, chips: np.ndarray) -> np.ndarray:
    """The 128-number descriptors of ``face_resnet`` loaded with face-api's weights for ``spec``:
    its pooled features times face-api's descriptor layer, which the classifier replaces."""
    from maeum.training.face_resnet import FaceResNet, face_api_weights
    from maeum.training.tfjs import read_tfjs_weights

    model = FaceResNet(7, spec.channels)
    x = torch.from_numpy(to_model_input(chips, spec))
    model.load_state_dict(face_api_weights(MANIFEST, model, spec, x))
    model.eval()
    with torch.no_grad():
        pooled = model.features(x)
    return (pooled @ torch.from_numpy(read_tfjs_weights(MANIFEST)["fc"].copy())).numpy()


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


@pytest.mark.parametrize(
    "spec",
    [
        InputSpec(150, "rgb", (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
        InputSpec(150, "rgb", (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    ],
)
def test_face_api_weights_give_dlibs_descriptors(spec: InputSpec) -> None:
    ours = _descriptors(spec, DLIB["chips"])
    assert _cosine(ours, DLIB["descriptors"]).min() > 0.999  # face-api's 8-bit weights: not exact
    assert np.abs(ours - DLIB["descriptors"]).max() < 0.02
    # dlib's meaning: two people are more than 0.6 apart.
    assert np.linalg.norm(ours[0] - ours[1]) > 0.6


def test_a_gray_input_gets_the_answer_of_its_gray_copied_to_rgb() -> None:
    gray = np.asarray([np.asarray(c.mean(-1), np.uint8) for c in DLIB["chips"]])
    as_rgb = _descriptors(InputSpec(150, "rgb", (0.5,) * 3, (0.5,) * 3), np.repeat(gray[..., None], 3, -1))
    as_gray = _descriptors(InputSpec(150, "gray", (0.5,), (0.5,)), gray)
    np.testing.assert_allclose(as_gray, as_rgb, atol=1e-4)


def test_the_batch_norms_answer_alike_in_training_and_evaluation() -> None:
    from maeum.training.face_resnet import FaceResNet, face_api_weights

    spec = InputSpec(112, "gray", (0.5,), (0.5,))
    crops = np.asarray([np.asarray(c.mean(-1), np.uint8)[19:131, 19:131] for c in DLIB["chips"]] * 4)
    x = torch.from_numpy(to_model_input(crops, spec))
    model = FaceResNet(7, 1, dropout=0.0)
    model.load_state_dict(face_api_weights(MANIFEST, model, spec, x))
    with torch.no_grad():
        evaluated = model.eval()(x)
        trained = model.train()(x)  # batch statistics: the ones measured
    torch.testing.assert_close(trained, evaluated, atol=1e-3, rtol=1e-3)


def test_face_api_weights_fit_face_resnet_only(tmp_path: Path) -> None:
    from maeum.training.face_resnet import face_api_weights
    from maeum.training.nets import create_model

    with pytest.raises(ConfigError, match="face_resnet only"):
        face_api_weights(MANIFEST, create_model("resnet_s"), InputSpec(48, "gray", (0.5,), (0.5,)), torch.zeros(1))


@pytest.mark.parametrize("damage", ["truncated bin", "no bin", "not json", "another model"])
def test_a_damaged_manifest_is_refused_saying_what_it_is(tmp_path: Path, damage: str) -> None:
    from maeum.training.face_resnet import FaceResNet, face_api_weights

    manifest = tmp_path / MANIFEST.name
    shutil.copy(MANIFEST, manifest)
    shutil.copy(MANIFEST.with_name("face_recognition_model.bin"), tmp_path)
    binary = tmp_path / "face_recognition_model.bin"
    if damage == "truncated bin":
        binary.write_bytes(binary.read_bytes()[:100_000])
    elif damage == "no bin":
        binary.unlink()
    elif damage == "not json":
        manifest.write_text("<html>not found</html>")
    else:
        groups = json.loads(manifest.read_text())
        groups[0]["weights"] = [w for w in groups[0]["weights"] if not w["name"].startswith("conv128_2")]
        manifest.write_text(json.dumps(groups))
    spec = InputSpec(112, "gray", (0.5,), (0.5,))
    with pytest.raises(ConfigError, match=r"face-api|TensorFlow\.js"):
        face_api_weights(manifest, FaceResNet(7, 1), spec, torch.zeros(2, 1, 112, 112))


def test_maeum_train_fine_tunes_face_resnet_from_face_api_weights(small_ferplus: Path, tmp_path: Path) -> None:
    """One epoch on real FER+ crops at 64 px, then the export serves it like any model."""
    from maeum.classify import EmotionClassifier
    from maeum.cli import main
    from maeum.training.trainer import train

    cfg = tiny_config(
        small_ferplus,
        tmp_path / "run",
        model="face_resnet",
        init=str(MANIFEST),
        epochs=1,
        lr=0.01,
        input={"size": 64, "color": "gray", "mean": [0.5], "std": [0.5]},
    )
    train(cfg)
    state = torch.load(tmp_path / "run" / "best.pt", map_location="cpu", weights_only=False)
    assert state["config"]["init"] == str(MANIFEST)
    assert main(["export", str(tmp_path / "run" / "best.pt"), "--out", str(tmp_path / "face_resnet.onnx")]) == 0
    clf = EmotionClassifier(tmp_path / "face_resnet.onnx", threads=1)
    assert clf.info.input.size == 64
    probs = clf.predict(np.asarray([np.asarray(c.mean(-1), np.uint8) for c in DLIB["chips"]]))  # 150 px: resized
    assert probs.shape == (2, 7) and np.allclose(probs.sum(1), 1, atol=1e-5)


def test_face_api_weights_for_another_model_are_refused_before_any_data_is_read(tmp_path: Path) -> None:
    from maeum.training.config import TrainConfig

    with pytest.raises(ConfigError, match="--model face_resnet"):
        TrainConfig(str(tmp_path), str(tmp_path / "run"), model="resnet_s", init=str(MANIFEST))
