"""A minimal, reproducible trainer for emotion classifiers (the recipe behind maeum's default model).

Data is a FER+ folder or a manifest from ``maeum data prepare``. Images stay in memory as
uint8 (FER+ is 80 MB); batches go through the same
``maeum.preprocess.to_model_input`` used at serving time, then are augmented on the fly.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from maeum.preprocess import InputSpec, to_model_input
from maeum.training.datasets import load_training_data
from maeum.training.nets import create_model

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    data: str  # FER+ folder (with fer2013new.csv), or a manifest from `maeum data prepare` (file or folder)
    out: str  # run folder: config.json, metrics.csv, best.pt, last.pt
    model: str = "resnet_s"
    labels: str = "soft"  # "soft": annotator vote distribution; "majority": one-hot majority
    epochs: int = 40
    batch_size: int = 128
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    warmup_epochs: float = 1.0
    seed: int = 0
    threads: int = 2
    bf16: bool = True  # bfloat16 autocast on CPU (about 2x faster on AVX-512 BF16 machines)
    input: dict[str, object] = field(default_factory=lambda: {"size": 48, "color": "gray", "mean": [0.5], "std": [0.5]})
    init: str = ""  # fine-tune: start from this checkpoint's weights (same architecture, labels and input)

    def __post_init__(self) -> None:
        if self.labels not in ("soft", "majority"):
            raise ValueError(f"labels must be 'soft' or 'majority', got {self.labels!r}")
        if not Path(self.data).exists():
            raise FileNotFoundError(f"data {self.data} not found: pass a FER+ folder or a prepared manifest")
        InputSpec.from_dict(self.input)
        if self.init and not Path(self.init).is_file():
            raise FileNotFoundError(f"--init {self.init}: no such checkpoint; pass a best.pt from `maeum train`")


def augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Random flip, rotation (±15°), scale (±15 %), shift (±10 %), contrast/brightness, cutout."""
    b = x.shape[0]

    def u(*shape: int) -> torch.Tensor:  # uniform in [-1, 1)
        return torch.rand(*shape, generator=gen) * 2 - 1

    angle = u(b) * math.radians(15)
    scale = 1 + u(b) * 0.15
    flip = torch.where(torch.rand(b, generator=gen) < 0.5, -1.0, 1.0)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack(
        [torch.stack([cos * flip, -sin, u(b) * 0.2], 1), torch.stack([sin * flip, cos, u(b) * 0.2], 1)], 1
    )  # (B, 2, 3) maps output to input coordinates in [-1, 1]
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    x = x * (1 + u(b, 1, 1, 1) * 0.3) + u(b, 1, 1, 1) * 0.2
    # Cutout: one square of up to a third of the side, on half of the batch.
    h, w = x.shape[2:]
    side = (torch.rand(b, generator=gen) * h / 3).long()
    cy = (torch.rand(b, generator=gen) * h).long()
    cx = (torch.rand(b, generator=gen) * w).long()
    ys, xs = torch.arange(h)[None, :, None], torch.arange(w)[None, None, :]
    hole = ((ys - cy[:, None, None]).abs() <= side[:, None, None] // 2) & (
        (xs - cx[:, None, None]).abs() <= side[:, None, None] // 2
    )
    hole &= (torch.rand(b, generator=gen) < 0.5)[:, None, None]
    return x.masked_fill(hole[:, None], 0.0)


def _to_batch(images: np.ndarray, spec: InputSpec) -> torch.Tensor:
    return torch.from_numpy(to_model_input(images, spec)).contiguous(memory_format=torch.channels_last)


@torch.no_grad()
def predict(model: torch.nn.Module, images: np.ndarray, spec: InputSpec, batch: int = 512) -> np.ndarray:
    """Class probabilities (N, K) for uint8 face crops."""
    model.eval()
    out = [F.softmax(model(_to_batch(images[i : i + batch], spec)).float(), 1) for i in range(0, len(images), batch)]
    return torch.cat(out).numpy()


def _majority_accuracy(probs: np.ndarray, labels: np.ndarray) -> float:
    keep = labels >= 0
    return float((probs[keep].argmax(1) == labels[keep]).mean())


def _initial_weights(path: Path, cfg: TrainConfig, labels: tuple[str, ...]) -> dict[str, torch.Tensor]:
    state = torch.load(path, map_location="cpu")
    if state.get("model_name") != cfg.model:
        raise ValueError(f"--init {path} holds a {state.get('model_name')} model, not {cfg.model}; pass --model")
    if tuple(state.get("labels", ())) != labels:
        raise ValueError(f"--init {path} was trained on labels {state.get('labels')}, the data has {list(labels)}")
    theirs = state.get("config", {}).get("input", {})
    if (theirs.get("size"), theirs.get("color")) != (cfg.input["size"], cfg.input["color"]):
        raise ValueError(
            f"--init {path} takes {theirs.get('size')}px {theirs.get('color')} input; pass the same --size and --color"
        )
    return state["model"]


