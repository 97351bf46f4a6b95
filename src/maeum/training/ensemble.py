"""Ensembles of emotion models as one ONNX file: every member's probabilities, averaged with weights.

The ensemble is a maeum model like any other (``maeum analyze --model e.onnx``). Its input is
the plain pixel crop scaled to [0, 1] (mean 0, std 1) at the largest member's size, in colour
when any member wants colour. Each member's branch then does what ``to_model_input`` would have
done for that member alone::

    x (N, C, S, S) in [0, 1] -> RGB to gray (BT.601) -> Resize to s (linear) -> (x - mean) / std
      -> member graph -> Softmax (if it outputs logits) -> Gather (the first member's label order)
      -> * weight  ...  Sum over members -> "probabilities" (N, K)

Only onnx, onnxruntime and numpy (and cv2 for the check) are needed: no torch.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import onnx
from onnx import TensorProto, compose, helper, numpy_helper, version_converter

from maeum.classify import METADATA_KEY, EmotionClassifier, ModelInfo, resolve_model
from maeum.errors import MaeumError, ModelError
from maeum.preprocess import LUMA, InputSpec

log = logging.getLogger(__name__)

INPUT_NAME, OUTPUT_NAME = "input", "probabilities"
MIN_OPSET = 13  # Resize with an empty roi, Softmax over one axis, Slice with inputs
TEMPLATE_TOLERANCE = 0.05  # of the crop size: members framing faces differently get a warning
STRICT_TOLERANCE = 1e-4  # ensemble vs members when no member is resized
_CHECK_CROPS = 8


class EnsembleError(MaeumError, ValueError):
    """Members or weights that cannot make an ensemble: other label sets, bad weights, too few members."""


@dataclass(frozen=True)
class _Member:
    arg: str  # as the caller named it
    path: Path
    proto: onnx.ModelProto
    info: ModelInfo
    sha256: str


def build_ensemble(
    members: Sequence[str | Path],
    out: Path,
    weights: Sequence[float] | None = None,
    name: str | None = None,
) -> ModelInfo:
    """Write one ONNX file at ``out`` that averages the members' probabilities; return its metadata.

    ``members`` are bundled model names or .onnx paths with maeum metadata; ``weights`` (default
    equal) are normalised to sum to 1. The written file is run against its members before returning.
    """
    if len(members) < 2:
        raise EnsembleError(f"an ensemble needs at least two members, got {len(members)}; name two or more models")
    w = _normalised_weights(weights, len(members))
    for i, m in enumerate(members):  # writing over a member (a bundled one by its name too) would lose it
        try:
            path = resolve_model(m)
        except MaeumError:
            continue  # _load_member says what is wrong with it
        if Path(out).resolve() == path.resolve():
            raise EnsembleError(f"--out {out} is member {i + 1} ({m}); write the ensemble under another name")
    loaded = [_load_member(m, i) for i, m in enumerate(members)]
    labels = _common_labels(loaded)
    spec = _ensemble_input(loaded)
    template = _ensemble_template(loaded, spec.size)

    graph_model = _build_graph(loaded, labels, spec, w)
    params = [m.info.extra.get("parameters") for m in loaded]
    known = [int(p) for p in params if isinstance(p, (int, float))]
    extra: dict[str, object] = {
        "architecture": "ensemble",
        "members": [
            {"name": m.info.name, "file": m.path.name, "weight": float(wi), "sha256": m.sha256}
            for m, wi in zip(loaded, w, strict=True)
        ],
    }
    if known:
        extra["parameters"] = sum(known)
        if len(known) < len(loaded):
            log.warning("parameters: only %d of %d members state their parameter count", len(known), len(loaded))
    info = ModelInfo(
        name=name or "+".join(m.info.name for m in loaded),
        labels=labels,
        input=spec,
        template=template,
        output="probabilities",
        extra=extra,
    )
    entry = graph_model.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, info.to_metadata()
    graph_model.producer_name = "maeum"
    try:
        onnx.checker.check_model(graph_model)
    except onnx.checker.ValidationError as e:  # a bug here, or a member graph onnx itself rejects
        raise ModelError(f"the ensemble graph is invalid ({e}); check that each member passes onnx.checker") from None

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp.onnx")
    try:
        onnx.save(graph_model, str(tmp))
        _verify(tmp, loaded, info, w)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    log.info("wrote ensemble %s (%s)", out, info.name)
    return info


def _normalised_weights(weights: Sequence[float] | None, n: int) -> np.ndarray:
    if weights is None:
        return np.full(n, 1.0 / n)
    w = np.asarray([float(x) for x in weights], dtype=np.float64)
    if len(w) != n:
        raise EnsembleError(f"got {len(w)} weights for {n} members; give one weight per member")
    if not np.all(np.isfinite(w)) or (w < 0).any():
        raise EnsembleError(f"weights must be finite and non-negative, got {list(weights)}")
    if w.sum() == 0:
        raise EnsembleError("weights are all zero; give at least one member a positive weight")
    return w / w.sum()


def _load_member(model: str | Path, index: int) -> _Member:
    where = f"ensemble member {index + 1} ({model})"
    try:
        path = resolve_model(model)
    except MaeumError as e:
        raise ModelError(f"{where}: {e}") from None
    data = path.read_bytes()
    try:
        proto = onnx.load_from_string(data)
        if not proto.graph.node:
            raise ValueError("the file holds no graph")
    except Exception as e:  # protobuf raises its own untyped errors for files that are not ONNX
        raise ModelError(f"{where}: cannot read {path} as an ONNX model ({e}); pass a .onnx file") from None
    meta = {p.key: p.value for p in proto.metadata_props}
    if METADATA_KEY not in meta:
        raise ModelError(
            f"{where}: {path} has no '{METADATA_KEY}' metadata, so its labels and input format are unknown; "
            "export it with maeum (see docs/training.md)"
        )
    info = ModelInfo.from_metadata(meta[METADATA_KEY], str(path))
    if proto.functions:
        raise ModelError(f"{where}: {path} holds ONNX local functions, which ensembles do not merge; re-export it")
    _single_io(proto, path, info)
    if info.flip_below is not None:
        log.warning(
            "%s: its mirror gate runs outside its graph, so the ensemble takes its single pass; for the mirror "
            "inside the ensemble, export the member with `maeum export --tta`",
            where,
        )
    return _Member(str(model), path, proto, info, hashlib.sha256(data).hexdigest())


def _single_io(proto: onnx.ModelProto, path: Path, info: ModelInfo) -> None:
    """A member must have one float input (N, C, S, S) matching its metadata and one output."""
    inits = {t.name for t in proto.graph.initializer}
    inputs = [i for i in proto.graph.input if i.name not in inits]
    if len(inputs) != 1 or len(proto.graph.output) != 1:
        counts = f"{len(inputs)} and {len(proto.graph.output)}"
        raise ModelError(f"{path}: an ensemble member needs one input and one output, got {counts}")
    t = inputs[0].type.tensor_type
    if t.elem_type != TensorProto.FLOAT:
        raise ModelError(f"{path}: the input must be float32 for an ensemble member")
    dims = [d.dim_value if d.HasField("dim_value") else -1 for d in t.shape.dim]
    expected = [info.input.channels, info.input.size, info.input.size]
    if dims[1:] != expected:
        raise ModelError(f"{path}: input shape {dims} disagrees with its metadata {expected}; re-export it")


def _common_labels(members: list[_Member]) -> tuple[str, ...]:
    first = members[0].info.labels
    for m in members[1:]:
        if set(m.info.labels) != set(first):
            missing, extra = sorted(set(first) - set(m.info.labels)), sorted(set(m.info.labels) - set(first))
            raise EnsembleError(
                f"{m.path.name} ({m.info.name}) has other labels than {members[0].path.name}: "
                f"lacks {missing or 'none'}, adds {extra or 'none'}; ensemble only models with the same label set"
            )
    return first


def _ensemble_input(members: list[_Member]) -> InputSpec:
    """Plain pixels: to_model_input computes (x/255 - 0) / 1, so every branch sees values in [0, 1]."""
    size = max(m.info.input.size for m in members)
    if any(m.info.input.color == "rgb" for m in members):
        return InputSpec(size, "rgb", (0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
    return InputSpec(size, "gray", (0.0,), (1.0,))


def _ensemble_template(members: list[_Member], size: int) -> np.ndarray:
    def scaled(m: _Member) -> np.ndarray:
        return np.asarray(m.info.template, np.float64) * (size / m.info.input.size)

    template = scaled(members[0])
    for m in members[1:]:
        gap = float(np.abs(scaled(m) - template).max())
        if gap > TEMPLATE_TOLERANCE * size:
            log.warning(
                "%s frames faces differently from %s (a landmark is %.1f px off at %d px, over %.0f %%): "
                "the ensemble aligns faces to the first member's template",
                m.info.name,
                members[0].info.name,
                gap,
                size,
                TEMPLATE_TOLERANCE * 100,
            )
    return template


def _target_opset(members: list[_Member]) -> int:
    return max(MIN_OPSET, *(_default_opset(m.proto) for m in members))


def _default_opset(proto: onnx.ModelProto) -> int:
    return max((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), default=1)


def _converted(m: _Member, opset: int) -> onnx.ModelProto:
    if _default_opset(m.proto) == opset:
        return m.proto
    try:
        converted = version_converter.convert_version(m.proto, opset)
    except Exception as e:  # the converter raises bare RuntimeErrors for unsupported ops
        raise ModelError(
            f"{m.path}: cannot convert from opset {_default_opset(m.proto)} to {opset} ({e}); "
            f"re-export the members with the same opset"
        ) from None
    log.info("converted %s from opset %d to %d", m.path.name, _default_opset(m.proto), opset)
    return converted


def _const(name: str, value: np.ndarray) -> onnx.TensorProto:
    return numpy_helper.from_array(value, name)


def _build_graph(members: list[_Member], labels: tuple[str, ...], spec: InputSpec, w: np.ndarray) -> onnx.ModelProto:
    opset = _target_opset(members)
    nodes: list[onnx.NodeProto] = []
    inits: list[onnx.TensorProto] = []
    value_info: list[onnx.ValueInfoProto] = []
    opsets: dict[str, int] = {"": opset}
    weighted: list[str] = []
    ir_version = max(m.proto.ir_version for m in members)

    for i, m in enumerate(members):
        p = f"m{i}_"
        proto = compose.add_prefix(_converted(m, opset), p)
        ir_version = max(ir_version, proto.ir_version)
        for o in proto.opset_import:
            if o.domain not in ("", "ai.onnx"):
                opsets[o.domain] = max(opsets.get(o.domain, 0), o.version)
        g = proto.graph
        init_names = {t.name for t in g.initializer}
        (member_in,) = [x.name for x in g.input if x.name not in init_names]
        member_out = g.output[0].name
        mspec = m.info.input

        # Branch preprocessing: (N, C_e, S, S) in [0, 1] -> (N, C_m, s, s) normalised as this member wants.
        x = INPUT_NAME
        if spec.color == "rgb" and mspec.color == "gray":  # BT.601 luma as a 1x1 convolution
            inits.append(_const(p + "luma", LUMA.reshape(1, 3, 1, 1).astype(np.float32)))
            nodes.append(helper.make_node("Conv", [x, p + "luma"], [p + "gray"]))
            x = p + "gray"
        elif spec.color == "gray" and mspec.color == "rgb":  # unreachable with today's rule; kept for clarity
            nodes.append(helper.make_node("Concat", [x, x, x], [p + "rgb"], axis=1))
            x = p + "rgb"
        if mspec.size != spec.size:
            # Sizes from the runtime batch: Shape[0:2] ++ [s, s]; linear, half-pixel (as cv2.INTER_LINEAR).
            inits += [
                _const(p + "zero", np.array([0], np.int64)),
                _const(p + "two", np.array([2], np.int64)),
                _const(p + "hw", np.array([mspec.size, mspec.size], np.int64)),
            ]
            nodes += [
                helper.make_node("Shape", [x], [p + "shape"]),
                helper.make_node("Slice", [p + "shape", p + "zero", p + "two"], [p + "nc"]),
                helper.make_node("Concat", [p + "nc", p + "hw"], [p + "sizes"], axis=0),
                helper.make_node(
                    "Resize",
                    [x, "", "", p + "sizes"],
                    [p + "resized"],
                    mode="linear",
                    coordinate_transformation_mode="half_pixel",
                ),
            ]
            x = p + "resized"
        shape = (1, mspec.channels, 1, 1)
        inits += [
            _const(p + "mean", np.asarray(mspec.mean, np.float32).reshape(shape)),
            _const(p + "std", np.asarray(mspec.std, np.float32).reshape(shape)),
        ]
        nodes += [
            helper.make_node("Sub", [x, p + "mean"], [p + "centred"]),
            helper.make_node("Div", [p + "centred", p + "std"], [member_in]),
        ]

        # The member itself, its initializers and shape hints, all prefixed.
        nodes += list(g.node)
        inits += list(g.initializer)
        value_info += list(g.value_info)

        # Branch output: probabilities in the first member's label order, times the weight.
        y = member_out
        if m.info.output == "logits":
            nodes.append(helper.make_node("Softmax", [y], [p + "probs"], axis=1))
            y = p + "probs"
        if m.info.labels != labels:
            order = np.array([m.info.labels.index(label) for label in labels], np.int64)
            inits.append(_const(p + "order", order))
            nodes.append(helper.make_node("Gather", [y, p + "order"], [p + "ordered"], axis=1))
            y = p + "ordered"
        inits.append(_const(p + "weight", np.array(w[i], np.float32)))
        nodes.append(helper.make_node("Mul", [y, p + "weight"], [p + "weighted"]))
        weighted.append(p + "weighted")

    nodes.append(helper.make_node("Sum", weighted, [OUTPUT_NAME]))
    graph = helper.make_graph(
        nodes,
        "maeum_ensemble",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["batch", spec.channels, spec.size, spec.size])],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["batch", len(labels)])],
        inits,
        value_info=value_info,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v) for d, v in opsets.items()])
    model.ir_version = ir_version
    return model


def _check_crops(spec: InputSpec) -> np.ndarray:
    """Smooth, face-like uint8 crops (N, S, S[, 3]): random low-frequency patterns, fixed seed."""
    rng = np.random.default_rng(0)
    crops = []
    for _ in range(_CHECK_CROPS):
        coarse = rng.uniform(0, 255, (6, 6, spec.channels)).astype(np.float32)
        fine = cv2.resize(coarse, (spec.size, spec.size), interpolation=cv2.INTER_CUBIC).reshape(
            spec.size, spec.size, spec.channels
        )
        fine += rng.normal(0, 8, fine.shape).astype(np.float32)  # some texture
        crops.append(np.clip(fine, 0, 255).round().astype(np.uint8))
    faces = np.stack(crops)
    return faces[..., 0] if spec.channels == 1 else faces


def _verify(path: Path, members: list[_Member], info: ModelInfo, w: np.ndarray) -> float:
    """Run the written ensemble and each member on the same crops; return the max |difference|.

    Members get the crops resized with cv2.INTER_LINEAR in uint8, so with resizing the reference
    differs by rounding and the difference is only logged; without it, over 1e-4 is an error.
    """
    crops = _check_crops(info.input)
    got = EmotionClassifier(path, threads=1).predict(crops)
    ref = np.zeros_like(got, dtype=np.float64)
    resized = False
    for m, wi in zip(members, w, strict=True):
        s = m.info.input.size
        faces = crops
        if s != info.input.size:
            resized = True
            faces = np.stack([cv2.resize(c, (s, s), interpolation=cv2.INTER_LINEAR) for c in crops])
        probs = EmotionClassifier(m.path, threads=1).predict(faces, mirror=None if m.info.mirrored else False)
        order = [m.info.labels.index(label) for label in info.labels]
        ref += wi * probs[:, order]
    diff = float(np.abs(got - ref).max())
    top1 = float((got.argmax(1) == ref.argmax(1)).mean())
    log.info(
        "checked the ensemble against its members on %d crops: max |difference| %.2e, top-1 agreement %.2f%s",
        len(crops),
        diff,
        top1,
        " (members resized in uint8, so rounding differs)" if resized else "",
    )
    if not resized and diff > STRICT_TOLERANCE:
        raise ModelError(
            f"the ensemble disagrees with its members by {diff:.2e} (> {STRICT_TOLERANCE:g}); "
            "this is a bug in maeum's ensemble builder, please report it with the member files"
        )
    return diff
