"""One training run = (objective, attention, fold, seed): train, evaluate, save, and report its metrics.

The seed controls initialisation, data order, masking and dropout; the step budget is fixed from outside so
that every run of a comparison gets the same optimizer steps and about the same real tokens (recorded per
run). A NaN/inf loss ends the run as ``diverged``; periodic checkpoints let an interrupted run continue
mid-way with identical numbers.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mlmclm.atomic import atomic_write_text
from mlmclm.config import ExperimentConfig, TrainingConfig
from mlmclm.data import ExperimentData, TrainStream, build_eval_batches
from mlmclm.data.batches import batch_causal, objective_schedule
from mlmclm.faults import fault_point
from mlmclm.grid.plan import RunSpec
from mlmclm.model import Transformer, save_model
from mlmclm.train import distributed
from mlmclm.train.checkpoint import (
    CorruptCheckpointError,
    TrainState,
    discard_checkpoint,
    load_checkpoint,
    save_checkpoint,
)
from mlmclm.train.device import Precision, choose_precision, peak_memory_mb, reset_peak_memory, resolve_device
from mlmclm.train.evaluate import evaluate, majority_token_accuracy
from mlmclm.train.length import evaluate_lengths
from mlmclm.train.optim import build_optimizer, build_scheduler

log = logging.getLogger(__name__)

CHECKPOINT_NAME = "checkpoint.pt"
StepCallback = Callable[[int, int, float, float], None]  # (step, total_steps, loss, tokens_per_s)


class DivergedError(RuntimeError):
    """The training loss or the gradient norm became NaN or infinite."""

    def __init__(self, step: int, loss: float, what: str = "loss") -> None:
        super().__init__(f"{what} became {loss} at step {step}")
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


def _train_batches(
    stream: TrainStream, start_epoch: int, skip: int, rank: int = 0, world_size: int = 1
) -> Iterator[tuple[int, int, dict | None]]:
    """Endless (epoch, index, batch) over the stream, starting after ``skip`` batches of ``start_epoch``.

    With ``world_size`` ranks, the micro-batch at position p (counted from the start) is built by rank
    p mod ``world_size`` alone; the others get ``None`` for it, so each rank's micro-batches are disjoint
    and an optimizer step of A x W positions holds exactly the micro-batches of a single process stepping
    with accumulation A x W. Resumes start on a step boundary, so positions stay aligned.
    """
    epoch, position = start_epoch, 0
    while True:
        for index, ids in enumerate(stream.epoch_ids(epoch)):
            if epoch == start_epoch and index < skip:
                continue
            yield epoch, index, stream.build(epoch, ids, index) if position % world_size == rank else None
            position += 1
        epoch += 1
        skip = 0


def _rank_dropout_seed(seed: int, rank: int, step: int) -> int:
    """Ranks other than 0 draw their own dropout masks (rank 0 keeps the single-process stream)."""
    return int(np.random.SeedSequence([seed, rank, step]).generate_state(1)[0])


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
    ctx = distributed.current()
    device = distributed.rank_device(resolve_device(config.device))
    precision = choose_precision(device, config.mixed_precision)
    fold = data.fold(spec.fold)
    tokenizer = fold.tokenizer  # under cross-validation, the fold's own (trained on its training part)
    model, optimizer, scheduler, scaler = _build_training(spec, config, cfg, tokenizer, device, precision, total_steps)

    schedule = objective_schedule(spec.objective, cfg, total_steps)
    stream = TrainStream(spec.objective, fold.train, config.data, tokenizer, cfg.batch_size, spec.seed, schedule)
    eval_batch_size = cfg.eval_batch_size or cfg.batch_size
    val_batches = build_eval_batches(
        spec.objective, fold.validation, config.data, tokenizer, eval_batch_size, cfg.eval_max_batches
    )

    state = TrainState()
    resumed_from_step = 0
    checkpoint_path = run_dir / CHECKPOINT_NAME
    if checkpoint_path.exists():
        try:
            state = load_checkpoint(checkpoint_path, model, optimizer, scheduler, scaler)
            distributed.check_resumed_world_size(state, checkpoint_path)
            if state.target_coverage is not None:
                stream.coverage.restore(state.target_coverage)
            log.info("%s: resuming from step %d", spec.run_id, state.step)
            resumed_from_step = state.step
        except CorruptCheckpointError as exc:  # never continue from garbage: start over, freshly seeded
            if ctx.is_main:
                discard_checkpoint(checkpoint_path, f"{spec.run_id}: {exc}")
            state = TrainState()
            model, optimizer, scheduler, scaler = _build_training(
                spec, config, cfg, tokenizer, device, precision, total_steps
            )
    state.world_size = ctx.world_size
    if ctx.rank > 0:
        torch.manual_seed(_rank_dropout_seed(spec.seed, ctx.rank, state.step))
    trainable = distributed.wrap_for_training(model, device)

    probe_schedule = _probe_schedule(config, probe_tasks)
    reset_peak_memory(device)
    model.train()
    batches = _train_batches(stream, state.epoch, state.batch_in_epoch, ctx.rank, ctx.world_size)
    started = time.perf_counter() - state.train_time_s
    stop_early = False
    try:
        while state.step < total_steps and not stop_early:
            loss_sum, tokens_this_step = _optimizer_step(
                trainable, optimizer, scheduler, scaler, batches, state, cfg.gradient_accumulation_steps,
                cfg.max_grad_norm, device, precision,
            )
            state.step += 1
            tokens_before = state.tokens_seen
            state.tokens_seen += tokens_this_step
            fault_point("step")
            if not math.isfinite(loss_sum):
                raise DivergedError(state.step, loss_sum)
            state.curves.setdefault("train_step", []).append(state.step)
            state.curves.setdefault("train_loss", []).append(loss_sum)
            state.train_time_s = time.perf_counter() - started
            if on_step is not None:
                training_s = max(state.train_time_s - state.eval_time_s, 1e-9)
                on_step(state.step, total_steps, loss_sum, state.tokens_seen / training_s)
            if state.step % cfg.eval_interval == 0 or state.step == total_steps:
                # Validation runs once, on rank 0; the early-stopping decision reaches every rank.
                if ctx.is_main:
                    stop_early = _record_validation(model, val_batches, device, precision, state, cfg)
                stop_early = distributed.broadcast_from_main(stop_early)
            probe_due = probe_schedule is not None and probe_schedule.due(
                state.step, total_steps, tokens_before, state.tokens_seen
            )
            if probe_due:
                if ctx.is_main:  # rank 0 alone probes, as it alone evaluates
                    probing = time.perf_counter()
                    _record_probes(model, tokenizer.tokenizer, probe_tasks, config, device, state)
                    # Probes are not training: keep them out of train_time_s, which CLM (two probe views) and
                    # MLM would otherwise pay differently for.
                    started += time.perf_counter() - probing
            if state.step % cfg.checkpoint_interval == 0 and state.step < total_steps:
                state.train_time_s = time.perf_counter() - started
                _merge_coverage(stream, device)
                state.target_coverage = stream.coverage.packed()
                if ctx.is_main:
                    save_checkpoint(checkpoint_path, model, optimizer, scheduler, scaler, state)
    except DivergedError as exc:
        log.warning("%s diverged: %s", spec.run_id, exc)
        _merge_coverage(stream, device)
        if ctx.is_main:
            discard_checkpoint(checkpoint_path)
        metrics = {"diverged_step": float(exc.step), "num_params": float(model.num_parameters())}
        extra = {"tokens": token_record(state, stream, cfg.gradient_accumulation_steps * ctx.world_size)}
        return RunOutcome("diverged", metrics, state.curves, error=str(exc), extra=extra)

    _merge_coverage(stream, device)
    if not ctx.is_main:  # rank 0 alone tests, probes and saves; the numbers are the same on every rank
        extra = {"tokens": token_record(state, stream, cfg.gradient_accumulation_steps * ctx.world_size)}
        return RunOutcome("completed", {}, {}, extra=extra)

    state.train_time_s = time.perf_counter() - started
    test_batches = build_eval_batches(
        spec.objective, fold.test, config.data, tokenizer, eval_batch_size, cfg.eval_max_batches
    )
    test = evaluate(model, test_batches, device, precision)

    metrics = _final_metrics(state, test, cfg.convergence_tolerance, model, device)
    metrics["val_majority_token_accuracy"] = majority_token_accuracy(val_batches)
    probe_items: dict[str, str] = {}
    if spec.objective == "mntp":
        metrics.update(_causal_view_metrics(model, fold, config, tokenizer, eval_batch_size, cfg, device, precision))
    lengths = evaluate_lengths(
        model, spec.objective, fold.test, config.data, tokenizer, config.evaluation.length_multipliers,
        batch_size=eval_batch_size, max_batches=cfg.eval_max_batches, device=device, precision=precision,
    )
    for result in lengths:
        metrics.update(result.metrics())
    if probe_tasks:
        probes = _final_probes(model, spec, tokenizer, probe_tasks, config, device, state, probe_schedule)
        metrics.update(probes.metrics)
        probe_items = probes.items
    save_model(model, run_dir)
    _save_tokenizer(tokenizer, run_dir / "tokenizer.json")
    discard_checkpoint(checkpoint_path)
    extra = {
        "precision": precision.name,
        "device": str(device),
        "early_stopped": stop_early,
        "resumed_from_step": resumed_from_step,
        "tokens": token_record(state, stream, cfg.gradient_accumulation_steps * ctx.world_size),
    }
    if schedule is not None:
        extra["hybrid"] = schedule.record()
    if probe_items:
        extra["probe_items"] = probe_items
    if lengths:
        extra["length_generalisation"] = [result.to_json() for result in lengths]
    return RunOutcome("completed", metrics, state.curves, extra=extra)


def _causal_view_metrics(model, fold, config, tokenizer, batch_size, cfg, device, precision) -> dict[str, float]:
    """An ``mntp`` model scored in its causal view too: every next token under the causal mask, on the shared
    segmentation, the task a ``clm`` run's val/test loss scores under ``data.clm_strategy: standard``."""
    metrics = {}
    for split, docs in (("val", fold.validation), ("test", fold.test)):
        batches = build_eval_batches("mntp", docs, config.data, tokenizer, batch_size, cfg.eval_max_batches, "causal")
        result = evaluate(model, batches, device, precision)
        metrics[f"{split}_loss_causal"] = result.loss
        metrics[f"{split}_accuracy_causal"] = result.accuracy
    return metrics