def train(cfg: TrainConfig) -> Path:
    """Train, keeping the checkpoint that is best on Valid; resumes from ``out/last.pt``."""
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(asdict(cfg), indent=2))
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    spec = InputSpec.from_dict(cfg.input)
    data = load_training_data(Path(cfg.data), spec, out / "cache")
    tr, va = data.splits["train"], data.splits["val"]
    num_classes = len(data.labels)

    keep = tr.labels >= 0
    images = tr.images[keep]
    targets = (
        tr.soft_targets()[keep] if cfg.labels == "soft" else np.eye(num_classes, dtype=np.float32)[tr.labels[keep]]
    )
    targets_t = torch.from_numpy(targets)
    va_labels = va.labels
    log.info(
        "training on %d %s images (%s labels), validating on %d",
        len(images),
        data.name,
        cfg.labels,
        int((va_labels >= 0).sum()),
    )

    # channels_last is what makes bfloat16 fast on CPU; in float32 it gains little, and the
    # depthwise-convolution backward of some torch CPU builds crashes on it (mini_xception, RGB).
    memory_format = torch.channels_last if cfg.bf16 else torch.contiguous_format
    model = create_model(cfg.model, num_classes=num_classes, in_chans=spec.channels).to(memory_format=memory_format)
    decay = [p for p in model.parameters() if p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.ndim <= 1]
    opt = torch.optim.SGD(
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=cfg.lr,
        momentum=cfg.momentum,
        nesterov=True,
    )
    if len(images) == 0:
        raise ValueError(f"{cfg.data}: the train split holds no labelled images")
    batch_size = min(cfg.batch_size, len(images))  # a small fine-tuning set still makes one step an epoch
    steps_per_epoch = len(images) // batch_size
    total = steps_per_epoch * cfg.epochs
    warmup = int(steps_per_epoch * cfg.warmup_epochs)

    def lr_at(step: int) -> float:
        if step < warmup:
            return cfg.lr * (step + 1) / warmup
        return cfg.lr * 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))

    start_epoch, best = 0, -1.0
    if (out / "last.pt").exists():
        state = torch.load(out / "last.pt", map_location="cpu")
        if state["model_name"] != cfg.model:
            raise ValueError(f"{out / 'last.pt'} holds a {state['model_name']} model, not {cfg.model}")
        if tuple(state.get("labels", data.labels)) != data.labels:
            raise ValueError(f"{out / 'last.pt'} was trained on labels {state['labels']}, not {list(data.labels)}")
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        start_epoch, best = state["epoch"] + 1, state["best"]
        log.info("resuming after epoch %d (best valid %.4f)", start_epoch, best)
    elif cfg.init:
        model.load_state_dict(_initial_weights(Path(cfg.init), cfg, data.labels))
        log.info("fine-tuning from %s", cfg.init)

    gen = torch.Generator().manual_seed(cfg.seed)
    metrics = out / "metrics.csv"
    if start_epoch == 0:
        metrics.write_text("epoch,lr,train_loss,valid_acc,seconds\n")
    for epoch in range(start_epoch, cfg.epochs):
        gen.manual_seed(cfg.seed * 1000 + epoch)  # each epoch reproducible, also after a resume
        order = torch.randperm(len(images), generator=gen).numpy()
        model.train()
        t0, loss_sum = time.perf_counter(), 0.0
        for i in range(steps_per_epoch):
            step = epoch * steps_per_epoch + i
            for g in opt.param_groups:
                g["lr"] = lr_at(step)
            idx = order[i * batch_size : (i + 1) * batch_size]
            x = augment(_to_batch(images[idx], spec), gen).contiguous(memory_format=memory_format)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.bf16):
                logits = model(x)
            loss = -(targets_t[idx] * F.log_softmax(logits.float(), 1)).sum(1).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss_sum += loss.item()
            if i % 50 == 0:
                log.info("epoch %d step %d/%d loss %.4f", epoch, i, steps_per_epoch, loss.item())
        acc = _majority_accuracy(predict(model, va.images, spec), va_labels)
        seconds = time.perf_counter() - t0
        with metrics.open("a", newline="") as f:
            csv.writer(f).writerow(
                [epoch, f"{lr_at(step):.5f}", f"{loss_sum / steps_per_epoch:.4f}", f"{acc:.4f}", f"{seconds:.1f}"]
            )
        state = {
            "model_name": cfg.model,
            "labels": list(data.labels),
            "dataset": data.name,
            "model": model.state_dict(),
            "optimizer": opt.state_dict(),
            "epoch": epoch,
            "best": max(best, acc),
            "config": asdict(cfg),
        }
        if acc > best:
            best = acc
            torch.save({k: v for k, v in state.items() if k != "optimizer"}, out / "best.pt")
        torch.save(state, out / "last.tmp")
        (out / "last.tmp").replace(out / "last.pt")  # atomic: a kill never leaves a broken checkpoint
        log.info("epoch %d: valid majority accuracy %.4f (best %.4f), %.0f s", epoch, acc, best, seconds)
    return out / "best.pt"
