"""Faults inside one run: corrupt checkpoints, unsafe checkpoints, NaN/inf gradients, fp16 overflow, no progress."""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest
import torch

import mlmclm.train.trainer as trainer_module
from mlmclm.grid.plan import RunSpec
from mlmclm.model import Transformer
from mlmclm.train.checkpoint import (
    CorruptCheckpointError,
    TrainState,
    file_sha256,
    load_checkpoint,
    save_checkpoint,
)
from mlmclm.train.device import Precision
from mlmclm.train.optim import build_optimizer, build_scheduler
from mlmclm.train.trainer import CHECKPOINT_NAME, train_run
from tests.train.tiny_setup import tiny_experiment


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A tiny config without dropout and its prepared data."""
    return tiny_experiment(tmp_path_factory.mktemp("cache"), data={"sliding_window_stride": 16},
                           training={"batch_size": 8, "eval_interval": 2, "checkpoint_interval": 2})


SPEC = RunSpec("mlm", "standard", None, seed=5, run_index=0)


def _parts(config, data, total_steps=4):
    model = Transformer(config.model, objective="mlm", attention="standard", vocab_size=data.tokenizer.vocab_size,
                        max_seq_length=config.data.max_seq_length, pad_token_id=data.tokenizer.pad_id)
    optimizer = build_optimizer(model, config.training)
    scheduler = build_scheduler(optimizer, config.training, total_steps)
    return model, optimizer, scheduler, torch.amp.GradScaler("cpu", enabled=False)


def _checkpoint_after_two_steps(tiny, run_dir: Path, interrupt) -> Path:
    """Train 4 steps but stop (as a kill would) right after the step-2 checkpoint is written."""
    config, data = tiny
    interrupt(SPEC, config, data, run_dir, total_steps=4)
    return run_dir / CHECKPOINT_NAME


def test_a_checkpoint_round_trips_and_any_damage_is_detected(tiny, tmp_path):
    config, data = tiny
    model, optimizer, scheduler, scaler = _parts(config, data)
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, model, optimizer, scheduler, scaler, TrainState(step=7, tokens_seen=99))
    assert load_checkpoint(path, *_parts(config, data)).step == 7

    original = path.read_bytes()
    flipped = bytearray(original)
    flipped[len(flipped) // 2] ^= 0xFF  # one bit pattern inside the tensor data: torch.load alone may not notice
    path.write_bytes(bytes(flipped))
    with pytest.raises(CorruptCheckpointError, match="does not match its SHA-256"):
        load_checkpoint(path, *_parts(config, data))
    path.write_bytes(original[: len(original) // 2])
    with pytest.raises(CorruptCheckpointError, match="does not match"):
        load_checkpoint(path, *_parts(config, data))
    path.write_bytes(original)
    path.with_name("checkpoint.pt.sha256").unlink()
    with pytest.raises(CorruptCheckpointError, match="no readable digest"):
        load_checkpoint(path, *_parts(config, data))


class _Payload:
    """Unpickling this runs code: what a malicious checkpoint would carry."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def test_a_checkpoint_with_pickled_code_is_refused_without_running_it(tiny, tmp_path):
    config, data = tiny
    path, marker = tmp_path / "checkpoint.pt", tmp_path / "code_ran"
    torch.save({"model": _Payload(str(marker))}, path)
    path.with_name("checkpoint.pt.sha256").write_text(file_sha256(path))  # even with a matching digest
    with pytest.raises(CorruptCheckpointError, match="cannot restore"):
        load_checkpoint(path, *_parts(config, data))
    assert not marker.exists()  # weights_only=True never unpickled the object


