"""One training run = (objective, attention, fold, seed): train, evaluate, save, and report its metrics.

The seed controls initialisation, data order, masking and dropout; the step budget is fixed from outside so
that every run of a comparison gets the same optimizer steps and about the same real tokens (recorded per
run). A NaN/inf loss ends the run as ``diverged``; periodic checkpoints let an interrupted run continue
mid-way with identical numbers.

The file reads as nanoGPT's ``train.py``: :func:`train_run` builds the run (:func:`build_run`: model,
optimiser, data, resume), loops (:func:`train_loop`) and finishes it (:func:`finish_run`: test, extra
evaluations, final probes, saved model). Probes come from the caller (:class:`~mlmclm.train.protocols.
TrainingProbes`; the grid worker builds them beside the probe tasks), so ``train/`` imports nothing from
``probes/`` or ``grid/``.
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
from mlmclm.data import ExperimentData, TrainStream, build_eval_batches, model_inputs
from mlmclm.data.batches import ObjectiveSchedule, batch_causal, objective_schedule
from mlmclm.data.prepare import FoldData
from mlmclm.data.tokenizer import TokenizerInfo
from mlmclm.faults import fault_point
from mlmclm.model import LossOutput, Transformer, save_model
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
from mlmclm.train.protocols import RunIdentity, TrainingProbes

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


def run_training_config(config: ExperimentConfig, spec: RunIdentity) -> TrainingConfig:
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
    spec: RunIdentity,
    config: ExperimentConfig,
    data: ExperimentData,
    run_dir: Path,
    total_steps: int,
    probes: TrainingProbes | None = None,
    on_step: StepCallback | None = None,
) -> RunOutcome:
    """Train one run for exactly ``total_steps`` optimizer steps (fewer only with early stopping).

    Reads as nanoGPT's ``train.py``: build the run (or resume it), loop, finish. ``probes`` (built by the
    grid worker beside the probe tasks) probe the encoder at checkpoints and at the end."""
    run = build_run(spec, config, data, run_dir, total_steps)
    try:
        stop_early = train_loop(run, probes, on_step)
    except DivergedError as exc:
        return _diverged(run, exc)
    return finish_run(run, stop_early, probes)


@dataclass
class Run:
    """One run while it trains: what :func:`build_run` made, :func:`train_loop` steps, :func:`finish_run` ends."""

    spec: RunIdentity
    config: ExperimentConfig
    cfg: TrainingConfig  # the run's own training settings: its peak rate may come from the sweep
    run_dir: Path
    total_steps: int
    device: torch.device
    precision: Precision
    fold: FoldData  # under cross-validation the fold's own tokenizer (trained on its training part)
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    schedule: ObjectiveSchedule | None  # hybrids: which objective each micro-batch trains
    stream: TrainStream
    val_batches: list[dict[str, torch.Tensor]]
    state: TrainState = field(default_factory=TrainState)
    resumed_from_step: int = 0
    trainable: torch.nn.Module | None = None  # the model, or its DDP wrapper
    loss_fn: Callable[..., LossOutput] | None = None  # the training step's loss (:func:`training_loss`)

    @property
    def tokenizer(self) -> TokenizerInfo:
        return self.fold.tokenizer

    @property
    def checkpoint_path(self) -> Path:
        return self.run_dir / CHECKPOINT_NAME

    @property
    def eval_batch_size(self) -> int:
        return self.cfg.eval_batch_size or self.cfg.batch_size

    def tokens(self) -> dict[str, float | int]:
        """The run record's ``tokens`` (:func:`token_record`), counted over every rank."""
        world = distributed.current().world_size
        return token_record(self.state, self.stream, self.cfg.gradient_accumulation_steps * world)


