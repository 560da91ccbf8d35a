"""One training run = (objective, attention, fold, seed): train, evaluate, save, and report its metrics.

The seed controls initialisation, data order, masking and dropout; the step budget is fixed from outside so
that every run of a comparison gets the same optimizer steps and about the same real tokens (recorded per
run). A NaN/inf loss ends the run as ``diverged``; periodic checkpoints let an interrupted run continue
mid-way with identical numbers.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from mlmclm.config import ExperimentConfig, TrainingConfig
from mlmclm.data import ExperimentData, TrainStream, build_eval_batches
from mlmclm.grid.plan import RunSpec
from mlmclm.model import build_model, save_model
from mlmclm.train.checkpoint import TrainState, load_checkpoint, save_checkpoint
from mlmclm.train.device import Precision, choose_precision, peak_memory_mb, reset_peak_memory, resolve_device
from mlmclm.train.evaluate import evaluate, majority_token_accuracy
from mlmclm.train.length import evaluate_lengths
from mlmclm.train.optim import build_optimizer, build_scheduler

log = logging.getLogger(__name__)

CHECKPOINT_NAME = "checkpoint.pt"
StepCallback = Callable[[int, int, float, float], None]  # (step, total_steps, loss, tokens_per_s)


class DivergedError(RuntimeError):
    """The training loss became NaN or infinite."""

    def __init__(self, step: int, loss: float) -> None:
        super().__init__(f"loss became {loss} at step {step}")
        self.step = step


@dataclass
class RunOutcome:
    status: str  # completed | diverged
    metrics: dict[str, float]
    curves: dict[str, list[float]]
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def convergence_step(steps: list[int], losses: list[float], tolerance: float) -> int | None:
    """First evaluation step whose validation loss is within ``tolerance`` (relative) of the run's best."""
    finite = [(s, v) for s, v in zip(steps, losses, strict=True) if math.isfinite(v)]
    if not finite:
        return None
    best = min(v for _, v in finite)
    threshold = best + abs(best) * tolerance
    return next(s for s, v in finite if v <= threshold)


def run_training_config(config: ExperimentConfig, spec: RunSpec) -> TrainingConfig:
    """The training settings of one run: the shared ones, with the peak rate the plan gave this run."""
    if spec.learning_rate is None and config.training.lr_sweep:
        raise ValueError(f"{spec.run_id} has no learning rate: its condition's sweep has not chosen one")
    if spec.learning_rate is None or spec.learning_rate == config.training.learning_rate:
        return config.training
    return dataclasses.replace(config.training, learning_rate=spec.learning_rate)


def _train_batches(stream: TrainStream, start_epoch: int, skip: int) -> Iterator[tuple[int, int, dict]]:
    """Endless (epoch, index, batch) over the stream, starting after ``skip`` batches of ``start_epoch``."""
    epoch = start_epoch
    while True:
        for index, batch in enumerate(stream.epoch(epoch)):
            if epoch == start_epoch and index < skip:
                continue
            yield epoch, index, batch
        epoch += 1
        skip = 0


