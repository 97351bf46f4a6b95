"""The weights a fine-tune starts from (``maeum train --init``).

``--init`` names a run's ``best.pt``, an ONNX file from ``maeum export`` or a bundled model
(read back by ``maeum.training.onnx_weights``), or TensorFlow.js weights learned on faces: for
``face_resnet`` face-api's of dlib's face ResNet (``maeum.training.face_resnet``), for
``face_mobilenet`` Human's faceres MobileNet (``maeum.training.face_mobilenet``). Its
architecture must be the run's; besides,

- the labels may differ: everything but the classifier comes over, and of the classifier each
  class both label sets have keeps its learned row while the others keep the new run's fresh
  ones (FER+ to AI Hub: happiness, anger, sadness and neutral carry over);
- the colour may differ: the input convolution is converted. Gray to RGB spreads each kernel
  over the three channels by the luma weights maeum turns RGB into gray with, so a colour face
  gets the answer the gray model gives for its gray version; RGB to gray sums the channels,
  so a gray face gets the answer the RGB model gives for it. Both scale by the two
  normalisations' standard deviations; they are exact when the means agree (``sum(luma * rgb
  mean) == gray mean``, as with every channel at 0.5), and otherwise leave a constant offset
  for the first batch norm to absorb;
- the input size may differ for architectures whose weights do not depend on it
  (convolutions and a global pooling: resnet_s, mini_xception, ResNet, EfficientNet). A vision
  transformer's (ViT, DeiT) position embedding is resampled from its patch grid to the new one
  (bicubic, as timm does when it loads weights at another size). Any other weight that depends
  on the size (a fully connected layer after a flatten: emotionnet, vgg13_ferplus) is refused by name.

With the same colour, the normalisation (mean and std) must be the same.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from maeum.errors import ConfigError
from maeum.labels import FERPLUS7
from maeum.preprocess import LUMA, InputSpec
from maeum.training.checkpoint import read_checkpoint
from maeum.training.config import TrainConfig, is_tfjs_weights
from maeum.training.face_mobilenet import faceres_weights
from maeum.training.face_resnet import face_api_weights
from maeum.training.loader import to_batch
from maeum.training.nets import create_model
from maeum.training.onnx_weights import is_onnx_model, read_onnx_weights

__all__ = ["check_init", "initial_weights"]

log = logging.getLogger(__name__)

_CALIBRATION_CROPS = 512  # training crops whose statistics set the batch norms of face-api's weights


def check_init(init: str, cfg: TrainConfig) -> None:
    """Refuse ``--init`` weights of another architecture, or (same colour) another normalisation, before any
    data is read. What needs the training crops or the model (labels, sizes, shapes) ``initial_weights`` checks."""
    if is_tfjs_weights(init):  # TFJS_INITS: the architecture is checked with the settings
        return
    if is_onnx_model(init):
        from maeum.classify import EmotionClassifier

        arch = EmotionClassifier(init, threads=1).info.extra.get("architecture")
        if isinstance(arch, str) and arch not in ("ensemble", "hog_svm"):  # those read_onnx_weights refuses, saying why
            _check_architecture(init, arch, cfg)
        return
    state = read_checkpoint(init)
    _check_architecture(init, state.get("model_name"), cfg)
    _check_normalisation(init, _checkpoint_input(init, state), cfg)


def initial_weights(
    init: str, cfg: TrainConfig, model: torch.nn.Module, labels: tuple[str, ...], images: np.ndarray
) -> dict[str, torch.Tensor]:
    """The weights of ``--init`` for ``model`` (architecture ``cfg.model``, input ``cfg.input``), which
    is to learn ``labels``. ``images`` are the run's uint8 training crops: an ONNX file is checked on
    them, and its batch norms measured on them where it has no record of them. Raises
    ``ConfigError`` saying what to change when the weights cannot fit."""
    if is_tfjs_weights(init):  # learned on faces, not on these labels: only the classifier starts fresh
        spec = InputSpec.from_dict(cfg.input)
        read = faceres_weights if cfg.model == "face_mobilenet" else face_api_weights
        return read(Path(init), model, spec, to_batch(images[:_CALIBRATION_CROPS], spec))
    if is_onnx_model(init):  # ensembles, HOG + SVM and non-convolutional files are refused here, saying why
        weights, info, arch = read_onnx_weights(init, images)
        theirs, old = info.input, info.labels
    else:
        state = read_checkpoint(init)
        arch, old = state.get("model_name"), tuple(state.get("labels", FERPLUS7))  # as load_checkpoint reads them
        theirs = _checkpoint_input(init, state)
        weights = state["model"]
    _check_architecture(init, arch, cfg)
    _check_normalisation(init, theirs, cfg)
    ours = InputSpec.from_dict(cfg.input)
    fresh = model.state_dict()
    if theirs.color != ours.color:
        weights = _convert_colour(weights, fresh, theirs, ours, init)
    classes = _class_axes(cfg.model, fresh, len(labels), ours)
    if theirs.size != ours.size:
        weights = _resample_position_embedding(weights, fresh, model, init)
    _check_shapes(weights, fresh, classes, theirs, ours, init)
    if theirs.size != ours.size or theirs.color != ours.color:
        log.info("--init %s takes %dpx %s, this run %dpx %s", init, theirs.size, theirs.color, ours.size, ours.color)
    if old == labels:
        return weights
    shared = [label for label in labels if label in old]
    for key, axis in classes.items():
        row = fresh[key].clone()
        for label in shared:
            row.select(axis, labels.index(label)).copy_(weights[key].select(axis, old.index(label)))
        weights[key] = row
    log.info(
        "--init %s was trained on %s: its classifier rows for %s carried over, %s start fresh",
        init,
        ", ".join(old),
        ", ".join(shared) or "no class",
        ", ".join(label for label in labels if label not in old) or "no class",
    )
    return weights


def _checkpoint_input(init: str, state: dict) -> InputSpec:
    try:
        return InputSpec.from_dict(state["config"]["input"])
    except (KeyError, TypeError, ValueError):
        raise ConfigError(f"--init {init} does not say what input it takes; pass a `maeum train` best.pt") from None


def _check_architecture(init: str, arch: object, cfg: TrainConfig) -> None:
    if arch != cfg.model:
        raise ConfigError(f"--init {init} holds a {arch} model, not {cfg.model}; pass --model {arch}")


def _check_normalisation(init: str, theirs: InputSpec, cfg: TrainConfig) -> None:
    ours = InputSpec.from_dict(cfg.input)
    if theirs.color == ours.color and (theirs.mean, theirs.std) != (ours.mean, ours.std):
        raise ConfigError(
            f"--init {init} takes input normalised with mean {list(theirs.mean)} and std {list(theirs.std)}; "
            "set the same input.mean and input.std in the config (or with --set)"
        )


def _convert_colour(
    weights: dict[str, torch.Tensor], fresh: dict[str, torch.Tensor], theirs: InputSpec, ours: InputSpec, init: str
) -> dict[str, torch.Tensor]:
    """``weights`` with the input convolution converted from ``theirs`` colour and normalisation to ``ours``."""
    inputs = [
        key
        for key, w in weights.items()
        if w.ndim == 4
        and fresh[key].ndim == 4
        and (w.shape[1], fresh[key].shape[1]) == (theirs.channels, ours.channels)
        and (w.shape[0], *w.shape[2:]) == (fresh[key].shape[0], *fresh[key].shape[2:])
    ]
    if len(inputs) != 1:
        raise ConfigError(
            f"--init {init}: found {len(inputs)} input convolutions to convert from {theirs.color} to {ours.color}, "
            f"not one; train with --color {theirs.color}"
        )
    w = weights[inputs[0]].float()  # (out, in, kh, kw)
    luma = torch.from_numpy(LUMA)
    if ours.color == "rgb":  # each RGB channel c: the gray kernel * luma[c] * std[c] / gray std
        scale = luma * torch.tensor(ours.std) / theirs.std[0]
        converted = w * scale[None, :, None, None]
    else:  # gray: the RGB kernels summed, each * gray std / its std
        converted = (w / torch.tensor(theirs.std)[None, :, None, None]).sum(1, keepdim=True) * ours.std[0]
    offset = float((luma * torch.tensor(ours.mean if ours.color == "rgb" else theirs.mean)).sum())
    gray_mean = theirs.mean[0] if ours.color == "rgb" else ours.mean[0]
    if abs(offset - gray_mean) > 1e-6:
        log.warning(
            "--init %s: the gray mean %.3f is not the luma-weighted RGB mean %.3f; the converted input "
            "convolution is off by a constant, which the first steps absorb",
            init,
            gray_mean,
            offset,
        )
    log.info("--init %s: input convolution %s converted from %s to %s", init, inputs[0], theirs.color, ours.color)
    return {**weights, inputs[0]: converted.to(weights[inputs[0]].dtype)}


def _resample_position_embedding(
    weights: dict[str, torch.Tensor], fresh: dict[str, torch.Tensor], model: torch.nn.Module, init: str
) -> dict[str, torch.Tensor]:
    """``weights`` with a vision transformer's ``pos_embed`` resampled to ``model``'s patch grid."""
    key = "pos_embed"
    grid = getattr(getattr(model, "patch_embed", None), "grid_size", None)
    if key not in fresh or key not in weights or grid is None or weights[key].shape == fresh[key].shape:
        return weights
    from timm.layers import resample_abs_pos_embed  # a transformer is a timm model: timm is installed

    prefix = int(getattr(model, "num_prefix_tokens", 1))
    old = weights[key].shape[1] - prefix
    side = round(old**0.5)
    if side * side != old:
        raise ConfigError(f"--init {init}: its {key} holds {old} patches, not a square grid; pass --size of its run")
    resampled = resample_abs_pos_embed(weights[key], list(grid), [side, side], num_prefix_tokens=prefix)
    log.info("--init %s: %s resampled from a %dx%d to a %dx%d patch grid", init, key, side, side, *grid)
    return {**weights, key: resampled}


def _check_shapes(
    weights: dict[str, torch.Tensor],
    fresh: dict[str, torch.Tensor],
    classes: dict[str, int],
    theirs: InputSpec,
    ours: InputSpec,
    init: str,
) -> None:
    """Refuse weights whose shapes differ from the run's model other than along a class axis."""

    def shape(t: torch.Tensor, key: str) -> list[int]:
        dims = list(t.shape)
        if key in classes:
            dims.pop(classes[key])
        return dims

    missing = sorted(set(fresh) - set(weights))
    differ = sorted(k for k in fresh if k in weights and shape(weights[k], k) != shape(fresh[k], k))
    if not missing and not differ:
        return
    if theirs.size != ours.size:
        raise ConfigError(
            f"--init {init}: {', '.join(differ or missing)} depend(s) on the input size ({theirs.size}px there, "
            f"{ours.size}px here); pass --size {theirs.size}, or train {ours.size}px from random weights"
        )
    raise ConfigError(
        f"--init {init}: its weights do not fit {', '.join(differ or missing)} of this model; "
        "pass a checkpoint of the same architecture"
    )


def _class_axes(name: str, weights: dict[str, torch.Tensor], classes: int, spec: InputSpec) -> dict[str, int]:
    """Of ``weights`` (architecture ``name`` for ``classes`` classes), the tensors whose shape follows the
    class count, with the axis it sets.

    Found by building the architecture for one class more (under a forked random state, so
    the run's own initialisation stays as seeded).
    """
    with torch.random.fork_rng():
        more = create_model(name, num_classes=classes + 1, in_chans=spec.channels, img_size=spec.size).state_dict()
    axes = {}
    for key, t in weights.items():
        differ = [i for i, (m, n) in enumerate(zip(t.shape, more[key].shape, strict=True)) if m != n]
        if differ:
            axes[key] = differ[0]
    return axes