def build_run(
    spec: RunIdentity, config: ExperimentConfig, data: ExperimentData, run_dir: Path, total_steps: int
) -> Run:
    """Model, optimiser, schedule, data streams and, when ``run_dir`` holds a checkpoint, the state it left."""
    cfg = run_training_config(config, spec)
    ctx = distributed.current()
    device = distributed.rank_device(resolve_device(config.device))
    precision = choose_precision(device, config.mixed_precision)
    fold = data.fold(spec.fold)
    parts = _build_training(spec, config, cfg, fold.tokenizer, device, precision, total_steps)
    schedule = objective_schedule(spec.objective, cfg, total_steps)
    stream = TrainStream(spec.objective, fold.train, config.data, fold.tokenizer, cfg.batch_size, spec.seed, schedule)
    val_batches = build_eval_batches(
        spec.objective, fold.validation, config.data, fold.tokenizer, cfg.eval_batch_size or cfg.batch_size,
        cfg.eval_max_batches,
    )
    run = Run(spec, config, cfg, run_dir, total_steps, device, precision, fold, *parts, schedule, stream, val_batches)
    if run.checkpoint_path.exists():
        _resume(run)
    run.state.world_size = ctx.world_size
    if ctx.rank > 0:
        torch.manual_seed(_rank_dropout_seed(spec.seed, ctx.rank, run.state.step))
    run.trainable = distributed.wrap_for_training(run.model, device)
    run.loss_fn = training_loss(run.trainable, config.compile)
    return run


def training_loss(trainable: torch.nn.Module, compile_loss: bool) -> Callable[..., LossOutput]:
    """What a training step calls for its loss: the model's :meth:`~mlmclm.model.transformer.Transformer.loss`,
    or under DDP the wrapper, whose forward is that loss; ``torch.compile``-d with ``compile: true``.

    Only the step's loss is compiled, so checkpoints keep the model's own parameter names and evaluation and
    probes stay eager (they run on whole validation batches of other widths, and rarely)."""
    distributed_data_parallel = isinstance(trainable, torch.nn.parallel.DistributedDataParallel)
    loss_fn = trainable if distributed_data_parallel else trainable.loss
    return torch.compile(loss_fn) if compile_loss else loss_fn


def _resume(run: Run) -> None:
    """Continue from the run's checkpoint; a corrupt one is moved aside and the run starts over, freshly seeded."""
    try:
        run.state = load_checkpoint(run.checkpoint_path, run.model, run.optimizer, run.scheduler, run.scaler)
        distributed.check_resumed_world_size(run.state, run.checkpoint_path)
        if run.state.target_coverage is not None:
            run.stream.coverage.restore(run.state.target_coverage)
        log.info("%s: resuming from step %d", run.spec.run_id, run.state.step)
        run.resumed_from_step = run.state.step
    except CorruptCheckpointError as exc:  # never continue from garbage
        if distributed.current().is_main:
            discard_checkpoint(run.checkpoint_path, f"{run.spec.run_id}: {exc}")
        run.state = TrainState()
        run.model, run.optimizer, run.scheduler, run.scaler = _build_training(
            run.spec, run.config, run.cfg, run.tokenizer, run.device, run.precision, run.total_steps
        )


def train_loop(run: Run, probes: TrainingProbes | None, on_step: StepCallback | None) -> bool:
    """Optimizer steps until the budget is spent; validate, probe and checkpoint on their schedules.

    Returns whether early stopping ended the run; raises :class:`DivergedError` on a non-finite loss."""
    state, cfg, ctx = run.state, run.cfg, distributed.current()
    reset_peak_memory(run.device)
    run.model.train()
    batches = _train_batches(run.stream, state.epoch, state.batch_in_epoch, ctx.rank, ctx.world_size)
    clock = TrainClock(state.train_time_s)
    stop_early = False
    while state.step < run.total_steps and not stop_early:
        tokens_before = state.tokens_seen
        loss = _train_step(run, batches)
        state.train_time_s = clock.elapsed()
        if on_step is not None:
            training_s = max(state.train_time_s - state.eval_time_s, 1e-9)
            on_step(state.step, run.total_steps, loss, state.tokens_seen / training_s)
        if state.step % cfg.eval_interval == 0 or state.step == run.total_steps:
            # Validation runs once, on rank 0; the early-stopping decision reaches every rank.
            if ctx.is_main:
                stop_early = _record_validation(run.model, run.val_batches, run.device, run.precision, state, cfg)
            stop_early = distributed.broadcast_from_main(stop_early)
        if probes is not None and probes.due(state.step, run.total_steps, tokens_before, state.tokens_seen):
            if ctx.is_main:  # rank 0 alone probes, as it alone evaluates
                # Probes are not training: keep them out of train_time_s, which CLM (two probe views) and
                # MLM would otherwise pay differently for.
                with clock.paused():
                    probes.at_checkpoint(run.model, state, run.device)
        if state.step % cfg.checkpoint_interval == 0 and state.step < run.total_steps:
            state.train_time_s = clock.elapsed()
            _save_checkpoint(run)
    _merge_coverage(run.stream, run.device)
    if ctx.is_main:
        state.train_time_s = clock.elapsed()
    return stop_early


