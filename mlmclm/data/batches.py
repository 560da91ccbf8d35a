"""Training and evaluation batches for both objectives, in the shared batch format.

A batch is ``{"input_ids", "attention_mask", "labels"}`` (LongTensor [B, T], right padding, -100 where
nothing is scored). Under the standard strategies MLM and CLM batches hold the same sequences in the same
order (one permutation per (seed, epoch)); only masking and targets differ.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import torch

from mlmclm.config import DataConfig
from mlmclm.data.masking import MaskingStrategy, apply_masking
from mlmclm.data.sequences import (
    SequenceSet,
    collate_sequences,
    next_token_labels,
    num_shared_chunks,
    shared_segmentation,
)
from mlmclm.data.strategies import CLM_STRATEGIES, MLM_STRATEGIES
from mlmclm.data.token_cache import TokenizedDocuments
from mlmclm.data.tokenizer import TokenizerInfo

# Domain tags keep the generators of static masks, dynamic masks, evaluation masks and order apart.
_ORDER, _STATIC_MASK, _DYNAMIC_MASK, _EVAL_MASK = 0, 1, 2, 3


def build_sequences(
    objective: str, docs: TokenizedDocuments, data_cfg: DataConfig, info: TokenizerInfo, evaluation: bool
) -> SequenceSet:
    """MLM: the shared segmentation; CLM: whatever ``data.clm_strategy`` builds."""
    if objective == "mlm":
        return shared_segmentation(docs, data_cfg.max_seq_length, info)
    return CLM_STRATEGIES.get(data_cfg.clm_strategy).build(docs, data_cfg, info, evaluation)


def budget_sequences(docs: TokenizedDocuments, data_cfg: DataConfig) -> int:
    """Training sequences under the shared segmentation: one budget unit for every run of a comparison."""
    return int(num_shared_chunks(docs, data_cfg.max_seq_length).sum())


def make_batch(
    objective: str,
    sequences: SequenceSet,
    ids: np.ndarray,
    data_cfg: DataConfig,
    info: TokenizerInfo,
    mask_seeds: list[list[int]] | None,
) -> dict[str, torch.Tensor]:
    """Gather sequences ``ids`` and add labels: masks seeded per example (MLM) or shifted targets (CLM)."""
    input_ids, attention_mask, word_starts, score_from = collate_sequences(sequences, ids, info.pad_id)
    if objective == "mlm":
        strategy: MaskingStrategy = MLM_STRATEGIES.get(data_cfg.mlm_strategy)
        maskable = attention_mask.astype(bool) & ~np.isin(input_ids, np.asarray(info.special_ids))
        rngs = [np.random.default_rng(seed) for seed in mask_seeds or []]
        input_ids, labels = apply_masking(input_ids, maskable, word_starts, rngs, strategy, data_cfg, info)
    else:
        labels = next_token_labels(input_ids, attention_mask, score_from)
    return {
        "input_ids": torch.from_numpy(input_ids),
        "attention_mask": torch.from_numpy(attention_mask),
        "labels": torch.from_numpy(labels),
    }


class TrainStream:
    """Shuffled training batches of one run, a pure function of (seed, epoch).

    MLM masks under ``mlm_strategy: standard`` are static: drawn once from (seed, example) and reused every
    epoch, as in BERT; the other strategies draw fresh masks from (seed, epoch, example), as in RoBERTa
    (Liu et al., 2019, §4.1).
    """

    def __init__(
        self,
        objective: str,
        docs: TokenizedDocuments,
        data_cfg: DataConfig,
        tokenizer_info: TokenizerInfo,
        batch_size: int,
        seed: int,
    ) -> None:
        self.objective = objective
        self.data_cfg = data_cfg
        self.info = tokenizer_info
        self.batch_size = batch_size
        self.seed = seed
        self.sequences = build_sequences(objective, docs, data_cfg, tokenizer_info, evaluation=False)
        self.batches_per_epoch = math.ceil(len(self.sequences) / batch_size)

    def __len__(self) -> int:
        return self.batches_per_epoch

    def epoch(self, epoch_index: int) -> Iterator[dict[str, torch.Tensor]]:
        order = np.random.default_rng([self.seed, _ORDER, epoch_index]).permutation(len(self.sequences))
        fresh = self.objective == "mlm" and MLM_STRATEGIES.get(self.data_cfg.mlm_strategy).fresh_each_epoch
        for begin in range(0, len(order), self.batch_size):
            ids = order[begin : begin + self.batch_size]
            if fresh:
                seeds = [[self.seed, _DYNAMIC_MASK, epoch_index, int(i)] for i in ids]
            else:
                seeds = [[self.seed, _STATIC_MASK, int(i)] for i in ids]
            yield make_batch(self.objective, self.sequences, ids, self.data_cfg, self.info, seeds)


def build_eval_batches(
    objective: str,
    docs: TokenizedDocuments,
    data_cfg: DataConfig,
    tokenizer_info: TokenizerInfo,
    batch_size: int,
    max_batches: int | None = None,
) -> list[dict[str, torch.Tensor]]:
    """Fixed evaluation batches in document order; MLM masks come from ``data.eval_seed`` alone, so every
    MLM run is scored on the same positions, and CLM sliding windows score each token once."""
    sequences = build_sequences(objective, docs, data_cfg, tokenizer_info, evaluation=True)
    stops = range(0, len(sequences), batch_size)
    if max_batches is not None:
        stops = stops[:max_batches]
    batches = []
    for begin in stops:
        ids = np.arange(begin, min(begin + batch_size, len(sequences)))
        seeds = [[data_cfg.eval_seed, _EVAL_MASK, int(i)] for i in ids]
        batches.append(make_batch(objective, sequences, ids, data_cfg, tokenizer_info, seeds))
    return batches


def control_notes(data_cfg: DataConfig, objectives: list[str]) -> list[str]:
    """Plain-language notes for the report wherever the arms do not see identical sequences."""
    notes = []
    if "clm" in objectives:
        strategy = CLM_STRATEGIES.get(data_cfg.clm_strategy)
        if strategy.changes_sequences and "mlm" in objectives:
            notes.append(strategy.note)
    if "mlm" in objectives:
        fresh = MLM_STRATEGIES.get(data_cfg.mlm_strategy).fresh_each_epoch
        notes.append(
            f"MLM strategy {data_cfg.mlm_strategy!r}: masks are "
            + ("redrawn every epoch" if fresh else "drawn once per example and reused every epoch")
            + f"; evaluation masks are fixed by data.eval_seed={data_cfg.eval_seed}."
        )
    return notes
