"""The training budget shared by every run of a comparison: same optimizer steps, same real tokens.

Steps are counted in shared-segmentation sequences; CLM strategies that build other sequences fill their
micro-batches to the same expected non-pad tokens (:class:`mlmclm.data.batches.TrainStream`), and every run
records what it actually processed (``tokens`` in its run record).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from mlmclm.config import ExperimentConfig
from mlmclm.data import ExperimentData, budget_sequences


@dataclass(frozen=True)
class Budget:
    optimizer_steps: int
    sequences_per_step: int  # shared-segmentation sequences; packed/sliding CLM steps hold the same tokens
    train_sequences: int  # shared-segmentation training sequences (smallest fold with cross-validation)
    steps_per_epoch: int
    epochs: float  # passes over the training sequences that the step budget amounts to
    batch_size: int
    gradient_accumulation_steps: int
    max_seq_length: int
    world_size: int = 1  # data-parallel ranks (torchrun); the global batch counts them

    @property
    def global_batch(self) -> int:
        """Sequences per optimizer step over all ranks: batch x accumulation x world size."""
        return self.batch_size * self.gradient_accumulation_steps * self.world_size

    @property
    def max_train_tokens_per_run(self) -> int:
        """Upper bound on training tokens (sequences x max length); actual non-pad tokens are per run."""
        return self.optimizer_steps * self.sequences_per_step * self.max_seq_length

    def to_dict(self) -> dict:
        return {
            **asdict(self), "global_batch": self.global_batch, "train_tokens_per_run": self.max_train_tokens_per_run
        }


def compute_budget(config: ExperimentConfig, data: ExperimentData, world_size: int = 1) -> Budget:
    """Steps from ``max_steps`` or epochs x batches per epoch, identical for all objectives and mechanisms.

    With cross-validation the smallest fold's training set sets the steps, so no fold gets more updates.
    Under data parallelism (``world_size`` ranks) a step holds the global batch, so an epoch has fewer steps.
    """
    training = config.training
    folds = range(config.folds) if config.cross_validation else [None]
    sequences = min(budget_sequences(data.fold(k).train, config.data) for k in folds)
    per_step = training.batch_size * training.gradient_accumulation_steps * world_size
    steps_per_epoch = max(1, math.ceil(sequences / per_step))
    steps = training.max_steps if training.max_steps is not None else training.epochs * steps_per_epoch
    return Budget(
        optimizer_steps=steps,
        sequences_per_step=per_step,
        train_sequences=sequences,
        steps_per_epoch=steps_per_epoch,
        epochs=steps / steps_per_epoch,
        batch_size=training.batch_size,
        gradient_accumulation_steps=training.gradient_accumulation_steps,
        max_seq_length=config.data.max_seq_length,
        world_size=world_size,
    )
