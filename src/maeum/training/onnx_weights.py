"""Weights read back from an exported ONNX file, so a shipped model can be fine-tuned (``maeum train --init``).

``maeum export`` folds every batch norm into the convolution before it (weights ``W'``, bias
``b'``) and, with ``--int8``, stores weights as int8 with a scale per output channel. Reading
a file back into the architecture its metadata names:

- constants are the initializers, ``Constant`` nodes, and ``DequantizeLinear`` of constants
  (int8 weights back to float);
- each ``Conv`` and ``Gemm`` node of the file goes to the ``Conv2d`` or ``Linear`` module
  whose name its node name carries (the exporter names nodes after modules), and every pair
  must agree in shape, with no module or node left over;
- a batch norm right after a convolution is unfolded. Where the file records it (``batch_norms``
  in the metadata, written by ``maeum export`` since it records them), the norm gets its own
  parameters back and the convolution ``W = W' * sigma / gamma``: the exported network's own
  weights. Otherwise the per-channel mean ``m`` and variance ``v`` of the convolution's output
  are measured on training crops, and the norm is set to running statistics ``m``, ``v``,
  weight ``sqrt(v + eps)`` and bias ``m + b'``. In eval mode it then adds exactly ``b'`` (the
  file's answer); in training mode, normalising by batch statistics close to ``m`` and ``v``,
  nearly so. The network is the same, but not its weights: ``W'`` keeps the scale
  ``gamma / sigma`` folding gave it, which changes how fast a fine-tune moves it.

The network is then checked against the file on those crops, as ``maeum export`` checks a
new file against torch. Networks with other parameters (attention, layer norms, a batch norm
not after a convolution) are refused: fine-tune those from their ``best.pt``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import numpy_helper

from maeum.classify import BUNDLED_MODELS, EmotionClassifier, ModelInfo, resolve_model
from maeum.errors import ConfigError
from maeum.preprocess import InputSpec, resize_crops, to_model_input
from maeum.training.export import Served, compare, disagrees
from maeum.training.nets import create_model

__all__ = ["CALIBRATION_CROPS", "batch_norm_record", "is_onnx_model", "read_onnx_weights"]

log = logging.getLogger(__name__)

CALIBRATION_CROPS = 1024  # training crops that measure the unfolded batch norms' statistics

_WEIGHTED = (torch.nn.Conv2d, torch.nn.BatchNorm2d, torch.nn.Linear)
_NORM_KEYS = ("weight", "bias", "running_mean", "running_var")


def is_onnx_model(init: str) -> bool:
    """Whether ``--init`` names an ONNX model (bundled name or ``.onnx`` file) rather than a ``best.pt``."""
    return init.lower().endswith(".onnx") or (init in BUNDLED_MODELS and not Path(init).exists())


def batch_norm_record(net: torch.nn.Module, spec: InputSpec) -> dict[str, dict[str, object]]:
    """What folding loses, per convolution followed by a batch norm: the norm's ``weight``, ``bias``,
    ``running_mean``, ``running_var`` and ``eps``, by the convolution's module name.

    ``maeum export`` stores it in the file's metadata (``batch_norms``), so that reading the file
    back restores the network's own weights instead of measuring an equivalent. Empty for
    networks that cannot be read back.
    """
    try:
        calls = _weighted_calls(net, type(net).__name__, torch.zeros(1, spec.channels, spec.size, spec.size))
        pairs = _norms_after_convolutions(calls).items()
    except ConfigError:
        return {}

    def floats(t: torch.Tensor) -> list[float]:
        return [float(f"{v:.9g}") for v in t.tolist()]  # 9 digits: float32 exactly

    return {name: {key: floats(getattr(norm, key)) for key in _NORM_KEYS} | {"eps": norm.eps} for name, norm in pairs}


def read_onnx_weights(model: str | Path, crops: np.ndarray) -> tuple[dict[str, torch.Tensor], ModelInfo, str]:
    """The weights of ONNX ``model`` (a bundled name or an exported file) as a ``state_dict`` of the
    architecture its metadata names, with that metadata and the architecture's name.

    ``crops`` (N, S, S[, 3]) uint8 face crops, typically the training images (resized to the
    model's input when they are not), measure the unfolded batch norms and check the result;
    up to ``CALIBRATION_CROPS`` of them, spread evenly, are used. Raises ``ConfigError`` saying
    what to pass instead when the file cannot be read back.
    """
    path = resolve_model(model)
    clf = EmotionClassifier(path, threads=torch.get_num_threads())
    info = clf.info
    arch = info.extra.get("architecture")
    if arch == "ensemble":
        raise ConfigError(f"--init {model} is an ensemble of several networks; fine-tune from one of its members")
    if arch == "hog_svm":
        raise ConfigError(f"--init {model} is a HOG + SVM model, which is fitted in one step, not fine-tuned")
    if not isinstance(arch, str):
        raise ConfigError(
            f"--init {model}: its metadata names no architecture (not a `maeum export` file); "
            "pass the best.pt it was trained as"
        )
    spec = info.input
    if len(crops) == 0:
        raise ConfigError(f"--init {model} needs training crops to read its batch norms back; the run has none")
    crops = crops[np.linspace(0, len(crops) - 1, min(len(crops), CALIBRATION_CROPS)).astype(int)]
    if crops.shape[1:3] != (spec.size, spec.size):  # a run at another size: the crops as the file takes them
        crops = resize_crops(crops, spec.size)

    with torch.random.fork_rng():  # building the network must not move the run's seeded random state
        net = create_model(arch, num_classes=len(info.labels), in_chans=spec.channels, img_size=spec.size).eval()
    calls = _weighted_calls(net, arch, torch.zeros(1, spec.channels, spec.size, spec.size))
    proto = onnx.load(str(path))
    layers = _onnx_layers(proto, model)
    folded = _load_layers(net, calls, layers, model)
    x = torch.from_numpy(to_model_input(crops, spec))
    record = info.extra.get("batch_norms")
    restored = _restore_batch_norms(folded, record if isinstance(record, dict) else {})
    _unfold_batch_norms(net, [f for f in folded if f[0] not in restored], x)

    with torch.no_grad():
        ours = Served(net, flip=info.mirrored).eval()(x).numpy()
    theirs = clf.predict(crops, mirror=None if info.mirrored else False)  # the file's single pass, as ``net``
    quantized = any(n.op_type == "DequantizeLinear" for n in proto.graph.node)
    report = compare(theirs, ours)
    diff, clear_agreement = report["max_abs_diff"], report["clear_top1_agreement"]
    log.info(
        "%s: %s read back into %s (%d layers; %d batch norms restored from the file's record, "
        "%d measured); on %d training crops max |file - network| %.2e, top-1 agreement %.4f (%.4f on clear answers)",
        model,
        "int8 weights" if quantized else "weights",
        arch,
        len(layers),
        len(restored),
        len(folded) - len(restored),
        len(crops),
        diff,
        report["top1_agreement"],
        clear_agreement,
    )
    if disagrees(report, int8=quantized):  # the check `maeum export` makes of a new file
        raise ConfigError(
            f"--init {model}: the weights read back do not reproduce the file (max difference {diff:.2e}, "
            f"clear top-1 agreement {clear_agreement:.4f}); fine-tune from the best.pt it was exported from"
        )
    return net.state_dict(), info, arch


def _weighted_calls(net: torch.nn.Module, arch: str, dummy: torch.Tensor) -> list[tuple[str, torch.nn.Module]]:
    """The network's Conv2d, BatchNorm2d and Linear modules in the order one forward pass calls them."""
    names = {m: n for n, m in net.named_modules()}
    own_weights = [m for m in net.modules() if next(m.parameters(recurse=False), None) is not None]
    other = sorted({type(m).__name__ for m in own_weights if not isinstance(m, _WEIGHTED)})
    if other:
        raise ConfigError(
            f"--init from ONNX reads convolutional networks; {arch} also has {', '.join(other)} weights. "
            "Fine-tune it from its best.pt"
        )
    calls: list[tuple[str, torch.nn.Module]] = []
    hooks = [
        m.register_forward_hook(lambda mod, args, out: calls.append((names[mod], mod)))
        for m in net.modules()
        if isinstance(m, _WEIGHTED)
    ]
    try:
        with torch.no_grad():
            net(dummy)
    finally:
        for h in hooks:
            h.remove()
    if len({id(m) for _, m in calls}) != len(calls):
        raise ConfigError(f"--init from ONNX: {arch} calls a layer twice per pass; fine-tune it from its best.pt")
    return calls


def _norms_after_convolutions(calls: list[tuple[str, torch.nn.Module]]) -> dict[str, torch.nn.BatchNorm2d]:
    """The batch norm each convolution is followed by (the pairs export folds), by the convolution's name.
    A batch norm after anything else was not folded, and is refused."""
    pairs = {}
    for i, (name, m) in enumerate(calls):
        if not isinstance(m, torch.nn.BatchNorm2d):
            continue
        before_name, before = calls[i - 1] if i else ("", None)
        if not isinstance(before, torch.nn.Conv2d) or before.out_channels != m.num_features:
            raise ConfigError(
                f"--init from ONNX: batch norm {name} does not follow a convolution, so it was not folded "
                "into one; fine-tune from the best.pt"
            )
        pairs[before_name] = m
    return pairs


def _constants(proto: onnx.ModelProto) -> dict[str, np.ndarray]:
    """Every tensor of the graph that does not depend on its input: initializers, Constant nodes,
    and DequantizeLinear or Identity of those."""
    values = {t.name: numpy_helper.to_array(t) for t in proto.graph.initializer}
    for node in proto.graph.node:
        if node.op_type == "Constant":
            attr = next((a for a in node.attribute if a.name == "value"), None)
            if attr is not None:
                values[node.output[0]] = numpy_helper.to_array(attr.t)
        elif node.op_type == "Identity" and node.input[0] in values:
            values[node.output[0]] = values[node.input[0]]
        elif node.op_type == "DequantizeLinear" and all(i in values for i in node.input if i):
            q, scale = values[node.input[0]].astype(np.float32), values[node.input[1]].astype(np.float32)
            zero = values[node.input[2]].astype(np.float32) if len(node.input) > 2 and node.input[2] else 0.0
            axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
            if scale.ndim == 1 and q.ndim > 1:  # per channel along ``axis``
                shape = [1] * q.ndim
                shape[axis] = -1
                scale = scale.reshape(shape)
                zero = np.reshape(zero, shape) if np.ndim(zero) else zero
            values[node.output[0]] = (q - zero) * scale
    return values


_Layer = tuple[np.ndarray, "np.ndarray | None", int]  # weight ((out, in, kh, kw) or (out, in)), bias, groups
_Folded = tuple[str, torch.nn.Conv2d, torch.nn.BatchNorm2d, torch.Tensor]  # name, convolution, its norm, folded bias


def _onnx_layers(proto: onnx.ModelProto, model: str | Path) -> dict[str, _Layer]:
    """The file's convolutions and fully connected layers by the network module they were exported from.

    ``maeum export`` names each node after the module that made it, under the wrapper ``net``
    (``/net/features/features.3/conv1/conv1.0/Conv`` for module ``features.3.conv1.0``); node
    order is not used, since int8 quantization reorders the graph.
    """
    values = _constants(proto)
    layers: dict[str, _Layer] = {}
    for node in proto.graph.node:
        if node.op_type not in ("Conv", "Gemm"):
            continue
        scope = node.name.split("/")
        if len(scope) < 4 or scope[1] != "net":
            raise ConfigError(
                f"--init {model}: node {node.name!r} does not name the module it came from "
                "(not a `maeum export` file); fine-tune from the best.pt it was trained as"
            )
        inputs = [*node.input, "", ""]
        if inputs[1] not in values:
            raise ConfigError(f"--init {model}: the weights of {node.name} are computed, not stored")
        weight, bias = values[inputs[1]], values.get(inputs[2]) if inputs[2] else None
        attrs = {a.name: a.i for a in node.attribute if a.type == onnx.AttributeProto.INT}
        if node.op_type == "Gemm":
            if attrs.get("transA", 0):
                raise ConfigError(f"--init {model}: {node.name} transposes its input; maeum exports no such layer")
            weight = weight if attrs.get("transB", 0) else weight.T
        layers[_module_name(scope[2:-1])] = (np.ascontiguousarray(weight), bias, attrs.get("group", 1))
    return layers


def _module_name(scopes: list[str]) -> str:
    """The module path of an exporter scope: ``features, features.3, conv1, conv1.0`` -> ``features.3.conv1.0``.

    Each scope is a child's attribute name, written ``parent.child`` when the child is an item of
    the scope before (a ``Sequential`` index).
    """
    path: list[str] = []
    for i, scope in enumerate(scopes):
        item = scope.removeprefix(scopes[i - 1] + ".") if i else scope
        if i and item != scope and "." not in item:
            path[-1] += "." + item
        else:
            path.append(scope)
    return ".".join(path)


def _load_layers(
    net: torch.nn.Module, calls: list[tuple[str, torch.nn.Module]], layers: dict[str, _Layer], model: str | Path
) -> list[_Folded]:
    """Copy the file's layers into ``net``; return (name, convolution, its batch norm, folded bias) per folded pair."""
    norm_after = _norms_after_convolutions(calls)
    ours = [(n, m) for n, m in calls if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    unmatched = sorted(set(layers) - {n for n, _ in ours})
    missing = [n for n, _ in ours if n not in layers]
    if unmatched or missing:
        raise ConfigError(
            f"--init {model}: the file's layers do not match the architecture (in the file only: "
            f"{', '.join(unmatched) or 'none'}; in the architecture only: {', '.join(missing) or 'none'})"
        )
    folded = []
    with torch.no_grad():
        for name, layer in ours:
            weight, bias, groups = layers[name]
            ours_groups = getattr(layer, "groups", 1)
            if tuple(weight.shape) != tuple(layer.weight.shape) or groups != ours_groups:
                raise ConfigError(
                    f"--init {model}: layer {name} is {tuple(layer.weight.shape)} (groups {ours_groups}), "
                    f"the file's {tuple(weight.shape)} (groups {groups}): not a file of this architecture"
                )
            layer.weight.copy_(torch.tensor(weight))
            b = torch.tensor(bias, dtype=torch.float32) if bias is not None else torch.zeros(layer.weight.shape[0])
            if name in norm_after:
                if layer.bias is not None:
                    layer.bias.zero_()
                folded.append((name, layer, norm_after[name], b))
            elif layer.bias is not None:
                layer.bias.copy_(b)
            elif b.abs().max() > 0:
                raise ConfigError(f"--init {model}: layer {name} has no bias, but the file's has one")
    return folded


@torch.no_grad()
def _unfold_batch_norms(net: torch.nn.Module, folded: list[_Folded], x: torch.Tensor) -> None:
    """Set each batch norm after a folded convolution from the statistics of that convolution's output on ``x``."""
    if not folded:  # every norm restored from the file's record: nothing to measure
        return
    for _, _, norm, b in folded:  # first: adding b' exactly, so every later layer sees the file's activations
        norm.running_mean.zero_()
        norm.running_var.fill_(1.0 - norm.eps)
        norm.weight.fill_(1.0)
        norm.bias.copy_(b)
    sums: dict[int, tuple[torch.Tensor, torch.Tensor, int]] = {}

    def measure(conv: torch.nn.Module, args: object, out: torch.Tensor) -> None:
        y = out.double().transpose(0, 1).flatten(1)  # (C, N*H*W)
        s, s2, n = sums.get(id(conv), (0.0, 0.0, 0))
        sums[id(conv)] = (s + y.sum(1), s2 + (y * y).sum(1), n + y.shape[1])

    hooks = [conv.register_forward_hook(measure) for _, conv, _, _ in folded]
    try:
        net.eval()
        for i in range(0, len(x), 256):
            net(x[i : i + 256])
    finally:
        for h in hooks:
            h.remove()
    for _, conv, norm, b in folded:
        s, s2, n = sums[id(conv)]
        mean = s / n
        var = (s2 / n - mean * mean).clamp(min=0)
        norm.running_mean.copy_(mean.float())
        norm.running_var.copy_(var.float())
        norm.weight.copy_((var + norm.eps).sqrt().float())
        norm.bias.copy_(mean.float() + b)


@torch.no_grad()
def _restore_batch_norms(folded: list[_Folded], record: dict[str, object]) -> set[str]:
    """Undo the folding where ``record`` (``batch_norm_record`` of the exported network) has the norm:
    the convolution gets back ``W = W' * sigma / gamma`` and the norm its own parameters. Returns the
    names restored."""
    restored = set()
    for name, conv, norm, _ in folded:
        entry = record.get(name)
        if not isinstance(entry, dict) or any(len(entry.get(k) or []) != norm.num_features for k in _NORM_KEYS):
            continue
        values = {key: torch.tensor(entry[key], dtype=torch.float32) for key in _NORM_KEYS}
        sigma = (values["running_var"] + float(entry.get("eps", norm.eps))).sqrt()
        gamma = values["weight"]
        # A channel with gamma 0 answers its bias whatever its kernel; its kernel was lost in the folding.
        scale = torch.where(gamma.abs() > 0, sigma / torch.where(gamma.abs() > 0, gamma, 1.0), 0.0)
        conv.weight.mul_(scale.view(-1, *[1] * (conv.weight.ndim - 1)))
        for key in _NORM_KEYS:
            getattr(norm, key).copy_(values[key])
        restored.add(name)
    return restored
