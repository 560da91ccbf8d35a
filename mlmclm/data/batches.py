"""Training and evaluation batches for both objectives, in the shared batch format.

A batch is ``{"input_ids", "attention_mask", "labels"}`` (LongTensor [B, T], right padding, -100 where
nothing is scored). Under the standard strategies MLM and CLM batches hold the same sequences in the same
order (one permutation per (seed, epoch)); only masking and targets differ.

The hybrid objectives (mlmclm/objectives.py) draw batches of several *kinds* from the shared segmentation,
one kind per micro-batch as their :class:`ObjectiveSchedule` says: ``causal`` (CLM labels), ``masked`` (MLM
masks and labels) or ``masked_shifted`` (MLM masks, labels moved one position left: GPT-BERT's masked next-token
prediction, Charpentier & Samuel 2024, Fig. 1). Their batches carry ``"causal"``, a 0-dim bool tensor naming
the attention mask the model must use (``batch_causal``); plain MLM/CLM batches do not need it.

With ``data.packing`` the same sequences are packed into padding-free rows (mlmclm/data/packing.py) and the
batch gains ``"segment_ids"`` and ``"position_ids"``; :func:`model_inputs` turns any batch into the keyword
arguments of :meth:`mlmclm.model.transformer.Transformer.loss`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from mlmclm.config import DataConfig, TrainingConfig
from mlmclm.data.masking import MLM_STRATEGIES, MaskingStrategy, apply_masking
from mlmclm.data.packing import POSITION_KEY, SEGMENT_KEY, num_rows, pack_batch, split_rows
from mlmclm.data.sequences import (
    CLM_STRATEGIES,
    SequenceSet,
    collate_sequences,
    next_token_labels,
    num_shared_chunks,
    shared_lengths,
    shared_segmentation,
)
from mlmclm.data.token_cache import TokenizedDocuments
from mlmclm.data.tokenizer import TokenizerInfo
from mlmclm.objectives import CAUSAL, MASKED, MASKED_SHIFTED, OBJECTIVE_DEFINITIONS, uses_masking

# Domain tags keep the generators of static masks, dynamic masks, evaluation masks and order apart.
_ORDER, _STATIC_MASK, _DYNAMIC_MASK, _EVAL_MASK, _BUDGET_ORDER = 0, 1, 2, 3, 4
CAUSAL_KEY = "causal"
# A batch kind's labels score the token this many positions after the label's own (TargetCoverage.mark).
_TARGET_SHIFT = {MASKED: 0, CAUSAL: 1, MASKED_SHIFTED: 1}


def build_sequences(
    objective: str, docs: TokenizedDocuments, data_cfg: DataConfig, info: TokenizerInfo, evaluation: bool
) -> SequenceSet:
    """MLM and the hybrids: the shared segmentation; CLM: whatever ``data.clm_strategy`` builds."""
    if objective != "clm":
        return shared_segmentation(docs, data_cfg.max_seq_length, info)
    return CLM_STRATEGIES.get(data_cfg.clm_strategy).build(docs, data_cfg, info, evaluation)


def budget_sequences(docs: TokenizedDocuments, data_cfg: DataConfig) -> int:
    """Training sequences under the shared segmentation: one budget unit for every run of a comparison."""
    return int(num_shared_chunks(docs, data_cfg.max_seq_length).sum())


def budget_units(docs: TokenizedDocuments, data_cfg: DataConfig) -> int:
    """What a micro-batch holds ``batch_size`` of, counted over the shared segmentation's training sequences.

    Unpacked: sequences. Packed (``data.packing``): rows, as many as the sequences fill in one fixed reshuffle
    that depends on no run's seed, so every run of a comparison gets the same steps per epoch. A run's own
    epochs are other reshuffles and fill a few rows more or fewer (next-fit packing depends on the order).
    """
    if not data_cfg.packing:
        return budget_sequences(docs, data_cfg)
    lengths = shared_lengths(docs, data_cfg.max_seq_length)
    order = np.random.default_rng([_BUDGET_ORDER]).permutation(len(lengths))
    return num_rows(lengths[order], data_cfg.max_seq_length)


def model_inputs(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, Any]:
    """The keyword arguments of :meth:`Transformer.loss` for a CPU batch, its tensors moved to ``device``.

    Whether the batch has padding is read here, from the CPU tensor, so the forward pass needs no host sync
    (nor torch.compile a graph break) to choose SDPA's fused unmasked kernels.
    """
    inputs: dict[str, Any] = {
        key: batch[key].to(device, non_blocking=True)
        for key in ("input_ids", "attention_mask", "labels", SEGMENT_KEY, POSITION_KEY)
        if key in batch
    }
    inputs["causal"] = batch_causal(batch)
    inputs["has_padding"] = not bool(batch["attention_mask"].all())
    return inputs


def make_batch(
    objective: str,
    sequences: SequenceSet,
    ids: np.ndarray,
    data_cfg: DataConfig,
    info: TokenizerInfo,
    mask_seeds: list[list[int]] | None,
    width: int | None = None,
) -> dict[str, torch.Tensor]:
    """Gather sequences ``ids`` and add labels: masks seeded per example (MLM) or shifted targets (CLM).

    ``width``: columns of the padded batch (default: its longest sequence; packed batches use max_seq_length).
    A mask depends on its seed and its sequence only, not on the width (masking draws over the real tokens)."""
    input_ids, attention_mask, word_starts, score_from = collate_sequences(sequences, ids, info.pad_id, width)
    if objective == "mlm":
        strategy: MaskingStrategy = MLM_STRATEGIES.get(data_cfg.mlm_strategy)
        maskable = attention_mask.astype(bool) & ~np.isin(input_ids, np.asarray(info.special_ids))
        rngs = [np.random.default_rng(seed) for seed in mask_seeds or []]
        input_ids, labels = apply_masking(input_ids, maskable, word_starts, rngs, strategy, data_cfg, info)
    else:
        labels = next_token_labels(input_ids, attention_mask, score_from, unscored_ids=info.special_ids)
    return {
        "input_ids": torch.from_numpy(input_ids),
        "attention_mask": torch.from_numpy(attention_mask),
        "labels": torch.from_numpy(labels),
    }


def make_kind_batch(
    kind: str,
    sequences: SequenceSet,
    ids: np.ndarray,
    data_cfg: DataConfig,
    info: TokenizerInfo,
    mask_seeds: list[list[int]] | None,
    width: int | None = None,
) -> dict[str, torch.Tensor]:
    """A hybrid arm's batch of one kind, labelled with the attention mask it needs (``"causal"``).

    ``masked_shifted``: the MLM batch with every label moved one position left, so the output at position
    i - 1 predicts token i when token i is masked (GPT-BERT, Charpentier & Samuel 2024, Fig. 1). Inputs, masked
    positions and targets are those of the ``masked`` batch from the same seeds; only the read-out moves.
    """
    if kind == CAUSAL:
        batch = make_batch("clm", sequences, ids, data_cfg, info, None, width)
    else:
        batch = make_batch("mlm", sequences, ids, data_cfg, info, mask_seeds, width)
        if kind == MASKED_SHIFTED:
            labels = torch.full_like(batch["labels"], -100)
            labels[:, :-1] = batch["labels"][:, 1:]  # position 0 is [CLS], never masked: nothing is lost
            batch["labels"] = labels
    batch[CAUSAL_KEY] = torch.tensor(kind == CAUSAL)
    return batch


def batch_causal(batch: dict[str, torch.Tensor]) -> bool | None:
    """The attention mask a batch asks for (True: causal), None for the model's own; read on the CPU batch."""
    return bool(batch[CAUSAL_KEY]) if CAUSAL_KEY in batch else None


