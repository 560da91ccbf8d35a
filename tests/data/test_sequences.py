"""Shared segmentation, CLM targets, packing and sliding windows, and the MLM/CLM sequence control."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from mlmclm.data.batches import TrainStream, budget_sequences, build_eval_batches, control_notes
from mlmclm.data.sequences import shared_segmentation

from .conftest import documents_from_lists, fake_tokenizer_info

INFO = fake_tokenizer_info()


def single_token_documents(lengths):
    """Document d consists of token 10 + d repeated, so a sequence's source document is visible."""
    return documents_from_lists([[10 + d] * n for d, n in enumerate(lengths)])


def unique_token_documents(lengths):
    """Every token of the corpus is distinct, so a label identifies exactly one target."""
    first = 10
    lists = []
    for n in lengths:
        lists.append(list(range(first, first + n)))
        first += n
    return documents_from_lists(lists)


def test_shared_segmentation_wraps_chunks_of_one_document_in_cls_and_sep(data_cfg):
    docs = single_token_documents([5, 62, 130, 1])
    sequences = shared_segmentation(docs, 64, INFO)
    rows = [sequences.stream[s : s + n] for s, n in zip(sequences.starts, sequences.lengths, strict=True)]
    assert [len(r) - 2 for r in rows] == [5, 62, 62, 62, 6, 1]
    for row in rows:
        assert row[0] == INFO.cls_id and row[-1] == INFO.sep_id
        assert len(set(row[1:-1].tolist())) == 1, "a sequence mixes documents"
    assert budget_sequences(docs, dataclasses.replace(data_cfg, max_seq_length=64)) == 6


def test_clm_labels_are_the_next_token_with_minus_100_at_the_closing_sep_the_last_token_and_pads(data_cfg):
    docs = unique_token_documents([3, 100, 7])
    (batch,) = build_eval_batches("clm", docs, data_cfg, INFO, batch_size=100)
    ids, mask, labels = batch["input_ids"], batch["attention_mask"], batch["labels"]
    for row in range(len(ids)):
        n = int(mask[row].sum())
        assert ids[row, n - 1] == INFO.sep_id
        assert torch.equal(labels[row, : n - 2], ids[row, 1 : n - 1])
        assert (labels[row, n - 2 :] == -100).all()
        assert (ids[row, n:] == INFO.pad_id).all() and (mask[row, n:] == 0).all()


def test_standard_clm_never_predicts_across_documents(data_cfg):
    docs = single_token_documents([30, 80, 5, 200])
    for batch in TrainStream("clm", docs, data_cfg, INFO, batch_size=4, seed=0).epoch(0):
        for ids, labels in zip(batch["input_ids"], batch["labels"], strict=True):
            content = set(ids[(ids >= 10)].tolist()) | set(labels[labels >= 10].tolist())
            assert len(content) == 1


