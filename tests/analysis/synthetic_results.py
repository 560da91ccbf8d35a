"""A realistic raw-results dict (the grid's contract) fabricated with a seeded generator, for tests."""

from __future__ import annotations

from typing import Any

import numpy as np

MECHANISMS = ("standard", "rope", "alibi")
SEEDS = (42, 43, 44)
PROBE_TASKS = ("bigram_shift", "sentence_length")



ITEMS_PER_TASK = 150


def _baselines(metrics: dict[str, Any], rng: np.random.Generator) -> dict[str, str]:
    """Probe-validity baselines (docs/probes.md) and per-item correctness matching each task's accuracy."""
    items = {}
    for task in PROBE_TASKS:
        correct = rng.random(ITEMS_PER_TASK) < metrics[f"probe/{task}/accuracy"]
        items[task] = "".join("1" if hit else "0" for hit in correct)
        accuracy = metrics[f"probe/{task}/accuracy"] = float(correct.mean())
        random_init = float(0.6 + rng.normal(0, 0.02))
        control = float(0.5 + rng.normal(0, 0.02))
        metrics[f"probe/{task}/random_init_accuracy"] = random_init
        metrics[f"probe/{task}/gain_over_random_init"] = accuracy - random_init
        metrics[f"probe/{task}/control_accuracy"] = control
        metrics[f"probe/{task}/selectivity"] = accuracy - control
    return items


def _run(
    objective: str,
    attention: str,
    fold: int | None,
    seed: int,
    index: int,
    rng: np.random.Generator,
    baselines: bool = False,
):
    objective_base = {"mlm": 3.0, "clm": 3.6, "clm_mlm": 2.9, "mntp": 3.3}[objective]
    base = objective_base + {"standard": 0.1, "rope": 0.0, "alibi": 0.05}[attention]
    val_loss = base + rng.normal(0, 0.03)
    steps = np.arange(0, 1001, 100)
    curve = base + 4.0 * np.exp(-steps / 250) + rng.normal(0, 0.02, steps.size)
    fold_part = f"_fold{fold}" if fold is not None else ""
    metrics: dict[str, Any] = {
        "val_loss": float(val_loss),
        "val_accuracy": float(0.45 - 0.1 * (objective == "clm") + rng.normal(0, 0.01)),
        "val_perplexity": float(np.exp(val_loss)),
        "test_loss": float(val_loss + rng.normal(0, 0.01)),
        "train_time_s": float(100 + rng.normal(0, 5)),
        "convergence_step": int(600 + rng.integers(-50, 50)),
    }
    for task in PROBE_TASKS:
        metrics[f"probe/{task}/accuracy"] = float(0.7 + 0.05 * (objective == "mlm") + rng.normal(0, 0.02))
        metrics[f"probe/{task}/f1"] = float(0.68 + 0.05 * (objective == "mlm") + rng.normal(0, 0.02))
    extra = {"probe_items": _baselines(metrics, rng)} if baselines else {}
    return {
        **extra,
        "run_id": f"{attention}_{objective}{fold_part}_run{index}",
        "objective": objective,
        "attention": attention,
        "fold": fold,
        "seed": seed,
        "run_index": index,
        "status": "completed",
        "metrics": metrics,
        "curves": {
            "step": steps.tolist(),
            "tokens": (steps * 4096).tolist(),
            "val_loss": curve.tolist(),
            "val_accuracy": (0.45 - 0.4 * np.exp(-steps / 250)).tolist(),
        },
        "model_dir": f"outputs/runs/{attention}_{objective}{fold_part}_run{index}",
    }


def make_raw_results(
    *,
    objectives: tuple[str, ...] = ("mlm", "clm"),
    mechanisms: tuple[str, ...] = MECHANISMS,
    seeds: tuple[int, ...] = SEEDS,
    folds: tuple[int | None, ...] = (None,),
    failed_run: bool = True,
    seed: int = 0,
    baselines: bool = False,
) -> dict[str, Any]:
    """2 objectives x 3 mechanisms x 3 seeds by default, with curves, probe metrics and one failed run;
    ``baselines`` adds the probes' random-init/control baselines and per-item records (``probe_items``)."""
    rng = np.random.default_rng(seed)
    runs = [
        _run(objective, attention, fold, run_seed, index, rng, baselines)
        for objective in objectives
        for attention in mechanisms
        for fold in folds
        for index, run_seed in enumerate(seeds)
    ]
    if failed_run:
        runs[-1] = {
            **runs[-1],
            "status": "failed",
            "error": "CUDA out of memory",
            "metrics": {},
            "curves": {},
        }
    return {
        "schema_version": 1,
        "experiment_name": "synthetic",
        "command": "mlmclm train --config configs/synthetic.yaml --seeds 42 43 44",
        "created": "2024-01-01T00:00:00",
        "config": {
            "objectives": list(objectives),
            "attention": list(mechanisms),
            "seeds": list(seeds),
            "probes": {"tasks": list(PROBE_TASKS)},
        },
        "probe_tasks": {
            task: {"labels": 2, "train_examples": 350, "test_examples": ITEMS_PER_TASK, "chance_accuracy": 0.5}
            for task in PROBE_TASKS
        },
        "environment": {
            "python": "3.11",
            "platform": "linux",
            "torch": "2.3",
            "numpy": "2.0",
            "scipy": "1.13",
            "mlmclm": "0.1.0",
            "device": "cpu",
            "git_commit": None,
        },
        "data": {
            "corpus_name": "stdlib-docs",
            "corpus_sha256": "ab" * 32,
            "documents": {"total": 1000},
            "split_sizes": {"train": 800, "validation": 100, "test": 100},
            "token_counts": {"train": 200000},
            "tokenizer_sha256": "cd" * 32,
            "notes": ["12 near-duplicate documents removed before splitting"],
        },
        "budget": {
            "optimizer_steps": 1000,
            "train_tokens_per_run": 4096000,
            "batch_size": 32,
            "max_seq_length": 128,
            "epochs": None,
        },
        "runs": runs,
    }