def _train_step(run: Run, batches: Iterator[tuple[int, int, dict | None]]) -> float:
    """One optimizer step and its bookkeeping: tokens, the train-loss curve, the divergence check."""
    state, cfg = run.state, run.cfg
    loss, tokens = _optimizer_step(
        run.trainable, run.loss_fn, run.optimizer, run.scheduler, run.scaler, batches, state,
        cfg.gradient_accumulation_steps, cfg.max_grad_norm, run.device, run.precision,
    )
    state.step += 1
    state.tokens_seen += tokens
    fault_point("step")
    if not math.isfinite(loss):
        raise DivergedError(state.step, loss)
    state.curves.setdefault("train_step", []).append(state.step)
    state.curves.setdefault("train_loss", []).append(loss)
    return loss


def _save_checkpoint(run: Run) -> None:
    """Every rank merges the distinct-target coverage (a collective); rank 0 writes the checkpoint."""
    _merge_coverage(run.stream, run.device)
    run.state.target_coverage = run.stream.coverage.packed()
    if distributed.current().is_main:
        save_checkpoint(run.checkpoint_path, run.model, run.optimizer, run.scheduler, run.scaler, run.state)


class TrainClock:
    """Training wall time: continues a resumed run's, and stands still while the encoder is probed."""

    def __init__(self, already_s: float = 0.0) -> None:
        self._start = time.perf_counter() - already_s

    def elapsed(self) -> float:
        return time.perf_counter() - self._start

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        stopped = time.perf_counter()
        try:
            yield
        finally:
            self._start += time.perf_counter() - stopped


def _diverged(run: Run, exc: DivergedError) -> RunOutcome:
    """A run whose loss or gradient norm became NaN/inf: recorded with the step, its checkpoint dropped."""
    log.warning("%s diverged: %s", run.spec.run_id, exc)
    _merge_coverage(run.stream, run.device)
    if distributed.current().is_main:
        discard_checkpoint(run.checkpoint_path)
    metrics = {"diverged_step": float(exc.step), "num_params": float(run.model.num_parameters())}
    return RunOutcome("diverged", metrics, run.state.curves, error=str(exc), extra={"tokens": run.tokens()})


def finish_run(run: Run, stop_early: bool, probes: TrainingProbes | None) -> RunOutcome:
    """Test, extra evaluations, final probes, saved model: the completed run's metrics and record parts.

    Rank 0 alone does this (the numbers are the same on every rank); the checkpoint goes only once all of
    it is done, so an interruption here resumes from the last checkpoint."""
    if not distributed.current().is_main:
        return RunOutcome("completed", {}, {}, extra={"tokens": run.tokens()})
    spec, model, state = run.spec, run.model, run.state
    test_batches = build_eval_batches(
        spec.objective, run.fold.test, run.config.data, run.tokenizer, run.eval_batch_size, run.cfg.eval_max_batches
    )
    test = evaluate(model, test_batches, run.device, run.precision)
    metrics = _final_metrics(state, test, run.cfg.convergence_tolerance, model, run.device)
    metrics["val_majority_token_accuracy"] = majority_token_accuracy(run.val_batches)
    if spec.objective == "mntp":
        metrics.update(_causal_view_metrics(run))
    lengths = _length_evaluations(run)
    for result in lengths:
        metrics.update(result.metrics())
    final_probes = probes.at_end(model, state, run.device) if probes is not None else None
    if final_probes is not None:
        metrics.update(final_probes.metrics)
    save_model(model, run.run_dir)
    _save_tokenizer(run.tokenizer, run.run_dir / "tokenizer.json")
    discard_checkpoint(run.checkpoint_path)
    items = final_probes.items if final_probes is not None else {}
    return RunOutcome("completed", metrics, state.curves, extra=_record_extra(run, stop_early, items, lengths))


