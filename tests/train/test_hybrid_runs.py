"""Hybrid runs end to end: the clm_mlm switch step, its exact resume, the mntp mix and its two views."""

from __future__ import annotations

import pytest

from mlmclm.components import resolve_config
from mlmclm.data import prepare_data
from mlmclm.grid.plan import RunSpec
from mlmclm.train.trainer import CHECKPOINT_NAME, train_run


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A tiny config without dropout and its prepared data (as in test_trainer.py)."""
    overrides = {
        "device": "cpu",
        "data": {"max_documents": 300, "vocab_size": 300, "max_seq_length": 32,
                 "cache_dir": str(tmp_path_factory.mktemp("cache"))},
        "model": {"hidden_size": 16, "num_layers": 1, "num_heads": 2, "intermediate_size": 32,
                  "hidden_dropout": 0.0, "attention_dropout": 0.0},
        "training": {"batch_size": 8, "learning_rate": 1e-3, "eval_interval": 2, "eval_max_batches": 2},
        "probes": {"enabled": False},
    }
    return overrides, prepare_data(resolve_config(overrides=overrides))


def configured(tiny, **training):
    overrides, _ = tiny
    return resolve_config(overrides={**overrides, "training": {**overrides["training"], **training}})


def test_clm_mlm_switches_at_the_configured_step_and_its_clm_phase_is_a_clm_run(tiny, tmp_path):
    _, data = tiny
    config = configured(tiny, hybrid_clm_fraction=0.375)
    hybrid = train_run(RunSpec("clm_mlm", "rope", None, seed=3, run_index=0), config, data, tmp_path / "h", 8)
    assert hybrid.extra["hybrid"] == {"objective": "clm_mlm", "switch_step": 3}
    assert hybrid.curves["train_causal_fraction"] == [1.0] * 3 + [0.0] * 5
    # Same seed, same initialisation, same batches, same schedule: the CLM phase is step for step a CLM run.
    clm = train_run(RunSpec("clm", "rope", None, seed=3, run_index=0), config, data, tmp_path / "c", 8)
    assert hybrid.curves["train_loss"][:3] == clm.curves["train_loss"][:3]
    assert hybrid.curves["train_loss"][3] != clm.curves["train_loss"][3]
    # From the switch on the loss is MLM's: a masked-token loss on ~15% of the tokens, not the next-token loss
    assert hybrid.metrics["train_tokens"] == clm.metrics["train_tokens"]
    assert hybrid.extra["tokens"]["scored"] < clm.extra["tokens"]["scored"]


def test_a_clm_mlm_run_killed_after_the_switch_resumes_in_the_mlm_phase_with_the_same_numbers(tiny, tmp_path):
    _, data = tiny
    config = configured(tiny, hybrid_clm_fraction=0.5, checkpoint_interval=6)
    spec = RunSpec("clm_mlm", "alibi", None, seed=4, run_index=0)
    clean = train_run(spec, config, data, tmp_path / "clean", 10)

    class Killed(Exception):
        pass

    def kill_at_step_7(step, *_):
        if step == 7:
            raise Killed

    run_dir = tmp_path / "killed"
    with pytest.raises(Killed):
        train_run(spec, config, data, run_dir, 10, on_step=kill_at_step_7)
    assert (run_dir / CHECKPOINT_NAME).exists()  # saved at step 6, after the switch at step 5
    resumed = train_run(spec, config, data, run_dir, 10)
    assert resumed.curves["train_causal_fraction"] == [1.0] * 5 + [0.0] * 5
    for key in ("train_loss", "val_loss", "train_causal_fraction"):
        assert resumed.curves[key] == clean.curves[key], key
    for key in ("val_loss", "test_loss", "val_accuracy", "train_tokens"):
        assert resumed.metrics[key] == clean.metrics[key], key
    assert resumed.extra["tokens"] == clean.extra["tokens"]


def test_mntp_trains_on_both_kinds_at_the_ratio_and_records_both_views(tiny, tmp_path):
    _, data = tiny
    config = configured(tiny, mntp_causal_fraction=0.25, gradient_accumulation_steps=2, batch_size=4)
    outcome = train_run(RunSpec("mntp", "standard", None, seed=1, run_index=0), config, data, tmp_path, 6)
    # 12 micro-batches, one in four causal: micro-batches 3, 7, 11 fall in steps 2, 4, 6
    assert outcome.curves["train_causal_fraction"] == [0.0, 0.5, 0.0, 0.5, 0.0, 0.5]
    assert outcome.extra["hybrid"] == {"objective": "mntp", "causal_fraction": 0.25}
    metrics = outcome.metrics
    for split in ("val", "test"):
        assert metrics[f"{split}_loss_causal"] > 0 and metrics[f"{split}_loss_causal"] != metrics[f"{split}_loss"]
        assert 0 <= metrics[f"{split}_accuracy_causal"] <= 1
    clm = train_run(RunSpec("clm", "standard", None, seed=1, run_index=0), config, data, tmp_path / "clm", 6)
    assert "val_loss_causal" not in clm.metrics and "hybrid" not in clm.extra
    assert "train_causal_fraction" not in clm.curves
