"""One training run: optimiser groups, schedule, convergence step, accumulation, early stopping."""

from __future__ import annotations

import math

import pytest
import torch

import mlmclm.train.trainer as trainer_module
from mlmclm.components import resolve_config
from mlmclm.config import TrainingConfig
from mlmclm.data import prepare_data
from mlmclm.grid.plan import RunSpec
from mlmclm.model import Transformer
from mlmclm.train.evaluate import EvalResult
from mlmclm.train.optim import build_optimizer, build_scheduler
from mlmclm.train.trainer import convergence_step, train_run


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A tiny config (no dropout, so runs differ only in what a test changes) and its prepared data."""
    cache = tmp_path_factory.mktemp("cache")
    overrides = {
        "device": "cpu",
        "data": {"max_documents": 300, "vocab_size": 300, "max_seq_length": 32,
                 "cache_dir": str(cache)},
        "model": {"hidden_size": 16, "num_layers": 1, "num_heads": 2, "intermediate_size": 32,
                  "hidden_dropout": 0.0, "attention_dropout": 0.0},
        "training": {"batch_size": 8, "learning_rate": 1e-3, "eval_interval": 2, "eval_max_batches": 2},
        "probes": {"enabled": False},
    }
    config = resolve_config(overrides=overrides)
    return overrides, prepare_data(config)


def configured(tiny, **training):
    overrides, _ = tiny
    return resolve_config(overrides={**overrides, "training": {**overrides["training"], **training}})


def test_no_weight_decay_on_biases_and_layer_norms():
    model = Transformer(
        resolve_config().model, objective="mlm", attention="standard", vocab_size=50, max_seq_length=16,
        pad_token_id=0,
    )
    decay, no_decay = build_optimizer(model, TrainingConfig(weight_decay=0.1)).param_groups
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    no_decay_ids = {id(p) for p in no_decay["params"]}
    for name, param in model.named_parameters():
        is_exempt = name.endswith("bias") or "norm" in name
        assert (id(param) in no_decay_ids) == is_exempt, name
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(model.parameters()))


@pytest.mark.parametrize("kind", ["linear", "cosine", "constant"])
def test_schedule_warms_up_linearly_then_decays(kind):
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    scheduler = build_scheduler(optimizer, TrainingConfig(scheduler=kind, warmup_steps=4), total_steps=20)
    rates = []
    for _ in range(20):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert rates[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert rates[4] == pytest.approx(1.0)
    if kind == "constant":
        assert rates[-1] == pytest.approx(1.0)
    else:
        assert all(a >= b for a, b in zip(rates[4:], rates[5:], strict=False))
        quarter = {"linear": 0.75, "cosine": 0.5 * (1 + math.cos(math.pi / 4))}[kind]
        assert rates[8] == pytest.approx(quarter)  # a quarter of the way through the 16 decay steps
        assert rates[12] == pytest.approx(0.5)  # both schedules are at half the peak halfway
        assert rates[-1] < 0.1


def test_convergence_step_is_the_first_evaluation_within_tolerance_of_the_best():
    steps = [10, 20, 30, 40]
    assert convergence_step(steps, [5.0, 3.02, 3.0, 3.1], 0.01) == 20
    assert convergence_step(steps, [5.0, 3.05, 3.0, 3.1], 0.01) == 30
    assert convergence_step(steps, [math.nan, 4.0, math.nan, 4.0], 0.0) == 20
    assert convergence_step(steps, [math.nan] * 4, 0.01) is None


def test_gradient_accumulation_equals_one_large_batch(tiny, tmp_path):
    _, data = tiny
    spec = RunSpec("mlm", "rope", None, seed=3, run_index=0)
    large = train_run(spec, configured(tiny, batch_size=8, eval_batch_size=8), data, tmp_path / "a", total_steps=2)
    accumulated = train_run(
        spec, configured(tiny, batch_size=4, gradient_accumulation_steps=2, eval_batch_size=8), data, tmp_path / "b",
        total_steps=2,
    )
    assert accumulated.curves["train_loss"] == pytest.approx(large.curves["train_loss"], rel=1e-5)
    assert accumulated.metrics["val_loss"] == pytest.approx(large.metrics["val_loss"], rel=1e-5)
    assert accumulated.metrics["train_tokens"] == large.metrics["train_tokens"]


def test_early_stopping_ends_a_run_after_patience_evaluations_without_improvement(tiny, tmp_path, monkeypatch):
    _, data = tiny
    losses = iter([3.0, 2.0, 2.5, 2.6, 2.7, 2.8, 2.9, 3.0])

    def worsening(*args, **kwargs):
        loss = next(losses)
        return EvalResult(loss, 0.1, math.exp(loss), 100)

    monkeypatch.setattr(trainer_module, "evaluate", worsening)
    spec = RunSpec("clm", "standard", None, seed=0, run_index=0)
    config = configured(tiny, early_stopping=True, early_stopping_patience=2)
    outcome = train_run(spec, config, data, tmp_path, total_steps=16)
    # evaluations at steps 2, 4 (best), 6, 8: two without improvement after the best, so it stops at step 8
    assert outcome.curves["step"] == [2, 4, 6, 8]
    assert outcome.metrics["train_steps"] == 8 and outcome.extra["early_stopped"] is True
    assert outcome.metrics["best_val_loss"] == 2.0 and outcome.metrics["best_step"] == 4


def test_run_records_tokens_processed_scored_and_the_distinct_target_fraction(tiny, tmp_path):
    overrides, data = tiny
    spec = {objective: RunSpec(objective, "standard", None, seed=1, run_index=0) for objective in ("mlm", "clm")}
    records = {}
    for name, objective, strategy in (("mlm", "mlm", "standard"), ("clm", "clm", "standard"),
                                      ("packed", "clm", "packed")):
        config = resolve_config(overrides={**overrides, "data": {**overrides["data"], "clm_strategy": strategy}})
        outcome = train_run(spec[objective], config, data, tmp_path / name, total_steps=6)
        records[name] = outcome.extra["tokens"]
        assert records[name]["processed"] == outcome.metrics["train_tokens"]
    mlm, clm, packed = records["mlm"], records["clm"], records["packed"]
    assert mlm["processed"] == clm["processed"]  # the same sequences in the same order
    assert mlm["scored"] < 0.2 * mlm["processed"] < clm["scored"] < clm["processed"]
    assert mlm["distinct_target_fraction"] < clm["distinct_target_fraction"] < 1
    assert mlm["targetable"] == clm["targetable"] == packed["targetable"]
    # packed blocks are token-matched to the shared segmentation: about the same real tokens per run
    assert abs(packed["processed"] / clm["processed"] - 1) < 0.15
    assert abs(packed["processed_vs_shared"] - 1) < 0.15 and abs(clm["processed_vs_shared"] - 1) < 0.15


def test_random_init_baseline_encoder_is_the_runs_own_starting_point_and_leaves_the_rng_alone(tiny, tmp_path):
    """The probe baseline is the untrained model the run started from: same shape, same seed, no training."""
    overrides, data = tiny
    config = configured(tiny)
    spec = RunSpec("clm", "rope", None, seed=5, run_index=0)
    tokenizer = data.fold(None).tokenizer
    torch.manual_seed(123)
    before = torch.get_rng_state()
    baseline = trainer_module.random_init_encoder(config, spec, tokenizer, torch.device("cpu"))
    assert torch.equal(torch.get_rng_state(), before)
    torch.manual_seed(spec.seed)
    start = Transformer(config.model, objective="clm", attention="rope", vocab_size=tokenizer.vocab_size,
                        max_seq_length=config.data.max_seq_length, pad_token_id=tokenizer.pad_id)
    pairs = zip(baseline.state_dict().values(), start.state_dict().values(), strict=True)
    assert all(torch.equal(a, b) for a, b in pairs)
    assert not baseline.training


def test_a_probed_run_records_its_baselines_and_per_item_correctness(tiny, tmp_path):
    from mlmclm.grid.worker import RunProbes, build_probe_tasks

    overrides, data = tiny
    probes = {"enabled": True, "tasks": ["bigram_shift"], "examples_per_task": 40}
    config = resolve_config(overrides={**overrides, "probes": probes})
    tasks = build_probe_tasks(config, data)
    spec = RunSpec("mlm", "standard", None, seed=2, run_index=0)
    outcome = train_run(spec, config, data, tmp_path, 4, RunProbes.for_run(config, data, spec, tasks))
    items = outcome.extra["probe_items"]["bigram_shift"]
    assert len(items) == len(tasks[0].test)
    assert items.count("1") / len(items) == pytest.approx(outcome.metrics["probe/bigram_shift/accuracy"])
    gain = outcome.metrics["probe/bigram_shift/gain_over_random_init"]
    random_init = outcome.metrics["probe/bigram_shift/random_init_accuracy"]
    assert gain == pytest.approx(outcome.metrics["probe/bigram_shift/accuracy"] - random_init)