def test_mlm_and_clm_see_the_same_sequences_in_the_same_order(tiny_documents, tiny_tokenizer, data_cfg):
    mlm = TrainStream("mlm", tiny_documents, data_cfg, tiny_tokenizer, batch_size=8, seed=3)
    clm = TrainStream("clm", tiny_documents, data_cfg, tiny_tokenizer, batch_size=8, seed=3)
    assert (
        mlm.batches_per_epoch == clm.batches_per_epoch == -(-budget_sequences(tiny_documents, data_cfg) // 8)
    )
    for m, c in zip(mlm.epoch(2), clm.epoch(2), strict=True):
        restored = torch.where(m["labels"] != -100, m["labels"], m["input_ids"])
        assert torch.equal(restored, c["input_ids"]) and torch.equal(m["attention_mask"], c["attention_mask"])
    first, other = next(clm.epoch(0)), next(clm.epoch(1))
    assert not torch.equal(first["input_ids"], other["input_ids"]), "epochs should reshuffle"


def test_train_stream_is_deterministic_given_seed_and_epoch(tiny_documents, tiny_tokenizer, data_cfg):
    run = [
        b["input_ids"] for b in TrainStream("mlm", tiny_documents, data_cfg, tiny_tokenizer, 8, 9).epoch(4)
    ]
    again = [
        b["input_ids"] for b in TrainStream("mlm", tiny_documents, data_cfg, tiny_tokenizer, 8, 9).epoch(4)
    ]
    assert all(torch.equal(a, b) for a, b in zip(run, again, strict=True))


def test_packed_clm_fills_full_blocks_with_documents_joined_by_sep(data_cfg):
    cfg = dataclasses.replace(data_cfg, clm_strategy="packed")
    docs = unique_token_documents([50, 90, 20])
    (batch,) = build_eval_batches("clm", docs, cfg, INFO, batch_size=10)
    lengths = batch["attention_mask"].sum(1).tolist()
    assert lengths == [64, 64, 163 - 128]
    stream = batch["input_ids"][batch["attention_mask"] == 1]
    assert (stream == INFO.sep_id).nonzero().flatten().tolist() == [50, 141, 162]
    assert torch.equal(stream[stream != INFO.sep_id], torch.arange(10, 170))


def reference_sliding_window_targets(n: int, window: int, stride: int) -> list[tuple[int, int]]:
    """The Hugging Face perplexity recipe: (target index, tokens of context) for every scored target."""
    scored, previous_end = [], 0
    for begin in range(0, n, stride):
        end = min(begin + window, n)
        for target in range(max(previous_end, begin + 1), end):
            scored.append((target, target - begin))
        previous_end = end
        if end == n:
            break
    return scored


def test_sliding_window_evaluation_scores_every_token_once_with_the_longest_context(data_cfg):
    lengths = [10, 62, 63, 200, 333]
    docs = unique_token_documents(lengths)
    batches = build_eval_batches(
        "clm", docs, dataclasses.replace(data_cfg, clm_strategy="sliding_window"), INFO, batch_size=3
    )
    scored = {}
    for batch in batches:
        for labels in batch["labels"]:
            for position in (labels != -100).nonzero().flatten().tolist():
                target = int(labels[position])
                assert target not in scored, "a token was scored twice"
                scored[target] = position + 1  # tokens of context, [CLS] included
    assert sorted(scored) == list(range(10, 10 + sum(lengths)))
    first = 10
    for n in lengths:  # the wrapped document is [CLS] tokens [SEP]: n + 2 positions
        for target, context in reference_sliding_window_targets(n + 2, 64, 24):
            if target <= n:
                assert scored[first + target - 1] == context
        first += n


def test_sliding_window_training_uses_overlapping_windows(data_cfg):
    cfg = dataclasses.replace(data_cfg, clm_strategy="sliding_window")
    docs = unique_token_documents([200])
    stream = TrainStream("clm", docs, cfg, INFO, batch_size=100, seed=0)
    assert len(stream.sequences) == 1 + -(-(202 - 64) // 24)
    assert stream.sequences.starts.tolist() == [0, 24, 48, 72, 96, 120, 144]


def test_control_notes_flag_strategies_that_change_one_arm_only(data_cfg):
    assert not any("CLM" in note for note in control_notes(data_cfg, ["mlm", "clm"]))
    for strategy in ("packed", "sliding_window"):
        notes = control_notes(dataclasses.replace(data_cfg, clm_strategy=strategy), ["mlm", "clm"])
        assert any(note.startswith("CLM") for note in notes)
    assert control_notes(dataclasses.replace(data_cfg, clm_strategy="packed"), ["clm"]) == []
    assert "redrawn every epoch" in control_notes(data_cfg, ["mlm"])[0]
    static = control_notes(data_cfg.replace(mlm_strategy="static", static_mask_copies=4), ["mlm"])
    assert "4 per sequence" in static[0] and "epoch e uses mask e mod 4" in static[0]


@pytest.mark.parametrize("strategy", ["standard", "packed", "sliding_window"])
def test_no_special_token_is_a_clm_target_in_training_or_evaluation(strategy, data_cfg):
    """A closing [SEP] at a fixed position would be predicted for free by absolute positions."""
    cfg = dataclasses.replace(data_cfg, clm_strategy=strategy)
    docs = unique_token_documents([3, 61, 62, 63, 200, 9])
    train = list(TrainStream("clm", docs, cfg, INFO, batch_size=2, seed=0).epoch(0))
    for batch in train + build_eval_batches("clm", docs, cfg, INFO, batch_size=2):
        targets = batch["labels"][batch["labels"] != -100]
        assert len(targets) and not torch.isin(targets, torch.tensor(INFO.special_ids)).any()


def epoch_tokens(stream, epochs, micro_batches=None):
    """Non-pad tokens of the first ``micro_batches`` micro-batches over ``epochs`` epochs."""
    batches = [batch for epoch in range(epochs) for batch in stream.epoch(epoch)][:micro_batches]
    return sum(int(batch["attention_mask"].sum()) for batch in batches), len(batches)


@pytest.mark.parametrize("strategy", ["packed", "sliding_window"])
def test_clm_strategies_process_the_same_non_pad_tokens_per_step_as_the_shared_segmentation(
    strategy, tiny_documents, tiny_tokenizer, data_cfg
):
    """Under a shared step budget each arm must see about the same real tokens (8x more for packed before)."""
    cfg = data_cfg.replace(max_seq_length=256, sliding_window_stride=128)
    shared = TrainStream("clm", tiny_documents, cfg, tiny_tokenizer, batch_size=16, seed=0)
    steps = 3 * len(shared)
    shared_tokens, _ = epoch_tokens(shared, 3)
    other = TrainStream(
        "clm", tiny_documents, dataclasses.replace(cfg, clm_strategy=strategy), tiny_tokenizer, 16, seed=0
    )
    other_tokens, taken = epoch_tokens(other, 10, steps)
    assert taken == steps
    assert abs(other_tokens / shared_tokens - 1) < 0.05
    assert shared.shared_tokens_per_batch == other.shared_tokens_per_batch
    assert abs(shared_tokens / (steps * shared.shared_tokens_per_batch) - 1) < 0.02


def test_token_matched_micro_batches_hold_at_least_one_sequence_each(data_cfg):
    """Blocks longer than the token target still train, one per micro-batch; the excess shows in the ratio."""
    cfg = dataclasses.replace(data_cfg, clm_strategy="packed")
    docs = unique_token_documents([5] * 40)  # shared sequences of 7 tokens, packed blocks of 64
    stream = TrainStream("clm", docs, cfg, INFO, batch_size=2, seed=0)
    assert stream.shared_tokens_per_batch == 14
    sizes = [len(batch["input_ids"]) for batch in stream.epoch(0)]
    assert sizes == [1] * len(stream.sequences)
