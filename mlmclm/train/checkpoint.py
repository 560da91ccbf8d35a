"""Mid-run checkpoints: everything needed to continue an interrupted run with identical numbers.

Each checkpoint is written atomically and its SHA-256 is kept beside it (``checkpoint.pt.sha256``). A
checkpoint that is truncated, corrupted, or whose digest does not match is never trusted: it is moved aside
to ``checkpoint.pt.corrupt`` and the run restarts from step 0, which gives the same numbers as an
uninterrupted run because every random stream is seeded.
"""

from __future__ import annotations

import hashlib
import logging
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from mlmclm.atomic import atomic_write, atomic_write_text

log = logging.getLogger(__name__)
DIGEST_SUFFIX = ".sha256"
CORRUPT_SUFFIX = ".corrupt"


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
    world_size: int = 1  # data-parallel ranks that wrote it; positions count A x W micro-batches per step


class CorruptCheckpointError(Exception):
    """A checkpoint file that cannot be trusted (unreadable, truncated, or not matching its digest)."""


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _digest_path(path: Path) -> Path:
    return path.with_name(path.name + DIGEST_SUFFIX)


def save_checkpoint(path, model, optimizer, scheduler, scaler, state: TrainState) -> None:
    path = Path(path)
    payload = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "scaler": scaler.state_dict(),
        "state": asdict(state),
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }
    digest = {}

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as handle:  # a Python file object, so a full disk surfaces as OSError(ENOSPC)
            torch.save(payload, handle)
        digest["sha256"] = file_sha256(tmp)
        # The digest goes first: a crash between the two renames leaves a mismatch, read as "corrupt".
        atomic_write_text(_digest_path(path), digest["sha256"] + "\n")

    atomic_write(path, write)


def verify_checkpoint(path: Path) -> None:
    """Raise :class:`CorruptCheckpointError` unless ``path`` matches the digest written with it."""
    try:
        expected = _digest_path(path).read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise CorruptCheckpointError(f"no readable digest beside {path}") from exc
    if file_sha256(path) != expected:
        raise CorruptCheckpointError(f"{path} does not match its SHA-256 (truncated or corrupted)")


def load_checkpoint(path, model, optimizer, scheduler, scaler) -> TrainState:
    """Restore a verified checkpoint (``weights_only=True``: no pickled code); raises CorruptCheckpointError."""
    path = Path(path)
    verify_checkpoint(path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
        model.load_state_dict(payload["model"])
        optimizer.load_state_dict(payload["optimizer"])
        scheduler.load_state_dict(payload["scheduler"])
        scaler.load_state_dict(payload["scaler"])
        state = TrainState(**payload["state"])
        torch.set_rng_state(payload["torch_rng"])
    except Exception as exc:  # a foreign file or one from another model: unusable, like a corrupt one
        raise CorruptCheckpointError(f"cannot restore {path}: {exc}".splitlines()[0]) from exc
    if payload["cuda_rng"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(payload["cuda_rng"])
    return state


def discard_checkpoint(path: Path, reason: str | None = None) -> None:
    """Remove a checkpoint and its digest; with a ``reason``, keep the file as ``*.corrupt`` and warn."""
    path = Path(path)
    if reason is not None and path.exists():
        log.warning("%s; moved it to %s and restarting the run from step 0", reason, path.name + CORRUPT_SUFFIX)
        path.replace(path.with_name(path.name + CORRUPT_SUFFIX))
    path.unlink(missing_ok=True)
    _digest_path(path).unlink(missing_ok=True)
