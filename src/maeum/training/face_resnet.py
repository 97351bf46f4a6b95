"""``face_resnet``: dlib's face-recognition ResNet (29 convolutions), a start learned on faces.

dlib's network (Davis King, public domain) maps a 150x150 face to a 128-number identity
descriptor; it learned faces from about three million photos. face-api (MIT) ships it for the
browser as ``face_recognition_model-weights_manifest.json`` beside ``face_recognition_model.bin``
(npm ``@vladmandic/face-api``, folder ``model/``), each weight stored as 8-bit steps.

``maeum train --model face_resnet --init .../face_recognition_model-weights_manifest.json``
starts from those weights: every convolution, with each of dlib's fixed per-channel
``scale`` layers turned into a batch norm that gives the same answer on the run's own crops
(its statistics measured on them), so the first steps learn from dlib's function, not from a
jolt. The 128-number descriptor layer is dropped; the classifier on the pooled 256 features
starts fresh. The network takes any input size from 11 px; dlib's is 150.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from maeum.errors import ConfigError
from maeum.preprocess import InputSpec
from maeum.training.nets import register
from maeum.training.tfjs import calibrate_batch_norms, input_conv, read_tfjs_weights

__all__ = ["FaceResNet", "face_api_weights"]

log = logging.getLogger(__name__)

FACE_API_MEAN_RGB = (122.782, 117.001, 104.298)  # dlib's input: (RGB - this) / 255
# (width, plain blocks, whether a halving block opens the stage); one more halving block ends the network.
_STAGES: tuple[tuple[int, int, bool], ...] = ((32, 3, False), (64, 3, True), (128, 2, True), (256, 2, True))


def _block_specs() -> list[tuple[str, int, int, bool]]:
    """(face-api's name, in channels, out channels, halves the side) for each residual block."""
    specs, cin = [], 32
    for width, plain, down in _STAGES:
        if down:
            specs.append((f"conv{width}_down", cin, width, True))
        specs += [(f"conv{width}_{i}", width, width, False) for i in range(1, plain + 1)]
        cin = width
    return [*specs, ("conv256_down_out", 256, 256, True)]


class _ConvBN(nn.Sequential):
    def __init__(self, cin: int, cout: int, kernel: int, stride: int, padding: int) -> None:
        super().__init__(nn.Conv2d(cin, cout, kernel, stride, padding, bias=False), nn.BatchNorm2d(cout))


class _Block(nn.Module):
    """Two 3x3 convolutions and a shortcut. Halving the side: the first has stride 2 and no padding,
    the shortcut is a 2x2 average pool with zero channels added, the sides meet by zero padding."""

    def __init__(self, cin: int, cout: int, down: bool) -> None:
        super().__init__()
        self.down = down
        self.conv1 = _ConvBN(cin, cout, 3, 2 if down else 1, 0 if down else 1)
        self.conv2 = _ConvBN(cout, cout, 3, 1, 1)
        self.extra = cout - cin

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x
        if self.down and min(x.shape[2:]) < 3:  # below dlib's 150 px the last sides are too small for 3x3
            y = F.pad(x, (0, max(0, 3 - x.shape[3]), 0, max(0, 3 - x.shape[2])))
        out = self.conv2(F.relu(self.conv1(y)))
        if self.down:
            x = F.avg_pool2d(x, 2) if min(x.shape[2:]) >= 2 else x
            out = F.pad(out, (0, x.shape[3] - out.shape[3], 0, x.shape[2] - out.shape[2]))
        if self.extra:
            x = F.pad(x, (0, 0, 0, 0, 0, self.extra))
        return F.relu(out + x)


class FaceResNet(nn.Module):
    """dlib's face ResNet: a 7x7 stride-2 stem and a 3x3 max pool, then 32, 64, 128 and 256 channels
    (3, 4, 3 and 4 blocks), global average pooling and a linear classifier. 5.6 M parameters."""

    def __init__(self, num_classes: int = 7, in_chans: int = 1, dropout: float = 0.2) -> None:
        super().__init__()
        self.stem = _ConvBN(in_chans, 32, 7, 2, 0)
        self.blocks = nn.Sequential(*(_Block(cin, cout, down) for _, cin, cout, down in _block_specs()))
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout), nn.Linear(256, num_classes)
        )

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The pooled 256 features the classifier reads (and dlib's descriptor layer read)."""
        return self.head[:2](self.blocks(F.max_pool2d(F.relu(self.stem(x)), 3, 2)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head[2:](self.features(x))


@register
def face_resnet(num_classes: int = 7, in_chans: int = 1, img_size: int = 112, **kwargs: object) -> nn.Module:
    """dlib's face ResNet (5.6 M parameters); ``--init`` face-api's weights for a start learned on faces."""
    return FaceResNet(num_classes, in_chans, **kwargs)  # type: ignore[arg-type]


def _face_api_names() -> list[str]:
    """face-api's layer names in the order of ``FaceResNet``'s convolutions."""
    return ["conv32_down", *(f"{name}/conv{i}" for name, *_ in _block_specs() for i in (1, 2))]


def face_api_weights(manifest: Path, model: nn.Module, spec: InputSpec, batch: torch.Tensor) -> dict[str, torch.Tensor]:
    """``model``'s state with face-api's weights: the convolutions as stored, the input one
    converted to ``spec``'s colour and normalisation, each ``scale`` layer a batch norm set to
    the same function on ``batch`` (a normalised training batch) and ``model``'s fresh classifier."""
    if not isinstance(model, FaceResNet):
        raise ConfigError(f"--init {manifest}: face-api's face recognition weights fit --model face_resnet only")
    stored = read_tfjs_weights(manifest)
    convs = [m for m in model.modules() if isinstance(m, _ConvBN)]
    names = _face_api_names()
    missing = [f"{n}/conv/filters" for n in names if f"{n}/conv/filters" not in stored]
    if missing:
        raise ConfigError(f"--init {manifest}: not face-api's face recognition model (no {', '.join(missing[:3])})")
    with torch.no_grad():
        for (conv, bn), name in zip(convs, names, strict=True):
            w = torch.from_numpy(stored[f"{name}/conv/filters"].transpose(3, 2, 0, 1).copy())  # HWIO -> OIHW
            bias = torch.from_numpy(stored[f"{name}/conv/bias"].copy())
            if name == "conv32_down":
                w, bias = input_conv(w, bias, spec, 1.0, [v / 255.0 for v in FACE_API_MEAN_RGB])  # (RGB - M) / 255
            conv.weight.copy_(w)
            # dlib's fixed scale, y = s * (conv + bias) + t, as a batch norm whose statistics are (0, 1).
            s, t = (torch.from_numpy(stored[f"{name}/scale/{k}"].copy()) for k in ("weights", "biases"))
            bn.running_mean.zero_()
            bn.running_var.fill_(1.0 - bn.eps)
            bn.weight.copy_(s)
            bn.bias.copy_(s * bias + t)
        calibrate_batch_norms(model, convs, batch)
    log.info(
        "--init %s: dlib's face ResNet from face-api's weights, batch norms measured on %d crops", manifest, len(batch)
    )
    return {k: v.clone() for k, v in model.state_dict().items()}
