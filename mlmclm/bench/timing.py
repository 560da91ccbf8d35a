"""Interleaved timing of training steps: every contender is built, warmed up, then timed in rotating order.

A step is forward + backward + AdamW step + zero_grad, with no host synchronisation inside; a repeat times
``steps`` consecutive steps between two synchronisations, so asynchronous GPU work is counted where it runs.
Interleaving the repeats (A B C, B C A, ...) spreads a noisy neighbour over every contender alike, which is
what makes the ratios meaningful on a shared machine even when the absolute numbers are not.
"""

from __future__ import annotations

import contextlib
import statistics
import time
from dataclasses import dataclass

import torch

from mlmclm.bench.twins import Contender, LossFn, make_batches


@dataclass(frozen=True)
class Timing:
    """Milliseconds per step over the repeats, the peak memory of the contender's steps, its last loss.

    ``cpu_ms_median`` is the process's CPU time per step (all its threads): with one thread on a shared
    machine it is far less disturbed by neighbours than wall time, which is what a step costs *them*."""

    ms_median: float
    ms_min: float
    ms_max: float
    peak_memory_mb: float | None
    last_loss: float
    cpu_ms_median: float = float("nan")


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def make_optimizer(model: torch.nn.Module, device: torch.device) -> torch.optim.AdamW:
    """The same AdamW for every contender: one fused kernel where torch has it (CUDA, CPU)."""
    return torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01, fused=device.type in ("cuda", "cpu"))


class Runner:
    """One built contender: model, optimizer, batches on the device, and a step that never syncs."""

    def __init__(self, contender: Contender, shape, device, dtype, compile_model: bool, seed: int = 0) -> None:
        torch.manual_seed(seed)
        self.device, self.dtype = device, dtype
        self.model, loss_fn = contender.build(device)
        self.model.train()
        self.loss_fn: LossFn = torch.compile(loss_fn) if compile_model else loss_fn
        self.optimizer = make_optimizer(self.model, device)
        cpu_batches = make_batches(shape, contender.objective, seed=seed)
        self.batches = [{k: v.to(device) for k, v in b.items()} for b in cpu_batches]
        self.step_index = 0
        self.loss = torch.zeros(())
        self.cpu_seconds = 0.0

    def step(self) -> None:
        batch = self.batches[self.step_index % len(self.batches)]
        self.step_index += 1
        with autocast(self.device, self.dtype):
            loss = self.loss_fn(batch)
        loss.backward()
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.loss = loss.detach()

    def run(self, steps: int) -> float:
        """Wall seconds for ``steps`` steps, synchronised at both ends; the CPU seconds go to ``cpu_seconds``."""
        synchronize(self.device)
        start, cpu_start = time.perf_counter(), time.process_time()
        for _ in range(steps):
            self.step()
        synchronize(self.device)
        self.cpu_seconds = time.process_time() - cpu_start
        return time.perf_counter() - start


def warm_up(
    contender: Contender, shape, device, dtype, compile_model: bool, warmup: int
) -> tuple[Runner, float | None]:
    """Build and warm up one contender; on CUDA its peak memory above what was allocated before it."""
    before = torch.cuda.memory_allocated(device) if device.type == "cuda" else 0
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    runner = Runner(contender, shape, device, dtype, compile_model)
    runner.run(max(1, warmup))
    peak = None
    if device.type == "cuda":
        peak = (torch.cuda.max_memory_allocated(device) - before) / 2**20
    return runner, peak


def time_interleaved(
    contenders: list[Contender], shape, device: torch.device, dtype: torch.dtype | None, *,
    steps: int, warmup: int, repeats: int, compile_model: bool = False,
) -> list[Timing | str]:
    """Time every contender ``repeats`` times, rotating the order each repeat; medians, minima, maxima.

    A contender that fails to build or step (out of memory, a kernel missing on this device) gets its error
    message instead of a timing, and the others are still timed."""
    built: list[tuple[Runner, float | None] | str] = []
    for contender in contenders:
        try:
            built.append(warm_up(contender, shape, device, dtype, compile_model, warmup))
        except (RuntimeError, NotImplementedError, ValueError, ImportError) as exc:  # OutOfMemoryError too
            built.append(f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
            if device.type == "cuda":
                torch.cuda.empty_cache()
    live = [i for i, b in enumerate(built) if not isinstance(b, str)]
    samples: dict[int, list[float]] = {i: [] for i in live}
    cpu: dict[int, list[float]] = {i: [] for i in live}
    for repeat in range(repeats):
        for offset in range(len(live)):
            index = live[(repeat + offset) % len(live)]
            runner = built[index][0]
            samples[index].append(runner.run(steps) / steps * 1e3)
            cpu[index].append(runner.cpu_seconds / steps * 1e3)
    timings: list[Timing | str] = []
    for index, entry in enumerate(built):
        if isinstance(entry, str):
            timings.append(entry)
            continue
        runner, peak = entry
        ms = samples[index]
        timings.append(Timing(statistics.median(ms), min(ms), max(ms), peak, float(runner.loss),
                              statistics.median(cpu[index])))
    return timings
