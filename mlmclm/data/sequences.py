"""Model input sequences cut from tokenized documents, and the CLM sequence strategies.

The shared segmentation is the control of the comparison: each document's tokens are cut into chunks of
``max_seq_length - 2`` and each chunk is wrapped as ``[CLS] chunk [SEP]``; MLM always uses it and CLM uses
it under ``clm_strategy: standard``, so both objectives see the same sequences. ``packed`` and
``sliding_window`` change how CLM sequences are built, which :func:`mlmclm.data.batches.control_notes`
reports. Sequences are stored as (start, length) rows of one materialised token stream, so a batch is a
single vectorised gather.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from mlmclm.config import DataConfig, ExperimentConfig, require_positive
from mlmclm.data.token_cache import TokenizedDocuments
from mlmclm.data.tokenizer import TokenizerInfo
from mlmclm.errors import ConfigError
from mlmclm.registry import Registry


@dataclass(frozen=True)
class SequenceSet:
    """Sequence i is ``stream[starts[i]:starts[i] + lengths[i]]``; labels count from ``score_from[i]`` on."""

    stream: np.ndarray
    word_starts: np.ndarray
    starts: np.ndarray
    lengths: np.ndarray
    score_from: np.ndarray

    def __len__(self) -> int:
        return len(self.starts)

    @property
    def num_tokens(self) -> int:
        return int(self.lengths.sum())


@dataclass(frozen=True)
class SequenceStrategy:
    """How a CLM arm builds sequences; ``changes_sequences``: it departs from the shared segmentation."""

    build: Callable[[TokenizedDocuments, DataConfig, TokenizerInfo, bool], SequenceSet]
    changes_sequences: bool
    note: str


# Every CLM strategy, in the order shown to users; filled at the bottom of this file.
CLM_STRATEGIES: Registry = Registry(
    "CLM strategy",
    settings_section="data",
    chosen_by="data.clm_strategy",
    is_chosen=lambda config, name: "clm" in config.objectives and config.data.clm_strategy == name,
)


def concatenated_ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """``concatenate([arange(s, s + n) for s, n in zip(starts, lengths)])`` without a Python loop."""
    lengths = np.asarray(lengths, dtype=np.int64)
    total = int(lengths.sum())
    firsts = np.cumsum(lengths) - lengths
    return np.repeat(np.asarray(starts, dtype=np.int64) - firsts, lengths) + np.arange(total, dtype=np.int64)


def num_shared_chunks(docs: TokenizedDocuments, max_seq_length: int) -> np.ndarray:
    """Chunks per document under the shared segmentation: ceil(len / (max_seq_length - 2))."""
    return -(-docs.lengths // (max_seq_length - 2))


def _shared_chunks(docs: TokenizedDocuments, max_seq_length: int) -> tuple[np.ndarray, np.ndarray]:
    """Where every shared chunk starts in ``docs.tokens`` and how long it is, in document order."""
    chunk = max_seq_length - 2
    per_doc = num_shared_chunks(docs, max_seq_length)
    doc_of = np.repeat(np.arange(len(docs)), per_doc)
    index_in_doc = np.arange(len(doc_of)) - np.repeat(np.cumsum(per_doc) - per_doc, per_doc)
    source = docs.offsets[:-1][doc_of] + index_in_doc * chunk
    return source, np.minimum(chunk, docs.offsets[1:][doc_of] - source)


def shared_lengths(docs: TokenizedDocuments, max_seq_length: int) -> np.ndarray:
    """Sequence lengths of :func:`shared_segmentation`, without materialising its token stream."""
    return _shared_chunks(docs, max_seq_length)[1] + 2


def shared_segmentation(docs: TokenizedDocuments, max_seq_length: int, info: TokenizerInfo) -> SequenceSet:
    """Every document cut into chunks of ``max_seq_length - 2`` tokens, each wrapped as [CLS] chunk [SEP]."""
    source, chunk_lengths = _shared_chunks(docs, max_seq_length)
    return _wrap_chunks(docs, source, chunk_lengths, info)


def _wrap_chunks(
    docs: TokenizedDocuments, source: np.ndarray, chunk_lengths: np.ndarray, info: TokenizerInfo
) -> SequenceSet:
    """Materialise [CLS] tokens[source:source+len] [SEP] for every chunk into one stream."""
    lengths = chunk_lengths + 2
    starts = np.cumsum(lengths) - lengths
    stream = np.empty(int(lengths.sum()), dtype=np.int32)
    word_starts = np.ones(len(stream), dtype=bool)
    stream[starts] = info.cls_id
    stream[starts + lengths - 1] = info.sep_id
    destination = concatenated_ranges(starts + 1, chunk_lengths)
    origin = concatenated_ranges(source, chunk_lengths)
    stream[destination] = docs.tokens[origin]
    word_starts[destination] = docs.word_starts[origin]
    return SequenceSet(stream, word_starts, starts, lengths, np.zeros(len(starts), dtype=np.int64))


def packed_blocks(docs: TokenizedDocuments, max_seq_length: int, info: TokenizerInfo) -> SequenceSet:
    """Documents joined by [SEP] into one stream, cut into full ``max_seq_length`` blocks (GPT-2 packing).

    Attention crosses document boundaries inside a block; the last block may be shorter.
    """
    total = docs.num_tokens + len(docs)
    stream = np.empty(total, dtype=np.int32)
    word_starts = np.ones(total, dtype=bool)
    shifted = np.arange(docs.num_tokens) + np.repeat(np.arange(len(docs)), docs.lengths)
    stream[shifted] = docs.tokens
    word_starts[shifted] = docs.word_starts
    stream[docs.offsets[1:] + np.arange(len(docs))] = info.sep_id
    starts = np.arange(0, total, max_seq_length, dtype=np.int64)
    lengths = np.minimum(max_seq_length, total - starts)
    return SequenceSet(stream, word_starts, starts, lengths, np.zeros(len(starts), dtype=np.int64))


def sliding_windows(
    docs: TokenizedDocuments, max_seq_length: int, stride: int, info: TokenizerInfo, evaluation: bool
) -> SequenceSet:
    """Overlapping windows over each [CLS] document [SEP], ``stride`` tokens apart.

    In evaluation every next-token target is scored exactly once, by the window that sees it with the
    longest context: a window after the first scores only targets beyond the previous window's end, i.e.
    label positions from ``max_seq_length - stride - 1`` on (the Hugging Face perplexity recipe).
    """
    wrapped = _wrap_chunks(docs, docs.offsets[:-1], docs.lengths, info)
    n = wrapped.lengths
    per_doc = np.where(n <= max_seq_length, 1, -(-(n - max_seq_length) // stride) + 1)
    doc_of = np.repeat(np.arange(len(n)), per_doc)
    index_in_doc = np.arange(len(doc_of)) - np.repeat(np.cumsum(per_doc) - per_doc, per_doc)
    begin = index_in_doc * stride
    lengths = np.minimum(max_seq_length, n[doc_of] - begin)
    score_from = np.where(evaluation & (index_in_doc > 0), max_seq_length - stride - 1, 0)
    return SequenceSet(
        wrapped.stream,
        wrapped.word_starts,
        wrapped.starts[doc_of] + begin,
        lengths,
        score_from.astype(np.int64),
    )


def collate_sequences(
    sequences: SequenceSet, ids: np.ndarray, pad_id: int, width: int | None = None
) -> tuple[np.ndarray, ...]:
    """Right-padded ``input_ids``, ``attention_mask``, ``word_starts`` [B, T] and ``score_from`` [B].

    T is ``width``, by default the longest sequence's length."""
    lengths = sequences.lengths[ids]
    width = int(lengths.max()) if width is None else width
    positions = np.arange(width)
    real = positions[None, :] < lengths[:, None]
    gather = np.where(real, sequences.starts[ids][:, None] + positions[None, :], 0)
    input_ids = np.where(real, sequences.stream[gather], pad_id).astype(np.int64)
    word_starts = np.where(real, sequences.word_starts[gather], True)
    return input_ids, real.astype(np.int64), word_starts, sequences.score_from[ids]