@dataclass(frozen=True)
class ObjectiveSchedule:
    """Which kind of batch each micro-batch of a hybrid run is: a pure function of its index in the run.

    ``clm_mlm``: micro-batches before ``switch_step`` x accumulation are ``causal``, the rest ``masked``
    (Gisserot-Boukhlef et al. 2025, biphasic CLM then MLM). ``mntp``: micro-batch k is ``causal`` when
    floor((k + 1) f) > floor(k f) for f = ``causal_fraction``, else ``masked_shifted``, so every prefix of the run
    holds floor(n f) causal micro-batches out of n: the stated ratio exactly, spread evenly, the same for every
    seed (GPT-BERT, Charpentier & Samuel 2024, mixes causal and masked data at 1:15). Because the kind depends
    only on the index, a run resumed from a checkpoint continues in the phase it was interrupted in.
    """

    objective: str
    accumulation: int
    switch_step: int | None = None
    causal_fraction: float | None = None

    def kind(self, micro_batch: int) -> str:
        if self.switch_step is not None:
            return CAUSAL if micro_batch < self.switch_step * self.accumulation else MASKED
        fraction = float(self.causal_fraction or 0.0)
        causal = math.floor((micro_batch + 1) * fraction) > math.floor(micro_batch * fraction)
        return CAUSAL if causal else MASKED_SHIFTED

    def record(self) -> dict[str, float | int | str]:
        """What the run record keeps (``hybrid`` in docs/raw_results.schema.json)."""
        if self.switch_step is not None:
            return {"objective": self.objective, "switch_step": self.switch_step}
        return {"objective": self.objective, "causal_fraction": float(self.causal_fraction or 0.0)}


