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
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from maeum.errors import UnknownNameError
from maeum.preprocess import InputSpec, to_model_input
from maeum.training.config import TrainConfig
from maeum.training.datasets import load_training_data
from maeum.training.nets import create_model, list_models

__all__ = ["TrainConfig", "augment", "predict", "train"]

log = logging.getLogger(__name__)


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


# Optimizers: weight decay on the `decay` group only (not on biases and norm weights).
def _sgd(groups: list[dict], cfg: TrainConfig) -> torch.optim.Optimizer:
    return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.momentum > 0)


def _adamw(groups: list[dict], cfg: TrainConfig) -> torch.optim.Optimizer:
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.momentum, 0.999))


_OPTIMIZERS: dict[str, Callable[[list[dict], TrainConfig], torch.optim.Optimizer]] = {"sgd": _sgd, "adamw": _adamw}


# Learning-rate schedules: (peak lr, step, total steps, warm-up steps) -> lr at that step.
def _cosine(lr: float, step: int, total: int, warmup: int) -> float:
    if step < warmup:
        return lr * (step + 1) / warmup
    return lr * 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))


def _step(lr: float, step: int, total: int, warmup: int) -> float:
    """Warm-up, then lr, lr/10 from half-way and lr/100 from three quarters of the way."""
    if step < warmup:
        return lr * (step + 1) / warmup
    done = (step - warmup) / max(1, total - warmup)
    return lr * 0.1 ** ((done >= 0.5) + (done >= 0.75))


def _constant(lr: float, step: int, total: int, warmup: int) -> float:
    return lr * (step + 1) / warmup if step < warmup else lr


def _onecycle(lr: float, step: int, total: int, warmup: int) -> float:
    """torch's OneCycleLR with its defaults: cosine from lr/25 up to lr over 30 % of the steps, then down to lr/25e4.

    It has its own warm-up, so ``warmup_epochs`` is not used.
    """
    low, end = lr / 25, lr / 25e4
    peak = 0.3 * total - 1  # the step at the top, as torch counts it (fractional for short runs)
    if peak > 0 and step <= peak:
        return low + (lr - low) * (1 - math.cos(math.pi * step / peak)) / 2
    done = min(1.0, (step - peak) / (total - 1 - peak))
    return end + (lr - end) * (1 + math.cos(math.pi * done)) / 2


_SCHEDULES: dict[str, Callable[[float, int, int, int], float]] = {
    "cosine": _cosine,
    "step": _step,
    "onecycle": _onecycle,
    "constant": _constant,
}


def _class_weights(targets: np.ndarray) -> np.ndarray:
    """Inverse-frequency loss weights (K,) from the targets (N, K); the average image keeps weight 1."""
    mass = targets.sum(0)  # (K,) how much of the training targets each class holds
    present = mass > 0
    weights = np.zeros_like(mass)
    weights[present] = mass.sum() / (present.sum() * mass[present])
    return weights


def _random_order(labels: np.ndarray, gen: torch.Generator) -> np.ndarray:
    return torch.randperm(len(labels), generator=gen).numpy()


def _balanced_order(labels: np.ndarray, gen: torch.Generator) -> np.ndarray:
    """An epoch's worth of indices drawn with replacement, every class equally likely."""
    p = torch.from_numpy(1.0 / np.bincount(labels)[labels])
    return torch.multinomial(p, len(labels), replacement=True, generator=gen).numpy()


_SAMPLERS: dict[str, Callable[[np.ndarray, torch.Generator], np.ndarray]] = {
    "random": _random_order,
    "balanced": _balanced_order,
}