def next_token_labels(
    input_ids: np.ndarray,
    attention_mask: np.ndarray,
    score_from: np.ndarray,
    unscored_ids: tuple[int, ...] = (),
) -> np.ndarray:
    """labels[t] = input_ids[t + 1] before the last real token; -100 there, at pads, at t < score_from and
    where the next token is one of ``unscored_ids``.

    The batches pass the special ids: a chunk's closing [SEP] sits right after its last token, at a position
    fixed by the chunk length, so mechanisms with absolute positions would predict it nearly for free and
    inflate CLM accuracy; MLM never scores special tokens either, so neither objective does.
    """
    labels = np.full_like(input_ids, -100)
    labels[:, :-1] = input_ids[:, 1:]
    positions = np.arange(input_ids.shape[1])[None, :]
    scored = (positions + 1 < attention_mask.sum(axis=1, keepdims=True)) & (positions >= score_from[:, None])
    scored &= ~np.isin(labels, np.asarray(unscored_ids, dtype=labels.dtype))
    return np.where(scored, labels, -100)


CLM_STRATEGIES.register("standard")(
    SequenceStrategy(
        build=lambda docs, cfg, info, evaluation: shared_segmentation(docs, cfg.max_seq_length, info),
        changes_sequences=False,
        note="CLM uses the shared segmentation ([CLS] chunk [SEP] per document chunk), like MLM.",
    )
)
CLM_STRATEGIES.register("packed")(
    SequenceStrategy(
        build=lambda docs, cfg, info, evaluation: packed_blocks(docs, cfg.max_seq_length, info),
        changes_sequences=True,
        note="CLM packs documents joined by [SEP] into full blocks (attention crosses documents) while MLM "
        "uses [CLS] chunk [SEP] sequences: the arms see the same text in different sequences and order. "
        "CLM micro-batches hold fewer, longer blocks (about training.batch_size x the mean shared sequence "
        "length in non-pad tokens), so both arms process about the same non-pad tokens per step; each run "
        "records the actual ratio (tokens.processed_vs_shared).",
    )
)
@dataclass(frozen=True)
class SlidingWindowConfig:
    """``data.sliding_window_stride``: tokens between the starts of consecutive windows."""

    UNUSED_REASON: ClassVar[str] = "the stride is only used by the CLM sliding_window strategy"
    stride: int = 256

    def check(self, config: ExperimentConfig) -> None:
        require_positive("data.sliding_window_stride", self.stride)
        data = config.data
        used = "clm" in config.objectives and data.clm_strategy == "sliding_window"
        if used and self.stride >= data.max_seq_length:
            raise ConfigError(
                f"data.sliding_window_stride ({self.stride}) must be smaller than "
                f"data.max_seq_length ({data.max_seq_length})"
            )


CLM_STRATEGIES.register("sliding_window", settings=SlidingWindowConfig)(
    SequenceStrategy(
        build=lambda docs, cfg, info, evaluation: sliding_windows(
            docs, cfg.max_seq_length, cfg.settings("sliding_window").stride, info, evaluation
        ),
        changes_sequences=True,
        note="CLM trains on overlapping sliding windows (stride data.sliding_window_stride) and scores each "
        "evaluation token once with the longest context, while MLM uses non-overlapping [CLS] chunk [SEP] "
        "sequences: CLM sees overlapping sequences and more context per evaluated token. CLM micro-batches "
        "are filled to about training.batch_size x the mean shared sequence length in non-pad tokens, so "
        "both arms process about the same non-pad tokens per step, but CLM repeats the overlapping tokens "
        "and needs more steps per pass over the text; each run records the actual ratio "
        "(tokens.processed_vs_shared).",
    )
)