def train_run(
    spec: RunSpec,
    config: ExperimentConfig,
    data: ExperimentData,
    run_dir: Path,
    total_steps: int,
    probe_tasks: list | None = None,
    on_step: StepCallback | None = None,
) -> RunOutcome:
    """Train one run for exactly ``total_steps`` optimizer steps (fewer only with early stopping)."""
    cfg = run_training_config(config, spec)
    device = resolve_device(config.device)
    precision = choose_precision(device, config.mixed_precision)
    fold = data.fold(spec.fold)
    tokenizer = fold.tokenizer  # under cross-validation, the fold's own (trained on its training part)
    torch.manual_seed(spec.seed)  # initialisation and dropout; data order and masks use their own generators

    model = build_model(
        config.model,
        objective=spec.objective,
        attention=spec.attention,
        vocab_size=tokenizer.vocab_size,
        max_seq_length=config.data.max_seq_length,
        pad_token_id=tokenizer.pad_id,
    ).to(device)
    model.set_gradient_checkpointing(config.gradient_checkpointing)
    optimizer = build_optimizer(model, cfg)
    scheduler = build_scheduler(optimizer, cfg, total_steps)
    scaler = torch.amp.GradScaler(device.type, enabled=precision.use_grad_scaler)

    stream = TrainStream(spec.objective, fold.train, config.data, tokenizer, cfg.batch_size, spec.seed)
    eval_batch_size = cfg.eval_batch_size or cfg.batch_size
    val_batches = build_eval_batches(
        spec.objective, fold.validation, config.data, tokenizer, eval_batch_size, cfg.eval_max_batches
    )

    state = TrainState()
    checkpoint_path = run_dir / CHECKPOINT_NAME
    if checkpoint_path.exists():
        state = load_checkpoint(checkpoint_path, model, optimizer, scheduler, scaler)
        if state.target_coverage is not None:
            stream.coverage.restore(state.target_coverage)
        log.info("%s: resuming from step %d", spec.run_id, state.step)

    schedule = _probe_schedule(config, probe_tasks)
    reset_peak_memory(device)
    model.train()
    batches = _train_batches(stream, state.epoch, state.batch_in_epoch)
    started = time.perf_counter() - state.train_time_s
    stop_early = False
    try:
        while state.step < total_steps and not stop_early:
            loss_sum, tokens_this_step = _optimizer_step(
                model, optimizer, scheduler, scaler, batches, state, cfg.gradient_accumulation_steps,
                cfg.max_grad_norm, device, precision,
            )
            state.step += 1
            tokens_before = state.tokens_seen
            state.tokens_seen += tokens_this_step
            if not math.isfinite(loss_sum):
                raise DivergedError(state.step, loss_sum)
            state.curves.setdefault("train_step", []).append(state.step)
            state.curves.setdefault("train_loss", []).append(loss_sum)
            state.train_time_s = time.perf_counter() - started
            if on_step is not None:
                training_s = max(state.train_time_s - state.eval_time_s, 1e-9)
                on_step(state.step, total_steps, loss_sum, state.tokens_seen / training_s)
            if state.step % cfg.eval_interval == 0 or state.step == total_steps:
                stop_early = _record_validation(model, val_batches, device, precision, state, cfg)
            if schedule is not None and schedule.due(state.step, total_steps, tokens_before, state.tokens_seen):
                probing = time.perf_counter()
                _record_probes(model, tokenizer.tokenizer, probe_tasks, config, device, state)
                # Probes are not training: keep them out of train_time_s, which CLM (two probe views) and MLM
                # would otherwise pay differently for.
                started += time.perf_counter() - probing
            if state.step % cfg.checkpoint_interval == 0 and state.step < total_steps:
                state.train_time_s = time.perf_counter() - started
                state.target_coverage = stream.coverage.packed()
                save_checkpoint(checkpoint_path, model, optimizer, scheduler, scaler, state)
    except DivergedError as exc:
        log.warning("%s diverged: %s", spec.run_id, exc)
        checkpoint_path.unlink(missing_ok=True)
        metrics = {"diverged_step": float(exc.step), "num_params": float(model.num_parameters())}
        extra = {"tokens": token_record(state, stream, cfg.gradient_accumulation_steps)}
        return RunOutcome("diverged", metrics, state.curves, error=str(exc), extra=extra)

    state.train_time_s = time.perf_counter() - started
    test_batches = build_eval_batches(
        spec.objective, fold.test, config.data, tokenizer, eval_batch_size, cfg.eval_max_batches
    )
    test = evaluate(model, test_batches, device, precision)

    metrics = _final_metrics(state, test, cfg.convergence_tolerance, model, device)
    metrics["val_majority_token_accuracy"] = majority_token_accuracy(val_batches)
    lengths = evaluate_lengths(
        model, spec.objective, fold.test, config.data, tokenizer, config.evaluation.length_multipliers,
        batch_size=eval_batch_size, max_batches=cfg.eval_max_batches, device=device, precision=precision,
    )
    for result in lengths:
        metrics.update(result.metrics())
    if probe_tasks:
        metrics.update(_final_probes(model, tokenizer.tokenizer, probe_tasks, config, device, state, schedule))
    save_model(model, run_dir)
    shutil.copyfile(tokenizer.path, run_dir / "tokenizer.json")
    checkpoint_path.unlink(missing_ok=True)
    extra = {
        "precision": precision.name,
        "device": str(device),
        "early_stopped": stop_early,
        "tokens": token_record(state, stream, cfg.gradient_accumulation_steps),
    }
    if lengths:
        extra["length_generalisation"] = [result.to_json() for result in lengths]
    return RunOutcome("completed", metrics, state.curves, extra=extra)


def _optimizer_step(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    scaler: torch.amp.GradScaler,
    batches: Iterator[tuple[int, int, dict]],
    state: TrainState,
    accumulation: int,
    max_grad_norm: float,
    device: torch.device,
    precision: Precision,
) -> tuple[float, int]:
    """One optimizer step over ``accumulation`` micro-batches; returns the token-weighted loss and tokens."""
    micro, scored, tokens = [], [], 0
    for _ in range(accumulation):
        epoch, index, batch = next(batches)
        # Counts come from the CPU batch, so the step needs no device sync until the loss is read once.
        scored.append(int((batch["labels"] != -100).sum()))
        tokens += int(batch["attention_mask"].sum())
        micro.append({key: value.to(device, non_blocking=True) for key, value in batch.items()})
        state.epoch, state.batch_in_epoch = epoch, index + 1
    state.tokens_scored += sum(scored)
    total_scored = max(1, sum(scored))
    loss_sum = torch.zeros((), device=device)
    for batch, n in zip(micro, scored, strict=True):
        with precision.autocast(device):
            out = model.loss(batch["input_ids"], batch["attention_mask"], batch["labels"])
        # Weight each micro-batch by its share of scored tokens: the step equals one big batch.
        scaler.scale(out.loss * (n / total_scored)).backward()
        loss_sum += out.loss.detach().float() * (n / total_scored)
    scaler.unscale_(optimizer)
    torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
    scaler.step(optimizer)
    scaler.update()
    optimizer.zero_grad(set_to_none=True)
    scheduler.step()
    return float(loss_sum), tokens