def _record_extra(run: Run, stop_early: bool, probe_items: dict[str, str], lengths: list) -> dict[str, Any]:
    """What a completed run's record holds beyond metrics and curves (docs/raw_results.schema.json)."""
    extra: dict[str, Any] = {
        "precision": run.precision.name,
        "device": str(run.device),
        "early_stopped": stop_early,
        "resumed_from_step": run.resumed_from_step,
        "packing": run.config.data.packing,
        "tokens": run.tokens(),
    }
    if run.schedule is not None:
        extra["hybrid"] = run.schedule.record()
    if probe_items:
        extra["probe_items"] = probe_items
    if lengths:
        extra["length_generalisation"] = [result.to_json() for result in lengths]
    return extra


def _length_evaluations(run: Run) -> list:
    """The model at ``evaluation.length_multipliers`` x the training length (docs/training.md)."""
    return evaluate_lengths(
        run.model, run.spec.objective, run.fold.test, run.config.data, run.tokenizer,
        run.config.evaluation.length_multipliers, batch_size=run.eval_batch_size,
        max_batches=run.cfg.eval_max_batches, device=run.device, precision=run.precision,
    )


def _causal_view_metrics(run: Run) -> dict[str, float]:
    """An ``mntp`` model scored in its causal view too: every next token under the causal mask, on the shared
    segmentation, the task a ``clm`` run's val/test loss scores under ``data.clm_strategy: standard``."""
    metrics = {}
    for split, docs in (("val", run.fold.validation), ("test", run.fold.test)):
        batches = build_eval_batches(
            "mntp", docs, run.config.data, run.tokenizer, run.eval_batch_size, run.cfg.eval_max_batches, "causal"
        )
        result = evaluate(run.model, batches, run.device, run.precision)
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
    spec: RunIdentity,
    config: ExperimentConfig,
    cfg: TrainingConfig,
    tokenizer: TokenizerInfo,
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


def _new_model(config: ExperimentConfig, spec: RunIdentity, tokenizer: TokenizerInfo) -> torch.nn.Module:
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


def random_init_encoder(
    config: ExperimentConfig, spec: RunIdentity, tokenizer: TokenizerInfo, device: torch.device
) -> torch.nn.Module:
    """The run's own starting weights: the same shape, built from the run's seed, never trained.

    The global RNG is forked, so building it leaves every later random draw of the run unchanged
    (the probe-validity baseline of docs/probes.md)."""
    with torch.random.fork_rng(devices=[]):
        encoder = _new_model(config, spec, tokenizer)
    return encoder.to(device).eval()


def _optimizer_step(
    trainable: torch.nn.Module,
    loss_fn: Callable[..., LossOutput],
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
    (:func:`mlmclm.train.distributed.wrap_for_training`); ``loss_fn`` is its loss (:func:`training_loss`).
    DDP's backward averages the gradients over the W ranks, so each rank scales its micro-batch losses by W.

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
        micro.append(model_inputs(batch, device))
    step_scored, tokens = (int(v) for v in distributed.sum_over_ranks([sum(scored), tokens], device))
    state.tokens_scored += step_scored
    total_scored = max(1, step_scored)
    if any(view is not None for view in views):  # hybrids: which mask each step trained under (this rank's)
        state.curves.setdefault("train_causal_fraction", []).append(sum(map(bool, views)) / len(views))
    loss_sum = torch.zeros((), device=device)
    for position, (inputs, n) in enumerate(zip(micro, scored, strict=True)):
        # DDP reduces the gradients once per step, on the last micro-batch.
        sync = position == len(micro) - 1 or not hasattr(trainable, "no_sync")
        with contextlib.nullcontext() if sync else trainable.no_sync():
            with precision.autocast(device):
                out = loss_fn(**inputs)
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
    micro-batches of the shared segmentation: about 1 when the arm is token-matched to it. ``per_step``: the
    non-pad tokens of an optimizer step on average, what ``data.packing`` raises.
    """
    micro_batches = state.step * accumulation
    expected = micro_batches * stream.shared_tokens_per_batch
    return {
        "processed": state.tokens_seen,
        "scored": state.tokens_scored,
        "targetable": stream.coverage.targetable_tokens,
        "distinct_target_fraction": stream.coverage.fraction,
        "processed_vs_shared": state.tokens_seen / expected if expected else math.nan,
        "per_step": state.tokens_seen / state.step if state.step else math.nan,
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