@pytest.mark.parametrize("damage", ["truncate", "flip", "garbage"])
def test_a_run_with_a_damaged_checkpoint_restarts_from_scratch_with_the_clean_numbers(
    tiny, tmp_path, interrupt_after_checkpoint, damage
):
    config, data = tiny
    clean = train_run(SPEC, config, data, tmp_path / "clean", total_steps=4)
    checkpoint = _checkpoint_after_two_steps(tiny, tmp_path / "resumed", interrupt_after_checkpoint)
    content = checkpoint.read_bytes()
    if damage == "truncate":
        checkpoint.write_bytes(content[: len(content) // 3])
    elif damage == "flip":
        checkpoint.write_bytes(content[:-100] + bytes(b ^ 0x55 for b in content[-100:]))
    else:
        checkpoint.write_bytes(os.urandom(len(content)))
    resumed = train_run(SPEC, config, data, tmp_path / "resumed", total_steps=4)
    assert resumed.curves["train_loss"] == clean.curves["train_loss"]  # all 4 steps again, not garbage + 2
    assert resumed.metrics["val_loss"] == clean.metrics["val_loss"]
    assert (tmp_path / "resumed" / "checkpoint.pt.corrupt").is_file()  # kept for inspection
    assert not checkpoint.exists()


def test_an_intact_checkpoint_still_resumes_mid_run(tiny, tmp_path, monkeypatch, interrupt_after_checkpoint):
    config, data = tiny
    clean = train_run(SPEC, config, data, tmp_path / "clean", total_steps=4)
    _checkpoint_after_two_steps(tiny, tmp_path / "resumed", interrupt_after_checkpoint)
    steps = []
    real_step = trainer_module._optimizer_step
    monkeypatch.setattr(trainer_module, "_optimizer_step", lambda *a, **k: steps.append(1) or real_step(*a, **k))
    resumed = train_run(SPEC, config, data, tmp_path / "resumed", total_steps=4)
    assert len(steps) == 2  # only steps 3 and 4 were trained again
    assert resumed.curves["train_loss"] == clean.curves["train_loss"]


def _poison_gradients_at(model: torch.nn.Module, step: int, value: float) -> None:
    """From the ``step``-th backward pass on, one parameter's gradient is ``value`` (the loss stays finite)."""
    calls = {"n": 0}
    parameter = next(p for p in model.parameters() if p.requires_grad)

    def hook(grad):
        calls["n"] += 1
        return torch.full_like(grad, value) if calls["n"] >= step else grad

    parameter.register_hook(hook)


def test_a_nan_gradient_with_a_finite_loss_ends_the_run_as_diverged_at_that_step(tiny, tmp_path, monkeypatch):
    config, data = tiny
    real_build = trainer_module._build_training

    def poisoned(*args, **kwargs):
        model, *rest = real_build(*args, **kwargs)
        _poison_gradients_at(model, 3, math.nan)
        return (model, *rest)

    monkeypatch.setattr(trainer_module, "_build_training", poisoned)
    outcome = train_run(SPEC, config, data, tmp_path, total_steps=6)
    assert outcome.status == "diverged"
    assert outcome.metrics["diverged_step"] == 3
    assert outcome.error == "gradient norm became nan at step 3"
    assert all(math.isfinite(loss) for loss in outcome.curves["train_loss"])  # the loss alone never showed it
    assert not (tmp_path / CHECKPOINT_NAME).exists()


def test_fp16_overflow_is_skipped_by_the_grad_scaler_not_called_divergence(tiny):
    """An inf gradient under loss scaling: that update is skipped, the scale halves, training goes on."""
    config, data = tiny
    model, optimizer, scheduler, _ = _parts(config, data)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**16)
    _poison_gradients_at(model, 2, math.inf)
    stream = trainer_module.TrainStream("mlm", data.fold(None).train, config.data, data.tokenizer, 8, 0)
    batches = trainer_module._train_batches(stream, 0, 0)
    state = TrainState()
    precision = Precision(None, use_grad_scaler=True)
    step = lambda: trainer_module._optimizer_step(  # noqa: E731
        model, model.loss, optimizer, scheduler, scaler, batches, state, 1, 1.0, torch.device("cpu"), precision
    )
    step()
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    loss, _ = step()  # overflowing step: no exception
    assert math.isfinite(loss)
    assert scaler.get_scale() == 2.0**15
    assert all(torch.equal(before[name], p) for name, p in model.named_parameters())  # update skipped


def test_a_run_whose_loss_never_decreases_is_still_recorded_with_its_metrics(tiny, tmp_path, monkeypatch):
    config, data = tiny
    monkeypatch.setattr(torch.optim.AdamW, "step", lambda self, closure=None: None)  # no learning at all
    outcome = train_run(SPEC, config, data, tmp_path, total_steps=4)
    assert outcome.status == "completed"
    val = outcome.curves["val_loss"]
    assert val[0] == pytest.approx(val[-1], rel=1e-6)  # evaluation on fixed masks: exactly no progress
    for key in ("val_loss", "test_loss", "best_val_loss", "convergence_step", "train_steps"):
        assert math.isfinite(outcome.metrics[key]), key
    assert outcome.metrics["convergence_step"] == 2.0  # the first evaluation is already the best there is
