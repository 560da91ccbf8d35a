"""A training run on packed rows (``data.packing``) completes, records it, and resumes with the same numbers."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from mlmclm.components import resolve_config
from mlmclm.data import build_eval_batches, prepare_data
from mlmclm.data.builtin_corpus import builtin_documents
from mlmclm.grid.plan import RunSpec
from mlmclm.model import Transformer
from mlmclm.train.budget import compute_budget
from mlmclm.train.device import Precision
from mlmclm.train.evaluate import evaluate
from mlmclm.train.trainer import train_run

OVERRIDES = {
    "device": "cpu",
    "data": {"max_documents": 200, "vocab_size": 300, "max_seq_length": 64},
    "model": {"hidden_size": 16, "num_layers": 1, "num_heads": 2, "intermediate_size": 32,
              "hidden_dropout": 0.0, "attention_dropout": 0.0},
    "training": {"batch_size": 4, "learning_rate": 1e-3, "eval_interval": 2, "eval_max_batches": 2,
                 "checkpoint_interval": 2},
    "probes": {"enabled": False},
}


@pytest.fixture(scope="module")
def configs(tmp_path_factory):
    """Short real documents (4-8 words), so several sequences fit one 64-token row whatever the corpus."""
    cache = tmp_path_factory.mktemp("cache")
    corpus = cache / "short_documents.txt"
    corpus.write_text("\n".join([d for d in builtin_documents() if 4 <= len(d.split()) <= 8][:200]) + "\n")
    data = {**OVERRIDES["data"], "cache_dir": str(cache), "path": str(corpus)}
    plain = resolve_config(overrides={**OVERRIDES, "data": data})
    packed = resolve_config(overrides={**OVERRIDES, "data": {**data, "packing": True}})
    return plain, packed, prepare_data(packed)


@pytest.mark.parametrize("objective", ["mlm", pytest.param("clm_mlm", marks=pytest.mark.slow)])
def test_a_packed_run_records_packing_and_resumes_mid_run_with_the_same_numbers(
    configs, tmp_path, interrupt_after_checkpoint, objective
):
    _, config, data = configs
    spec = RunSpec(objective, "rope", None, seed=3, run_index=0)
    clean = train_run(spec, config, data, tmp_path / "clean", total_steps=4)
    assert clean.status == "completed" and clean.extra["packing"] is True
    tokens = clean.extra["tokens"]
    assert tokens["per_step"] == tokens["processed"] / 4

    interrupt_after_checkpoint(spec, config, data, tmp_path / "resumed", total_steps=4)
    resumed = train_run(spec, config, data, tmp_path / "resumed", total_steps=4)
    assert resumed.extra["resumed_from_step"] == 2
    assert resumed.curves["train_loss"] == clean.curves["train_loss"]
    assert resumed.metrics["val_loss"] == clean.metrics["val_loss"]
    assert resumed.extra["tokens"] == tokens


def test_packing_puts_more_real_tokens_in_a_step_and_its_epochs_are_counted_in_rows(configs, tmp_path):
    plain_config, packed_config, data = configs
    spec = RunSpec("clm", "alibi", None, seed=1, run_index=0)
    plain = train_run(spec, plain_config, data, tmp_path / "plain", total_steps=2)
    packed = train_run(spec, packed_config, data, tmp_path / "packed", total_steps=2)
    assert "packing" in plain.extra and plain.extra["packing"] is False
    assert packed.extra["tokens"]["per_step"] > plain.extra["tokens"]["per_step"]
    plain_budget, packed_budget = compute_budget(plain_config, data), compute_budget(packed_config, data)
    assert packed_budget.train_sequences == plain_budget.train_sequences
    assert packed_budget.train_rows < plain_budget.train_sequences
    assert packed_budget.steps_per_epoch < plain_budget.steps_per_epoch
    assert "train_rows" not in plain_budget.to_dict() and packed_budget.to_dict()["packing"] is True


@pytest.mark.parametrize(("objective", "attention"), [("mlm", "exposb"), ("clm", "stickbreaking"), ("mntp", "rope")])
def test_packed_evaluation_scores_what_the_unpacked_one_does(configs, objective, attention):
    plain_config, packed_config, data = configs
    fold = data.fold(None)
    torch.manual_seed(0)
    wide_init = dataclasses.replace(packed_config.model, initializer_range=0.2)  # attention matters at once
    model = Transformer(wide_init, objective=objective, attention=attention,
                        vocab_size=data.tokenizer.vocab_size, max_seq_length=256, pad_token_id=data.tokenizer.pad_id)
    results = []
    for config in (plain_config, packed_config):
        whole_documents = dataclasses.replace(config.data, max_seq_length=256)  # short ones share rows
        batches = build_eval_batches(objective, fold.validation, whole_documents, data.tokenizer, 8, 4)
        results.append(evaluate(model, batches, torch.device("cpu"), Precision(None, False)))
    assert results[0].num_predicted == results[1].num_predicted > 0
    assert results[1].loss == pytest.approx(results[0].loss, rel=1e-5)
    assert results[1].accuracy == results[0].accuracy
