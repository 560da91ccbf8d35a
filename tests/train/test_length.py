"""Length generalisation: runs scored at k x the training length, learned positions recorded as not applicable."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import jsonschema
import pytest
import torch

from mlmclm.atomic import json_safe
from mlmclm.components import resolve_config
from mlmclm.data import build_eval_batches, prepare_data
from mlmclm.grid.plan import RunSpec
from mlmclm.model import Transformer
from mlmclm.model.attention import ATTENTION_MECHANISMS
from mlmclm.train.device import choose_precision
from mlmclm.train.length import NOT_APPLICABLE, evaluate_lengths
from mlmclm.train.trainer import train_run

SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "docs" / "raw_results.schema.json").read_text())


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    overrides = {
        "device": "cpu",
        "data": {"max_documents": 300, "vocab_size": 300, "max_seq_length": 32, "cache_dir": str(cache)},
        "model": {"hidden_size": 16, "num_layers": 1, "num_heads": 2, "intermediate_size": 32,
                  "hidden_dropout": 0.0, "attention_dropout": 0.0},
        "training": {"batch_size": 8, "learning_rate": 1e-3, "eval_interval": 2, "eval_max_batches": 2},
        "probes": {"enabled": False},
        "evaluation": {"length_multipliers": [1, 2]},
    }
    config = resolve_config(overrides=overrides)
    return config, prepare_data(config)


def test_every_mechanism_declares_in_its_own_class_whether_it_extrapolates():
    for name in ATTENTION_MECHANISMS.names():
        assert "extrapolates" in vars(ATTENTION_MECHANISMS.get(name)), name
    assert ATTENTION_MECHANISMS.get("standard").extrapolates is False
    assert ATTENTION_MECHANISMS.get("rope").extrapolates is True


@pytest.mark.parametrize("objective", ["mlm", "clm"])
def test_standard_is_not_applicable_at_twice_the_length_while_rope_alibi_nope_score_it(tiny, tmp_path, objective):
    config, data = tiny
    outcomes = {
        attention: train_run(RunSpec(objective, attention, None, seed=0, run_index=0), config, data,
                             tmp_path / attention, total_steps=2)
        for attention in ("standard", "rope", "alibi", "nope")
    }
    for attention, outcome in outcomes.items():
        metrics = outcome.metrics
        # k = 1 re-segments the test split exactly as test_loss does
        assert metrics["eval_len1/loss"] == pytest.approx(metrics["test_loss"], rel=1e-6), attention
        assert metrics["eval_len1/accuracy"] == pytest.approx(metrics["test_accuracy"]), attention
        records = {entry["multiplier"]: entry for entry in outcome.extra["length_generalisation"]}
        field = {"$defs": SCHEMA["$defs"], **SCHEMA["$defs"]["run"]["properties"]["length_generalisation"]}
        jsonschema.validate(json_safe(outcome.extra["length_generalisation"]), field)
        assert records[2]["length"] == 64
        if attention == "standard":
            assert records[2]["status"] == NOT_APPLICABLE and "cannot represent 64" in records[2]["reason"]
            assert math.isnan(metrics["eval_len2/loss"]) and math.isnan(metrics["eval_len2/accuracy"])
        else:
            assert records[2]["status"] == "evaluated"
            assert math.isfinite(metrics["eval_len2/loss"]) and 0 <= metrics["eval_len2/accuracy"] <= 1
            # documents longer than 30 tokens really are evaluated as longer sequences
            assert records[1]["mean_length"] <= 32 < records[2]["length"]
            assert records[2]["mean_length"] > records[1]["mean_length"]


def test_longer_sequences_reach_the_model_unchanged(tiny):
    """No silent truncation: the k=2 batches hold sequences longer than the training length."""
    config, data = tiny
    fold = data.fold(None)
    batches = build_eval_batches("clm", fold.test, dataclasses.replace(config.data, max_seq_length=64),
                                 fold.tokenizer, 8)
    assert max(batch["input_ids"].shape[1] for batch in batches) > 32
    model = Transformer(config.model, objective="clm", attention="rope", vocab_size=fold.tokenizer.vocab_size,
                        max_seq_length=32, pad_token_id=fold.tokenizer.pad_id)
    device = torch.device("cpu")
    (result,) = evaluate_lengths(model, "clm", fold.test, config.data, fold.tokenizer, [4], batch_size=8,
                                 max_batches=1, device=device, precision=choose_precision(device, False))
    assert result.length == 128 and result.mean_length > 32 and math.isfinite(result.loss)


@pytest.mark.parametrize("attention", ATTENTION_MECHANISMS.names())
@pytest.mark.parametrize("objective", ["mlm", "clm"])
def test_extrapolating_mechanisms_run_three_times_their_length_and_learned_positions_refuse(attention, objective):
    from mlmclm.errors import UserError

    config = resolve_config(overrides={"model": {"hidden_size": 16, "num_layers": 1, "num_heads": 2,
                                                 "intermediate_size": 32, "exposb_num_buckets": 8,
                                                 "exposb_max_distance": 16}})
    torch.manual_seed(0)
    model = Transformer(config.model, objective=objective, attention=attention, vocab_size=50, max_seq_length=16,
                        pad_token_id=0).eval()
    ids = torch.randint(1, 50, (2, 48))
    mask = torch.ones_like(ids)
    mask[1, 40:] = 0  # padding too, so masks are built at the longer length
    if not model.mechanism.extrapolates:
        assert not model.mechanism.supports_length(48) and model.mechanism.supports_length(16)
        with pytest.raises(UserError, match="exceeds the 16 learned positions"):
            model(ids, mask)
        return
    with torch.no_grad():
        logits = model(ids, mask)
    assert logits.shape == (2, 48, 50) and torch.isfinite(logits).all()
