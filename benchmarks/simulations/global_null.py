"""Global-null simulation of the whole analysis: how often does the report's headline claim a difference
when no condition differs from any other?

Every run of every (objective, mechanism) condition is drawn from the same distribution (fabricated runs in
the style of ``tests/analysis/synthetic_results.py``: validation loss and accuracy, probe accuracy and F1
and the random-init baseline for each probe task), the full :func:`mlmclm.analysis.analyze` runs on them,
and a *false claim* is counted when any comparison in the family that leads the report (the primary family,
``Family(primary_metric)``, the one the report's headline reads) is significant. With Holm correction inside the one
primary family this rate must be at most α; the script prints it with its Clopper–Pearson interval, beside
the rate of the old headline that pooled every significant MLM-vs-CLM and every mechanism difference.

    python benchmarks/simulations/global_null.py --simulations 500
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
from typing import Any

import numpy as np
from scipy import stats

from mlmclm.analysis import analyze
from mlmclm.analysis.families import Family
from mlmclm.config import StatisticsConfig

OBJECTIVES = ("mlm", "clm")
MECHANISMS = ("standard", "rope", "alibi", "absolute")
TASKS = ("bigram_shift", "word_order", "sentence_length", "word_content", "coherence")


@dataclasses.dataclass(frozen=True)
class NullRates:
    """False-claim counts over ``simulations`` analyses of null data, with Clopper–Pearson intervals."""

    simulations: int
    alpha: float
    headline_claims: int
    headline_ci: tuple[float, float]
    pooled_mlm_vs_clm_claims: int  # the old headline: any significant like-for-like MLM-vs-CLM family
    pooled_mechanism_claims: int  # the old headline: any significant mechanism difference

    @property
    def headline_rate(self) -> float:
        return self.headline_claims / self.simulations


def null_raw_results(rng: np.random.Generator, seeds: int) -> dict[str, Any]:
    """Runs of every condition drawn from one distribution (MLM and CLM differ in no quantity)."""
    runs = []
    for objective, attention in itertools.product(OBJECTIVES, MECHANISMS):
        for index in range(seeds):
            metrics = {"val_loss": float(3.0 + rng.normal(0, 0.05)), "val_accuracy": float(0.4 + rng.normal(0, 0.01))}
            for task in TASKS:
                metrics[f"probe/{task}/accuracy"] = float(0.7 + rng.normal(0, 0.02))
                metrics[f"probe/{task}/f1"] = float(0.68 + rng.normal(0, 0.02))
                metrics[f"probe/{task}/random_init_accuracy"] = float(0.6 + rng.normal(0, 0.02))
            runs.append({
                "run_id": f"{attention}_{objective}_run{index}", "objective": objective, "attention": attention,
                "fold": None, "seed": 42 + index, "run_index": index, "status": "completed", "metrics": metrics,
            })
    config = {"objectives": list(OBJECTIVES), "attention": list(MECHANISMS), "probes": {"tasks": list(TASKS)}}
    return {"experiment_name": "global_null", "config": config, "runs": runs}


def simulate(simulations: int, *, seeds: int = 5, seed: int = 0, settings: StatisticsConfig | None = None) -> NullRates:
    """Analyse ``simulations`` null grids; count headline and pooled false claims."""
    settings = settings or StatisticsConfig(bootstrap_resamples=100)
    rng = np.random.default_rng(seed)
    headline = pooled_cross = pooled_mechanism = 0
    for _ in range(simulations):
        analysis = analyze(null_raw_results(rng, seeds), settings)
        significant = [c for c in analysis.comparisons if c.test.significant]
        headline += any(c.family == Family(analysis.primary_metric) for c in significant)
        pooled_cross += any(c.family.across_objectives and c.like_for_like for c in significant)
        pooled_mechanism += any(not c.family.across_objectives for c in significant)
    interval = stats.binomtest(headline, simulations).proportion_ci(0.95, method="exact")
    return NullRates(
        simulations, settings.significance_level, headline, (interval.low, interval.high), pooled_cross,
        pooled_mechanism,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--simulations", type=int, default=500)
    parser.add_argument("--seeds", type=int, default=5, help="runs per condition")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--mechanisms", type=int, default=len(MECHANISMS), help="use the first N mechanisms")
    parser.add_argument("--tasks", type=int, default=len(TASKS), help="use the first N probe tasks")
    args = parser.parse_args()
    globals().update(MECHANISMS=MECHANISMS[: args.mechanisms], TASKS=TASKS[: args.tasks])
    rates = simulate(args.simulations, seeds=args.seeds, seed=args.seed)
    n = rates.simulations
    print(f"{n} null grids ({len(OBJECTIVES)} objectives x {len(MECHANISMS)} mechanisms x {args.seeds} seeds, "
          f"{len(TASKS)} probe tasks), alpha = {rates.alpha:g}")
    print(f"headline false-claim rate: {rates.headline_rate:.3f} "
          f"(95% CI {rates.headline_ci[0]:.3f}-{rates.headline_ci[1]:.3f})")
    print(f"old pooled headline, >= 1 MLM-vs-CLM hit: {rates.pooled_mlm_vs_clm_claims / n:.3f}")
    print(f"old pooled headline, >= 1 mechanism hit: {rates.pooled_mechanism_claims / n:.3f}")


if __name__ == "__main__":
    main()
