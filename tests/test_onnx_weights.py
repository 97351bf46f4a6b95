"""`maeum train --init MODEL.onnx` (or a bundled name): weights read back from an exported file."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest

from conftest import prepare_aihub, read_metrics, tiny_config, tiny_model
from maeum.classify import EmotionClassifier, ModelInfo
from maeum.cli import main
from maeum.data.records import AIHUB7
from maeum.errors import ConfigError
from maeum.labels import FERPLUS7
from maeum.preprocess import InputSpec, resize_crops, to_model_input

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")

GRAY48 = {"size": 48, "color": "gray", "mean": [0.5], "std": [0.5]}


@pytest.fixture(scope="module")
def faces(small_ferplus: Path) -> dict[str, np.ndarray]:
    from maeum.training import ferplus

    return {split: ferplus.load_split(small_ferplus, split).images for split in ("train", "valid")}


def _trained_looking(arch: str) -> torch.nn.Module:
    """A fresh ``arch`` whose batch norms hold statistics and affine weights far from their defaults."""
    from maeum.training.nets import create_model

    torch.manual_seed(0)
    net = create_model(arch, num_classes=len(FERPLUS7), in_chans=1, img_size=48)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.3)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0, 0.2)
    return net.eval()


def _export(net: torch.nn.Module, arch: str, out: Path, faces: np.ndarray, record: bool = False, **kwargs) -> Path:
    """``net`` exported as ``arch``; ``record``: with its batch norms in the metadata, as ``maeum export`` writes."""
    from maeum.training.export import export_onnx
    from maeum.training.onnx_weights import batch_norm_record

    info = ModelInfo("net", FERPLUS7, InputSpec.from_dict(GRAY48), np.zeros((5, 2)), "probabilities")
    info.extra["architecture"] = arch
    if record:
        info.extra["batch_norms"] = batch_norm_record(net, info.input)
    export_onnx(net, info, out, faces, **kwargs)
    return out


def _only_batch_norms_training(net: torch.nn.Module) -> torch.nn.Module:
    net.eval()
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.train()
    return net


@pytest.mark.parametrize(
    "arch",
    [
        "resnet_s",
        "mini_xception",
        "emotionnet",
        "vgg13_ferplus",
        "face_resnet",
        "face_mobilenet",
        "resnet18",
        "efficientnet_b0",
    ],
)
def test_a_float_export_reads_back_into_its_architecture(arch: str, faces, tmp_path: Path) -> None:
    from maeum.training.nets import create_model
    from maeum.training.onnx_weights import read_onnx_weights

    if arch in ("resnet18", "efficientnet_b0"):
        pytest.importorskip("timm")
    net, crops = _trained_looking(arch), faces["train"]
    path = _export(net, arch, tmp_path / "float.onnx", faces["valid"])
    weights, info, got_arch = read_onnx_weights(path, crops)
    assert got_arch == arch and info.labels == FERPLUS7
    back = create_model(arch, num_classes=7, in_chans=1, img_size=48)
    back.load_state_dict(weights)
    x = torch.from_numpy(to_model_input(faces["valid"], info.input))
    with torch.no_grad():
        # In eval mode the network is the file (and the net it was exported from).
        np.testing.assert_allclose(back.eval()(x).numpy(), net(x).numpy(), atol=1e-3)
        # In training mode, on the crops that measured them, the unfolded batch norms normalise
        # by exactly the statistics they hold: still the same network.
        xs = torch.from_numpy(to_model_input(crops, info.input))
        np.testing.assert_allclose(_only_batch_norms_training(back)(xs).numpy(), net(xs).numpy(), atol=1e-2)


@pytest.mark.parametrize("arch", ["resnet_s", "mini_xception"])
def test_a_file_with_its_batch_norms_recorded_reads_back_to_the_exported_weights(arch: str, faces, tmp_path) -> None:
    from maeum.training.onnx_weights import read_onnx_weights

    net = _trained_looking(arch)
    path = _export(net, arch, tmp_path / "recorded.onnx", faces["valid"], record=True)
    weights, _, _ = read_onnx_weights(path, faces["train"])
    for key, value in net.state_dict().items():  # not an equivalent network: the same weights
        torch.testing.assert_close(weights[key], value, atol=1e-5, rtol=1e-4, msg=key)


def test_maeum_export_records_the_batch_norms_and_init_restores_the_checkpoint(small_ferplus: Path, tmp_path) -> None:
    from maeum.training import ferplus
    from maeum.training.onnx_weights import read_onnx_weights

    run = tmp_path / "run"
    args = ["train", "--data", str(small_ferplus), "--out", str(run), "--model", "resnet_s", "--epochs", "1",
            "--batch-size", "16", "--threads", "1", "--no-bf16", "--no-tensorboard"]  # fmt: skip
    assert main(args) == 0
    assert main(["export", str(run / "best.pt"), "--out", str(tmp_path / "model.onnx")]) == 0
    assert len(EmotionClassifier(tmp_path / "model.onnx").info.extra["batch_norms"]) == 17  # resnet_s
    weights, _, _ = read_onnx_weights(tmp_path / "model.onnx", ferplus.load_split(small_ferplus, "train").images)
    checkpoint = torch.load(run / "best.pt", map_location="cpu", weights_only=False)["model"]
    for key, value in checkpoint.items():
        if key.endswith("num_batches_tracked"):  # a step counter, read only with momentum None
            continue
        torch.testing.assert_close(weights[key], value, atol=1e-5, rtol=1e-4, msg=key)


def test_the_bundled_int8_model_reads_back_with_its_answers(faces) -> None:
    from maeum.training.export import Served
    from maeum.training.nets import create_model
    from maeum.training.onnx_weights import read_onnx_weights

    weights, info, arch = read_onnx_weights("ferplus-resnet-s", faces["train"])
    assert arch == "resnet_s" and info.flip_below is not None
    back = create_model(arch, num_classes=7, in_chans=1, img_size=info.input.size)
    back.load_state_dict(weights)
    valid = resize_crops(faces["valid"], info.input.size)  # crops the read did not see
    with torch.no_grad():
        ours = Served(back, flip=True).eval()(torch.from_numpy(to_model_input(valid, info.input))).numpy()
    theirs = EmotionClassifier("ferplus-resnet-s").predict(valid, mirror=True)
    assert (ours.argmax(1) == theirs.argmax(1)).mean() >= 0.95
    assert np.abs(ours - theirs).max() < 0.2  # int8 activations are rounded; the weights are the file's


@pytest.mark.parametrize("size, color", [(48, "gray"), (64, "rgb")])
def test_the_bundled_model_fine_tunes_onto_aihub_classes(
    size: int, color: str, tmp_path_factory: pytest.TempPathFactory, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from maeum.training.trainer import train

    aihub = prepare_aihub(tmp_path_factory, size, color)
    channels = 1 if color == "gray" else 3
    spec = {"size": size, "color": color, "mean": [0.5] * channels, "std": [0.5] * channels}
    cfg = tiny_config(aihub, tmp_path / "aihub", model="resnet_s", init="ferplus-resnet-s", input=spec, epochs=1)
    with caplog.at_level(logging.INFO, logger="maeum.training"):
        train(cfg)
    assert "ferplus-resnet-s: int8 weights read back into resnet_s" in caplog.text
    assert "rows for happiness, anger, sadness, neutral carried over, embarrassment, anxiety, hurt start fresh" in (
        caplog.text
    )
    bundled = EmotionClassifier("ferplus-resnet-s").info.input.size  # gray
    if color == "rgb":
        assert "input convolution features.0.0.weight converted from gray to rgb" in caplog.text
    if (size, color) != (bundled, "gray"):
        assert f"takes {bundled}px gray, this run {size}px {color}" in caplog.text
    tuned = torch.load(tmp_path / "aihub" / "best.pt", map_location="cpu", weights_only=False)
    assert tuned["labels"] == list(AIHUB7) and tuned["config"]["init"] == "ferplus-resnet-s"


def test_fine_tuning_the_bundled_model_starts_where_it_is(small_ferplus: Path, tmp_path: Path) -> None:
    """One epoch at a small learning rate: started from the bundled model, FER+ Valid stays near its
    accuracy; started from random weights, it is far below."""
    clf = EmotionClassifier("ferplus-resnet-s")
    base = ["train", "--data", str(small_ferplus), "--model", "resnet_s", "--epochs", "1", "--lr", "0.001",
            "--size", str(clf.info.input.size), "--batch-size", "16", "--threads", "1", "--no-bf16",
            "--no-tensorboard"]  # fmt: skip
    assert main([*base, "--out", str(tmp_path / "tuned"), "--init", "ferplus-resnet-s"]) == 0
    assert main([*base, "--out", str(tmp_path / "fresh")]) == 0
    tuned, fresh = (float(read_metrics(tmp_path / r)[0]["valid_acc"]) for r in ("tuned", "fresh"))
    from maeum.training import ferplus

    valid = ferplus.load_split(small_ferplus, "valid")
    keep = valid.majority() >= 0
    bundled = float((clf.predict(valid.images[keep]).argmax(1) == valid.majority()[keep]).mean())
    assert tuned >= bundled - 0.1 and tuned > fresh + 0.2, (tuned, bundled, fresh)


def test_models_that_cannot_be_read_back_are_refused_before_training(
    prepared_aihub_32: Path, tmp_path: Path, faces
) -> None:
    from maeum.training.ensemble import build_ensemble
    from maeum.training.onnx_weights import read_onnx_weights
    from maeum.training.trainer import train

    gray48 = {"input": GRAY48}
    aihub = prepared_aihub_32
    with pytest.raises(ConfigError, match="holds a resnet_s model, not mini_xception; pass --model resnet_s"):
        train(tiny_config(aihub, tmp_path / "a", init="ferplus-resnet-s", **gray48))
    other_norm = {"input": {**GRAY48, "mean": [0.4]}}
    with pytest.raises(ConfigError, match=r"normalised with mean \[0.5\] and std \[0.5\]"):
        train(tiny_config(aihub, tmp_path / "n", model="resnet_s", init="ferplus-resnet-s", **other_norm))
    with pytest.raises(ConfigError, match="nothing to fine-tune"):
        tiny_config(aihub, tmp_path / "c", model="hog_svm", init="ferplus-resnet-s", **gray48)
    with pytest.raises(FileNotFoundError, match="a bundled model \\(ferplus-resnet-s, ferplus-resnet-s-fast\\)"):
        train(tiny_config(aihub, tmp_path / "d", init=str(tmp_path / "missing.onnx")))

    ensemble = tmp_path / "two.onnx"
    build_ensemble(["ferplus-resnet-s", "ferplus-resnet-s"], ensemble)
    with pytest.raises(ConfigError, match="ensemble of several networks"):
        read_onnx_weights(ensemble, faces["train"])
    with pytest.raises(ConfigError, match="names no architecture"):
        read_onnx_weights(tiny_model(tmp_path / "tiny.onnx"), faces["train"])
    # Metadata that claims an architecture the graph is not.
    claims = tiny_model(tmp_path / "claims.onnx")
    proto = onnx.load(claims)
    meta = json.loads(proto.metadata_props[0].value)
    proto.metadata_props[0].value = json.dumps({**meta, "architecture": "mini_xception"})
    onnx.save(proto, claims)
    with pytest.raises(ConfigError, match="do not match the architecture"):
        read_onnx_weights(claims, faces["train"])
    # A DeiT has attention and layer-norm weights, which no convolution folds into.
    pytest.importorskip("timm")
    deit = _export(_trained_looking("deit_tiny_patch16_224"), "deit_tiny_patch16_224", tmp_path / "deit.onnx",
                   faces["valid"])  # fmt: skip
    with pytest.raises(ConfigError, match="reads convolutional networks; deit_tiny_patch16_224 also has"):
        read_onnx_weights(deit, faces["train"])


def test_weights_read_back_wrongly_are_refused(faces, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The final check against the file: a read that maps a layer wrongly fails instead of fine-tuning garbage."""
    from maeum.training import onnx_weights

    path = _export(_trained_looking("resnet_s"), "resnet_s", tmp_path / "float.onnx", faces["valid"])
    real = onnx_weights._onnx_layers

    def swapped(proto, model):  # two layers of the same shape, exchanged
        layers = real(proto, model)
        a, b = "features.4.conv1.0", "features.4.conv2.0"
        layers[a], layers[b] = layers[b], layers[a]
        return layers

    monkeypatch.setattr(onnx_weights, "_onnx_layers", swapped)
    with pytest.raises(ConfigError, match="do not reproduce the file"):
        onnx_weights.read_onnx_weights(path, faces["train"])
