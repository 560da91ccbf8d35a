"""Mid-run checkpoints: everything needed to continue an interrupted run with identical numbers."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import torch

from mlmclm.atomic import atomic_write
from mlmclm.errors import DataError


@dataclass
class TrainState:
    """Loop position and history; saved with the model/optimizer so a resumed run continues exactly."""

    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    tokens_seen: int = 0  # non-pad tokens processed
    tokens_scored: int = 0  # targets in the loss (labels != -100)
    train_time_s: float = 0.0
    eval_time_s: float = 0.0  # part of train_time_s spent in validation, excluded from throughput
    best_val_loss: float = math.inf
    evals_since_best: int = 0
    curves: dict[str, list[float]] = field(default_factory=dict)
    target_coverage: torch.Tensor | None = None  # TargetCoverage.packed() at the last checkpoint


def save_checkpoint(path, model, optimizer, scheduler, scaler, state: TrainState) -> None:
    payload = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "scaler": scaler.state_dict(),
        "state": asdict(state),
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }
    atomic_write(path, lambda tmp: torch.save(payload, tmp))


def load_checkpoint(path, model, optimizer, scheduler, scaler) -> TrainState:
    """Restore a checkpoint written by :func:`save_checkpoint` (``weights_only=True``: no pickled code)."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a truncated or foreign file: say which file and how to recover
        raise DataError(f"cannot read checkpoint {path}: {exc}; delete it to restart that run") from exc
    model.load_state_dict(payload["model"])
    optimizer.load_state_dict(payload["optimizer"])
    scheduler.load_state_dict(payload["scheduler"])
    scaler.load_state_dict(payload["scaler"])
    torch.set_rng_state(payload["torch_rng"])
    if payload["cuda_rng"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(payload["cuda_rng"])
    return TrainState(**payload["state"])
