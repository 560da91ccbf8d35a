"""Probes during training: probe scores at intermediate checkpoints, stored as curves of the run.

The end-of-training probe says which objective's encoder is better after the budget; the curve says when.
Published comparisons find the ranking can change during training (a causal model ahead early, a masked one
ahead late); a single end point cannot show that. With ``probes.eval_every`` set, the training loop asks the
run's probes (:class:`mlmclm.grid.worker.RunProbes`, a callback the grid worker passes to the trainer) after
every optimizer step whether a checkpoint is due; they probe the model at every multiple of
``eval_every`` optimizer steps (``eval_every_unit: steps``) or whenever the non-pad tokens processed cross a
multiple of ``eval_every`` (``tokens``), and at the final step. Each probe appends one point to the run's
curves: ``probe_step``, ``probe_tokens`` and every probe metric (``probe/<task>/accuracy`` ...). The curves
live in the training state, which mid-run checkpoints save, so a resumed run repeats exactly the probes after
its last checkpoint and ends with one point per configured checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

STEP_KEY, TOKENS_KEY = "probe_step", "probe_tokens"


@dataclass(frozen=True)
class ProbeSchedule:
    """When to probe: every ``every`` optimizer steps or tokens, and at the last step."""

    every: int
    unit: str  # steps | tokens

    def due(self, step: int, total_steps: int, tokens_before: int, tokens_after: int) -> bool:
        """Whether the optimizer step that moved from ``tokens_before`` to ``tokens_after`` ends at a checkpoint."""
        if step == total_steps:
            return True
        if self.unit == "steps":
            return step % self.every == 0
        return tokens_after // self.every > tokens_before // self.every


def record_point(curves: dict[str, list[float]], step: int, tokens: int, metrics: dict[str, float]) -> None:
    """Append one probe checkpoint (its step, tokens and every probe metric) to ``curves``."""
    curves.setdefault(STEP_KEY, []).append(step)
    curves.setdefault(TOKENS_KEY, []).append(tokens)
    for name, value in metrics.items():
        curves.setdefault(name, []).append(value)


def point_at(curves: dict[str, list[float]], step: int) -> dict[str, float] | None:
    """The probe metrics recorded at ``step``, or None when no checkpoint was probed there."""
    steps = curves.get(STEP_KEY) or []
    if step not in steps:
        return None
    index = steps.index(step)
    return {name: values[index] for name, values in curves.items() if name.startswith("probe/")}


def isolated_rng(device: torch.device) -> Any:
    """A context that restores torch's global RNG afterwards: a probe never changes the training run's
    dropout draws, so the same seed trains the same model with or without intermediate probes."""
    devices = [device.index or 0] if device.type == "cuda" else []
    return torch.random.fork_rng(devices=devices)
