"""Reading the checkpoints ``maeum train`` writes (``best.pt``, ``last.pt``), or saying why a file is not one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from maeum.errors import ConfigError

_KEYS = ("model_name", "model", "config")  # what every checkpoint of maeum holds


def read_checkpoint(path: str | Path, *, weights_only: bool = True) -> dict[str, Any]:
    """The state saved in ``path``; ConfigError naming the file when it is damaged or not a maeum checkpoint."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=weights_only)
    except Exception as e:  # torch raises pickle, zip, index and runtime errors alike for a bad file
        # the first sentence: torch's advice on unpickling that follows does not apply here
        reason = str(e).strip().splitlines()[0].split(". ")[0] if str(e).strip() else type(e).__name__
        raise ConfigError(
            f"{path}: not a checkpoint `maeum train` wrote, or a damaged one ({reason}); "
            "pass a best.pt or last.pt from a run folder"
        ) from None
    if not isinstance(state, dict) or not all(k in state for k in _KEYS):
        raise ConfigError(f"{path}: a torch file, but not a checkpoint `maeum train` wrote (no {', '.join(_KEYS)})")
    return state
