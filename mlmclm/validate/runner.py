"""Plan, train and judge: the checks of ``mlmclm validate``, their shared grids, and progress per check.

Grids are ordinary resumable experiments under ``<output-dir>/<grid>``: rerunning the same command skips every
finished run, so an interrupted validation continues where it stopped.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType

from mlmclm.errors import ConfigError, UserError
from mlmclm.registry import unknown_choice_message
from mlmclm.validate import aa, nope_structure, planted, probe_validity
from mlmclm.validate.arms import grid_config, load_grid, train_grid
from mlmclm.validate.grids import STANDARD, plan_grid
from mlmclm.validate.records import PRESETS, CheckResult, ValidationPreset

log = logging.getLogger(__name__)
CHECKS: dict[str, ModuleType] = {module.NAME: module for module in (aa, planted, nope_structure, probe_validity)}
# The validation's own layer above every preset file: local processes, resumable, the preset's alpha.
BASE_LAYER = {"resume": True, "executor": "local"}


def select_checks(only: Sequence[str] | None) -> list[ModuleType]:
    """The checks to run, in the documented order; an unknown name is a one-line error with a suggestion."""
    for name in only or ():
        if name not in CHECKS:
            raise UserError(unknown_choice_message("validation check", name, list(CHECKS)))
    return [module for name, module in CHECKS.items() if not only or name in only]


def select_preset(name: str) -> ValidationPreset:
    if name not in PRESETS:
        raise UserError(unknown_choice_message("validation preset", name, list(PRESETS)))
    return PRESETS[name]


def check_devices(checks: Sequence[ModuleType], preset: ValidationPreset, output_dir: Path) -> None:
    """Refuse up front a preset whose grids need a device this machine lacks (``gpu`` without CUDA): otherwise
    the grids that can run would train for hours before the first that cannot stops the validation."""
    from mlmclm.train.device import resolve_device

    for name in dict.fromkeys(grid for check in checks for grid in check.GRIDS):
        config = grid_config(plan_grid(name, preset), output_dir, BASE_LAYER)
        try:
            resolve_device(config.device)
        except ConfigError as exc:
            raise UserError(f"validate --preset {preset.name}: grid '{name}' needs device '{config.device}': "
                            f"{exc}") from exc


def estimate_seconds(
    checks: Sequence[ModuleType], preset: ValidationPreset, output_dir: Path, workers: int = 1
) -> float:
    """Planning estimate: the preset's seconds per run times the runs not yet finished on disk, shared by
    ``workers`` processes (each run of the small presets trains on one thread, so they do not compete)."""
    total = 0.0
    for name in dict.fromkeys(grid for check in checks for grid in check.GRIDS):
        spec = plan_grid(name, preset)
        done = len(list((output_dir / name / "experiments").glob("*/metrics.json")))
        per_run = preset.seconds_per_run if spec.config_file == preset.config_path else preset.seconds_per_tiny_run
        total += max(spec.runs - done, 0) * per_run
    return total / max(1, workers)


def run_validation(
    preset: ValidationPreset, checks: Sequence[ModuleType], output_dir: Path, command: str, workers: int = 1,
    say: Callable[[str], None] = print,
) -> list[CheckResult]:
    """Train each check's grids (skipping finished runs) and judge it; return the results in order."""
    base = {**BASE_LAYER, "workers": workers, "statistics": {"significance_level": preset.alpha}}
    trained: dict[str, dict] = {}
    configs = {}
    results = []
    for index, check in enumerate(checks, 1):
        start = time.monotonic()
        say(f"[{index}/{len(checks)}] {check.NAME}: {check.QUESTION}")
        for name in check.GRIDS:
            if name in trained:
                continue
            spec = plan_grid(name, preset)
            configs[name] = grid_config(spec, output_dir, base)
            say(f"  grid {name}: {spec.runs} runs ({', '.join(spec.objectives)} x {', '.join(spec.attention)})")
            trained[name] = load_grid(train_grid(configs[name], command))
        if check is probe_validity:
            findings = check.evaluate(trained, preset, probe_validity.control_chance_levels(configs[STANDARD]))
        else:
            findings = check.evaluate(trained, preset)
        result = CheckResult(check.NAME, check.QUESTION, tuple(findings), time.monotonic() - start)
        results.append(result)
        say(format_result(result))
    return results


def format_result(result: CheckResult) -> str:
    lines = [f"  {'PASS' if result.passed else 'FAIL'} {result.name} ({result.wall_seconds:.0f} s)"]
    for finding in result.findings:
        verdict = "info" if finding.informational else ("pass" if finding.passed else "FAIL")
        lines.append(f"    [{verdict}] {finding.question}")
        lines.append(f"           expected: {finding.expected}")
        lines.append(f"           concluded: {finding.concluded}")
    return "\n".join(lines)
