"""The training budget shared by every run of a comparison: same optimizer steps, same real tokens.

Steps are counted in shared-segmentation sequences; CLM strategies that build other sequences fill their
micro-batches to the same expected non-pad tokens (:class:`mlmclm.data.batches.TrainStream`), and every run
records what it actually processed (``tokens`` in its run record). With ``data.packing`` a micro-batch holds
``batch_size`` packed rows instead of sequences, so steps per epoch are counted in rows
(:func:`mlmclm.data.budget_units`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from mlmclm.config import ExperimentConfig
from mlmclm.data import ExperimentData, budget_sequences, budget_units


@dataclass(frozen=True)
class Budget:
    optimizer_steps: int
    sequences_per_step: int  # shared-segmentation sequences (packed rows with data.packing) per step
    train_sequences: int  # shared-segmentation training sequences (smallest fold with cross-validation)
    steps_per_epoch: int
    epochs: float  # passes over the training sequences that the step budget amounts to
    batch_size: int
    gradient_accumulation_steps: int
    max_seq_length: int
    world_size: int = 1  # data-parallel ranks (torchrun); the global batch counts them
    packing: bool = False  # data.packing: steps hold packed rows of max_seq_length slots
    train_rows: int | None = None  # packed rows of the training sequences (packing only)

    @property
    def global_batch(self) -> int:
        """Sequences per optimizer step over all ranks: batch x accumulation x world size."""
        return self.batch_size * self.gradient_accumulation_steps * self.world_size

    @property
    def max_train_tokens_per_run(self) -> int:
        """Upper bound on training tokens (sequences x max length); actual non-pad tokens are per run."""
        return self.optimizer_steps * self.sequences_per_step * self.max_seq_length

    def to_dict(self) -> dict:
        fields = asdict(self)
        if not self.packing:  # unpacked records keep their old shape
            del fields["packing"], fields["train_rows"]
        return {**fields, "global_batch": self.global_batch, "train_tokens_per_run": self.max_train_tokens_per_run}


def compute_budget(config: ExperimentConfig, data: ExperimentData, world_size: int = 1) -> Budget:
    """Steps from ``max_steps`` or epochs x batches per epoch, identical for all objectives and mechanisms.

    With cross-validation the smallest fold's training set sets the steps, so no fold gets more updates.
    Under data parallelism (``world_size`` ranks) a step holds the global batch, so an epoch has fewer steps.
    """
    training = config.training
    folds = range(config.folds) if config.cross_validation else [None]
    sequences = min(budget_sequences(data.fold(k).train, config.data) for k in folds)
    units = min(budget_units(data.fold(k).train, config.data) for k in folds)  # sequences, or packed rows
    per_step = training.batch_size * training.gradient_accumulation_steps * world_size
    steps_per_epoch = max(1, math.ceil(units / per_step))
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
        packing=config.data.packing,
        train_rows=units if config.data.packing else None,
    )
