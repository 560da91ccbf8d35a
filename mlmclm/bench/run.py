"""``mlmclm bench``: the scenarios, each a small function from options to records, and the command's flow."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import platform
import statistics
from dataclasses import dataclass
from pathlib import Path

import torch

from mlmclm.bench.contention import competing_cpu_job
from mlmclm.bench.flops import gpu_peak_flops, measured_cpu_peak_flops, step_flops
from mlmclm.bench.records import BenchResult, StepRecord, pipeline_table, step_table
from mlmclm.bench.shapes import PRESETS, QUICK, QUICK_SWEEP_SIZES, SWEEP_SEQ_LENGTHS, SWEEP_SIZES, BenchShape
from mlmclm.bench.timing import Runner, Timing, time_interleaved
from mlmclm.bench.twins import (
    Contender,
    make_batches,
    mlmclm_contender,
    scored_positions,
    transformers_contender,
)

SCENARIOS = ("impl", "attention", "pipeline", "sweep", "contention")
DEFAULT_SCENARIOS = ("impl", "attention", "pipeline")
PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass(frozen=True)
class BenchOptions:
    preset: str = "tiny"
    quick: bool = False
    device: str = "cpu"
    precision: str = "fp32"
    threads: int | None = None
    compile: bool = False
    scenarios: tuple[str, ...] = DEFAULT_SCENARIOS
    objectives: tuple[str, ...] = ("mlm", "clm")
    steps: int | None = None
    warmup: int | None = None
    repeats: int | None = None
    json_path: Path | None = None
    sweep_seq_lengths: tuple[int, ...] = SWEEP_SEQ_LENGTHS
    attention: tuple[str, ...] = ()  # the attention scenario's mechanisms; empty: every registered one
    dropout: float = 0.1

    @property
    def shape(self) -> BenchShape:
        return QUICK if self.quick else PRESETS[self.preset]

    @property
    def counts(self) -> tuple[int, int, int]:
        """(steps per repeat, warm-up steps, repeats): seconds under --quick."""
        default = (2, 1, 2) if self.quick else (10, 3, 5)
        return (self.steps or default[0], self.warmup or default[1], self.repeats or default[2])


class Context:
    """What every scenario needs: device, dtype, the FLOP peak, and the step counts."""

    def __init__(self, options: BenchOptions, device: torch.device) -> None:
        self.options, self.device = options, device
        self.dtype = PRECISIONS[options.precision]
        self.threads = torch.get_num_threads()
        self.result = BenchResult({})
        if device.type == "cuda":
            self.device_name = torch.cuda.get_device_name(device)
            self.peak = gpu_peak_flops(self.device_name, self.dtype is not None)
        else:
            self.device_name = f"{device.type} ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)"
            self.peak = measured_cpu_peak_flops(self.dtype or torch.float32) if device.type == "cpu" else None

    def time(self, scenario: str, shape: BenchShape, contenders: list[Contender],
             reference: int | None = 0, note: str = "") -> list[StepRecord]:
        """Time ``contenders`` interleaved at ``shape``; ``relative`` is speed over contender ``reference``."""
        steps, warmup, repeats = self.options.counts
        timings = time_interleaved(contenders, shape, self.device, self.dtype, steps=steps, warmup=warmup,
                                   repeats=repeats, compile_model=self.options.compile)
        ref = timings[reference] if reference is not None else None
        records = []
        for contender, timing in zip(contenders, timings, strict=True):
            if isinstance(timing, str):
                print(f"note: {contender.label} at {shape} was not timed: {timing}")
                continue
            records.append(self.record(scenario, shape, contender, timing, ref, note))
        self.keep(records)
        return records

    def keep(self, records: list[StepRecord]) -> None:
        """Print and save every group as it completes: a step killed by a time limit keeps what it measured."""
        if not records:
            return
        self.result.steps += records
        print("\n" + step_table(records), flush=True)
        if self.options.json_path is not None:
            self.result.write_json(self.options.json_path)

    def record(self, scenario, shape, contender, timing, ref, note, peak: float | None = None) -> StepRecord:
        """One row; ``peak`` overrides the process's FLOP peak (a row timed at another thread count)."""
        peak = self.peak if peak is None else peak
        scored = scored_positions(make_batches(shape, contender.objective))
        flops = step_flops(shape, scored, causal=contender.objective == "clm")
        seconds = timing.ms_median / 1e3
        relative = None if ref is None or isinstance(ref, str) else ref.ms_median / timing.ms_median
        return StepRecord(
            scenario=scenario, impl=contender.impl, objective=contender.objective, attention=contender.attention,
            shape=shape, precision=self.options.precision, device=self.device_name, threads=self.threads,
            compiled=self.options.compile, tokens_per_s=shape.tokens / seconds,
            ms_per_step={"median": timing.ms_median, "min": timing.ms_min, "max": timing.ms_max},
            peak_memory_mb=timing.peak_memory_mb, flops_per_step=flops, cpu_ms_per_step=timing.cpu_ms_median,
            mfu=None if peak is None else flops / seconds / peak, last_loss=timing.last_loss,
            relative=relative, note=note,
        )


