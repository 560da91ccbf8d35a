"""Typed records at the seams of ``mlmclm validate``: what a check concluded, and the preset it ran at."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mlmclm.config import CONFIG_DIR


@dataclass(frozen=True)
class Finding:
    """One question a check asked of the analysis, with the numbers the analysis answered it with."""

    question: str
    expected: str
    concluded: str
    passed: bool
    numbers: dict[str, Any] = field(default_factory=dict)  # statistic, p, p_adjusted, effect, interval, ...
    informational: bool = False  # reported beside the verdict, never part of it


@dataclass(frozen=True)
class CheckResult:
    """A check passes when every one of its findings does."""

    name: str
    question: str
    findings: tuple[Finding, ...]
    wall_seconds: float = 0.0
    notes: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        verdicts = [finding.passed for finding in self.findings if not finding.informational]
        return bool(verdicts) and all(verdicts)

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "passed": self.passed}


@dataclass(frozen=True)
class ValidationPreset:
    """The scale of a validation: a preset config file and the sample sizes of each check.

    ``config`` (cpu_small / gpu_base) trains the planted, NoPE and probe-validity grids; the A/A and the
    planted repetitions use ``tiny_config`` (quick_test scale) because they need many small experiments.
    """

    name: str
    config: str  # file in mlmclm/configs
    tiny_config: str
    runs: int  # n per condition of the planted / NoPE / probe-validity grids
    aa_repetitions: int  # R independent A/A experiments
    aa_labels: int  # labels per A/A experiment (k labels: a family of k(k-1)/2 comparisons, Holm-corrected)
    aa_runs: int  # n per label in an A/A experiment
    planted_repetitions: int  # tiny planted-effect experiments (each n = aa_runs, paired)
    tiny_max_steps: int  # optimizer steps of the tiny runs
    tiny_overrides: dict[str, Any] = field(default_factory=dict)
    planted_lr_factor: float = 0.1  # the handicapped arm's learning rate = factor x the preset's
    alpha: float = 0.05
    seconds_per_run: float = 60.0  # planning estimate for one `config` run (docs/validation.md: measured)
    seconds_per_tiny_run: float = 8.0

    @property
    def config_path(self) -> Path:
        return CONFIG_DIR / self.config

    @property
    def tiny_config_path(self) -> Path:
        return CONFIG_DIR / self.tiny_config


PRESETS = {
    "cpu": ValidationPreset(
        name="cpu", config="cpu_small.yaml", tiny_config="quick_test.yaml", runs=7,
        aa_repetitions=10, aa_labels=2, aa_runs=6, planted_repetitions=4, tiny_max_steps=40,
        tiny_overrides={"probes": {"examples_per_task": 120}}, seconds_per_run=75.0, seconds_per_tiny_run=6.0,
    ),
    "gpu": ValidationPreset(
        name="gpu", config="gpu_base.yaml", tiny_config="cpu_small.yaml", runs=8,
        aa_repetitions=10, aa_labels=3, aa_runs=6, planted_repetitions=5, tiny_max_steps=300,
        seconds_per_run=150.0, seconds_per_tiny_run=15.0,
    ),
}
