"""What one training run needs from the layers above it, as structural types (:class:`typing.Protocol`).

The grid plans runs and builds the probe tasks; the trainer trains one run. Typing the trainer against
these protocols, not against ``grid.plan.RunSpec`` or ``probes``, keeps ``train/`` free of imports from
``grid/``, ``probes/``, ``analysis/`` and ``report/`` (tests/test_import_layers.py), so the dependency
graph runs one way: grid -> train -> model, data.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import torch

    from mlmclm.train.checkpoint import TrainState


class RunIdentity(Protocol):
    """Which run to train: the condition, fold and seed (``mlmclm.grid.plan.RunSpec`` is one)."""

    @property
    def objective(self) -> str: ...

    @property
    def attention(self) -> str: ...

    @property
    def fold(self) -> int | None: ...

    @property
    def seed(self) -> int: ...

    @property
    def learning_rate(self) -> float | None: ...

    @property
    def run_id(self) -> str: ...


class ProbeScores(Protocol):
    """A run's final probe metrics and, per task, which test items it got right (``probes.ProbeResults``)."""

    @property
    def metrics(self) -> dict[str, float]: ...

    @property
    def items(self) -> dict[str, str]: ...


class TrainingProbes(Protocol):
    """Probes of the encoder while it trains and once it has: ``mlmclm.grid.worker.RunProbes``, which the
    worker builds beside the probe tasks. Rank 0 alone calls them."""

    def due(self, step: int, total_steps: int, tokens_before: int, tokens_after: int) -> bool:
        """Whether the optimizer step just taken (from ``tokens_before`` to ``tokens_after``) is probed."""
        ...

    def at_checkpoint(self, model: torch.nn.Module, state: TrainState, device: torch.device) -> None:
        """Probe now and append one point to ``state.curves``, leaving the training RNG untouched."""
        ...

    def at_end(self, model: torch.nn.Module, state: TrainState, device: torch.device) -> ProbeScores:
        """The end-of-training probes (with their baselines); may add the final curve point."""
        ...