def impl_scenario(ctx: Context) -> list[StepRecord]:
    """mlmclm against its transformers twin, per objective; relative = speed over the twin."""
    shape, dropout = ctx.options.shape, ctx.options.dropout
    records = []
    for objective in ctx.options.objectives:
        contenders = [transformers_contender(shape, objective, dropout),
                      mlmclm_contender(shape, objective, "standard", dropout)]
        records += ctx.time("impl", shape, contenders)
    return records


def attention_scenario(ctx: Context) -> list[StepRecord]:
    """Every registered mechanism, per objective; relative = speed over ``standard``."""
    from mlmclm.model.attention import ATTENTION_MECHANISMS

    shape = ctx.options.shape
    names = ["standard"] + [n for n in ctx.options.attention or ATTENTION_MECHANISMS.names() if n != "standard"]
    records = []
    for objective in ctx.options.objectives:
        contenders = [mlmclm_contender(shape, objective, name, ctx.options.dropout) for name in names]
        if "stickbreaking" in names:
            contenders.append(other_stickbreaking_kernel(ctx, shape, objective))
        records += ctx.time("attention", shape, contenders, reference=names.index("standard"))
    return records


def other_stickbreaking_kernel(ctx: Context, shape: BenchShape, objective: str) -> Contender:
    """``stickbreaking`` runs the kernel ``auto`` picks for training here (model.stickbreaking_kernel); this
    contender, ``stickbreaking[<kernel>]``, runs the other one, so the table shows both (issue 14)."""
    from mlmclm.model.attention.stickbreaking import BLOCKED_FROM_LENGTH

    auto_blocked = ctx.device.type == "cuda" or shape.seq >= BLOCKED_FROM_LENGTH
    kernel = "reference" if auto_blocked else "blocked"
    return mlmclm_contender(shape, objective, "stickbreaking", ctx.options.dropout,
                            label=f"stickbreaking[{kernel}]", stickbreaking_kernel=kernel)