def objective_schedule(objective: str, training: TrainingConfig, total_steps: int) -> ObjectiveSchedule | None:
    """The schedule of a hybrid objective over ``total_steps`` optimizer steps; None for ``mlm`` and ``clm``.

    The ``clm_mlm`` switch is at step round(total_steps x ``training.hybrid_clm_fraction``): the CLM phase is
    steps 1..switch, the MLM phase the rest (optimizer and learning-rate schedule carry on across it).
    """
    accumulation = training.gradient_accumulation_steps
    if objective == "clm_mlm":
        return ObjectiveSchedule(objective, accumulation, switch_step=round(total_steps * training.hybrid_clm_fraction))
    if objective == "mntp":
        return ObjectiveSchedule(objective, accumulation, causal_fraction=training.mntp_causal_fraction)
    return None


class TargetCoverage:
    """Which tokens of a run's training text have been a target at least once: the distinct-target fraction.

    Static MLM masks reuse the same ~15% of each sequence, so over many epochs the model learns from few
    distinct targets; dynamic masks spread them (RoBERTa, Liu et al., 2019, §4.1); CLM scores almost every
    token every epoch. Tokens are positions of the run's sequence stream; the denominator is its non-special
    tokens, i.e. the training text without the [CLS]/[SEP] wrappers, the same for every arm of a fold.
    """

    def __init__(self, sequences: SequenceSet, special_ids: tuple[int, ...]) -> None:
        self.targetable = ~np.isin(sequences.stream, np.asarray(special_ids))
        self.scored = np.zeros(len(sequences.stream), dtype=bool)

    def mark(self, starts: np.ndarray, labels: np.ndarray, shift: int) -> None:
        """Record the targets of a batch whose rows begin at stream positions ``starts``.

        ``shift``: 0 when label t scores token t (MLM), 1 when it scores token t + 1 (CLM).
        """
        rows, columns = np.nonzero(labels != -100)
        self.scored[starts[rows] + columns + shift] = True

    @property
    def targetable_tokens(self) -> int:
        return int(np.count_nonzero(self.targetable))

    @property
    def fraction(self) -> float:
        """Distinct targetable tokens ever scored / targetable tokens (NaN for an empty stream)."""
        total = self.targetable_tokens
        return int(np.count_nonzero(self.scored & self.targetable)) / total if total else math.nan

    def packed(self) -> torch.Tensor:
        """The scored bitmap as bytes, for mid-run checkpoints (one bit per token)."""
        return torch.from_numpy(np.packbits(self.scored))

    def restore(self, packed: torch.Tensor) -> None:
        self.scored = np.unpackbits(packed.numpy(), count=len(self.scored)).astype(bool)


