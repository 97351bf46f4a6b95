"""The model zoo: every registered architecture builds, classifies, trains and exports at 48 px."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from maeum.classify import ModelInfo
from maeum.errors import ConfigError, UnknownNameError
from maeum.labels import FERPLUS7
from maeum.preprocess import InputSpec
from maeum.training.export import export_onnx
from maeum.training.nets import create_model, list_models
from maeum.training.zoo import TIMM_MODELS, model_family

torch.set_num_threads(1)

# Tens of millions of parameters: built and run once, in gray only, to keep the suite fast.
BIG = {"vgg13", "vgg19", "resnet50", "vit_base_patch16_224", *(f"efficientnet_b{i}" for i in range(1, 8))}
SMALL = [name for name in list_models() if name not in BIG]


def _params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _logits(model: torch.nn.Module, in_chans: int, size: int = 48) -> torch.Tensor:
    with torch.no_grad():
        return model.eval()(torch.randn(2, in_chans, size, size))


def test_registry_lists_native_and_timm_models() -> None:
    names = list_models()
    native = {
        "resnet_s",
        "resnet_m",
        "resnet_l",
        "face_resnet",
        "face_mobilenet",
        "mini_xception",
        "emotionnet",
        "vgg13_ferplus",
        "hog_svm",
    }
    assert native | set(TIMM_MODELS) == set(names)
    assert set(names) > BIG
    assert [model_family(n) for n in ("resnet_s", "emotionnet", "resnet18", "timm/mobilenetv3_small_100")] == [
        "maeum",
        "maeum",
        "timm",
        "timm",
    ]


@pytest.mark.parametrize("in_chans", [1, 3])
@pytest.mark.parametrize("name", SMALL)
def test_small_model_builds_and_classifies(name: str, in_chans: int) -> None:
    model = create_model(name, num_classes=7, in_chans=in_chans, img_size=48)
    assert _logits(model, in_chans).shape == (2, 7)


@pytest.mark.parametrize("name", sorted(BIG))
def test_big_model_builds_and_classifies_gray(name: str) -> None:
    model = create_model(name, num_classes=7, in_chans=1, img_size=48)
    assert _logits(model, 1).shape == (2, 7)


@pytest.mark.parametrize("name", ["emotionnet", "vgg13_ferplus", "deit_tiny_patch16_224"])
def test_model_works_at_64_px(name: str) -> None:
    model = create_model(name, num_classes=7, in_chans=1, img_size=64)
    assert _logits(model, 1, size=64).shape == (2, 7)


def test_timm_model_by_name() -> None:
    model = create_model("timm/mobilenetv3_small_100", num_classes=7, in_chans=1, img_size=48)
    assert _logits(model, 1).shape == (2, 7)


def test_vit_takes_img_size_and_patch_size() -> None:
    model = create_model("deit_tiny_patch16_224", in_chans=1, img_size=48, patch_size=8)
    assert model.patch_embed.num_patches == 36  # (48 / 8) ** 2
    assert _logits(model, 1).shape == (2, 7)


@pytest.mark.parametrize("name", ["nope", "timm/no_such_model"])
def test_unknown_model_names_it(name: str) -> None:
    with pytest.raises(UnknownNameError, match=name):
        create_model(name)


def test_unknown_timm_model_suggests_close_names() -> None:
    with pytest.raises(UnknownNameError, match="timm/resnet18"):
        create_model("timm/resnet1")


def test_pretrained_weights_are_refused() -> None:
    with pytest.raises(ConfigError, match="pretrained"):
        create_model("resnet18", pretrained=True)


def test_missing_timm_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "timm", None)  # makes `import timm` fail
    with pytest.raises(ConfigError, match=r"maeum\[train\]"):
        create_model("resnet18")


def test_img_size_too_small_is_refused() -> None:
    with pytest.raises(ConfigError, match="img_size"):
        create_model("vgg13_ferplus", img_size=8)


def test_parameter_counts() -> None:
    assert _params(create_model("resnet_s")) == 1_601_527  # unchanged: old checkpoints still load
    assert len(create_model("resnet_s").state_dict()) == 104
    assert _params(create_model("mini_xception")) == 56_951
    assert _params(create_model("emotionnet")) < 1_500_000
    assert _params(create_model("emotionnet", img_size=64)) < 1_500_000
    assert 6_500_000 < _params(create_model("vgg13_ferplus", img_size=48)) < 7_500_000
    assert 8_500_000 < _params(create_model("vgg13_ferplus", img_size=64)) < 9_000_000  # the paper's input


@pytest.mark.parametrize("name", ["emotionnet", "resnet18"])
def test_one_sgd_step_changes_the_weights(name: str) -> None:
    torch.manual_seed(0)
    model = create_model(name, num_classes=7, in_chans=1, img_size=48).train()
    before = [p.detach().clone() for p in model.parameters()]
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    loss = torch.nn.functional.cross_entropy(model(torch.randn(2, 1, 48, 48)), torch.tensor([0, 3]))
    loss.backward()
    opt.step()
    assert torch.isfinite(loss)
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


@pytest.mark.parametrize(
    "name", ["emotionnet", "vgg13_ferplus", "resnet18", "efficientnet_b0", "deit_tiny_patch16_224"]
)
def test_onnx_export_matches_torch(name: str, tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = create_model(name, num_classes=len(FERPLUS7), in_chans=1, img_size=48)
    spec = InputSpec.from_dict({"size": 48, "color": "gray", "mean": [0.5], "std": [0.5]})
    info = ModelInfo(name=name, labels=FERPLUS7, input=spec, template=np.zeros((5, 2)), output="probabilities")
    faces = np.random.default_rng(0).integers(0, 256, (8, 48, 48), dtype=np.uint8)
    report = export_onnx(model, info, tmp_path / f"{name}.onnx", faces)
    assert report["top1_agreement"] == 1.0
    assert report["max_abs_diff"] < 1e-3
