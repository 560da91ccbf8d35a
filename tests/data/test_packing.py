"""Packed batches (``data.packing``): next-fit rows, every sequence once, fresh positions, labels inside a
sequence, masks as unpacked, the budget counted in rows."""

from __future__ import annotations

import numpy as np
import pytest

from mlmclm.config import TrainingConfig
from mlmclm.data.batches import (
    TrainStream,
    budget_units,
    build_eval_batches,
    control_notes,
    make_batch,
    objective_schedule,
)
from mlmclm.data.packing import pack_rows, split_rows
from mlmclm.data.sequences import shared_lengths, shared_segmentation


@pytest.fixture
def packed_cfg(data_cfg):
    return data_cfg.replace(packing=True)


def sequence_of(stream: TrainStream, index: int) -> np.ndarray:
    sequences = stream.sequences
    return sequences.stream[sequences.starts[index] : sequences.starts[index] + sequences.lengths[index]]


def row_sequences(batch) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(input ids, labels, position ids) of every sequence of a packed batch, row by row, left to right."""
    found = []
    ids, labels = batch["input_ids"].numpy(), batch["labels"].numpy()
    segments, positions = batch["segment_ids"].numpy(), batch["position_ids"].numpy()
    for row in range(len(ids)):
        for segment in range(1, int(segments[row].max()) + 1):
            where = segments[row] == segment
            found.append((ids[row, where], labels[row, where], positions[row, where]))
    return found


def test_rows_are_filled_in_order_and_a_sequence_that_does_not_fit_opens_the_next():
    assert pack_rows(np.array([5, 3, 7, 4, 12, 1]), 12).tolist() == [0, 0, 1, 1, 2, 3]
    with pytest.raises(ValueError, match="does not fit"):
        pack_rows(np.array([13]), 12)


def test_micro_batches_cut_the_order_at_row_boundaries():
    lengths = np.array([5, 3, 7, 4, 12, 1, 6, 6])  # rows: [0 1] [2 3] [4] [5 6] [7]
    pieces = split_rows(np.arange(8), lengths, 12, rows_per_batch=2)
    assert [piece.tolist() for piece in pieces] == [[0, 1, 2, 3], [4, 5, 6], [7]]


@pytest.mark.parametrize(("objective", "clm_strategy"),
                         [("mlm", "standard"), ("clm", "standard"), ("clm", "packed"), ("clm", "sliding_window")])
def test_an_epoch_packs_every_sequence_exactly_once_in_the_epoch_order(objective, clm_strategy, tiny_documents,
                                                                      tiny_tokenizer, packed_cfg):
    packed_cfg = packed_cfg.replace(clm_strategy=clm_strategy)
    stream = TrainStream(objective, tiny_documents, packed_cfg, tiny_tokenizer, batch_size=4, seed=2)
    pieces = stream.epoch_ids(1)
    order = np.random.default_rng([2, 0, 1]).permutation(len(stream.sequences))  # TrainStream's _ORDER tag
    assert np.concatenate(pieces).tolist() == order.tolist()
    seen = []
    for ids, batch in zip(pieces, stream.epoch(1), strict=True):
        assert len(batch["input_ids"]) <= 4 and batch["input_ids"].shape[1] <= packed_cfg.max_seq_length
        assert int(batch["attention_mask"].sum()) == int(stream.sequences.lengths[ids].sum())
        found = row_sequences(batch)
        assert len(found) == len(ids)
        for index, (tokens, _, positions) in zip(ids, found, strict=True):
            if objective == "clm":  # MLM inputs are masked; their originals are checked below
                assert tokens.tolist() == sequence_of(stream, index).tolist()
            assert positions.tolist() == list(range(len(tokens)))  # 0 at each sequence's [CLS]
        seen.extend(ids.tolist())
    assert sorted(seen) == list(range(len(stream.sequences)))


def test_packing_fills_rows_and_pads_only_row_ends(tiny_documents, tiny_tokenizer, packed_cfg):
    batch = next(TrainStream("mlm", tiny_documents, packed_cfg, tiny_tokenizer, batch_size=4, seed=0).epoch(0))
    real = batch["attention_mask"].numpy().astype(bool)
    assert (batch["segment_ids"].numpy() > 0).tolist() == real.tolist()
    for row in real:  # padding only after the last sequence of a row
        assert not row[np.argmin(row):].any() or row.all()
    assert real.mean() > 0.8  # the unpacked batches of these documents are mostly padding


def test_packed_streams_are_a_pure_function_of_seed_and_epoch(tiny_documents, tiny_tokenizer, packed_cfg):
    def batches():
        stream = TrainStream("mlm", tiny_documents, packed_cfg, tiny_tokenizer, batch_size=4, seed=9)
        return [{k: v.numpy().tolist() for k, v in b.items()} for b in stream.epoch(3)]

    assert batches() == batches()


def test_clm_labels_never_cross_a_sequence_boundary(tiny_documents, tiny_tokenizer, packed_cfg):
    stream = TrainStream("clm", tiny_documents, packed_cfg, tiny_tokenizer, batch_size=4, seed=1)
    for batch in stream.epoch(0):
        ids, labels, segments = (batch[k].numpy() for k in ("input_ids", "labels", "segment_ids"))
        rows, columns = np.nonzero(labels != -100)
        assert (segments[rows, columns + 1] == segments[rows, columns]).all()
        assert (labels[rows, columns] == ids[rows, columns + 1]).all()
        assert (labels[:, -1] == -100).all()


def test_mlm_masks_are_those_of_the_same_sequences_unpacked(tiny_documents, tiny_tokenizer, data_cfg, packed_cfg):
    """A mask depends on its sequence's seed and on the batch width; packed batches draw at max_seq_length,
    which is the width of every unpacked batch that holds a full-length sequence."""
    packed = TrainStream("mlm", tiny_documents, packed_cfg, tiny_tokenizer, batch_size=4, seed=5)
    unpacked = TrainStream("mlm", tiny_documents, data_cfg, tiny_tokenizer, batch_size=4, seed=5)
    reference = {}
    for ids, batch in zip(unpacked.epoch_ids(2), unpacked.epoch(2), strict=True):
        if batch["input_ids"].shape[1] == data_cfg.max_seq_length:
            for row, index in enumerate(ids):
                n = int(unpacked.sequences.lengths[index])
                reference[int(index)] = (batch["input_ids"][row, :n].tolist(), batch["labels"][row, :n].tolist())
    compared = 0
    for ids, batch in zip(packed.epoch_ids(2), packed.epoch(2), strict=True):
        for index, (tokens, labels, _) in zip(ids, row_sequences(batch), strict=True):
            if int(index) in reference:
                assert (tokens.tolist(), labels.tolist()) == reference[int(index)]
                compared += 1
    assert compared > 50


def test_target_coverage_counts_the_same_targets_packed_or_not(tiny_documents, tiny_tokenizer, data_cfg, packed_cfg):
    """CLM scores every non-special next token once per epoch whatever the batching."""
    counts = []
    for cfg in (data_cfg, packed_cfg):
        stream = TrainStream("clm", tiny_documents, cfg, tiny_tokenizer, batch_size=4, seed=0)
        for _ in stream.epoch(0):
            pass
        counts.append(stream.coverage.fraction)
    assert counts[0] == counts[1] > 0.9


def test_evaluation_batches_hold_the_same_targets_packed(tiny_documents, tiny_tokenizer, data_cfg):
    data_cfg = data_cfg.replace(max_seq_length=256)  # whole documents, mostly shorter than a row
    packed_cfg = data_cfg.replace(packing=True)
    for objective in ("mlm", "clm"):
        plain = build_eval_batches(objective, tiny_documents, data_cfg, tiny_tokenizer, 8, max_batches=3)
        packed = build_eval_batches(objective, tiny_documents, packed_cfg, tiny_tokenizer, 8, max_batches=3)
        for a, b in zip(plain, packed, strict=True):
            assert a["labels"][a["labels"] != -100].tolist() == b["labels"][b["labels"] != -100].tolist()
            assert int(a["attention_mask"].sum()) == int(b["attention_mask"].sum())
            assert b["input_ids"].numel() <= a["input_ids"].numel()
        assert sum(b["input_ids"].numel() for b in packed) < sum(a["input_ids"].numel() for a in plain)


def test_hybrid_kinds_follow_the_micro_batch_index_across_packed_epochs(tiny_documents, tiny_tokenizer, packed_cfg):
    """Packed epochs hold different numbers of micro-batches; the schedule counts them from the run start."""
    training = TrainingConfig(batch_size=4, hybrid_clm_fraction=0.5)
    stream = TrainStream("mntp", tiny_documents, packed_cfg, tiny_tokenizer, 4, seed=1,
                         schedule=objective_schedule("mntp", training, 100))
    sizes = [len(stream.epoch_ids(epoch)) for epoch in range(3)]
    assert stream.run_index(2, 1) == sizes[0] + sizes[1] + 1
    fresh = TrainStream("mntp", tiny_documents, packed_cfg, tiny_tokenizer, 4, seed=1)
    assert fresh.run_index(2, 1) == sizes[0] + sizes[1] + 1  # counted on demand, e.g. after a resume


def test_the_budget_counts_packed_rows_of_the_shared_segmentation(tiny_documents, tiny_tokenizer, data_cfg,
                                                                  packed_cfg):
    lengths = shared_lengths(tiny_documents, data_cfg.max_seq_length)
    assert lengths.tolist() == shared_segmentation(tiny_documents, data_cfg.max_seq_length, tiny_tokenizer
                                                   ).lengths.tolist()
    assert budget_units(tiny_documents, data_cfg) == len(lengths)
    rows = budget_units(tiny_documents, packed_cfg)
    assert lengths.sum() / packed_cfg.max_seq_length <= rows < len(lengths)
    one_row_batches = TrainStream("mlm", tiny_documents, packed_cfg, tiny_tokenizer, batch_size=1, seed=0)
    epoch_rows = len(one_row_batches.epoch_ids(0))
    assert abs(epoch_rows - rows) <= 0.05 * rows  # a run's own reshuffles fill about as many rows


def test_unpacked_batches_have_no_packing_keys(tiny_documents, tiny_tokenizer, data_cfg):
    stream = TrainStream("mlm", tiny_documents, data_cfg, tiny_tokenizer, batch_size=4, seed=0)
    ids = stream.epoch_ids(0)[0]
    batch = make_batch("clm", stream.sequences, ids, data_cfg, tiny_tokenizer, None)
    assert set(batch) == {"input_ids", "attention_mask", "labels"}


def test_the_report_notes_packing_only_when_it_is_on(data_cfg, packed_cfg):
    assert not any("packed (data.packing)" in note for note in control_notes(data_cfg, ["mlm", "clm"]))
    assert any("packed (data.packing)" in note for note in control_notes(packed_cfg, ["mlm", "clm"]))
