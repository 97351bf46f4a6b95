"""More architectures for ``create_model``: two classic FER CNNs and a set of timm models.

``emotionnet`` and ``vgg13_ferplus`` are written here; the others are built by timm (the
``train`` extra), always from random weights: maeum never downloads pretrained weights.
``create_model("timm/<name>")`` builds any timm model; those are not listed by ``list_models``.
"""

from __future__ import annotations

import difflib
from functools import partial
from types import ModuleType

import torch
from torch import nn

from maeum.errors import ConfigError, UnknownNameError
from maeum.training.nets import TIMM_PREFIX, list_models, register

# timm architectures registered under their timm names.
TIMM_MODELS: tuple[str, ...] = (
    "resnet18",
    "resnet50",
    "vgg13",
    "vgg19",
    *(f"efficientnet_b{i}" for i in range(8)),
    "vit_base_patch16_224",  # ViT-B/16
    "deit_tiny_patch16_224",
    "deit_small_patch16_224",
)


def model_family(name: str) -> str:
    """``"timm"`` for a model that timm builds, ``"maeum"`` for one written in maeum."""
    if name.startswith(TIMM_PREFIX) or name in TIMM_MODELS:
        return "timm"
    if name in list_models():
        return "maeum"
    raise UnknownNameError("model", name, list_models())


def _pooled_side(img_size: int, pools: int, model: str) -> int:
    """Side of the feature map after ``pools`` 2x2 max-pools (each rounds down)."""
    side = img_size // 2**pools
    if side < 1:
        raise ConfigError(f"{model} needs img_size >= {2**pools}, got {img_size}")
    return side


def _conv_block(cin: int, cout: int, convs: int, bn: bool) -> list[nn.Module]:
    """``convs`` 3x3 convolutions (+BN) + ReLU, then a 2x2 max-pool and dropout 0.25."""
    layers: list[nn.Module] = []
    for i in range(convs):
        layers.append(nn.Conv2d(cin if i == 0 else cout, cout, 3, padding=1, bias=not bn))
        layers.extend([nn.BatchNorm2d(cout), nn.ReLU(inplace=True)] if bn else [nn.ReLU(inplace=True)])
    return [*layers, nn.MaxPool2d(2), nn.Dropout(0.25)]


class EmotionNet(nn.Module):
    """The small CNN of classic FER2013 tutorials: three blocks of (conv-BN-ReLU) x2, pool, dropout; an MLP head.

    At 48 px the features are (B, 128, 6, 6); the head's input size follows ``img_size``.
    """

    def __init__(
        self,
        num_classes: int = 7,
        in_chans: int = 1,
        img_size: int = 48,
        widths: tuple[int, ...] = (32, 64, 128),
        hidden: int = 128,
        drop: float = 0.5,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        cin = in_chans
        for width in widths:
            layers.extend(_conv_block(cin, width, 2, bn=True))
            cin = width
        self.features = nn.Sequential(*layers)
        side = _pooled_side(img_size, len(widths), "emotionnet")
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(cin * side * side, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(drop),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, S, S) -> (B, K), S = img_size
        return self.head(self.features(x))


class VGG13FerPlus(nn.Module):
    """VGG13 of FER+ (Barsoum et al., 2016): 10 convolutions in 4 pooled stages, two FC-1024 layers.

    As in the paper's CNTK code: no batch norm, ReLU, Glorot-uniform initialisation. The paper's
    64 px input gives (B, 256, 4, 4) features; at 48 px they are (B, 256, 3, 3).
    """

    def __init__(self, num_classes: int = 7, in_chans: int = 1, img_size: int = 64, drop: float = 0.5) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        cin = in_chans
        for width, convs in ((64, 2), (128, 2), (256, 3), (256, 3)):
            layers.extend(_conv_block(cin, width, convs, bn=False))
            cin = width
        self.features = nn.Sequential(*layers)
        side = _pooled_side(img_size, 4, "vgg13_ferplus")
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(cin * side * side, 1024),
            nn.ReLU(inplace=True),
            nn.Dropout(drop),
            nn.Linear(1024, 1024),
            nn.ReLU(inplace=True),
            nn.Dropout(drop),
            nn.Linear(1024, num_classes),
        )
        for m in self.modules():
            if isinstance(m, nn.Conv2d | nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, S, S) -> (B, K), S = img_size
        return self.head(self.features(x))


@register
def emotionnet(num_classes: int = 7, in_chans: int = 1, img_size: int = 48, **kwargs: object) -> nn.Module:
    """EmotionNet: 0.88 M parameters at 48 px, 1.34 M at 64 px."""
    return EmotionNet(num_classes, in_chans, img_size, **kwargs)  # type: ignore[arg-type]


@register
def vgg13_ferplus(num_classes: int = 7, in_chans: int = 1, img_size: int = 48, **kwargs: object) -> nn.Module:
    """VGG13 of FER+: 8.76 M parameters at 64 px (the paper's input), 6.92 M at 48 px."""
    return VGG13FerPlus(num_classes, in_chans, img_size, **kwargs)  # type: ignore[arg-type]


def _import_timm() -> ModuleType:
    try:
        import timm
    except ImportError as e:
        raise ConfigError(f'timm models need the timm package: pip install "maeum[train]" ({e})') from e
    return timm


def check_timm_name(timm_name: str) -> None:
    """Raise ``UnknownNameError`` (with close matches) unless timm has ``timm_name``."""
    timm = _import_timm()
    if not timm.is_model(timm_name):
        close = difflib.get_close_matches(timm_name, timm.list_models(), n=5)
        known = [TIMM_PREFIX + c for c in close] or ["any name in timm.list_models()"]
        raise UnknownNameError("model", TIMM_PREFIX + timm_name, known)


def timm_model(
    timm_name: str, num_classes: int = 7, in_chans: int = 1, img_size: int = 48, **kwargs: object
) -> nn.Module:
    """Build timm's ``timm_name`` from random weights; ``img_size`` goes to models that take one (ViT, DeiT)."""
    timm = _import_timm()
    check_timm_name(timm_name)
    if kwargs.pop("pretrained", False):
        raise ConfigError("maeum builds timm models from random weights and downloads nothing; drop 'pretrained'")
    build = partial(timm.create_model, timm_name, pretrained=False, num_classes=num_classes, in_chans=in_chans)
    try:
        return build(img_size=img_size, **kwargs)
    except TypeError as e:  # convolutional networks take any input size and no img_size argument
        if "img_size" not in str(e):
            raise
    return build(**kwargs)


for _name in TIMM_MODELS:
    register(partial(timm_model, _name), name=_name)
