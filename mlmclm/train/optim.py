"""AdamW with decoupled weight decay and a warmup + decay learning-rate schedule."""

from __future__ import annotations

import math

import torch
from torch.optim.lr_scheduler import LambdaLR

from mlmclm.config import TrainingConfig


def build_optimizer(model: torch.nn.Module, cfg: TrainingConfig) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices only (:func:`decay_groups`)."""
    decay, no_decay = decay_groups(model)
    groups = [
        {"params": decay, "weight_decay": cfg.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    on_cuda = all(p.is_cuda for group in groups for p in group["params"])
    return torch.optim.AdamW(
        groups,
        lr=cfg.learning_rate,
        betas=(cfg.adam_beta1, cfg.adam_beta2),
        eps=cfg.adam_epsilon,
        fused=on_cuda or None,  # one fused kernel per step on CUDA; PyTorch's default elsewhere
    )


def decay_groups(model: torch.nn.Module) -> tuple[list[torch.nn.Parameter], list[torch.nn.Parameter]]:
    """The trainable parameters that weight decay shrinks, and those it leaves alone.

    By shape, as nanoGPT: matrices (``ndim >= 2``: linear and embedding weights) decay; vectors (biases,
    LayerNorm gains and shifts) do not (Devlin et al. 2019; Loshchilov & Hutter 2019). A module exempts
    other parameters of its own by naming them in a ``no_weight_decay`` class attribute (a learned bias
    table is a matrix that decay should not pull to zero, e.g. ``exposb``'s ``bucket_bias``).
    """
    decay, no_decay = [], []
    for module in model.modules():
        own = dict(module.named_parameters(recurse=False))
        exempt = set(getattr(module, "no_weight_decay", ()))
        if unknown := exempt - own.keys():
            raise ValueError(f"{type(module).__name__}.no_weight_decay names no parameter of it: {sorted(unknown)}")
        for name, param in own.items():
            if param.requires_grad:
                (decay if param.ndim >= 2 and name not in exempt else no_decay).append(param)
    return decay, no_decay


def warmup_steps(cfg: TrainingConfig, total_steps: int) -> int:
    if cfg.warmup_steps is not None:
        return min(cfg.warmup_steps, total_steps)
    return int(round(cfg.warmup_ratio * total_steps))


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: TrainingConfig, total_steps: int) -> LambdaLR:
    """Linear warmup to the peak rate, then linear or cosine decay to zero (or constant)."""
    warmup = warmup_steps(cfg, total_steps)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        if cfg.scheduler == "constant":
            return 1.0
        progress = (step - warmup) / max(1, total_steps - warmup)
        progress = min(progress, 1.0)
        if cfg.scheduler == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * progress))
        return 1.0 - progress

    return LambdaLR(optimizer, factor)