def _save_tokenizer(tokenizer, target: Path) -> None:
    """Copy the tokenizer file the manifest hashes; a Ray worker on a node that cannot see the driver's
    cache (the data came through the object store) writes the in-memory tokenizer instead."""
    if Path(tokenizer.path).is_file():
        shutil.copyfile(tokenizer.path, target)
    else:
        atomic_write_text(target, tokenizer.tokenizer.to_str())


def _merge_coverage(stream: TrainStream, device: torch.device) -> None:
    """Every rank's distinct-target bitmap becomes the union over ranks (a no-op in one process)."""
    if distributed.current().enabled:
        scored = distributed.any_over_ranks(torch.from_numpy(stream.coverage.scored), device)
        stream.coverage.scored = scored.numpy()


def _build_training(
    spec: RunSpec,
    config: ExperimentConfig,
    cfg: TrainingConfig,
    tokenizer,
    device: torch.device,
    precision: Precision,
    total_steps: int,
) -> tuple[torch.nn.Module, torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler, torch.amp.GradScaler]:
    """Model, optimizer, schedule and grad scaler of a run, freshly initialised from the run's seed.

    ``cfg`` is the run's training config (its learning rate may come from the sweep)."""
    model = _new_model(config, spec, tokenizer).to(device)
    model.set_gradient_checkpointing(config.gradient_checkpointing)
    optimizer = build_optimizer(model, cfg)
    scheduler = build_scheduler(optimizer, cfg, total_steps)
    scaler = torch.amp.GradScaler(device.type, enabled=precision.use_grad_scaler)
    return model, optimizer, scheduler, scaler


