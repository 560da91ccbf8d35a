"""The analysis log: every analysis of an experiment's raw results, so a reader can see what was tried.

Each ``analyze`` (and the analysis ``train`` runs at its end) appends one entry: when, the command, the
metrics asked for, the primary metric, the correction and α, and which runs existed. Seeds that appear
after an earlier analysis are flagged as **optional stopping**: adding runs until a result turns
significant inflates the false-positive rate well beyond α (Simmons, Nelson & Simonsohn, 2011, "False-
positive psychology", Psychol. Sci.; Armitage, McPherson & Rowe, 1969). Pure: the caller reads and writes
the log file (docs/statistics.md).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class AnalysisLogEntry:
    """One analysis of the raw results, as stored in the log (``analysis_log`` in the analysis JSON)."""

    timestamp: str
    command: str | None
    metrics_requested: tuple[str, ...] | None  # None: the default selection
    primary_metric: str
    correction: str
    alpha: float
    runs: tuple[str, ...]  # run ids of the completed final runs the analysis used
    seeds: tuple[int, ...]  # their seeds
    new_seeds: tuple[int, ...]  # seeds absent from every earlier entry
    optional_stopping: bool  # True when new seeds were added after an earlier analysis

    @classmethod
    def from_json(cls, record: Mapping[str, Any]) -> AnalysisLogEntry:
        requested = record.get("metrics_requested")
        return cls(
            timestamp=str(record.get("timestamp", "")),
            command=record.get("command"),
            metrics_requested=None if requested is None else tuple(requested),
            primary_metric=str(record.get("primary_metric", "")),
            correction=str(record.get("correction", "")),
            alpha=float(record.get("alpha", float("nan"))),
            runs=tuple(record.get("runs") or ()),
            seeds=tuple(record.get("seeds") or ()),
            new_seeds=tuple(record.get("new_seeds") or ()),
            optional_stopping=bool(record.get("optional_stopping", False)),
        )


def new_log_entry(
    previous: Sequence[AnalysisLogEntry],
    runs: Sequence[Mapping[str, Any]],
    *,
    timestamp: str,
    command: str | None,
    metrics_requested: Sequence[str] | None,
    primary_metric: str,
    correction: str,
    alpha: float,
) -> AnalysisLogEntry:
    """The entry for this analysis; seeds of completed runs never seen by an earlier entry are new."""
    completed = [run for run in runs if run.get("status") == "completed" and run.get("phase", "final") == "final"]
    run_ids = tuple(sorted(str(run.get("run_id", "?")) for run in completed))
    seeds = tuple(sorted({int(run["seed"]) for run in completed if isinstance(run.get("seed"), int)}))
    seen = {seed for entry in previous for seed in entry.seeds}
    new_seeds = tuple(seed for seed in seeds if seed not in seen) if previous else ()
    return AnalysisLogEntry(
        timestamp=timestamp,
        command=command,
        metrics_requested=None if not metrics_requested else tuple(metrics_requested),
        primary_metric=primary_metric,
        correction=correction,
        alpha=alpha,
        runs=run_ids,
        seeds=seeds,
        new_seeds=new_seeds,
        optional_stopping=bool(new_seeds),
    )


def optional_stopping_seeds(log: Sequence[AnalysisLogEntry]) -> tuple[int, ...]:
    """Every seed added after a first analysis, over the whole log."""
    return tuple(sorted({seed for entry in log for seed in entry.new_seeds}))