def sweep_scenario(ctx: Context) -> list[StepRecord]:
    """Sequence lengths at constant tokens per step, then model sizes at the preset's sequence length;
    relative = cost per token over the first point (how cost grows)."""
    base, records = ctx.options.shape, []
    shapes = [(f"seq {n}", base.with_(seq=n, batch=max(1, base.tokens // n))) for n in ctx.options.sweep_seq_lengths]
    sizes = QUICK_SWEEP_SIZES if ctx.options.quick else SWEEP_SIZES
    shapes += [(name, base.with_(**size)) for name, size in sizes.items()]
    for note, shape in shapes:
        contenders = [mlmclm_contender(shape, o, "standard", ctx.options.dropout) for o in ctx.options.objectives]
        records += ctx.time("sweep", shape, contenders, reference=None, note=note)
    return records


def contention_scenario(ctx: Context) -> list[StepRecord]:
    """mlmclm MLM at the chosen thread count and at the old default (all cores), alone and beside a CPU job
    (issue 14, item 3); relative = speed over the old default in the same condition."""
    from mlmclm.train.threads import default_threads

    shape = ctx.options.shape
    chosen = ctx.options.threads or default_threads(workers=1, hidden_size=shape.hidden)
    old_default = os.cpu_count() or 1
    counts = sorted({chosen, old_default})
    steps, warmup, repeats = ctx.options.counts
    contender = mlmclm_contender(shape, "mlm", "standard", ctx.options.dropout)
    runner = Runner(contender, shape, ctx.device, ctx.dtype, ctx.options.compile)
    runner.run(warmup)
    peaks = peaks_by_threads(ctx, counts)  # alone: beside the job MFU falls, as the run's real share does
    records = []
    for beside in (False, True):
        samples: dict[int, list[float]] = {n: [] for n in counts}
        cpu: dict[int, list[float]] = {n: [] for n in counts}
        with competing_cpu_job() if beside else contextlib.nullcontext():
            for repeat in range(repeats):
                for n in counts[repeat % len(counts):] + counts[: repeat % len(counts)]:  # interleaved
                    torch.set_num_threads(n)
                    samples[n].append(runner.run(steps) / steps * 1e3)
                    cpu[n].append(runner.cpu_seconds / steps * 1e3)
        timings = {n: Timing(statistics.median(ms), min(ms), max(ms), None, float(runner.loss),
                             statistics.median(cpu[n]))
                   for n, ms in samples.items()}
        for n in counts:
            note = f"{n} thread{'s' if n > 1 else ''} {'beside a CPU job' if beside else 'alone'}"
            record = ctx.record("contention", shape, contender, timings[n], timings[old_default], note, peaks[n])
            records.append(dataclasses.replace(record, threads=n))
    torch.set_num_threads(ctx.threads)
    ctx.keep(records)
    return records


def peaks_by_threads(ctx: Context, counts: list[int]) -> dict[int, float | None]:
    """The CPU matmul peak at each thread count, so each row's MFU is against what its threads could do."""
    if ctx.device.type != "cpu":
        return {n: ctx.peak for n in counts}
    peaks = {}
    for n in counts:
        torch.set_num_threads(n)
        peaks[n] = measured_cpu_peak_flops(ctx.dtype or torch.float32)
    torch.set_num_threads(ctx.threads)
    ctx.result.environment["peak_flops_by_threads"] = {str(n): peak for n, peak in peaks.items()}
    return peaks


def environment(ctx: Context) -> dict:
    try:
        import transformers

        transformers_version = transformers.__version__
    except ImportError:
        transformers_version = None
    return {
        "device": ctx.device_name, "torch": torch.__version__, "transformers": transformers_version,
        "cuda": torch.version.cuda, "threads": ctx.threads, "cpu_count": os.cpu_count(),
        "peak_flops": ctx.peak, "peak_source": "measured torch.mm" if ctx.device.type == "cpu" else "data sheet",
        "precision": ctx.options.precision, "compile": ctx.options.compile,
        "steps_warmup_repeats": list(ctx.options.counts),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
    }


def run_bench(options: BenchOptions, device: torch.device) -> BenchResult:
    """Run the chosen scenarios, print each table as it completes, and write ``--json`` at the end."""
    if options.threads:
        torch.set_num_threads(options.threads)
    ctx = Context(options, device)
    result = ctx.result
    result.environment = environment(ctx)
    print(f"device: {ctx.device_name}; torch {torch.__version__}; {ctx.threads} threads; "
          f"precision {options.precision}; shape {options.shape}")
    if ctx.peak:
        print(f"MFU against {ctx.peak / 1e12:.2f} TFLOP/s ({result.environment['peak_source']})")
    scenarios = {"impl": impl_scenario, "attention": attention_scenario, "sweep": sweep_scenario,
                 "contention": contention_scenario}
    for name in SCENARIOS:
        if name not in options.scenarios:
            continue
        print(f"\n## {name}", flush=True)
        if name == "pipeline":
            from mlmclm.bench.pipeline import measure_pipeline

            quick = options.quick
            result.pipeline = measure_pipeline(200 if quick else 3000, 64 if quick else 128, 16, 5 if quick else 50)
            print("\n" + pipeline_table(result.pipeline))
        elif name == "contention" and device.type != "cpu":
            print("note: the contention scenario is for CPU runs; skipped")
        else:
            scenarios[name](ctx)
    if options.json_path is not None:
        result.write_json(options.json_path)
        print(f"\nJSON: {options.json_path}")
    return result
