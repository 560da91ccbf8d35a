"""MLM strategies: masking and replacement rates, specials never touched, spans, whole words, static/dynamic.

Tolerances are 4 binomial standard deviations, sqrt(p (1 - p) / n), of the count being tested.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from mlmclm.data.batches import TrainStream, build_eval_batches
from mlmclm.data.masking import choose_spans
from mlmclm.data.sequences import shared_segmentation


def all_batches(objective, docs, cfg, info, seed=0, epoch=0, batch_size=16):
    return list(TrainStream(objective, docs, cfg, info, batch_size, seed).epoch(epoch))


def originals(batch):
    """Undo the masking: the label where a position was selected, the input elsewhere."""
    return np.where(batch["labels"] != -100, batch["labels"], batch["input_ids"])


def tolerance(p: float, n: int) -> float:
    return 4 * np.sqrt(p * (1 - p) / n)


@pytest.mark.parametrize("strategy", ["static", "dynamic", "span", "whole_word"])
def test_selection_rate_matches_mlm_probability_and_skips_specials_and_padding(
    strategy, tiny_documents, tiny_tokenizer, data_cfg
):
    cfg = dataclasses.replace(data_cfg, mlm_strategy=strategy)
    special = np.asarray(tiny_tokenizer.special_ids)
    selected = maskable = 0
    for batch in all_batches("mlm", tiny_documents, cfg, tiny_tokenizer):
        original = originals(batch)
        chosen = batch["labels"].numpy() != -100
        can = (batch["attention_mask"].numpy() == 1) & ~np.isin(original, special)
        assert not (chosen & ~can).any(), "a special token or a pad was selected"
        selected += chosen.sum()
        maskable += can.sum()
    assert maskable > 15000
    # word- and span-level selection is clustered, so its variance is larger: allow 3x for those
    slack = 1 if strategy in ("static", "dynamic") else 3
    assert abs(selected / maskable - 0.15) < slack * tolerance(0.15, maskable)


def test_replacement_is_80_percent_mask_10_random_10_unchanged(tiny_documents, tiny_tokenizer, data_cfg):
    masked = random = unchanged = 0
    special = set(tiny_tokenizer.special_ids) - {tiny_tokenizer.mask_id}
    for seed in range(3):
        for batch in all_batches("mlm", tiny_documents, data_cfg, tiny_tokenizer, seed=seed):
            chosen = batch["labels"] != -100
            seen, truth = batch["input_ids"][chosen], batch["labels"][chosen]
            masked += int((seen == tiny_tokenizer.mask_id).sum())
            unchanged += int((seen == truth).sum())
            replaced = seen[(seen != truth) & (seen != tiny_tokenizer.mask_id)]
            random += len(replaced)
            assert not set(replaced.tolist()) & special, "random replacement drew a special token"
    total = masked + random + unchanged
    # a random draw equals the original with probability ~1/(vocab - 5), which moves it into "unchanged"
    share = 1 / (tiny_tokenizer.vocab_size - 5)
    for observed, expected in ((masked, 0.8), (random, 0.1 * (1 - share)), (unchanged, 0.1 + 0.1 * share)):
        assert abs(observed / total - expected) < tolerance(expected, total)


def mask_pattern_by_sequence(batches):
    return {
        tuple(o[: m.sum()]): tuple(lab[: m.sum()] != -100)
        for b in batches
        for o, m, lab in zip(originals(b), b["attention_mask"].numpy(), b["labels"].numpy(), strict=True)
    }


def identical_share(cfg, docs, info, epoch_a, epoch_b):
    first = mask_pattern_by_sequence(all_batches("mlm", docs, cfg, info, epoch=epoch_a))
    second = mask_pattern_by_sequence(all_batches("mlm", docs, cfg, info, epoch=epoch_b))
    assert first.keys() == second.keys()
    return np.mean([first[k] == second[k] for k in first])


def test_static_masks_cycle_through_k_copies_and_dynamic_masks_are_redrawn(
    tiny_documents, tiny_tokenizer, data_cfg
):
    static = data_cfg.replace(mlm_strategy="static", static_mask_copies=3)
    assert identical_share(static, tiny_documents, tiny_tokenizer, 0, 3) == 1.0  # epoch 3 reuses mask 0
    assert identical_share(static, tiny_documents, tiny_tokenizer, 1, 2) < 0.05  # two different copies
    single = data_cfg.replace(mlm_strategy="static", static_mask_copies=1)
    assert identical_share(single, tiny_documents, tiny_tokenizer, 0, 1) == 1.0
    assert data_cfg.mlm_strategy == "dynamic", "fresh masks every epoch are the default"
    assert identical_share(data_cfg, tiny_documents, tiny_tokenizer, 0, 3) < 0.05


def test_run_seed_changes_static_masks(tiny_documents, tiny_tokenizer, data_cfg):
    static = dataclasses.replace(data_cfg, mlm_strategy="static")
    one = mask_pattern_by_sequence(all_batches("mlm", tiny_documents, static, tiny_tokenizer, seed=1))
    two = mask_pattern_by_sequence(all_batches("mlm", tiny_documents, static, tiny_tokenizer, seed=2))
    assert np.mean([one[k] == two[k] for k in one]) < 0.05


def test_evaluation_masks_depend_only_on_eval_seed(tiny_documents, tiny_tokenizer, data_cfg):
    first = build_eval_batches("mlm", tiny_documents, data_cfg, tiny_tokenizer, batch_size=8)
    again = build_eval_batches("mlm", tiny_documents, data_cfg, tiny_tokenizer, batch_size=8)
    other = build_eval_batches(
        "mlm", tiny_documents, dataclasses.replace(data_cfg, eval_seed=5), tiny_tokenizer, batch_size=8
    )
    assert all(torch_equal(a, b) for a, b in zip(first, again, strict=True))
    assert not all(torch_equal(a, b) for a, b in zip(first, other, strict=True))


def torch_equal(a, b):
    return all(bool((a[k] == b[k]).all()) for k in a)


def test_whole_word_masking_covers_every_piece_of_each_selected_word(
    tiny_documents, tiny_tokenizer, data_cfg
):
    cfg = dataclasses.replace(data_cfg, mlm_strategy="whole_word")
    sequences = shared_segmentation(tiny_documents, cfg.max_seq_length, tiny_tokenizer)
    multi_piece_words = 0
    for batch in TrainStream("mlm", tiny_documents, cfg, tiny_tokenizer, 10_000, seed=0).epoch(0):
        chosen = (batch["labels"] != -100).numpy()
        order = np.random.default_rng([0, 0, 0]).permutation(len(sequences))  # TrainStream's epoch-0 order
        for row, index in enumerate(order):
            start, length = sequences.starts[index], sequences.lengths[index]
            starts = sequences.word_starts[start : start + length].copy()
            starts[[0, 1, -1]] = True  # [CLS], a chunk may begin mid-word, [SEP]
            words = np.cumsum(starts)
            for word in np.unique(words[chosen[row, :length]]):
                pieces = chosen[row, :length][words == word]
                multi_piece_words += len(pieces) > 1
                assert pieces.all(), "a selected word was only partly masked"
    assert multi_piece_words > 100


def span_units(length: int, seed: int, cfg):
    maskable = np.ones(length, dtype=bool)
    return choose_spans(maskable, np.ones(length, dtype=bool), np.random.default_rng(seed), cfg)


def test_span_lengths_follow_the_clipped_geometric_distribution(data_cfg):
    from scipy import stats

    cfg = dataclasses.replace(data_cfg, mlm_strategy="span", mlm_probability=0.02)
    lengths = []
    for seed in range(150):
        units = span_units(5000, seed, cfg)
        ids = units[units >= 0]
        lengths.extend(np.bincount(ids)[:-1])  # the last span may be cut by the budget
    lengths = np.asarray(lengths)
    assert lengths.min() >= 1 and lengths.max() <= 10
    k = np.arange(1, 11)
    expected = 0.2 * 0.8 ** (k - 1) / (1 - 0.8**10)  # Geometric(0.2) renormalised on 1..10 (SpanBERT)
    assert abs(lengths.mean() - (k * expected).sum()) < 0.15  # SpanBERT reports a mean of 3.8
    observed = np.bincount(lengths, minlength=11)[1:]
    assert stats.chisquare(observed, expected * len(lengths)).pvalue > 1e-3


def test_spans_cover_whole_words_and_spend_the_budget_exactly(data_cfg):
    cfg = dataclasses.replace(data_cfg, mlm_strategy="span")
    word_starts = np.zeros(400, dtype=bool)
    word_starts[::3] = True  # every word has three pieces
    units = choose_spans(np.ones(400, dtype=bool), word_starts, np.random.default_rng(3), cfg)
    assert (units >= 0).sum() == round(0.15 * 400)
    words = np.cumsum(word_starts)
    partial = [w for w in np.unique(words[units >= 0]) if not (units[words == w] >= 0).all()]
    assert len(partial) <= 1  # only the budget cut may split a word


def distinct_target_fraction(objective, docs, cfg, info, epochs):
    stream = TrainStream(objective, docs, cfg, info, batch_size=16, seed=0)
    for epoch in range(epochs):
        for _ in stream.epoch(epoch):
            pass
    return stream.coverage.fraction, stream.coverage.targetable_tokens


@pytest.mark.parametrize(
    ("strategy", "copies"), [("dynamic", 10), ("static", 1), ("static", 2), ("static", 10)]
)
def test_distinct_target_fraction_over_epochs_matches_the_masking_regime(
    strategy, copies, tiny_documents, tiny_tokenizer, data_cfg
):
    """Over E epochs a token is ever a target with probability 1 - (1 - p)^m, m = distinct masks = min(E, k)."""
    epochs = 5
    cfg = data_cfg.replace(mlm_strategy=strategy, static_mask_copies=copies)
    fraction, targetable = distinct_target_fraction("mlm", tiny_documents, cfg, tiny_tokenizer, epochs)
    masks = epochs if strategy == "dynamic" else min(epochs, copies)
    expected = 1 - (1 - cfg.mlm_probability) ** masks
    assert targetable > 15000
    assert abs(fraction - expected) < tolerance(expected, targetable)


def test_clm_scores_every_token_of_the_text_each_epoch(tiny_documents, tiny_tokenizer, data_cfg):
    fraction, _ = distinct_target_fraction("clm", tiny_documents, data_cfg, tiny_tokenizer, epochs=1)
    assert fraction == 1.0
    packed = dataclasses.replace(data_cfg, clm_strategy="packed")
    fraction, _ = distinct_target_fraction("clm", tiny_documents, packed, tiny_tokenizer, epochs=1)
    assert 0.97 < fraction < 1.0  # the first token of each block is context only


@pytest.mark.parametrize("strategy", ["static", "dynamic", "span", "whole_word"])
def test_a_mask_does_not_depend_on_the_padded_width_of_its_batch(strategy, tiny_documents, tiny_tokenizer, data_cfg):
    """The same sequence with the same seed gets the same mask whether its batch pads it to 64 or 200 columns
    (the width is set by its longest batch-mate), so which examples share a batch changes no target."""
    from mlmclm.data.batches import make_batch

    cfg = dataclasses.replace(data_cfg, mlm_strategy=strategy)
    stream = TrainStream("mlm", tiny_documents, cfg, tiny_tokenizer, batch_size=4, seed=0)
    ids = stream.epoch_ids(0)[0][:1]
    seeds = [[12345, 0, 0]]
    narrow = make_batch("mlm", stream.sequences, ids, cfg, tiny_tokenizer, seeds, width=64)
    wide = make_batch("mlm", stream.sequences, ids, cfg, tiny_tokenizer, seeds, width=200)
    assert (narrow["labels"] != -100).any()
    for key in ("input_ids", "labels"):
        assert np.array_equal(narrow[key].numpy(), wide[key].numpy()[:, :64])
    assert (wide["labels"].numpy()[:, 64:] == -100).all()
