"""Creating ONNX Runtime sessions with maeum's defaults (CPU, bounded threads)."""

from __future__ import annotations

import os
from pathlib import Path

import onnxruntime as ort

from maeum.errors import ModelError


def create_session(path: str | Path, threads: int | None = None) -> ort.InferenceSession:
    """An onnxruntime CPU session for ``path``; ``threads`` defaults to the number of cores (max 4)."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or min(4, os.cpu_count() or 1)
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Two sessions (detector, classifier) run one after the other: idle threads spin-waiting
    # for work would steal the cores the other session needs.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own untyped errors for unreadable files
        raise ModelError(f"cannot load ONNX model {path}: {e}") from None
