"""Hybrid objectives' batches: the clm_mlm phases, the mntp mix and shifted labels, their evaluation views."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from mlmclm.config import TrainingConfig
from mlmclm.data.batches import TrainStream, batch_causal, build_eval_batches, objective_schedule


def _micro_batches(stream: TrainStream, count: int) -> list[dict[str, torch.Tensor]]:
    """The first ``count`` micro-batches of a run, across epochs as the trainer draws them."""
    endless = itertools.chain.from_iterable(stream.epoch(epoch) for epoch in itertools.count())
    return list(itertools.islice(endless, count))


def _stream(objective, docs, info, data_cfg, schedule=None, seed=5):
    return TrainStream(objective, docs, data_cfg, info, batch_size=128, seed=seed, schedule=schedule)


def test_clm_mlm_trains_clm_batches_up_to_the_switch_step_and_mlm_batches_after(
    tiny_documents, tiny_tokenizer, data_cfg
):
    training = TrainingConfig(hybrid_clm_fraction=0.25, gradient_accumulation_steps=2)
    schedule = objective_schedule("clm_mlm", training, total_steps=12)
    assert schedule.switch_step == 3  # round(12 x 0.25)
    hybrid = _stream("clm_mlm", tiny_documents, tiny_tokenizer, data_cfg, schedule)
    count = 24  # 12 steps x 2 micro-batches, more than one epoch of this corpus
    assert len(hybrid) < count
    batches = _micro_batches(hybrid, count)
    clm = _micro_batches(_stream("clm", tiny_documents, tiny_tokenizer, data_cfg), count)
    mlm = _micro_batches(_stream("mlm", tiny_documents, tiny_tokenizer, data_cfg), count)
    assert [batch_causal(batch) for batch in batches] == [True] * 6 + [False] * 18
    for index, batch in enumerate(batches):
        # each phase's batches are exactly the pure objective's: same sequences, labels and masks
        reference = clm[index] if index < 6 else mlm[index]
        for key in ("input_ids", "attention_mask", "labels"):
            assert torch.equal(batch[key], reference[key]), (index, key)
    assert not torch.equal(batches[6]["labels"], clm[6]["labels"])


def test_mntp_mixes_causal_and_masked_batches_at_the_configured_ratio(tiny_documents, tiny_tokenizer, data_cfg):
    schedule = objective_schedule("mntp", TrainingConfig(mntp_causal_fraction=0.25), total_steps=40)
    assert [schedule.kind(k) for k in range(8)] == ["masked_shifted"] * 3 + ["causal"] + ["masked_shifted"] * 3 + [
        "causal"
    ]
    for n in (1, 7, 16, 33, 40):
        assert sum(schedule.kind(k) == "causal" for k in range(n)) == int(np.floor(n * 0.25))
    batches = _micro_batches(_stream("mntp", tiny_documents, tiny_tokenizer, data_cfg, schedule), 16)
    assert sum(batch_causal(batch) for batch in batches) == 4
    again = _micro_batches(_stream("mntp", tiny_documents, tiny_tokenizer, data_cfg, schedule), 16)
    for first, second in zip(batches, again, strict=True):  # a pure function of the seed
        assert all(torch.equal(first[key], second[key]) for key in first)


def test_mntp_masked_batches_predict_each_masked_token_from_the_position_before_it(
    tiny_documents, tiny_tokenizer, data_cfg
):
    schedule = objective_schedule("mntp", TrainingConfig(mntp_causal_fraction=0.25), total_steps=40)
    mntp = _micro_batches(_stream("mntp", tiny_documents, tiny_tokenizer, data_cfg, schedule), 8)
    mlm = _micro_batches(_stream("mlm", tiny_documents, tiny_tokenizer, data_cfg), 8)
    clm = _micro_batches(_stream("clm", tiny_documents, tiny_tokenizer, data_cfg), 8)
    for index in range(8):
        batch = mntp[index]
        if batch_causal(batch):
            assert torch.equal(batch["labels"], clm[index]["labels"])
            continue
        assert torch.equal(batch["input_ids"], mlm[index]["input_ids"])  # the same masked inputs
        masked = mlm[index]["labels"]
        assert torch.equal(batch["labels"][:, :-1], masked[:, 1:])  # output i-1 predicts masked token i
        assert (batch["labels"][:, -1] == -100).all()
        assert int((batch["labels"] != -100).sum()) == int((masked != -100).sum())  # no target lost


def test_evaluation_views_of_the_hybrids(tiny_documents, tiny_tokenizer, data_cfg):
    def evaluation(objective, kind=None):
        return build_eval_batches(objective, tiny_documents, data_cfg, tiny_tokenizer, 16, 3, kind)

    mlm, clm = evaluation("mlm"), evaluation("clm")
    clm_mlm, mntp, mntp_causal = evaluation("clm_mlm"), evaluation("mntp"), evaluation("mntp", "causal")
    for index in range(3):
        # clm_mlm is scored exactly as the MLM runs: same masks, same labels, bidirectional
        assert torch.equal(clm_mlm[index]["labels"], mlm[index]["labels"]) and not batch_causal(clm_mlm[index])
        assert torch.equal(mntp[index]["input_ids"], mlm[index]["input_ids"]) and not batch_causal(mntp[index])
        assert torch.equal(mntp[index]["labels"][:, :-1], mlm[index]["labels"][:, 1:])
        # the causal view scores what a clm run scores under clm_strategy standard
        assert torch.equal(mntp_causal[index]["labels"], clm[index]["labels"]) and batch_causal(mntp_causal[index])


@pytest.mark.parametrize("objective", ["mlm", "clm"])
def test_single_objectives_have_no_schedule(objective):
    assert objective_schedule(objective, TrainingConfig(), total_steps=10) is None


def test_control_notes_cover_hybrids_that_use_the_shared_segmentation_and_masks(data_cfg):
    import dataclasses

    from mlmclm.data.batches import control_notes

    packed = dataclasses.replace(data_cfg, clm_strategy="packed")
    notes = control_notes(packed, ["clm", "clm_mlm"])
    assert any("CLM packs documents" in note for note in notes)  # the hybrid keeps [CLS] chunk [SEP] sequences
    assert any(note.startswith("MLM strategy") for note in notes)  # its MLM phase draws masks
    assert control_notes(packed, ["clm"]) == []
