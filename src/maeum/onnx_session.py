"""Creating ONNX Runtime sessions with maeum's defaults (CPU, bounded threads)."""

from __future__ import annotations

import numbers
import os
from pathlib import Path

import onnxruntime as ort

from maeum.errors import ConfigError, ModelError


def create_session(path: str | Path, threads: int | None = None) -> ort.InferenceSession:
    """An onnxruntime CPU session for ``path``; ``threads`` defaults to the number of cores (max 4)."""
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, numbers.Integral) or threads < 1):
        raise ConfigError(f"threads must be a whole number of 1 or more, got {threads!r}")
    options = ort.SessionOptions()
    options.intra_op_num_threads = int(threads) if threads else min(4, os.cpu_count() or 1)
    options.inter_op_num_threads = 1
    # No arena: with inputs of varying size it keeps growing (peak RSS after 12 group photos and
    # two 256-face batches: 315 MB with it, 254 MB without, at the same speed).
    options.enable_cpu_mem_arena = False
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Workers spin-wait between operators during a run (fast), but stop when it ends: the
    # detector and classifier sessions run one after the other, and threads still spinning
    # from one steal the cores the other needs (640x480 photo: 42 ms with spinning left on,
    # about 14.8 ms with no spinning, about 13.7 ms like this).
    options.add_session_config_entry("session.intra_op.allow_spinning", "1")
    options.add_session_config_entry("session.force_spinning_stop", "1")
    # int8 on x86 CPUs without VNNI (AVX2 only, such as AMD EPYC Milan): onnxruntime's fast u8s8
    # kernel adds pairs of products in saturating 16 bits, and the bundled model's first export,
    # with 8-bit weights, scored 0.8397 on FER+ Test there instead of 0.8579. This makes it widen
    # 8-bit weights to u8 first (exact, slower there). `maeum export --int8` keeps weights within
    # 7 bits, exact and fast without it; the setting keeps files from earlier exports and other
    # tools exact. On CPUs with VNNI it changes nothing.
    options.add_session_config_entry("session.x64quantprecision", "1")
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own untyped errors for unreadable files
        raise ModelError(
            f"cannot load ONNX model {path}: {e}; the file is damaged or not an ONNX model: "
            "export or copy it again, or pass another"
        ) from None
