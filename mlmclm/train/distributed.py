"""Data-parallel training of one run under ``torchrun``: process group, rank roles and the DDP wrapper.

Every rank runs the whole command line; the ranks differ only in which micro-batches they build
(:class:`mlmclm.data.batches.TrainStream` shards by rank) and in that rank 0 alone writes files and prints.
Gradients are averaged by :class:`torch.nn.parallel.DistributedDataParallel` (Li et al., 2020, "PyTorch
Distributed: Experiences on Accelerating Data Parallel Training", VLDB), gloo on CPU and nccl on CUDA, so a
step over W ranks with A micro-batches each equals one process stepping over the same A x W micro-batches,
up to the order of the floating-point reduction (docs/scaling.md states the tolerance measured).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from mlmclm.errors import ConfigError, DataError

_TORCHRUN_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


@dataclass(frozen=True)
class DistributedContext:
    """Who this process is in the job: ``world_size`` 1 is an ordinary single-process run."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0 alone writes results, checkpoints and reports, and prints."""
        return self.rank == 0


SINGLE_PROCESS = DistributedContext()
_CURRENT = SINGLE_PROCESS


def current() -> DistributedContext:
    """The context set up by :func:`init_from_environment` (single process until then)."""
    return _CURRENT


def init_from_environment(device_type: str) -> DistributedContext:
    """Join the process group torchrun describes in the environment (``WORLD_SIZE`` > 1), else stay alone.

    The backend is nccl for CUDA and gloo otherwise; each CUDA rank uses GPU ``LOCAL_RANK``.
    """
    global _CURRENT
    world_size = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if world_size <= 1:
        _CURRENT = SINGLE_PROCESS
        return _CURRENT
    missing = [name for name in _TORCHRUN_VARIABLES if name not in os.environ]
    if missing:
        raise ConfigError(f"WORLD_SIZE={world_size} but {', '.join(missing)} unset: start multi-process runs "
                          "with torchrun")
    context = DistributedContext(int(os.environ["RANK"]), world_size, int(os.environ["LOCAL_RANK"]))
    if not dist.is_initialized():
        backend = "nccl" if device_type == "cuda" else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(context.local_rank)
        dist.init_process_group(backend=backend)
    _CURRENT = context
    return context


def shutdown() -> None:
    """Leave the process group (idempotent)."""
    global _CURRENT
    if dist.is_initialized():
        dist.destroy_process_group()
    _CURRENT = SINGLE_PROCESS


def rank_device(device: torch.device) -> torch.device:
    """Each CUDA rank trains on GPU ``LOCAL_RANK``; other devices are used as given."""
    if device.type == "cuda" and current().enabled and device.index is None:
        return torch.device("cuda", current().local_rank)
    return device


def check_resumed_world_size(state: Any, path: Any) -> None:
    """A checkpoint's data position counts micro-batches of its world size; another one cannot continue it."""
    if state.world_size != current().world_size:
        raise DataError(
            f"{path} was written by {state.world_size} data-parallel process(es), this job has "
            f"{current().world_size}: resume with the same torchrun world size, or delete it to restart the run"
        )


def broadcast_from_main(value: Any) -> Any:
    """Rank 0's ``value`` on every rank (a picklable object); the value itself when single-process."""
    if not current().enabled:
        return value
    holder = [value]
    dist.broadcast_object_list(holder, src=0)
    return holder[0]


def barrier() -> None:
    if current().enabled:
        dist.barrier()


def sum_over_ranks(values: list[float], device: torch.device) -> list[float]:
    """Element-wise sum of ``values`` over all ranks (float64, so integer counts stay exact)."""
    if not current().enabled:
        return list(values)
    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor.tolist()


def any_over_ranks(mask: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Element-wise logical OR of a boolean CPU tensor over all ranks (e.g. the tokens any rank has scored);
    the reduction runs on ``device`` (nccl reduces CUDA tensors only)."""
    if not current().enabled:
        return mask
    as_bytes = mask.to(device=device, dtype=torch.uint8)
    dist.all_reduce(as_bytes, op=dist.ReduceOp.MAX)
    return as_bytes.bool().cpu()


class LossModule(torch.nn.Module):
    """Routes DDP's forward to :meth:`Transformer.loss`, so DDP sees the call that produces the gradients."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask, labels, causal=None, **layout):
        return self.model.loss(input_ids, attention_mask, labels, causal=causal, **layout)


def wrap_for_training(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """DDP over a module whose ``forward`` is the loss; in a single process, ``model`` itself.

    DDP broadcasts rank 0's parameters at construction, so every rank starts from the same weights.
    """
    if not current().enabled:
        return model
    loss_module = LossModule(model)
    device_ids = [device.index if device.index is not None else current().local_rank] if device.type == "cuda" else None
    return torch.nn.parallel.DistributedDataParallel(loss_module, device_ids=device_ids)
