"""Typed benchmark results, their JSON form and the markdown tables printed on the terminal."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlmclm.atomic import atomic_write_text
from mlmclm.bench.shapes import BenchShape


@dataclass(frozen=True)
class StepRecord:
    """Training-step throughput of one contender in one scenario (``impl``, ``attention``, ``sweep``,
    ``contention``). ``relative`` is its speed over the scenario's reference (the transformers twin, or
    ``standard``, or the old thread default)."""

    scenario: str
    impl: str
    objective: str
    attention: str
    shape: BenchShape
    precision: str
    device: str
    threads: int
    compiled: bool
    tokens_per_s: float
    ms_per_step: dict[str, float]  # median, min, max over the repeats
    peak_memory_mb: float | None  # CUDA: allocated above what was there before; CPU: not attributable (None)
    flops_per_step: float
    mfu: float | None
    last_loss: float
    cpu_ms_per_step: float  # median process CPU time per step (CPU runs; see bench/timing.py)
    relative: float | None = None
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        record = dataclasses.asdict(self)
        record["shape"] = dataclasses.asdict(self.shape)
        return record


@dataclass(frozen=True)
class PipelineRecord:
    """Data-pipeline throughput of one stage (``tokenize``, ``cache``, ``batches``) and strategy."""

    stage: str
    strategy: str
    tokens_per_s: float
    batches_per_s: float | None
    seconds: float

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class BenchResult:
    environment: dict[str, Any]
    steps: list[StepRecord] = field(default_factory=list)
    pipeline: list[PipelineRecord] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "environment": self.environment,
            "records": [r.to_json() for r in self.steps],
            "pipeline": [r.to_json() for r in self.pipeline],
        }

    def write_json(self, path: Path) -> None:
        atomic_write_text(path, json.dumps(self.to_json(), indent=2) + "\n")


def _fmt(value: float | None, spec: str) -> str:
    return "—" if value is None else format(value, spec)


def step_table(records: list[StepRecord]) -> str:
    """One markdown table of step records, grouped as measured."""
    lines = [
        "| scenario | impl | objective | attention | seq×batch | tokens/s | ms/step (min–max) | relative | MFU "
        "| CPU ms/step | peak MB |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in records:
        ms = r.ms_per_step
        lines.append(
            f"| {r.scenario}{' ' + r.note if r.note else ''} | {r.impl} | {r.objective} | {r.attention} "
            f"| {r.shape.seq}×{r.shape.batch} | {r.tokens_per_s:,.0f} "
            f"| {ms['median']:.1f} ({ms['min']:.1f}–{ms['max']:.1f}) | {_fmt(r.relative, '.2f')}"
            f"{'×' if r.relative is not None else ''} | {_fmt(None if r.mfu is None else 100 * r.mfu, '.1f')}"
            f"{'%' if r.mfu is not None else ''} | {r.cpu_ms_per_step:.1f} | {_fmt(r.peak_memory_mb, ',.0f')} |"
        )
    return "\n".join(lines)


def pipeline_table(records: list[PipelineRecord]) -> str:
    lines = ["| stage | strategy | tokens/s | batches/s |", "|---|---|---|---|"]
    for r in records:
        lines.append(f"| {r.stage} | {r.strategy} | {r.tokens_per_s:,.0f} | {_fmt(r.batches_per_s, ',.1f')} |")
    return "\n".join(lines)