class TrainStream:
    """Shuffled training batches of one run, a pure function of (seed, epoch), and what they scored.

    Masks follow the MLM strategy's regime (:meth:`MaskingStrategy.regime`): fresh from (seed, epoch,
    example) under ``dynamic`` (RoBERTa, Liu et al., 2019, §4.1), or one of ``data.static_mask_copies``
    masks from (seed, epoch mod k, example) under ``static`` (BERT, Devlin et al., 2019, App. A).

    Micro-batches on the shared segmentation hold ``batch_size`` sequences. A CLM strategy that builds other
    sequences (``packed``, ``sliding_window``) fills each micro-batch with whole sequences up to the expected
    non-pad tokens of a shared micro-batch (``batch_size`` x the mean shared sequence length), so with the
    shared step budget every arm processes about the same real tokens: without this, packed 512-token
    blocks carry ~8x the tokens of the shared segmentation's short sequences per step.

    With ``data.packing`` every objective's micro-batch is ``batch_size`` packed rows of its own sequences,
    in the epoch's order (mlmclm/data/packing.py); a row then holds several shared sequences or one packed
    CLM block, so the arms again process about the same real tokens per step. Epochs differ by a few rows.
    """

    def __init__(
        self,
        objective: str,
        docs: TokenizedDocuments,
        data_cfg: DataConfig,
        tokenizer_info: TokenizerInfo,
        batch_size: int,
        seed: int,
        schedule: ObjectiveSchedule | None = None,
    ) -> None:
        self.objective = objective
        self.schedule = schedule  # hybrids: which kind each micro-batch is (None: mlm / clm)
        self.data_cfg = data_cfg
        self.info = tokenizer_info
        self.batch_size = batch_size
        self.seed = seed
        self.packing = data_cfg.packing
        self.sequences = build_sequences(objective, docs, data_cfg, tokenizer_info, evaluation=False)
        shared = budget_sequences(docs, data_cfg)
        # [CLS] chunk [SEP]: every shared sequence adds two tokens to the document tokens
        shared_tokens = docs.num_tokens + 2 * shared
        self.shared_tokens_per_batch = batch_size * shared_tokens / max(budget_units(docs, data_cfg), 1)
        self.tokens_per_batch = None
        self._epoch_batches: dict[int, int] = {}  # packed: micro-batches of each epoch seen so far
        if self.packing:
            self.batches_per_epoch = len(self.epoch_ids(0))  # epoch 0's; later epochs differ by a few rows
        elif objective == "clm" and CLM_STRATEGIES.get(data_cfg.clm_strategy).changes_sequences:
            self.tokens_per_batch = self.shared_tokens_per_batch
            self.batches_per_epoch = max(1, round(self.sequences.num_tokens / self.tokens_per_batch))
        else:
            self.batches_per_epoch = math.ceil(len(self.sequences) / batch_size)
        self.coverage = TargetCoverage(self.sequences, tokenizer_info.special_ids)

    def __len__(self) -> int:
        return self.batches_per_epoch

    def epoch(self, epoch_index: int) -> Iterator[dict[str, torch.Tensor]]:
        """The batches of epoch ``epoch_index``; each yielded batch's targets are added to ``coverage``."""
        for index, ids in enumerate(self.epoch_ids(epoch_index)):
            yield self.build(epoch_index, ids, index)

    def epoch_ids(self, epoch_index: int) -> list[np.ndarray]:
        """The sequence ids of each micro-batch of epoch ``epoch_index``, without building the batches.

        Data-parallel ranks walk this same list and build only their own micro-batches
        (:func:`mlmclm.train.trainer.train_run`), so their batches are disjoint and together are exactly
        the micro-batches a single process would build.
        """
        order = np.random.default_rng([self.seed, _ORDER, epoch_index]).permutation(len(self.sequences))
        pieces = self._split(order)
        if self.packing:
            self._epoch_batches[epoch_index] = len(pieces)
        return pieces

    def build(self, epoch_index: int, ids: np.ndarray, index: int) -> dict[str, torch.Tensor]:
        """Micro-batch ``index`` of epoch ``epoch_index`` (sequences ``ids``); its targets are added to ``coverage``.

        A hybrid objective's schedule decides from the micro-batch's position in the run whether it is causal
        or masked, so a resumed or data-parallel run builds the same kinds."""
        width = self.data_cfg.max_seq_length if self.packing else None
        if self.schedule is not None:
            kind = self.schedule.kind(self.run_index(epoch_index, index))
            seeds = None if kind == CAUSAL else self._mask_seeds(ids, epoch_index)
            batch = make_kind_batch(kind, self.sequences, ids, self.data_cfg, self.info, seeds, width)
            self.coverage.mark(self.sequences.starts[ids], batch["labels"].numpy(), _TARGET_SHIFT[kind])
            return self._packed(batch, ids)
        seeds = self._mask_seeds(ids, epoch_index) if self.objective == "mlm" else None
        batch = make_batch(self.objective, self.sequences, ids, self.data_cfg, self.info, seeds, width)
        self.coverage.mark(self.sequences.starts[ids], batch["labels"].numpy(), int(self.objective == "clm"))
        return self._packed(batch, ids)

    def run_index(self, epoch_index: int, index: int) -> int:
        """Micro-batch ``index`` of epoch ``epoch_index`` counted from the start of the run.

        Packed epochs hold slightly different numbers of micro-batches, so they are counted (and remembered)."""
        if not self.packing:
            return epoch_index * self.batches_per_epoch + index
        for epoch in range(epoch_index):
            if epoch not in self._epoch_batches:
                self.epoch_ids(epoch)
        return sum(self._epoch_batches[epoch] for epoch in range(epoch_index)) + index

    def _packed(self, batch: dict[str, torch.Tensor], ids: np.ndarray) -> dict[str, torch.Tensor]:
        if not self.packing:
            return batch
        return pack_batch(batch, self.sequences.lengths[ids], self.data_cfg.max_seq_length, self.info.pad_id)

    def _mask_seeds(self, ids: np.ndarray, epoch_index: int) -> list[list[int]]:
        strategy: MaskingStrategy = MLM_STRATEGIES.get(self.data_cfg.mlm_strategy)
        domain = _DYNAMIC_MASK if strategy.fresh_each_epoch else _STATIC_MASK
        copy = strategy.mask_copy(epoch_index, self.data_cfg)
        return [[self.seed, domain, copy, int(i)] for i in ids]

    def _split(self, order: np.ndarray) -> list[np.ndarray]:
        """``batch_size`` sequences (or packed rows) per micro-batch, or whole sequences up to
        ``tokens_per_batch`` each."""
        if self.packing:
            return split_rows(order, self.sequences.lengths, self.data_cfg.max_seq_length, self.batch_size)
        if self.tokens_per_batch is None:
            return [order[begin : begin + self.batch_size] for begin in range(0, len(order), self.batch_size)]
        if len(order) == 0:
            return []
        ends = np.cumsum(self.sequences.lengths[order])
        cuts = np.searchsorted(ends, self.tokens_per_batch * np.arange(1, self.batches_per_epoch), side="right")
        return np.split(order, np.unique(cuts[(cuts > 0) & (cuts < len(order))]))


