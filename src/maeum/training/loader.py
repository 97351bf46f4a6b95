"""Training batches: face crops held in memory, put through serving's preprocessing, then augmented (and mixed).

Batch ``i`` of epoch ``e`` is drawn and augmented from its own seed (run seed, epoch, batch,
process), so a run gives the same batches whether they are made in the training loop or by
``workers`` processes beside it, and after a resume.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from maeum.preprocess import InputSpec, to_model_input


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


def mix(
    x: torch.Tensor, y: torch.Tensor, gen: torch.Generator, mixup: float = 0.0, cutmix: float = 0.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mixup or CutMix: each crop is blended with another of the batch, and its target in the same share.

    ``mixup`` and ``cutmix`` are the alphas of the Beta(alpha, alpha) the share ``lam`` of the crop's
    own image is drawn from; 0 turns one off. With both on, each batch takes one, by a coin toss.
    Mixup blends whole images, ``lam * x + (1 - lam) * other``; CutMix pastes one box of the
    other image, the same box across the batch, and ``lam`` becomes the share of pixels kept.
    """
    if not (mixup or cutmix):
        return x, y
    use_cutmix = cutmix > 0 and (not mixup or torch.rand(1, generator=gen).item() < 0.5)
    alpha = cutmix if use_cutmix else mixup
    # Beta draws from the batch's generator, so a batch is the same in a worker, the loop or a resume.
    rng = np.random.default_rng(int(torch.randint(2**62, (1,), generator=gen)))
    lam = float(rng.beta(alpha, alpha))
    other = torch.randperm(x.shape[0], generator=gen)
    if use_cutmix:
        h, w = x.shape[2:]
        cut_h, cut_w = round(h * math.sqrt(1 - lam)), round(w * math.sqrt(1 - lam))
        cy, cx = int(rng.integers(h)), int(rng.integers(w))
        y0, y1 = max(cy - cut_h // 2, 0), min(cy + cut_h - cut_h // 2, h)
        x0, x1 = max(cx - cut_w // 2, 0), min(cx + cut_w - cut_w // 2, w)
        x = x.clone()
        x[:, :, y0:y1, x0:x1] = x[other, :, y0:y1, x0:x1]
        lam = 1 - (y1 - y0) * (x1 - x0) / (h * w)  # the box may reach past the edge: count what was pasted
    else:
        x = lam * x + (1 - lam) * x[other]
    return x, lam * y + (1 - lam) * y[other]


def to_batch(images: np.ndarray, spec: InputSpec) -> torch.Tensor:
    """uint8 crops (N, S, S[, 3]) -> the model's normalised input (N, C, S, S), channels-last."""
    return torch.from_numpy(to_model_input(images, spec)).contiguous(memory_format=torch.channels_last)


def batch_seed(seed: int, epoch: int, batch: int, rank: int) -> int:
    return int(np.random.SeedSequence([seed, epoch, batch, rank]).generate_state(1)[0])


class EpochBatches(torch.utils.data.Dataset):
    """One epoch's augmented batches; item ``i`` is (inputs, targets (B, K)) for this process's share.

    ``order`` lists the epoch's image indices; batch ``i`` is ``order[i*B:(i+1)*B]`` and
    process ``rank`` of ``world`` takes every ``world``-th image of it. ``mixup`` and ``cutmix``
    (Beta alphas, 0: off) mix each process's share after the augmentation (see ``mix``).
    """

    def __init__(
        self,
        images: np.ndarray,
        targets: torch.Tensor,
        order: np.ndarray,
        batch_size: int,
        spec: InputSpec,
        seed: int,
        epoch: int,
        rank: int = 0,
        world: int = 1,
        mixup: float = 0.0,
        cutmix: float = 0.0,
    ) -> None:
        self.images, self.targets, self.order = images, targets, order
        self.batch_size, self.spec = batch_size, spec
        self.seed, self.epoch, self.rank, self.world = seed, epoch, rank, world
        self.mixup, self.cutmix = mixup, cutmix

    def __len__(self) -> int:
        return len(self.order) // self.batch_size

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        if not 0 <= i < len(self):
            raise IndexError(i)
        idx = self.order[i * self.batch_size : (i + 1) * self.batch_size][self.rank :: self.world]
        gen = torch.Generator().manual_seed(batch_seed(self.seed, self.epoch, i, self.rank))
        x = augment(to_batch(self.images[idx], self.spec), gen)
        return mix(x, self.targets[idx], gen, self.mixup, self.cutmix)


def _one_thread(_: int) -> None:
    torch.set_num_threads(1)  # each worker makes whole batches; the training loop keeps the threads


def batch_loader(batches: EpochBatches, workers: int) -> torch.utils.data.DataLoader:
    """Iterate ``batches`` in order, made in the loop (0) or by ``workers`` processes ahead of it."""
    return torch.utils.data.DataLoader(
        batches,
        batch_size=None,
        shuffle=False,
        num_workers=workers,
        worker_init_fn=_one_thread if workers else None,
        prefetch_factor=4 if workers else None,
    )
