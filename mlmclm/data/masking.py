"""MLM masking strategies: which positions are predicted, and what the model sees there.

A strategy picks *units* (a token, a word or a span) until about ``mlm_probability`` of the maskable
tokens are selected; special tokens and padding are never maskable. Each unit is then replaced as in BERT
(Devlin et al., 2019, §3.1): by [MASK] with probability ``mask_replace_prob`` (0.8), by a random
non-special token with ``random_replace_prob`` (0.1), else left unchanged. Span and whole-word strategies
decide replacement per unit, as SpanBERT does per span (Joshi et al., 2020, §3.1).

Each example's draws come from its own generator seeded by (seed, example index, epoch or mask copy), so a
mask does not depend on which other examples share its batch. When masks are drawn is the strategy's
``regime``: ``dynamic`` draws a fresh mask every epoch (RoBERTa, Liu et al., 2019, §4.1); ``static`` draws
``data.static_mask_copies`` masks per sequence and cycles through them over the epochs, which is what BERT's
duplication of its training data with 10 different masks amounts to (Devlin et al., 2019, §3.1, App. A;
Liu et al., 2019, §4.1: over 40 epochs "each training sequence was seen with the same mask four times").
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from scipy import stats

from mlmclm.config import DataConfig, ExperimentConfig, require_open_unit, require_positive
from mlmclm.data.tokenizer import TokenizerInfo
from mlmclm.objectives import uses_masking
from mlmclm.registry import Registry

UnitChooser = Callable[[np.ndarray, np.ndarray, np.random.Generator, DataConfig], np.ndarray]

# Every MLM strategy, in the order shown to users; filled at the bottom of this file.
MLM_STRATEGIES: Registry = Registry(
    "MLM strategy",
    settings_section="data",
    chosen_by="data.mlm_strategy",
    is_chosen=lambda config, name: uses_masking(config.objectives) and config.data.mlm_strategy == name,
)


@dataclass(frozen=True)
class MaskingStrategy:
    """``choose(maskable, word_starts, rng, cfg)`` returns a unit id per position (-1: not selected).

    ``fresh_each_epoch``: a new mask every epoch; otherwise ``data.static_mask_copies`` masks, reused in turn.
    """

    choose: UnitChooser
    fresh_each_epoch: bool

    def mask_copy(self, epoch: int, cfg: DataConfig) -> int:
        """Which of the example's masks epoch ``epoch`` uses: the epoch itself, or epoch mod k (static)."""
        return epoch if self.fresh_each_epoch else epoch % cfg.settings("static").mask_copies

    def regime(self, cfg: DataConfig) -> str:
        """The masking regime in words, for the control notes and the report."""
        if self.fresh_each_epoch:
            return "masks redrawn every epoch (dynamic, RoBERTa §4.1)"
        k = cfg.settings("static").mask_copies
        if k == 1:
            return "static masks: one per sequence, drawn once and reused every epoch"
        return (
            f"static masks: {k} per sequence, drawn once and used in turn (epoch e uses mask e mod {k}), as "
            f"BERT's {k}-fold duplication of its data (Devlin et al., 2019; Liu et al., 2019, §4.1)"
        )


def choose_tokens(
    maskable: np.ndarray, word_starts: np.ndarray, rng: np.random.Generator, cfg: DataConfig
) -> np.ndarray:
    """Each maskable token independently with probability ``mlm_probability`` (BERT; RoBERTa)."""
    selected = maskable & (rng.random(len(maskable)) < cfg.mlm_probability)
    return np.where(selected, np.arange(len(maskable)), -1)


def word_ids(maskable: np.ndarray, word_starts: np.ndarray) -> np.ndarray:
    """Word index of every position; a word also starts after any non-maskable position (e.g. [CLS])."""
    starts = word_starts | ~maskable
    starts[1:] |= ~maskable[:-1]
    return np.cumsum(starts) - 1


def choose_whole_words(
    maskable: np.ndarray, word_starts: np.ndarray, rng: np.random.Generator, cfg: DataConfig
) -> np.ndarray:
    """Whole words with probability ``mlm_probability``, all of their sub-tokens together (BERT WWM, 2019)."""
    words = word_ids(maskable, word_starts)
    chosen = rng.random(int(words[-1]) + 1 if len(words) else 0) < cfg.mlm_probability
    return np.where(maskable & chosen[words], words, -1)


def span_length_distribution(p: float, max_length: int) -> np.ndarray:
    """P(len = 1..max_length): Geometric(p) truncated at ``max_length`` and renormalised (SpanBERT §3.1)."""
    pmf = stats.geom.pmf(np.arange(1, max_length + 1), p)
    return pmf / pmf.sum()