def train(cfg: TrainConfig) -> Path:
    """Train, keeping the checkpoint that is best on Valid; resumes from ``out/last.pt``.

    Writes ``config.json`` (the settings; ``maeum train --config`` repeats the run from it),
    ``metrics.csv`` (one row per epoch), ``best.pt``, ``last.pt`` and ``summary.json`` (best
    epoch, epochs run, and whether early stopping ended the run).
    """
    if cfg.model not in list_models():
        raise UnknownNameError("model", cfg.model, list_models())
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
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
    class_weights = None
    if cfg.class_weights == "balanced":
        class_weights = torch.from_numpy(_class_weights(targets))
        named = zip(data.labels, class_weights.tolist(), strict=True)
        log.info("class weights: %s", ", ".join(f"{name} {w:.2f}" for name, w in named))
    if cfg.class_weights == "balanced" and cfg.sampler == "balanced":
        log.warning("class_weights and sampler are both 'balanced': rare classes are favoured twice")
    sample = _SAMPLERS[cfg.sampler]
    lr_schedule = _SCHEDULES[cfg.schedule]

    # channels_last is what makes bfloat16 fast on CPU; in float32 it gains little, and the
    # depthwise-convolution backward of some torch CPU builds crashes on it (mini_xception, RGB).
    memory_format = torch.channels_last if cfg.bf16 else torch.contiguous_format
    model = create_model(cfg.model, num_classes=num_classes, in_chans=spec.channels).to(memory_format=memory_format)
    decay = [p for p in model.parameters() if p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.ndim <= 1]
    opt = _OPTIMIZERS[cfg.optimizer](
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}], cfg
    )
    if len(images) == 0:
        raise ValueError(f"{cfg.data}: the train split holds no labelled images")
    batch_size = min(cfg.batch_size, len(images))  # a small fine-tuning set still makes one step an epoch
    steps_per_epoch = len(images) // batch_size
    total = steps_per_epoch * cfg.epochs
    warmup = int(steps_per_epoch * cfg.warmup_epochs)

    def lr_at(step: int) -> float:
        return lr_schedule(cfg.lr, step, total, warmup)

    start_epoch, best, best_epoch = 0, -1.0, -1
    if (out / "last.pt").exists():
        state = torch.load(out / "last.pt", map_location="cpu")
        if state["model_name"] != cfg.model:
            raise ValueError(f"{out / 'last.pt'} holds a {state['model_name']} model, not {cfg.model}")
        if tuple(state.get("labels", data.labels)) != data.labels:
            raise ValueError(f"{out / 'last.pt'} was trained on labels {state['labels']}, not {list(data.labels)}")
        theirs = state.get("config", {}).get("optimizer", "sgd")
        if theirs != cfg.optimizer:
            raise ValueError(f"{out / 'last.pt'} was trained with {theirs}, not {cfg.optimizer}; use another --out")
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        start_epoch, best = state["epoch"] + 1, state["best"]
        best_epoch = state.get("best_epoch", state["epoch"])  # runs before early stopping: assume the latest
        log.info("resuming after epoch %d (best valid %.4f)", start_epoch, best)
    elif cfg.init:
        model.load_state_dict(_initial_weights(Path(cfg.init), cfg, data.labels))
        log.info("fine-tuning from %s", cfg.init)
    (out / "config.json").write_text(json.dumps(asdict(cfg), indent=2))  # once a resume is known to fit

    gen = torch.Generator().manual_seed(cfg.seed)
    metrics = out / "metrics.csv"
    if start_epoch == 0:
        metrics.write_text("epoch,lr,train_loss,valid_acc,seconds\n")
    stopped_early = False
    last_epoch = start_epoch - 1  # the last epoch trained, in this call or before a resume
    for epoch in range(start_epoch, cfg.epochs):
        if cfg.early_stopping and epoch - 1 - best_epoch >= cfg.early_stopping:
            # Checked before the epoch rather than after it, so a resumed run that had stopped stays stopped.
            stopped_early = True
            log.info(
                "early stopping after epoch %d: no better valid accuracy for %d epochs (best %.4f at epoch %d)",
                epoch - 1,
                epoch - 1 - best_epoch,
                best,
                best_epoch,
            )
            break
        gen.manual_seed(cfg.seed * 1000 + epoch)  # each epoch reproducible, also after a resume
        order = sample(tr.labels[keep], gen)
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
            weighted = targets_t[idx] if class_weights is None else targets_t[idx] * class_weights  # (B, K)
            loss = -(weighted * F.log_softmax(logits.float(), 1)).sum(1).mean()
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
        improved = acc > best
        if improved:
            best, best_epoch = acc, epoch
        state = {
            "model_name": cfg.model,
            "labels": list(data.labels),
            "dataset": data.name,
            "model": model.state_dict(),
            "optimizer": opt.state_dict(),
            "epoch": epoch,
            "best": best,
            "best_epoch": best_epoch,
            "config": asdict(cfg),
        }
        if improved:
            torch.save({k: v for k, v in state.items() if k != "optimizer"}, out / "best.pt")
        torch.save(state, out / "last.tmp")
        (out / "last.tmp").replace(out / "last.pt")  # atomic: a kill never leaves a broken checkpoint
        last_epoch = epoch
        log.info("epoch %d: valid majority accuracy %.4f (best %.4f), %.0f s", epoch, acc, best, seconds)
    summary = {
        "best_epoch": best_epoch,
        "best_valid_acc": round(best, 4),
        "last_epoch": last_epoch,
        "epochs": cfg.epochs,
        "stopped_early": stopped_early,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return out / "best.pt"
