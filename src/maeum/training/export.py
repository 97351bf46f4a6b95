"""Export a trained classifier to ONNX with maeum's metadata, checked against torch."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import torch

from maeum.classify import METADATA_KEY, EmotionClassifier, ModelInfo
from maeum.errors import ModelError
from maeum.preprocess import InputSpec, to_model_input

log = logging.getLogger(__name__)


QUANTIZE_CROPS = 1024  # training crops that set the int8 activation ranges
# int8 weights use 7 of their 8 bits. x86 CPUs without VNNI (AVX2 only) multiply uint8 activations
# by int8 weights with an instruction that adds each pair of products in saturating 16 bits: with
# weights up to 64 in size a pair stays within range (2 x 255 x 64 < 32,768), so onnxruntime's fast
# kernel is exact there; with full 8-bit weights it saturates (the bundled model's first export
# scored 0.8397 on FER+ Test instead of 0.8579) unless the session widens the weights first, slower.
INT8_WEIGHT_BITS = 7
INT8_MIN_AGREEMENT = 0.95  # on torch's clear answers: below it an int8 export fails
FLOAT_TOLERANCE = 1e-3  # max |onnx - torch| probability: above it a float export fails
CLEAR_MARGIN = 0.1  # a clear answer: its top-1 probability leads the runner-up by this much
# The operators int8 computes: the heavy ones. The classifier, softmax and mirror mean stay float,
# so probabilities keep their resolution and sum to 1.
QUANTIZED_OPS = ["Conv", "MatMul", "Add", "Relu", "Clip", "MaxPool", "AveragePool", "GlobalAveragePool"]


class Served(torch.nn.Module):
    """The network as served: softmax probabilities; with ``flip``, the mean over the crop and its mirror."""

    def __init__(self, net: torch.nn.Module, flip: bool = False) -> None:
        super().__init__()
        self.net, self.flip = net, flip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.flip:
            return torch.softmax(self.net(x), dim=1)
        both = torch.softmax(self.net(torch.cat([x, x.flip(3)])), dim=1)  # one batch of 2N: faster than two
        return both.reshape(2, x.shape[0], -1).mean(0)


def export_onnx(
    model: torch.nn.Module,
    info: ModelInfo,
    out: Path,
    check_faces: np.ndarray,
    flip: bool = False,
    int8_faces: np.ndarray | None = None,
    score: Callable[[EmotionClassifier], dict[str, float]] | None = None,
) -> dict[str, float]:
    """Write ``model`` (logits) as an ONNX file returning probabilities, with ``info`` in its metadata.

    ``flip`` builds flip test-time augmentation into the graph (twice the compute per face).
    ``int8_faces`` (N, S, S[, 3]) uint8 training crops turn on static int8 quantization: weights
    per output channel, activations with ranges measured on these crops (QDQ format, which any
    ONNX runtime reads). ``check_faces`` (N, S, S) uint8 crops are run through torch and through
    maeum's own ``EmotionClassifier`` on the written file; returns max |difference|, top-1
    agreement, and top-1 agreement on torch's clear answers (top-1 ahead by ``CLEAR_MARGIN``).
    A float file must agree within ``FLOAT_TOLERANCE``, an int8 one on ``INT8_MIN_AGREEMENT`` of
    the clear answers (int8 rounding may flip a near tie). ``score`` measures the checked file (its
    metrics join ``info.extra`` and the metadata) before it takes the place of ``out``. Nothing is
    left at ``out`` when a check or the scoring fails, and ``out`` never holds a file without its scores.
    """
    if info.output != "probabilities":
        raise ValueError("export_onnx writes a softmax output; set info.output='probabilities'")
    model = Served(model, flip).eval()
    spec = info.input
    dummy = torch.zeros(2, spec.channels, spec.size, spec.size)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f"{out.stem}.partial{out.suffix}")
    try:
        with warnings.catch_warnings():
            # The exporter's note that a strided Slice (HOG's cell sums) is not constant-folded: nothing to fix.
            warnings.filterwarnings("ignore", message="Constant folding - Only steps=1", category=UserWarning)
            torch.onnx.export(
                model,
                (dummy,),
                str(partial),
                input_names=["input"],
                output_names=["probabilities"],
                dynamic_axes={"input": {0: "batch"}, "probabilities": {0: "batch"}},
                opset_version=17,
                dynamo=False,
            )
        if int8_faces is not None:
            _quantize(partial, int8_faces, spec)
        with torch.no_grad():
            ref = model(torch.from_numpy(to_model_input(check_faces, spec))).numpy()
        return _check_and_place(partial, out, info, (check_faces, ref, None), int8_faces is not None, "torch", score)
    finally:
        partial.unlink(missing_ok=True)


def export_single_pass(
    source: EmotionClassifier,
    info: ModelInfo,
    out: Path,
    check_faces: np.ndarray,
    score: Callable[[EmotionClassifier], dict[str, object]] | None = None,
) -> dict[str, float]:
    """Write ``source``'s graph as it is, with the mirror pass cut out of it when it has one
    (``cut_mirror``), and ``info`` in its metadata: nothing is computed anew, so an int8 file keeps
    its exact weights and ranges. The single pass averaged with its mirror image must give the
    source's answers on ``check_faces`` (a source without a mirror pass: its answers) within
    ``FLOAT_TOLERANCE``. ``score`` and the return value as in ``export_onnx``.
    """
    proto = onnx.load(str(source.path))
    if source.info.mirrored:
        proto = cut_mirror(proto, source.path)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f"{out.stem}.partial{out.suffix}")
    try:
        onnx.save(proto, str(partial))
        mirror = source.info.mirrored  # the source's answers: the cut file's two passes averaged, or its one
        ref = source.predict(check_faces, mirror=None if mirror else False)
        return _check_and_place(partial, out, info, (check_faces, ref, mirror), False, source.path.name, score)
    finally:
        partial.unlink(missing_ok=True)


def _check_and_place(
    partial: Path,
    out: Path,
    info: ModelInfo,
    check: tuple[np.ndarray, np.ndarray, bool | None],
    int8: bool,
    against: str,
    score: Callable[[EmotionClassifier], dict[str, object]] | None,
) -> dict[str, float]:
    """Give the ONNX file ``partial`` its metadata, check it, score it, and move it to ``out``; the
    caller removes ``partial`` if anything fails. ``check`` is (crops, the probabilities ``against``
    gives them, the ``mirror`` the written file answers them with: see ``EmotionClassifier.predict``)."""
    check_faces, ref, mirror = check
    write_metadata(partial, info)
    written = EmotionClassifier(partial)
    got = written.predict(check_faces, mirror=mirror)
    report = compare(ref, got)
    clear = (
        f"{report['clear_top1_agreement']:.4f} on the {report['clear_answers']} of {len(ref)} clear answers"
        if report["clear_answers"]
        else f"no clear answer among {len(ref)}"
    )
    log.info(
        "exported %s: max |onnx - %s| %.2e, top-1 agreement %.4f (%s)",
        out,
        against,
        report["max_abs_diff"],
        report["top1_agreement"],
        clear,
    )
    if not np.isfinite(got).all():
        raise RuntimeError(f"ONNX export of {info.name} gives non-finite probabilities on the check crops")
    if int8 and not report["clear_answers"]:
        log.warning("no clear answer among %d check crops: the int8 file's agreement is not judged", len(ref))
    if disagrees(report, int8=int8):
        raise RuntimeError(f"ONNX export of {info.name} disagrees with {against}: {report}")
    if score is not None:
        info.extra.update(score(written))
        write_metadata(partial, info)
    partial.replace(out)
    return report


def compare(ref: np.ndarray, got: np.ndarray) -> dict[str, float]:
    """How closely probabilities ``got`` (N, K) follow ``ref``: max |difference|, top-1 agreement, and
    top-1 agreement on ``ref``'s clear answers (top-1 ahead by ``CLEAR_MARGIN``; nan when none is)."""
    agree = ref.argmax(1) == got.argmax(1)
    top2 = np.sort(ref, axis=1)[:, -2:]
    clear = top2[:, 1] - top2[:, 0] >= CLEAR_MARGIN
    return {
        "max_abs_diff": float(np.abs(ref - got).max()),
        "top1_agreement": float(agree.mean()),
        "clear_top1_agreement": float(agree[clear].mean()) if clear.any() else float("nan"),
        "clear_answers": int(clear.sum()),
    }


