"""Coverage of the training-curve bands under cross-validation: folds averaged per seed vs (fold, seed) runs.

Each simulated condition is a grid of ``seeds`` × ``folds`` validation curves
y_fs(t) = μ(t) + S_s + F_f + ε_fs(t), with S_s ~ N(0, σ_seed²) shared by a seed's folds, F_f ~ N(0, σ_fold²)
shared by a fold's seeds (the folds' common training data) and ε ~ N(0, σ_noise²) per point. The folds are
fixed, so the target of the band is the mean curve given the split, μ(t) + mean_f F_f; a *hit* is a band
(:func:`mlmclm.analysis.curves.condition_band`) that covers it at the last point (one point per grid, so the
hits are independent Bernoulli draws and the Clopper–Pearson interval applies). The old band, over every
(fold, seed) run as an independent replicate, is printed beside the band over fold-averaged seeds.

    python benchmarks/simulations/curve_band_coverage.py            # 4000 grids per cell, ~10 s on 2 cores
"""

from __future__ import annotations

import argparse
import dataclasses

import numpy as np
from scipy import stats

from mlmclm.analysis.curves import condition_band
from mlmclm.grid.records import RunRecord

POINTS = 6
SCENARIOS = {"seed effects only": (0.5, 0.0, 0.1), "seed and fold effects": (0.5, 0.3, 0.1)}  # σ_seed, σ_fold, σ_ε


@dataclasses.dataclass(frozen=True)
class BandCoverage:
    """Hits of the band at the last point over ``reps`` grids, with their Clopper–Pearson interval."""

    scenario: str
    folds_averaged: bool
    seeds: int
    folds: int
    level: float
    hits: int
    reps: int
    ci: tuple[float, float]

    @property
    def rate(self) -> float:
        return self.hits / self.reps


def cv_grid(
    rng: np.random.Generator, seeds: int, folds: int, sd_seed: float, sd_fold: float, sd_noise: float
) -> tuple[list[RunRecord], float]:
    """One condition's (fold, seed) runs and the band's target at the last point, μ(T) + mean_f F_f."""
    x = np.arange(POINTS, dtype=float)
    mu = 5.0 - 0.2 * x
    seed_effect, fold_effect = rng.normal(0, sd_seed, seeds), rng.normal(0, sd_fold, folds)
    runs = [
        RunRecord(
            run_id=f"rope_mlm_fold{f}_seed{s}", objective="mlm", attention="rope", fold=f, seed=s, run_index=None,
            status="completed",
            curves={"step": x.tolist(),
                    "val_loss": (mu + seed_effect[s] + fold_effect[f] + rng.normal(0, sd_noise, POINTS)).tolist()},
        )
        for f in range(folds) for s in range(seeds)
    ]
    return runs, float(mu[-1] + fold_effect.mean())


def coverage(
    scenario: str, *, folds_averaged: bool, reps: int, seeds: int = 3, folds: int = 3, level: float = 0.95,
    seed: int = 0,
) -> BandCoverage:
    """How often the band of ``reps`` simulated grids covers its target at the last point."""
    rng = np.random.default_rng(seed)
    hits = 0
    for _ in range(reps):
        runs, target = cv_grid(rng, seeds, folds, *SCENARIOS[scenario])
        band = condition_band(runs, "val_loss", level, "mlm", "rope", average_folds=folds_averaged)
        hits += bool(band.low[-1] <= target <= band.high[-1])
    interval = stats.binomtest(hits, reps).proportion_ci(0.95, method="exact")
    return BandCoverage(scenario, folds_averaged, seeds, folds, level, hits, reps, (interval.low, interval.high))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=4000)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    grid = f"{args.seeds} seeds x {args.folds} folds"
    print(f"| scenario ({grid}) | band over | coverage of nominal 95% [95% CI] | reps |")
    print("|---|---|---|---|")
    for scenario in SCENARIOS:
        for averaged in (False, True):
            c = coverage(scenario, folds_averaged=averaged, reps=args.reps, seeds=args.seeds, folds=args.folds,
                         seed=args.seed)
            unit = f"{c.seeds} seeds, folds averaged" if averaged else f"{c.seeds * c.folds} (fold, seed) runs"
            print(f"| {scenario} | {unit} | {c.rate:.3f} [{c.ci[0]:.3f}, {c.ci[1]:.3f}] | {c.reps} |")


if __name__ == "__main__":
    main()