def _new_model(config: ExperimentConfig, spec: RunSpec, tokenizer) -> torch.nn.Module:
    """The run's architecture at its initialisation: the global RNG is seeded from the run's seed, which also
    seeds dropout; data order and masks use their own generators."""
    torch.manual_seed(spec.seed)
    return Transformer(
        config.model,
        objective=spec.objective,
        attention=spec.attention,
        vocab_size=tokenizer.vocab_size,
        max_seq_length=config.data.max_seq_length,
        pad_token_id=tokenizer.pad_id,
    )


def _random_init_encoder(config: ExperimentConfig, spec: RunSpec, tokenizer, device: torch.device) -> torch.nn.Module:
    """The run's own starting weights: the same shape, built from the run's seed, never trained.

    The global RNG is forked, so building it leaves every later random draw of the run unchanged
    (the probe-validity baseline of docs/probes.md)."""
    with torch.random.fork_rng(devices=[]):
        encoder = _new_model(config, spec, tokenizer)
    return encoder.to(device).eval()


def _optimizer_step(
    trainable: torch.nn.Module,
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
    """One optimizer step over ``accumulation`` micro-batches per rank; returns the token-weighted loss and
    the tokens, both over all ranks.

    ``trainable`` is the model, or under DDP a wrapper whose forward is the loss
    (:func:`mlmclm.train.distributed.wrap_for_training`); DDP's backward averages the gradients over the
    W ranks, so each rank scales its micro-batch losses by W.

    A non-finite gradient norm ends the run as diverged at this step, except under fp16 loss scaling, where
    an overflow is expected now and then: the grad scaler skips that update and lowers its scale
    (Micikevicius et al., 2018, "Mixed Precision Training", section 3.2).
    """
    world = distributed.current().world_size
    micro, scored, views, tokens = [], [], [], 0
    for _ in range(accumulation * world):
        epoch, index, batch = next(batches)
        state.epoch, state.batch_in_epoch = epoch, index + 1
        if batch is None:  # another rank's micro-batch
            continue
        # Counts come from the CPU batch, so the step needs no device sync until the loss is read once.
        scored.append(int((batch["labels"] != -100).sum()))
        views.append(batch_causal(batch))
        tokens += int(batch["attention_mask"].sum())
        micro.append({key: value.to(device, non_blocking=True) for key, value in batch.items()})
    step_scored, tokens = (int(v) for v in distributed.sum_over_ranks([sum(scored), tokens], device))
    state.tokens_scored += step_scored
    total_scored = max(1, step_scored)
    if any(view is not None for view in views):  # hybrids: which mask each step trained under (this rank's)
        state.curves.setdefault("train_causal_fraction", []).append(sum(map(bool, views)) / len(views))
    loss_sum = torch.zeros((), device=device)
    for position, (batch, n, causal) in enumerate(zip(micro, scored, views, strict=True)):
        # DDP reduces the gradients once per step, on the last micro-batch.
        sync = position == len(micro) - 1 or not hasattr(trainable, "no_sync")
        with contextlib.nullcontext() if sync else trainable.no_sync():
            with precision.autocast(device):
                loss_of = trainable if world > 1 else trainable.loss
                out = loss_of(batch["input_ids"], batch["attention_mask"], batch["labels"], causal=causal)
            # Weight each micro-batch by its share of scored tokens: the step equals one big batch.
            scaler.scale(out.loss * (n * world / total_scored)).backward()
        loss_sum += out.loss.detach().float() * (n / total_scored)
    scaler.unscale_(optimizer)
    grad_norm = torch.nn.utils.clip_grad_norm_(trainable.parameters(), max_grad_norm)
    if not scaler.is_enabled():
        # one host sync for both numbers; with the scaler, inf/NaN gradients are its to handle
        loss_value, norm_value = torch.stack([loss_sum, grad_norm.detach().float().to(device)]).tolist()
        if math.isfinite(loss_value) and not math.isfinite(norm_value):
            raise DivergedError(state.step + 1, norm_value, what="gradient norm")
    scaler.step(optimizer)
    scaler.update()
    optimizer.zero_grad(set_to_none=True)
    scheduler.step()
    if world == 1:
        return float(loss_sum), tokens
    return distributed.sum_over_ranks([float(loss_sum)], device)[0], tokens


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


def _final_probes(model, spec: RunSpec, tokenizer, probe_tasks: list, config: ExperimentConfig, device, state,
                  probe_schedule):
    """End-of-training probes with their validity baselines (random-init encoder and control task, linear
    mode) and per-item correctness; with intermediate probes, the final point joins the curve when the
    schedule did not already probe the final step (the probes are deterministic, so the values agree)."""
    from mlmclm.probes import run_probes_detailed
    from mlmclm.probes.curves import point_at, record_point
    from mlmclm.probes.run import is_probe_baseline

    random_init = _random_init_encoder(config, spec, tokenizer, device) if config.probes.mode == "linear" else None
    probes = run_probes_detailed(
        model, tokenizer.tokenizer, probe_tasks, config.probes, device, random_init=random_init
    )
    if probe_schedule is not None and point_at(state.curves, state.step) is None:
        trained = {name: value for name, value in probes.metrics.items() if not is_probe_baseline(name)}
        record_point(state.curves, state.step, state.tokens_seen, trained)
    return probes


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
