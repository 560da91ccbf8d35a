"""Raw-results documents as the grid writes them, with metrics drawn around chosen means (seeded), so each
check's verdict can be driven to PASS and to FAIL through the ordinary analysis."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

TASKS = ("bigram_shift", "word_order", "sentence_length")
CHANCE = 0.5


def run_record(objective: str, attention: str, seed: int, metrics: dict[str, float]) -> dict[str, Any]:
    return {
        "run_id": f"{attention}_{objective}_run{seed}", "objective": objective, "attention": attention,
        "fold": None, "seed": seed, "run_index": seed, "status": "completed", "phase": "final",
        "metrics": metrics, "curves": {},
    }


def probe_metrics(rng: np.random.Generator, accuracy: float, random_init: float, control: float,
                  val_loss: float = 4.0) -> dict[str, float]:
    """Metrics of one run: every task near ``accuracy``; baselines near ``random_init`` and ``control``."""
    metrics = {"val_loss": val_loss + rng.normal(0, 0.02), "val_accuracy": 0.3 + rng.normal(0, 0.01)}
    for task in TASKS:
        acc, base, ctrl = (value + rng.normal(0, 0.01) for value in (accuracy, random_init, control))
        metrics |= {
            f"probe/{task}/accuracy": acc, f"probe/{task}/random_init_accuracy": base,
            f"probe/{task}/gain_over_random_init": acc - base, f"probe/{task}/control_accuracy": ctrl,
            f"probe/{task}/selectivity": acc - ctrl,
        }
    return metrics


def raw_document(runs: Sequence[dict[str, Any]], objectives: Sequence[str], attention: Sequence[str]) -> dict:
    return {
        "experiment_name": "fabricated",
        "config": {
            "objectives": list(objectives), "attention": list(attention),
            "probes": {"tasks": list(TASKS)},
            "statistics": {"bootstrap_resamples": 200, "significance_level": 0.05},
        },
        "probe_tasks": {
            task: {"labels": 2, "train_examples": 100, "test_examples": 50, "chance_accuracy": CHANCE}
            for task in TASKS
        },
        "runs": list(runs),
    }


def grid(objectives: Sequence[str], attention: Sequence[str], seeds: Sequence[int],
         metrics_of: Callable[[str, str, int, np.random.Generator], dict[str, float]], seed: int = 0) -> dict:
    """A fabricated grid: ``metrics_of(objective, attention, seed, rng)`` gives each run's metrics."""
    rng = np.random.default_rng(seed)
    runs = [
        run_record(objective, mechanism, run_seed, metrics_of(objective, mechanism, run_seed, rng))
        for run_seed in seeds for objective in objectives for mechanism in attention
    ]
    return raw_document(runs, objectives, attention)