def token_record(state: TrainState, stream: TrainStream, accumulation: int) -> dict[str, float | int]:
    """What the run saw and learned from (``tokens`` in the run record; docs/training.md).

    ``processed_vs_shared`` divides the non-pad tokens processed by the expected tokens of as many
    micro-batches of the shared segmentation: about 1 when the arm is token-matched to it.
    """
    micro_batches = state.step * accumulation
    expected = micro_batches * stream.shared_tokens_per_batch
    return {
        "processed": state.tokens_seen,
        "scored": state.tokens_scored,
        "targetable": stream.coverage.targetable_tokens,
        "distinct_target_fraction": stream.coverage.fraction,
        "processed_vs_shared": state.tokens_seen / expected if expected else math.nan,
    }


def _record_validation(model, val_batches, device, precision, state: TrainState, cfg) -> bool:
    """Evaluate on the validation split, append to the curves, and say whether early stopping fires."""
    started = time.perf_counter()
    result = evaluate(model, val_batches, device, precision)
    state.eval_time_s += time.perf_counter() - started
    curves = state.curves
    for key, value in (
        ("step", state.step),
        ("tokens", state.tokens_seen),
        ("wall_time_s", state.train_time_s),
        ("val_loss", result.loss),
        ("val_accuracy", result.accuracy),
        ("val_perplexity", result.perplexity),
    ):
        curves.setdefault(key, []).append(value)
    if math.isfinite(result.loss) and result.loss < state.best_val_loss:
        state.best_val_loss = result.loss
        state.evals_since_best = 0
    else:
        state.evals_since_best += 1
    return cfg.early_stopping and state.evals_since_best >= cfg.early_stopping_patience


def _probe_schedule(config: ExperimentConfig, probe_tasks: list | None):
    """The intermediate-probe schedule (``probes.eval_every``), or None when only the end is probed."""
    if not probe_tasks or config.probes.eval_every is None:
        return None
    from mlmclm.probes.curves import ProbeSchedule

    return ProbeSchedule(config.probes.eval_every, config.probes.eval_every_unit)


def _record_probes(model, tokenizer, probe_tasks: list, config: ExperimentConfig, device, state: TrainState) -> dict:
    """Probe the model now and append the scores to the probe curves."""
    from mlmclm.probes import run_probes
    from mlmclm.probes.curves import isolated_rng, record_point

    with isolated_rng(device):
        scores = run_probes(model, tokenizer, probe_tasks, config.probes, device)
    record_point(state.curves, state.step, state.tokens_seen, scores)
    return scores


def _final_probes(model, tokenizer, probe_tasks: list, config: ExperimentConfig, device, state, schedule) -> dict:
    """End-of-training probe metrics: the curve's last point when it was probed at the final step (no second
    probe of the same weights); otherwise probed now, and added to the curve when there is one."""
    from mlmclm.probes import run_probes
    from mlmclm.probes.curves import point_at

    if schedule is None:
        return run_probes(model, tokenizer, probe_tasks, config.probes, device)
    return point_at(state.curves, state.step) or _record_probes(model, tokenizer, probe_tasks, config, device, state)


def _final_metrics(state: TrainState, test, tolerance: float, model, device) -> dict[str, float]:
    curves = state.curves
    converged = convergence_step(curves["step"], curves["val_loss"], tolerance)
    best_index = min(range(len(curves["val_loss"])), key=lambda i: _nan_last(curves["val_loss"][i]))
    return {
        "val_loss": curves["val_loss"][-1],
        "val_accuracy": curves["val_accuracy"][-1],
        "val_perplexity": curves["val_perplexity"][-1],
        "best_val_loss": curves["val_loss"][best_index],
        "best_val_accuracy": max(curves["val_accuracy"]),
        "best_step": float(curves["step"][best_index]),
        "test_loss": test.loss,
        "test_accuracy": test.accuracy,
        "test_perplexity": test.perplexity,
        "convergence_step": float(converged) if converged is not None else math.nan,
        "train_steps": float(state.step),
        "train_tokens": float(state.tokens_seen),
        "train_time_s": state.train_time_s,
        "tokens_per_s": state.tokens_seen / max(state.train_time_s - state.eval_time_s, 1e-9),
        "num_params": float(model.num_parameters()),
        "peak_memory_mb": peak_memory_mb(device),
    }


def _nan_last(value: float) -> float:
    return value if math.isfinite(value) else math.inf