def disagrees(report: dict[str, float], int8: bool) -> bool:
    """Whether a ``compare`` report fails the export check: a float file beyond ``FLOAT_TOLERANCE``, an
    int8 one below ``INT8_MIN_AGREEMENT`` on the clear answers (not judged without a clear answer)."""
    if int8:
        return report["clear_top1_agreement"] < INT8_MIN_AGREEMENT  # nan compares False
    return report["max_abs_diff"] > FLOAT_TOLERANCE


def write_metadata(path: Path, info: ModelInfo) -> None:
    """Set the ONNX file's ``maeum`` metadata entry (its only one) to ``info``."""
    proto = onnx.load(str(path))
    del proto.metadata_props[:]
    entry = proto.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, info.to_metadata()
    proto.producer_name = "maeum"
    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))


def _quantize(path: Path, faces: np.ndarray, spec: InputSpec) -> None:
    """Replace the float ONNX file at ``path`` by its static int8 quantization, calibrated on ``faces``."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Crops(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = (to_model_input(faces[i : i + 64], spec) for i in range(0, len(faces), 64))

        def get_next(self) -> dict[str, np.ndarray] | None:
            x = next(self.batches, None)
            return None if x is None else {"input": x}

    prepared = path.with_suffix(".prep.onnx")
    root = logging.getLogger()
    level = root.level
    root.setLevel(max(level, logging.WARNING))  # the quantizer logs a line per tensor on the root logger
    try:
        quant_pre_process(str(path), str(prepared))  # shape inference and graph clean-up first, as ORT advises
        quantize_static(
            str(prepared),
            str(path),
            Crops(),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            op_types_to_quantize=QUANTIZED_OPS,
            nodes_to_exclude=_constant_adds(onnx.load(str(prepared))),
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            reduce_range=INT8_WEIGHT_BITS == 7,  # onnxruntime's quantizer offers 8 bits, or 7 with this
        )
    finally:
        root.setLevel(level)
        prepared.unlink(missing_ok=True)
    log.info("quantized %s to int8 on %d training crops", path, len(faces))


def _constant_adds(proto: onnx.ModelProto) -> list[str]:
    """Add nodes with a constant operand (an epsilon before a division or square root, as in HOG's
    block norm): in int8 the constant would round to 0, so they stay float. Residual additions of
    two activations are quantized."""
    constants = {t.name for t in proto.graph.initializer}
    constants |= {out for n in proto.graph.node if n.op_type == "Constant" for out in n.output}
    return [n.name for n in proto.graph.node if n.op_type == "Add" and any(i in constants for i in n.input)]


def cut_mirror(proto: onnx.ModelProto, source: Path) -> onnx.ModelProto:
    """The single pass of a graph exported with the mirror inside it (``Served`` with ``flip``): the
    input goes straight into the network, and the softmax is the output, instead of the batch of
    crops and mirrors in and their mean out. Raises ``ModelError`` for any other graph."""
    graph = proto.graph
    (given,), (answer,) = [i.name for i in graph.input], [o.name for o in graph.output]
    producers = {out: n for n in graph.node for out in n.output}
    batch = next((n for n in graph.node if n.op_type == "Concat" and list(n.input[:1]) == [given]), None)
    mirror = producers.get(batch.input[1]) if batch is not None and len(batch.input) == 2 else None
    mean = producers.get(answer)
    reshape = producers.get(mean.input[0]) if mean is not None and mean.op_type == "ReduceMean" else None
    softmax = producers.get(reshape.input[0]) if reshape is not None and reshape.op_type == "Reshape" else None
    if mirror is None or mirror.op_type != "Slice" or softmax is None or softmax.op_type != "Softmax":
        raise ModelError(f"{source}: no mirror pass of maeum's form found in its graph; export it from its best.pt")
    cut = onnx.ModelProto()
    cut.CopyFrom(proto)
    nodes = [n for n in cut.graph.node if n.output[0] not in (answer, reshape.output[0])]
    for node in nodes:
        node.input[:] = [given if name == batch.output[0] else name for name in node.input]
        if node.output[0] == softmax.output[0]:
            node.output[0] = answer
    needed, kept = {answer}, []
    for node in reversed(nodes):  # the nodes the answer depends on, in their order
        if any(out in needed for out in node.output):
            kept.append(node)
            needed.update(node.input)
    del cut.graph.node[:]
    cut.graph.node.extend(reversed(kept))
    for field in (cut.graph.initializer, cut.graph.value_info):
        kept_entries = [t for t in field if t.name in needed]
        del field[:]
        field.extend(kept_entries)
    onnx.checker.check_model(cut)
    return cut