def choose_spans(
    maskable: np.ndarray, word_starts: np.ndarray, rng: np.random.Generator, cfg: DataConfig
) -> np.ndarray:
    """Contiguous spans of whole words, lengths ~ clipped Geometric(p), until the token budget is spent.

    As in SpanBERT (Joshi et al., 2020): a span starts at a random unmasked word; its length in words is
    drawn from Geo(``span_geometric_p``) clipped at ``span_max_length`` (mean 3.8 for p = 0.2, max 10); the
    last span is cut where the budget of round(``mlm_probability`` x maskable tokens) is met.
    """
    units = np.full(len(maskable), -1, dtype=np.int64)
    candidate_positions = np.flatnonzero(maskable)
    if len(candidate_positions) == 0:
        return units
    budget = max(1, round(cfg.mlm_probability * len(candidate_positions)))
    words = word_ids(maskable, word_starts)
    first = np.flatnonzero(maskable & np.r_[True, words[1:] != words[:-1]])  # first token of maskable words
    ends = first + np.bincount(words)[words[first]]  # a maskable word is a run of one word id
    span = cfg.settings("span")
    lengths = span_length_distribution(span.geometric_p, span.max_length)
    masked = 0
    span = 0
    while masked < budget:
        draws = max(budget - masked, 8)
        for anchor, length in zip(
            rng.integers(len(first), size=draws),
            rng.choice(np.arange(1, len(lengths) + 1), size=draws, p=lengths), strict=True,
        ):
            if units[first[anchor]] >= 0:
                continue  # SpanBERT re-draws anchors that fall inside an existing span
            last_word = min(anchor + length, len(first)) - 1
            covered = np.arange(first[anchor], ends[last_word])
            covered = covered[(units[covered] < 0) & maskable[covered]][: budget - masked]
            units[covered] = span
            masked += len(covered)
            span += 1
            if masked >= budget:
                break
    return units


@functools.lru_cache(maxsize=8)
def non_special_ids(vocab_size: int, special_ids: tuple[int, ...]) -> np.ndarray:
    """The ids a random replacement draws from; computed once per tokenizer, not once per batch."""
    ids = np.setdiff1d(np.arange(vocab_size), np.asarray(special_ids))
    ids.flags.writeable = False
    return ids


def apply_masking(
    input_ids: np.ndarray,
    maskable: np.ndarray,
    word_starts: np.ndarray,
    rngs: list[np.random.Generator],
    strategy: MaskingStrategy,
    cfg: DataConfig,
    info: TokenizerInfo,
) -> tuple[np.ndarray, np.ndarray]:
    """Masked ``input_ids`` and ``labels`` (original token at selected positions, -100 elsewhere)."""
    masked_ids = input_ids.copy()
    labels = np.full_like(input_ids, -100)
    replaceable = non_special_ids(info.vocab_size, info.special_ids)
    for row, rng in enumerate(rngs):
        # draw over the row up to its last maskable token: the padding a batch adds changes no draw
        end = int(np.flatnonzero(maskable[row])[-1]) + 1 if maskable[row].any() else 0
        units = np.full(maskable.shape[1], -1, dtype=np.int64)
        units[:end] = strategy.choose(maskable[row, :end], word_starts[row, :end], rng, cfg)
        selected = units >= 0
        if not selected.any():
            continue
        _, unit_index = np.unique(units[selected], return_inverse=True)
        decision = rng.random(int(unit_index.max()) + 1)[unit_index]
        positions = np.flatnonzero(selected)
        labels[row, positions] = input_ids[row, positions]
        to_mask = positions[decision < cfg.mask_replace_prob]
        to_random = positions[
            (decision >= cfg.mask_replace_prob) & (decision < cfg.mask_replace_prob + cfg.random_replace_prob)
        ]
        masked_ids[row, to_mask] = info.mask_id
        masked_ids[row, to_random] = rng.choice(replaceable, size=len(to_random))
    return masked_ids, labels


@dataclass(frozen=True)
class StaticMasksConfig:
    """``data.static_mask_copies``: masks drawn per sequence and used in turn (BERT: 10)."""

    UNUSED_REASON: ClassVar[str] = "mask copies are only used by the MLM static strategy"
    mask_copies: int = 10

    def check(self, config: ExperimentConfig) -> None:
        require_positive("data.static_mask_copies", self.mask_copies)


@dataclass(frozen=True)
class SpanConfig:
    """``data.span_geometric_p`` and ``data.span_max_length``: span lengths ~ Geo(p) clipped (SpanBERT §3.1)."""

    UNUSED_REASON: ClassVar[str] = "span lengths are only used by the MLM span strategy"
    geometric_p: float = 0.2
    max_length: int = 10

    def check(self, config: ExperimentConfig) -> None:
        require_open_unit("data.span_geometric_p", self.geometric_p)
        require_positive("data.span_max_length", self.max_length)


MLM_STRATEGIES.register("static", settings=StaticMasksConfig)(MaskingStrategy(choose_tokens, fresh_each_epoch=False))
MLM_STRATEGIES.register("dynamic")(MaskingStrategy(choose_tokens, fresh_each_epoch=True))
MLM_STRATEGIES.register("span", settings=SpanConfig)(MaskingStrategy(choose_spans, fresh_each_epoch=True))
MLM_STRATEGIES.register("whole_word")(MaskingStrategy(choose_whole_words, fresh_each_epoch=True))