def build_eval_batches(
    objective: str,
    docs: TokenizedDocuments,
    data_cfg: DataConfig,
    tokenizer_info: TokenizerInfo,
    batch_size: int,
    max_batches: int | None = None,
    kind: str | None = None,
) -> list[dict[str, torch.Tensor]]:
    """Fixed evaluation batches in document order; MLM masks come from ``data.eval_seed`` alone, so every
    MLM run is scored on the same positions, and CLM sliding windows score each token once.

    A hybrid objective is evaluated on batches of ``kind``, by default its own evaluation task
    (:attr:`mlmclm.objectives.Objective.evaluation`): ``clm_mlm`` as MLM, ``mntp`` in its masked (shifted) view;
    ``kind="causal"`` gives ``mntp``'s causal view. Masked kinds use the very masks the MLM runs are scored on.

    With ``data.packing`` each of these batches is packed into rows as it is (same sequences, masks and labels,
    fewer rows): the scores are those of the unpacked batches up to float rounding, without the padding FLOPs.
    """
    definition = OBJECTIVE_DEFINITIONS[objective]
    if definition.hybrid or kind is not None:
        kind = kind or definition.evaluation
        objective = "mlm"  # the shared segmentation (the masks below do not depend on the kind)
    sequences = build_sequences(objective, docs, data_cfg, tokenizer_info, evaluation=True)
    stops = range(0, len(sequences), batch_size)
    if max_batches is not None:
        stops = stops[:max_batches]
    batches = []
    for begin in stops:
        ids = np.arange(begin, min(begin + batch_size, len(sequences)))
        seeds = [[data_cfg.eval_seed, _EVAL_MASK, int(i)] for i in ids]
        if kind is None:
            batch = make_batch(objective, sequences, ids, data_cfg, tokenizer_info, seeds)
        else:
            batch = make_kind_batch(kind, sequences, ids, data_cfg, tokenizer_info, seeds)
        if data_cfg.packing:
            batch = pack_batch(batch, sequences.lengths[ids], data_cfg.max_seq_length, tokenizer_info.pad_id)
        batches.append(batch)
    return batches


def control_notes(data_cfg: DataConfig, objectives: list[str]) -> list[str]:
    """Plain-language notes for the report wherever the arms do not see identical sequences."""
    notes = []
    if "clm" in objectives:
        strategy = CLM_STRATEGIES.get(data_cfg.clm_strategy)
        if strategy.changes_sequences and any(objective != "clm" for objective in objectives):
            notes.append(strategy.note)
    if uses_masking(objectives):
        notes.append(
            f"MLM strategy {data_cfg.mlm_strategy!r}: {masking_regime(data_cfg)}; evaluation masks are fixed "
            f"by data.eval_seed={data_cfg.eval_seed}."
        )
    if data_cfg.packing:
        notes.append(
            "Batches are packed (data.packing) for every arm alike: whole sequences, in each epoch's order, fill "
            f"padding-free rows of {data_cfg.max_seq_length} tokens, attention stays within each sequence and "
            "positions restart at each; a step holds training.batch_size rows, so more sequences than that."
        )
    return notes


def masking_regime(data_cfg: DataConfig) -> str:
    """How training masks are drawn under ``data.mlm_strategy``, in words (one source for notes and report)."""
    return MLM_STRATEGIES.get(data_cfg.mlm_strategy).regime(data_cfg)
