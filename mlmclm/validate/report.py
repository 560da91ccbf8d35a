"""``validation_report.md`` and ``validation.json``: the verdicts with the numbers behind them (atomic writes)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from mlmclm.atomic import atomic_write_json, atomic_write_text
from mlmclm.validate.records import CheckResult, ValidationPreset

REPORT_NAME = "validation_report.md"
JSON_NAME = "validation.json"


def write_validation(
    results: Sequence[CheckResult], preset: ValidationPreset, output_dir: Path, command: str, environment: dict
) -> dict[str, Path]:
    document = {
        "command": command, "preset": asdict(preset), "environment": environment,
        "passed": all(result.passed for result in results), "checks": [result.to_json() for result in results],
    }
    return {
        "json": atomic_write_json(output_dir / JSON_NAME, document),
        "report": atomic_write_text(output_dir / REPORT_NAME, render(results, preset, command, environment)),
    }


def render(results: Sequence[CheckResult], preset: ValidationPreset, command: str, environment: dict) -> str:
    total = sum(result.wall_seconds for result in results)
    lines = [
        f"# Validation report: preset `{preset.name}`", "",
        f"Command: `{command}`  ", f"Device: {environment.get('device', 'unknown')}  ",
        f"Wall time of this invocation: {total / 60:.1f} min (finished runs reused from an earlier invocation "
        "cost nothing here)", "",
        "| check | question | verdict |", "|---|---|---|",
    ]
    lines += [f"| `{r.name}` | {r.question} | {'PASS' if r.passed else 'FAIL'} |" for r in results]
    for result in results:
        lines += ["", f"## `{result.name}`: {'PASS' if result.passed else 'FAIL'}", "", result.question, "",
                  "| finding | expected | concluded | verdict |", "|---|---|---|---|"]
        for f in result.findings:
            verdict = "info" if f.informational else ("pass" if f.passed else "**FAIL**")
            cells = (cell.replace("|", "\\|") for cell in (f.question, f.expected, f.concluded))
            lines.append(f"| {' | '.join(cells)} | {verdict} |")
        lines += [f"- {note}" for note in result.notes]
    lines += ["", "What each check asks and why these answers are known: docs/validation.md."]
    return "\n".join(lines) + "\n"
