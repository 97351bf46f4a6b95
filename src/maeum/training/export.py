"""Export a trained classifier to ONNX with maeum's metadata, checked against torch."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import onnx
import torch

from maeum.classify import METADATA_KEY, EmotionClassifier, ModelInfo

log = logging.getLogger(__name__)


class _WithSoftmax(torch.nn.Module):
    def __init__(self, net: torch.nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.net(x), dim=1)


def export_onnx(model: torch.nn.Module, info: ModelInfo, out: Path, check_faces: np.ndarray) -> dict[str, float]:
    """Write ``model`` (logits) as an ONNX file returning probabilities, with ``info`` in its metadata.

    ``check_faces`` (N, S, S) uint8 crops are run through torch and through maeum's own
    ``EmotionClassifier`` on the written file; returns max |difference| and top-1 agreement.
    """
    if info.output != "probabilities":
        raise ValueError("export_onnx writes a softmax output; set info.output='probabilities'")
    model = _WithSoftmax(model).eval()
    spec = info.input
    dummy = torch.zeros(2, spec.channels, spec.size, spec.size)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(
        model,
        (dummy,),
        str(out),
        input_names=["input"],
        output_names=["probabilities"],
        dynamic_axes={"input": {0: "batch"}, "probabilities": {0: "batch"}},
        opset_version=17,
        dynamo=False,
    )
    proto = onnx.load(str(out))
    entry = proto.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, info.to_metadata()
    proto.producer_name = "maeum"
    onnx.checker.check_model(proto)
    onnx.save(proto, str(out))

    from maeum.preprocess import to_model_input

    with torch.no_grad():
        ref = model(torch.from_numpy(to_model_input(check_faces, spec))).numpy()
    got = EmotionClassifier(out).predict(check_faces)
    report = {
        "max_abs_diff": float(np.abs(ref - got).max()),
        "top1_agreement": float((ref.argmax(1) == got.argmax(1)).mean()),
    }
    log.info(
        "exported %s: max |onnx - torch| %.2e, top-1 agreement %.4f",
        out,
        report["max_abs_diff"],
        report["top1_agreement"],
    )
    if report["max_abs_diff"] > 1e-3:
        raise RuntimeError(f"ONNX export of {info.name} disagrees with torch: {report}")
    return report
