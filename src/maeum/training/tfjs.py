"""Weights learned on faces as the browser libraries ship them, for ``maeum train --init``.

face-api and Human (npm, MIT) store networks for TensorFlow.js: a JSON file (a weights
manifest, or a graph model holding one under ``weightsManifest``) naming each weight's shape
and storage, and binary files with the values in order, as float32, as 8- or 16-bit steps
between a minimum and a scale, or as float16. ``read_tfjs_weights`` reads them all to float32.

Such networks carry their batch norms as fixed per-channel scales and shifts.
``calibrate_batch_norms`` turns each back into a batch norm with the statistics of the run's
own crops and the same function, so fine-tuning starts from the network's answer, not from a
jolt; ``input_conv`` converts the input convolution to the run's colour and normalisation.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from maeum.errors import ConfigError
from maeum.preprocess import InputSpec

__all__ = ["calibrate_batch_norms", "input_conv", "read_tfjs_weights"]


def read_tfjs_weights(path: Path) -> dict[str, np.ndarray]:
    """The weights of a TensorFlow.js model by name, float32, from its JSON file (a weights manifest
    or a graph model) and the binary files it names beside it."""
    try:
        spec = json.loads(Path(path).read_text())
        groups = spec["weightsManifest"] if isinstance(spec, dict) else spec
        weights: dict[str, np.ndarray] = {}
        for group in groups:
            data = b"".join((Path(path).parent / p).read_bytes() for p in group["paths"])
            at = 0
            for w in group["weights"]:
                q = w.get("quantization")
                stored = (q or w).get("dtype", "float32")  # quantized: the storage's type, else the weight's
                raw = np.frombuffer(data, dtype=stored, count=math.prod(w["shape"]), offset=at)
                at += raw.nbytes
                if q and "scale" in q:  # 8- or 16-bit steps
                    value = raw.astype(np.float32) * np.float32(q["scale"]) + np.float32(q["min"])
                else:  # float16 widens; float32 and integers stay as stored
                    value = raw.astype(np.float32) if raw.dtype == np.float16 else raw
                weights[w["name"]] = value.reshape(w["shape"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ConfigError(f"--init {path}: not a readable TensorFlow.js model or weights manifest ({e})") from e
    return weights


def calibrate_batch_norms(model: nn.Module, layers: Sequence[nn.Sequential], batch: torch.Tensor) -> None:
    """Give each batch norm of ``layers`` (each a convolution and its batch norm) the statistics of
    its convolution's output on ``batch`` while keeping its function:
    ``gamma * (z - mean) / sqrt(var + eps) + beta == s * z + c`` for every ``z``."""
    stats: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    def measure(i: int) -> Callable[[nn.Module, object, torch.Tensor], None]:
        def hook(_: nn.Module, __: object, z: torch.Tensor) -> None:
            stats[i] = (z.mean((0, 2, 3)), z.var((0, 2, 3), correction=0))  # as training normalises

        return hook

    handles = [layer[0].register_forward_hook(measure(i)) for i, layer in enumerate(layers)]
    model.eval()
    try:
        model(batch)
    finally:
        for h in handles:
            h.remove()
    for i, layer in enumerate(layers):
        bn = layer[1]
        mean, var = stats[i]
        s, c = bn.weight.clone(), bn.bias.clone()  # the function is s * z + c now
        bn.running_mean.copy_(mean)
        bn.running_var.copy_(var)
        bn.weight.copy_(s * torch.sqrt(var + bn.eps))
        bn.bias.copy_(s * mean + c)


def input_conv(
    w: torch.Tensor, bias: torch.Tensor, spec: InputSpec, scale: float, mean: Sequence[float], bgr: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """The input convolution ``w`` (out, 3, kh, kw) and ``bias`` of a network whose input is
    ``scale * v - mean`` per channel (BGR order if ``bgr``) for a pixel ``v`` in 0..1, made to take
    ``spec``'s input ``(v - m) / sd`` instead. The network's input is ``scale * (sd * ours + m) -
    mean``: the kernels scale by ``scale * sd`` and the constant folds into the bias (exact where
    the convolution does not pad; in its padding the network saw 0 of its own input). A gray face
    is its gray value in all three channels, so its kernel is the three summed."""
    sd = torch.tensor(spec.std, dtype=w.dtype).expand(3)
    m = torch.tensor(spec.mean, dtype=w.dtype).expand(3)
    if bgr:
        sd, m = sd.flip(0), m.flip(0)
    bias = bias + torch.einsum("oi,i->o", w.sum((2, 3)), scale * m - torch.tensor(mean, dtype=w.dtype))
    w = w * (scale * sd)[None, :, None, None]
    if spec.channels == 1:
        return w.sum(1, keepdim=True), bias
    return (w.flip(1) if bgr else w), bias
