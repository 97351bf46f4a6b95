"""How faithfully `maeum train --init MODEL` reads an ONNX model back into torch, on FER+ Valid.

    python benchmarks/init_from_onnx.py [--model ferplus-resnet-s] [--shared ../shared]
                                        [--checkpoint runs/ferplus-resnet-s/best.pt]

Reads the model back as ``--init`` does (batch norms unfolded on 1,024 FER+ training crops),
then scores on FER+ Valid (majority vote): the file itself through onnxruntime; the network
read back in eval mode, with the file's mirror pass and without it; and the network with
its batch norms in training mode (batches of 512, as the first steps of a fine-tune see
them). The closer the last rows are to the first, the less a fine-tune loses at its start.

With ``--checkpoint`` (the ``best.pt`` the file was exported from), it also prints, per
convolution, the norm of the weights read back over the checkpoint's: the same function, but
a batch-normed convolution's gradient step shrinks with the square of its norm.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from _common import SHARED, ferplus_root, out, positive, run, table
from maeum.classify import EmotionClassifier
from maeum.preprocess import to_model_input
from maeum.training import ferplus
from maeum.training.export import Served
from maeum.training.nets import create_model
from maeum.training.onnx_weights import read_onnx_weights


@torch.no_grad()
def accuracy(net: torch.nn.Module, x: torch.Tensor, labels: np.ndarray) -> float:
    probs = torch.cat([net(x[i : i + 512]) for i in range(0, len(x), 512)]).numpy()
    return float((probs.argmax(1) == labels).mean())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="ferplus-resnet-s", help="bundled model name or .onnx file")
    p.add_argument("--shared", type=Path, default=SHARED)
    p.add_argument("--threads", type=positive(int), default=2)
    p.add_argument("--checkpoint", type=Path, help="the best.pt the file was exported from: compare weight norms")
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(args.threads)
    root = ferplus_root(p, args.shared)
    train, valid = ferplus.load_split(root, "train"), ferplus.load_split(root, "valid")
    keep = valid.majority() >= 0
    faces, labels = valid.images[keep], valid.majority()[keep]

    weights, info, arch = read_onnx_weights(args.model, train.images)
    net = create_model(arch, num_classes=len(info.labels), in_chans=info.input.channels, img_size=info.input.size)
    net.load_state_dict(weights)
    x = torch.from_numpy(to_model_input(faces, info.input))
    file_acc = float((EmotionClassifier(args.model).predict(faces).argmax(1) == labels).mean())
    rows = [[f"the file ({'mirror pass in the graph' if info.mirrored else 'as exported'})", f"{file_acc:.4f}"]]
    rows.append(["read back, eval mode, mirror pass", f"{accuracy(Served(net, flip=True).eval(), x, labels):.4f}"])
    rows.append(["read back, eval mode, no mirror pass", f"{accuracy(Served(net).eval(), x, labels):.4f}"])
    for m in net.modules():  # training-mode batch norms only: dropout stays off, as in the other rows
        if isinstance(m, torch.nn.BatchNorm2d):
            m.train()
    rows.append(["read back, batch norms in training mode", f"{accuracy(net, x, labels):.4f}"])
    out(f"{args.model} ({arch}) on FER+ Valid, {len(labels):,} faces (majority vote)")
    out(table(rows, ["network", "FER+ Valid"]))
    if args.checkpoint:
        original = torch.load(args.checkpoint, map_location="cpu", weights_only=False)["model"]
        ratios = [
            [key, f"{original[key].norm():.2f}", f"{w.norm():.2f}", f"{w.norm() / original[key].norm():.2f}"]
            for key, w in weights.items()
            if w.ndim == 4
        ]
        out()
        out(table(ratios, ["convolution", f"norm in {args.checkpoint}", "norm read back", "ratio"]))


if __name__ == "__main__":
    run(main)
