"""A reproducible trainer for emotion classifiers (the recipe behind maeum's default model).

Data is a FER+ folder or a manifest from ``maeum data prepare``. Images stay in memory as
uint8 (FER+ is 80 MB); batches go through the same ``maeum.preprocess.to_model_input`` used
at serving time, then are augmented on the fly (``maeum.training.loader``). The run folder
holds ``config.json``, ``metrics.csv``, TensorBoard events, ``best.pt``, ``last.pt`` and
``summary.json``; a run started again with the same folder resumes after its last epoch.
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
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.optim.swa_utils import AveragedModel

from maeum.errors import ConfigError
from maeum.labels import FERPLUS7
from maeum.preprocess import InputSpec
from maeum.progress import Progress
from maeum.training.checkpoint import read_checkpoint
from maeum.training.config import TrainConfig, describe_changes
from maeum.training.datasets import TrainingData, load_training_data
from maeum.training.distill import BatchTeacher, check_teachers, mix_targets, teacher_probabilities
from maeum.training.loader import EpochBatches, batch_loader, to_batch
from maeum.training.nets import check_model_name, create_model
from maeum.training.runtime import Runtime, start_runtime
from maeum.training.warm_start import check_init, initial_weights

__all__ = ["TrainConfig", "build_model", "load_checkpoint", "predict", "train"]

log = logging.getLogger(__name__)

_DEFAULTS = TrainConfig.__dataclass_fields__  # what a checkpoint from before a setting existed was trained with
# valid_acc: of the weights that go into best.pt (the average with --ema); raw_valid_acc: of the weights trained.
METRICS_FORMAT = {
    "epoch": "{}",
    "lr": "{:.4g}",  # 4 significant digits: a fine-tuning rate of 2e-6 is not 0.00000
    "train_loss": "{:.4f}",
    "valid_acc": "{:.4f}",
    "seconds": "{:.1f}",
    "images_per_s": "{:.1f}",
    "raw_valid_acc": "{:.4f}",
}
METRICS_HEADER = tuple(METRICS_FORMAT)
# Where and how a run computes, not what it learns: a resume may change these without note.
_RESUME_WHERE = ("data", "out", "threads", "workers", "device", "gpu", "tensorboard")
# Settings that shape the targets or the weights kept: a resume must be given the same ones.
_RESUME_KEEPS = ("labels", "class_weights", "sampler", "teacher", "teacher_weight", "teacher_temperature",
                 "teacher_mode", "ema", "label_smoothing", "mixup", "cutmix", "sam")  # fmt: skip


def build_model(name: str, labels: tuple[str, ...], spec: InputSpec) -> torch.nn.Module:
    """The registered architecture ``name`` for these labels and this input.

    One blank face of that size is passed through it, so an input the network cannot take (too
    small for its poolings, say) is refused here, before the first step.
    """
    model = create_model(name, num_classes=len(labels), in_chans=spec.channels, img_size=spec.size)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(1, spec.channels, spec.size, spec.size))
    except RuntimeError as e:
        reason = str(e).strip().splitlines()[0]
        raise ConfigError(f"{name} cannot take {spec.size} px faces ({reason}); choose a larger input size") from None
    finally:
        model.train(was_training)
    return model


@torch.no_grad()
def predict(model: torch.nn.Module, images: np.ndarray, spec: InputSpec, batch: int = 512) -> np.ndarray:
    """Class probabilities (N, K) for uint8 face crops."""
    model.eval()
    device = next(model.parameters()).device
    out = [
        F.softmax(model(to_batch(images[i : i + batch], spec).to(device)).float(), 1).cpu()
        for i in range(0, len(images), batch)
    ]
    return torch.cat(out).numpy()


def _ema_update(decay: float) -> Callable[[list[torch.Tensor], list[torch.Tensor], torch.Tensor], None]:
    """The averaging step of ``--ema``, with the decay warmed up: ``min(decay, (1 + n) / (10 + n))`` after n steps.

    Without the warm-up, the random initial weights keep a large share of the average for
    thousands of steps (0.999 ** 1000 = 37 %), and such a mix of far-apart weights classifies nothing.
    """

    @torch.no_grad()
    def update(averaged: list[torch.Tensor], current: list[torch.Tensor], steps: torch.Tensor) -> None:
        if not torch.is_floating_point(averaged[0]):  # counters such as batch norm's num_batches_tracked
            torch._foreach_copy_(averaged, current)
            return
        n = float(steps)
        torch._foreach_lerp_(averaged, current, 1.0 - min(decay, (1.0 + n) / (10.0 + n)))

    return update


def _majority_accuracy(probs: np.ndarray, labels: np.ndarray) -> float:
    keep = labels >= 0
    return float((probs[keep].argmax(1) == labels[keep]).mean())


# Optimizers: weight decay on the `decay` group only (not on biases and norm weights).
def _sgd(groups: list[dict], cfg: TrainConfig) -> torch.optim.Optimizer:
    return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.momentum > 0)


def _adamw(groups: list[dict], cfg: TrainConfig) -> torch.optim.Optimizer:
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.momentum, 0.999))


def _adam(groups: list[dict], cfg: TrainConfig) -> torch.optim.Optimizer:
    return torch.optim.Adam(groups, lr=cfg.lr, betas=(cfg.momentum, 0.999))


def _adadelta(groups: list[dict], cfg: TrainConfig) -> torch.optim.Optimizer:
    return torch.optim.Adadelta(groups, lr=cfg.lr, rho=cfg.momentum)


_OPTIMIZERS: dict[str, Callable[[list[dict], TrainConfig], torch.optim.Optimizer]] = {
    "sgd": _sgd,
    "adamw": _adamw,
    "adam": _adam,
    "adadelta": _adadelta,
}


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


def train(cfg: TrainConfig, runtime: Runtime | None = None) -> Path:
    """Train, keeping the checkpoint that is best on the val split; resumes from ``out/last.pt``.

    Writes ``config.json`` (the settings; ``maeum train --config`` repeats the run from it),
    ``metrics.csv`` (one row per epoch, also as TensorBoard events in ``tensorboard/``),
    ``best.pt``, ``last.pt`` and ``summary.json`` (best epoch, epochs run, whether early
    stopping ended the run). Everything that can be checked is checked before the first epoch.
    ``runtime`` overrides where and in which precision it computes (by default: the config's
    ``device``, ``gpu`` and ``bf16``, and torchrun's processes).
    """
    check_model_name(cfg.model)
    cfg.check_files()
    rt = runtime or start_runtime(cfg.device, cfg.gpu, cfg.bf16)
    completed = False
    try:
        best = _train(cfg, rt)
        completed = True
        return best
    finally:
        if runtime is None:  # a runtime passed in stays its caller's to close
            rt.close(completed)


def _train(cfg: TrainConfig, rt: Runtime) -> Path:
    if cfg.sam and rt.amp_dtype == torch.float16:  # known before the data is read: refuse at once
        raise ConfigError("sam needs float32 or bfloat16 steps; this device trains in float16 (pass --device cpu)")
    if cfg.model == "hog_svm" and rt.distributed:
        raise ConfigError("hog_svm is fitted in one process by scikit-learn; start it without torchrun")
    out = Path(cfg.out)
    # A run to resume and the weights of --init are checked against the settings before the data is read
    # (minutes for a large set): another architecture, input or targets is refused at once.
    resumed = _load_last(out, cfg) if (out / "last.pt").exists() else None
    if resumed and cfg.model != "hog_svm" and resumed["epoch"] + 1 >= cfg.epochs:
        done = resumed["epoch"] + 1  # a finished run again, or fewer epochs: nothing to train, nothing rewritten
        (log.info if done == cfg.epochs else log.warning)(
            "%s already holds %d epoch%s (best valid %.4f)%s: nothing to train; pass a larger --epochs to train "
            "on, or another --out to start over",
            out,
            done,
            "" if done == 1 else "s",
            resumed["best"],
            "" if done == cfg.epochs else f", more than --epochs {cfg.epochs}",
        )
        return out / "best.pt"
    if cfg.init and not resumed:
        check_init(cfg.init, cfg)
    check_teachers(cfg.teacher)
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    spec = InputSpec.from_dict(cfg.input)
    # Process 0 reads the data first, writing the FER+ cache into the run folder; the others then read that
    # cache, so no process reads a cache file while another writes it.
    if not rt.is_main:
        rt.barrier()
    data = load_training_data(Path(cfg.data), spec, out / "cache", original_labels=cfg.labels == "fer2013")
    if rt.is_main:
        rt.barrier()
    if resumed:
        _check_labels(resumed, out, data.labels)
    tr, va = data.splits["train"], data.splits["val"]
    keep = tr.labels >= 0
    images = tr.images[keep]
    if len(images) == 0:
        raise ConfigError(f"{cfg.data}: the train split holds no labelled images")
    if int((va.labels >= 0).sum()) == 0:
        raise ConfigError(f"{cfg.data}: the val split holds no labelled images; the best epoch cannot be chosen")
    targets = (
        tr.soft_targets()[keep] if cfg.labels == "soft" else np.eye(len(data.labels), dtype=np.float32)[tr.labels[keep]]
    )
    batch_size = min(cfg.batch_size, len(images))  # a small fine-tuning set still makes one step an epoch
    if batch_size < rt.world:
        raise ConfigError(f"batch_size {batch_size} is smaller than the {rt.world} processes sharing each batch")
    log.info(
        "training %s on %d %s images (%s labels), validating on %d; %s%s, %s",
        cfg.model,
        len(images),
        data.name,
        "majority" if cfg.model == "hog_svm" else cfg.labels,  # an SVM fits one class per image
        int((va.labels >= 0).sum()),
        rt.device,
        f", {rt.world} processes" if rt.distributed else "",
        rt.precision,
    )

    if cfg.model == "hog_svm":
        if resumed:  # another architecture's run is refused (_load_last), never overwritten
            fitted = resumed
            svm_c = fitted["config"].get("svm_c", _DEFAULTS["svm_c"].default)
            if svm_c != cfg.svm_c:
                raise ConfigError(
                    f"{out / 'last.pt'} was fitted with svm_c {svm_c!r}, not {cfg.svm_c!r}; use another --out"
                )
            log.info(
                "hog_svm is already fitted in %s (valid %.4f); use another --out to fit again", out, fitted["best"]
            )
            return out / "best.pt"
        return _fit_svm(cfg, data, spec)

    model = build_model(cfg.model, data.labels, spec)
    decay = [p for p in model.parameters() if p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.ndim <= 1]
    opt = _OPTIMIZERS[cfg.optimizer](
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}], cfg
    )
    start_epoch, best, best_epoch = 0, -1.0, -1
    resumes: list[dict[str, Any]] = []  # each resume with other settings: after which epoch, and what changed
    if resumed:
        model.load_state_dict(resumed["model"])
        opt.load_state_dict(resumed["optimizer"])
        start_epoch, best = resumed["epoch"] + 1, resumed["best"]
        best_epoch = resumed.get("best_epoch", resumed["epoch"])  # runs before early stopping: assume the latest
        log.info("resuming after epoch %d (best valid %.4f)", start_epoch - 1, best)
        resumes = _note_resume(resumed, cfg, start_epoch - 1, out)
    elif cfg.init:
        model.load_state_dict(initial_weights(cfg.init, cfg, model, data.labels, images))
        log.info("fine-tuning from %s", cfg.init)
    # channels_last is what makes bfloat16 fast on CPU; in float32 it gains little, and the
    # depthwise-convolution backward of some torch CPU builds crashes on it (mini_xception, RGB).
    memory_format = torch.channels_last if rt.amp_dtype is not None else torch.contiguous_format
    model = model.to(rt.device, memory_format=memory_format)
    _move_optimizer_state(opt, rt.device)
    net = model
    if rt.distributed:
        net = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[rt.device] if rt.device.type == "cuda" else None
        )
    # float16 (GPUs without bfloat16) scales the loss so small gradients survive; the scale resumes too.
    scaler = torch.amp.GradScaler(rt.device.type, enabled=rt.amp_dtype == torch.float16)
    if resumed and scaler.is_enabled() and "scaler" in resumed:
        scaler.load_state_dict(resumed["scaler"])
    ema = None
    if cfg.ema:
        ema = AveragedModel(model, multi_avg_fn=_ema_update(cfg.ema), use_buffers=True).eval()
        if resumed:
            ema.load_state_dict(resumed["ema"])

    autocast = torch.autocast(rt.device.type, dtype=rt.amp_dtype or torch.float32, enabled=rt.amp_dtype is not None)

    batch_teacher = None
    if cfg.teacher and cfg.teacher_mode == "batch":  # every process asks its own copy on its own share
        batch_teacher = BatchTeacher(cfg.teacher, data.labels, spec, cfg.teacher_temperature, cfg.threads, rt.device)
    elif cfg.teacher:  # after the resume checks: this pass takes a minute on FER+
        # Process 0 asks the teacher and hands its answers to the other processes.
        soft = np.empty(targets.shape, np.float32)
        if rt.is_main:
            soft = teacher_probabilities(
                cfg.teacher, images, data.labels, cfg.teacher_temperature, cfg.threads, rt.device
            )
        soft = rt.broadcast_array(soft)
        agree = float((soft.argmax(1) == targets.argmax(1)).mean())
        log.info(
            "teacher agrees with %.1f %% of the training labels; its weight in the targets: %g",
            100 * agree,
            cfg.teacher_weight,
        )
        targets = mix_targets(targets, soft, cfg.teacher_weight)
    if cfg.label_smoothing:
        targets = mix_targets(targets, np.full_like(targets, 1 / targets.shape[1]), cfg.label_smoothing)

    class_weights = None
    if cfg.class_weights == "balanced":
        class_weights = torch.from_numpy(_class_weights(targets)).to(rt.device)
        named = zip(data.labels, class_weights.tolist(), strict=True)
        log.info("class weights: %s", ", ".join(f"{name} {w:.2f}" for name, w in named))
    if cfg.class_weights == "balanced" and cfg.sampler == "balanced":
        log.warning("class_weights and sampler are both 'balanced': rare classes are favoured twice")
    sample, lr_schedule = _SAMPLERS[cfg.sampler], _SCHEDULES[cfg.schedule]
    steps_per_epoch = len(images) // batch_size
    total = steps_per_epoch * cfg.epochs
    warmup = int(steps_per_epoch * cfg.warmup_epochs)

    def lr_at(step: int) -> float:
        return lr_schedule(cfg.lr, step, total, warmup)

    log_ = _RunLog(out, cfg, start_epoch) if rt.is_main else None
    targets_t = torch.from_numpy(targets)
    gen = torch.Generator()
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
        gen.manual_seed(cfg.seed * 1000 + epoch)  # each epoch's order reproducible, also after a resume
        # torch's own generator draws the dropout masks (and timm's drop paths): seeded per epoch and
        # process too, so a resumed run trains on exactly as an uninterrupted one would.
        torch.manual_seed(int(np.random.SeedSequence([cfg.seed, epoch, rt.rank]).generate_state(1)[0]))
        order = sample(tr.labels[keep], gen)
        batches = EpochBatches(
            images, targets_t, order, batch_size, spec, cfg.seed, epoch, rt.rank, rt.world, cfg.mixup, cfg.cutmix
        )
        net.train()
        progress = Progress(steps_per_epoch * batch_size, "img") if rt.is_main else None
        t0, loss_sum = time.perf_counter(), 0.0
        for i, (x, y) in enumerate(batch_loader(batches, cfg.workers)):
            step = epoch * steps_per_epoch + i
            for g in opt.param_groups:
                g["lr"] = lr_at(step)
            x = x.to(rt.device, non_blocking=True).contiguous(memory_format=memory_format)
            y = y.to(rt.device, non_blocking=True)
            if batch_teacher:
                with autocast:
                    y = _mix_taught(y, batch_teacher(x), cfg)
            weighted = y if class_weights is None else y * class_weights  # (B, K)

            def loss_of(x: torch.Tensor = x, weighted: torch.Tensor = weighted) -> torch.Tensor:
                with autocast:
                    logits = net(x)
                return -(weighted * F.log_softmax(logits.float(), 1)).sum(1).mean()

            opt.zero_grad(set_to_none=True)
            loss = loss_of()
            scaler.scale(loss).backward()
            if cfg.sam:
                _sharpness_aware_gradient(model, loss_of, cfg.sam)
            scaler.step(opt)
            scaler.update()
            if ema:
                ema.update_parameters(model)
            loss_sum += loss.item()
            if progress and progress.enabled:
                progress.update((i + 1) * batch_size, (i + 1) * batch_size)
            elif i % 50 == 0 and rt.is_main:
                log.info("epoch %d step %d/%d loss %.4f", epoch, i, steps_per_epoch, loss.item())
        if progress:
            progress.close()
        seconds = time.perf_counter() - t0
        train_loss = rt.mean(loss_sum / steps_per_epoch)  # of every process's share of the batches
        shipped = ema.module if ema else model  # what is validated and goes into best.pt
        acc = rt.broadcast(_majority_accuracy(predict(shipped, va.images, spec), va.labels) if rt.is_main else 0.0)
        raw_acc = acc  # without averaging, the shipped weights are the trained ones
        if ema and rt.is_main:
            raw_acc = _majority_accuracy(predict(model, va.images, spec), va.labels)  # process 0 alone logs it
        improved = acc > best
        if improved:
            best, best_epoch = acc, epoch
        last_epoch = epoch
        if log_:
            row = {
                "epoch": epoch,
                "lr": lr_at(step),
                "train_loss": train_loss,
                "valid_acc": acc,
                "seconds": seconds,
                "images_per_s": steps_per_epoch * batch_size / seconds,
                "raw_valid_acc": raw_acc,
            }
            state = _checkpoint(cfg, data, model, opt.state_dict(), epoch, best, best_epoch)
            state["resumes"] = resumes
            if scaler.is_enabled():
                state["scaler"] = scaler.state_dict()
            if ema:
                state["ema"] = ema.state_dict()
            log_.epoch(row, state, improved, shipped.state_dict())
            log.info(
                "epoch %d: valid accuracy %.4f (best %.4f), %.0f s, %.0f images/s",
                epoch,
                acc,
                best,
                seconds,
                row["images_per_s"],
            )
    if log_:
        log_.close(
            {
                "best_epoch": best_epoch,
                "best_valid_acc": round(best, 4),
                "last_epoch": last_epoch,
                "epochs": cfg.epochs,
                "stopped_early": stopped_early,
                "processes": rt.world,
                "device": str(rt.device),
                "resumes": resumes,
            }
        )
    return out / "best.pt"


def _note_resume(resumed: dict[str, Any], cfg: TrainConfig, after_epoch: int, out: Path) -> list[dict[str, Any]]:
    """The run's resumes with other settings, this one added if its settings differ from those of the
    epochs before (say a lower lr, or more epochs): config.json then holds the new settings, which alone
    no longer repeat the run, so the changes are kept in the checkpoints and summary.json (``maeum card``
    lists them) and said at the start."""
    resumes = list(resumed.get("resumes", []))
    theirs, ours = resumed.get("config", {}), asdict(cfg)
    kept = (*_RESUME_WHERE, "input")  # another input is refused (_load_last)
    before = {k: theirs.get(k, _DEFAULTS[k].default) for k in ours if k not in kept}
    changed = {k: [v, ours[k]] for k, v in before.items() if v != ours[k]}
    if changed:
        resumes.append({"after_epoch": after_epoch, "changed": changed})
        log.warning(
            "resuming %s with other settings than its first %d epochs: %s (config.json records the new ones)",
            out,
            after_epoch + 1,
            describe_changes(changed),
        )
    return resumes


def _sharpness_aware_gradient(model: torch.nn.Module, loss_of: Callable[[], torch.Tensor], rho: float) -> None:
    """Replace the gradients in ``model`` by those at the weights ``rho`` up the slope (SAM, Foret et al. 2021).

    The weights move by ``rho * g / |g|`` (``g``: the gradients already there, one norm over all of them), the
    loss is taken again there with the batch-norm statistics left as they are, and the weights move back.
    """
    params = [p for p in model.parameters() if p.grad is not None]
    with torch.no_grad():
        norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(p.grad) for p in params]))
        shifts = [p.grad * (rho / (norm + 1e-12)) for p in params]
        for p, shift in zip(params, shifts, strict=True):
            p.add_(shift)
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    kept = [(m.momentum, None if m.num_batches_tracked is None else m.num_batches_tracked.clone()) for m in norms]
    for m in norms:
        m.momentum = 0.0  # running statistics unchanged by the second pass
    try:
        model.zero_grad(set_to_none=True)
        loss_of().backward()
    finally:
        for m, (momentum, tracked) in zip(norms, kept, strict=True):
            m.momentum = momentum
            if tracked is not None:
                m.num_batches_tracked.copy_(tracked)
        with torch.no_grad():
            for p, shift in zip(params, shifts, strict=True):
                p.sub_(shift)


def _mix_taught(y: torch.Tensor, taught: torch.Tensor, cfg: TrainConfig) -> torch.Tensor:
    """A batch's targets with the teacher's answers on it mixed in, as ``once`` mixes them into all targets.

    ``y`` is already label-smoothed; smoothing the answers too gives the ``once`` order of the two mixes:
    ``(1 - w) * smooth(labels) + w * smooth(teacher) = smooth((1 - w) * labels + w * teacher)``.
    """
    if cfg.label_smoothing:
        taught = (1 - cfg.label_smoothing) * taught + cfg.label_smoothing / taught.shape[1]
    return (1 - cfg.teacher_weight) * y + cfg.teacher_weight * taught


def _fit_svm(cfg: TrainConfig, data: TrainingData, spec: InputSpec) -> Path:
    """HOG + linear SVM: one fit on the train split's majority labels, calibrated on val; one "epoch"."""
    from maeum.training.svm import fit_hog_svm

    tr, va = data.splits["train"], data.splits["val"]
    log.info("fitting hog_svm on %d labelled images (hard labels; C=%g)", int((tr.labels >= 0).sum()), cfg.svm_c)
    t0 = time.perf_counter()
    model = fit_hog_svm(
        tr.images,
        tr.labels,
        spec,
        len(data.labels),
        c=cfg.svm_c,
        class_weight="balanced" if cfg.class_weights == "balanced" else None,
        val=(va.images, va.labels),
        seed=cfg.seed,
    )
    seconds = time.perf_counter() - t0
    acc = _majority_accuracy(predict(model, va.images, spec), va.labels)
    run = _RunLog(Path(cfg.out), cfg, 0)
    row = {"epoch": 0, "lr": 0.0, "train_loss": float("nan"), "valid_acc": acc, "raw_valid_acc": acc}
    row.update(seconds=seconds, images_per_s=int((tr.labels >= 0).sum()) / seconds)
    state = _checkpoint(cfg, data, model, {}, 0, acc, 0)
    run.epoch(row, state, improved=True)
    run.close({"best_epoch": 0, "best_valid_acc": round(acc, 4), "last_epoch": 0, "epochs": 1,
               "stopped_early": False, "processes": 1, "device": "cpu"})  # fmt: skip
    log.info("hog_svm: valid accuracy %.4f, fitted in %.0f s", acc, seconds)
    return Path(cfg.out) / "best.pt"


def _checkpoint(
    cfg: TrainConfig,
    data: TrainingData,
    model: torch.nn.Module,
    optimizer: dict[str, Any],
    epoch: int,
    best: float,
    best_epoch: int,
) -> dict[str, Any]:
    """What ``last.pt`` holds; ``load_checkpoint`` reads it.

    ``best.pt`` holds the same without the optimizer, the loss scale and the averaged weights, whose
    ``model`` is the weights that were validated (the averaged ones when ``ema`` is on).
    """
    return {
        "model_name": cfg.model,
        "labels": list(data.labels),
        "dataset": data.name,
        "model": model.state_dict(),
        "optimizer": optimizer,
        "epoch": epoch,
        "best": best,
        "best_epoch": best_epoch,
        "config": asdict(cfg),
    }


def load_checkpoint(path: Path) -> tuple[torch.nn.Module, InputSpec, dict[str, Any]]:
    """The model of a ``best.pt`` or ``last.pt`` with its weights (in eval mode), its input, and the whole state."""
    state = read_checkpoint(path, weights_only=False)
    spec = InputSpec.from_dict(state["config"]["input"])
    labels = tuple(state.get("labels", FERPLUS7))  # checkpoints before manifests were FER+ only
    model = build_model(state["config"]["model"], labels, spec)
    model.load_state_dict(state["model"])
    return model.eval(), spec, state


class _RunLog:
    """Process 0's writing into the run folder: config, metrics (CSV and TensorBoard), checkpoints."""

    def __init__(self, out: Path, cfg: TrainConfig, start_epoch: int) -> None:
        out.mkdir(parents=True, exist_ok=True)
        self.out = out
        (out / "config.json").write_text(json.dumps(asdict(cfg), indent=2))  # once a resume is known to fit
        self.metrics = out / "metrics.csv"
        _start_metrics(self.metrics, start_epoch)
        self.board = None
        if cfg.tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            # purge_step drops events a killed run wrote after its last checkpoint.
            self.board = SummaryWriter(str(out / "tensorboard"), purge_step=start_epoch or None)

    def epoch(
        self, row: dict[str, Any], state: dict[str, Any], improved: bool, shipped: dict[str, Any] | None = None
    ) -> None:
        """Append the metrics; save ``state`` as last.pt, and as best.pt with the ``shipped`` weights when improved."""
        with self.metrics.open("a", newline="") as f:
            csv.writer(f).writerow([fmt.format(row[key]) for key, fmt in METRICS_FORMAT.items()])
        if self.board:
            for key in ("lr", "train_loss", "valid_acc", "images_per_s", "raw_valid_acc"):
                self.board.add_scalar(key, row[key], row["epoch"])
            self.board.flush()
        if improved:
            best = {k: v for k, v in state.items() if k not in ("optimizer", "scaler", "ema")}
            _save_atomic({**best, "model": state["model"] if shipped is None else shipped}, self.out / "best.pt")
        _save_atomic(state, self.out / "last.pt")

    def close(self, summary: dict[str, Any]) -> None:
        (self.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        if self.board:
            self.board.close()


def _save_atomic(state: dict[str, Any], path: Path) -> None:
    """``torch.save`` under a temporary name, then a rename: a kill never leaves a broken checkpoint at ``path``."""
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    tmp.replace(path)


def _start_metrics(path: Path, start_epoch: int) -> None:
    """Start ``metrics.csv``, or on a resume keep the rows of the epochs ``last.pt`` holds.

    Rows a killed run wrote after its last checkpoint go (those epochs run again). A log from
    before ``raw_valid_acc`` gets the column: such runs had no averaging, so it is ``valid_acc``.
    """
    rows: list[dict[str, str]] = []
    if start_epoch and path.exists():
        with path.open(newline="") as f:
            rows = [r for r in csv.DictReader(f) if r.get("epoch", "").isdigit() and int(r["epoch"]) < start_epoch]
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(METRICS_HEADER)
        for r in rows:
            beyond_header = r.pop(None, None)  # a 7th value an earlier resume appended under the old header
            r.setdefault("raw_valid_acc", beyond_header[0] if beyond_header else r.get("valid_acc", ""))
            writer.writerow([r.get(key) or "" for key in METRICS_HEADER])
    tmp.replace(path)


def _load_last(out: Path, cfg: TrainConfig) -> dict[str, Any]:
    """``out/last.pt``, refused when it cannot continue this run (another model, input, optimizer or targets).

    Its labels need the data: ``_check_labels`` compares them once the data is read.
    """
    try:
        state = read_checkpoint(out / "last.pt")
    except ConfigError as e:
        raise ConfigError(f"{e}. To resume, keep a whole last.pt; to start over, use another --out") from None
    if state["model_name"] != cfg.model:
        raise ConfigError(f"{out / 'last.pt'} holds a {state['model_name']} model, not {cfg.model}; use another --out")
    theirs = state.get("config", {})
    if theirs.get("optimizer", "sgd") != cfg.optimizer:
        raise ConfigError(
            f"{out / 'last.pt'} was trained with {theirs.get('optimizer', 'sgd')}, not {cfg.optimizer}; "
            "use another --out"
        )
    for key in _RESUME_KEEPS:
        trained_with = theirs.get(key, _DEFAULTS[key].default)
        if trained_with != getattr(cfg, key):
            raise ConfigError(
                f"{out / 'last.pt'} was trained with {key} {trained_with!r}, not {getattr(cfg, key)!r}; "
                "use another --out"
            )
    if theirs.get("input", cfg.input) != cfg.input:
        raise ConfigError(f"{out / 'last.pt'} takes input {theirs.get('input')}, not {cfg.input}; use another --out")
    return state


def _check_labels(state: dict[str, Any], out: Path, labels: tuple[str, ...]) -> None:
    """Refuse to resume ``out/last.pt`` (``state``) on data of other classes."""
    if tuple(state.get("labels", labels)) != labels:
        raise ConfigError(
            f"{out / 'last.pt'} was trained on labels {state['labels']}, not {list(labels)}; use another --out"
        )


def _move_optimizer_state(opt: torch.optim.Optimizer, device: torch.device) -> None:
    for per_param in opt.state.values():
        for key, value in per_param.items():
            if isinstance(value, torch.Tensor) and key != "step":
                per_param[key] = value.to(device)
