"""Does the reported minimum detectable effect deliver its power? Simulate the project's comparison at the MDE.

For each design the report's MDE (``Comparison.power.min_detectable_effect``, power 0.8, α = 0.05) is read from
the comparison itself; then ``simulations`` fresh experiments with a normal shift of that size (paired
differences with SD 1, or two groups with SD 1; draws independent of the ones power.py simulates) go through
:func:`mlmclm.analysis.compare.compare_samples` and the family correction, and the share called significant
is the power actually delivered, with its Clopper–Pearson interval. Beside it, the same at the old t-test
MDE (statsmodels), which the permutation tests fall short of near their p-value floor.

Then the same within a family of ``--family-size`` comparisons (default 3) corrected by Holm, only the first with
an effect: at the per-comparison MDE the correction leaves it short of 0.8; at the family MDE
(``Comparison.power.min_detectable_effect_family``, α/m) it is delivered (docs/statistics.md, Power).

    python benchmarks/simulations/power_at_mde.py --simulations 2000     # ~12 minutes on 2 shared cores
    # plus the family table: --family-simulations 500 (the default) adds ~4 minutes; --family-size 1 skips it
"""

from __future__ import annotations

import argparse
import dataclasses
import math

import numpy as np
from scipy import stats

from mlmclm.analysis import power
from mlmclm.analysis.compare import compare_samples, correct_families
from mlmclm.analysis.conditions import ConditionSample, Observation
from mlmclm.analysis.families import Family
from mlmclm.config import StatisticsConfig

# (runs of a, runs of b, paired): 5 pairs is below the sign-flip test's floor (2/2⁵ > 0.05)
DESIGNS = ((5, 5, True), (6, 6, True), (8, 8, True), (10, 10, True), (4, 4, False), (5, 5, False), (6, 6, False))
# every design's permutation test is exact (≤ 1,024 rearrangements), as with the default 10,000
SETTINGS = StatisticsConfig(bootstrap_resamples=1024)
FAMILY = Family("val_loss", "mlm")


@dataclasses.dataclass(frozen=True)
class Delivered:
    """Share of ``simulations`` experiments at ``effect`` that the comparison called significant."""

    effect: float | None
    significant: int
    simulations: int
    ci: tuple[float, float]

    @property
    def rate(self) -> float:
        return self.significant / self.simulations


def _sample(label: str, values: np.ndarray, seeds: range) -> ConditionSample:
    pairs = enumerate(zip(values, seeds, strict=True))
    observations = tuple(Observation(f"{label}{i}", None, seed, float(value)) for i, (value, seed) in pairs)
    return ConditionSample("mlm", label, "val_loss", observations, ())


def experiment(effect: float, n_a: int, n_b: int, paired: bool, rng: np.random.Generator):
    """One comparison, as the analysis makes it before its family's correction, of runs shifted by ``effect``
    SDs (of d, or of a − b when paired)."""
    scale = math.sqrt(0.5) if paired else 1.0  # paired: a − b then has SD 1
    a = 3.0 + effect + scale * rng.standard_normal(n_a)
    b = 3.0 + scale * rng.standard_normal(n_b)
    seeds_b = range(n_b) if paired else range(n_a, n_a + n_b)  # shared seeds pair the runs
    return compare_samples(_sample("rope", a, range(n_a)), _sample("standard", b, seeds_b),
                           family=FAMILY, settings=SETTINGS)


def family_experiment(effect: float, n_a: int, n_b: int, paired: bool, m: int, rng: np.random.Generator):
    """m comparisons of one family, corrected together (Holm), only the first with a shift of ``effect``."""
    comparisons = [experiment(effect if i == 0 else 0.0, n_a, n_b, paired, rng) for i in range(m)]
    return correct_families(comparisons, SETTINGS, design=None)


def reported_family_mde(n_a: int, n_b: int, paired: bool, m: int) -> float | None:
    """The family MDE a comparison in a family of m records (read from the comparison, not recomputed)."""
    return family_experiment(1.0, n_a, n_b, paired, m, np.random.default_rng(0))[0].power.min_detectable_effect_family


def reported_mde(n_a: int, n_b: int, paired: bool) -> float | None:
    """The MDE the comparison records for this design (read from a comparison, not recomputed)."""
    return family_experiment(1.0, n_a, n_b, paired, 1, np.random.default_rng(0))[0].power.min_detectable_effect


def t_test_mde(n_a: int, n_b: int, paired: bool) -> float | None:
    return power.minimum_detectable_effect(n_a, n_b, paired=paired, alpha=0.05, power=0.8, permutation=False)


def delivered(
    effect: float | None, design: tuple[int, int, bool], simulations: int, seed: int, m: int = 1
) -> Delivered:
    """Share of experiments in which the one real effect is significant after its family's correction (a family
    of m comparisons, the others without an effect; m = 1: the comparison alone)."""
    if effect is None:
        return Delivered(None, 0, simulations, (math.nan, math.nan))
    rng = np.random.default_rng([seed, *design[:2], int(design[2]), *([m] if m > 1 else [])])
    hits = sum(family_experiment(effect, *design, m, rng)[0].test.significant for _ in range(simulations))
    interval = stats.binomtest(hits, simulations).proportion_ci(0.95, method="exact")
    return Delivered(effect, hits, simulations, (interval.low, interval.high))


def tolerance(simulations: int, target: float = 0.8) -> float:
    """3 binomial SEs of the delivered rate, plus the MDE's own Monte Carlo error (power.DRAWS draws)."""
    return 3 * math.sqrt(target * (1 - target) * (1 / simulations + 1 / power.DRAWS))


def _cell(result: Delivered) -> str:
    if result.effect is None:
        return "None (p floor > α)"
    return f"{result.effect:.3f}: {result.rate:.3f} [{result.ci[0]:.3f}, {result.ci[1]:.3f}]"


def _name(design: tuple[int, int, bool]) -> str:
    return f"{design[0]} pairs" if design[2] else f"{design[0]} vs {design[1]}"


def family_table(m: int, simulations: int, seed: int) -> None:
    """Holm-corrected power of the one real effect in a family of m: at the per-comparison and family MDEs."""
    print(f"\nfamilies of {m}, Holm, one real effect; {simulations} families per cell; "
          f"tolerance around 0.8: ±{tolerance(simulations):.3f}")
    print("design | per-comparison MDE: power delivered [95% CI] | family MDE (α/m): power delivered [95% CI] | ok")
    for design in DESIGNS:
        family_mde = reported_family_mde(*design, m)
        if family_mde is None:
            print(f"{_name(design)} | — | None (p floor > α/m) | yes")
            continue
        old = delivered(reported_mde(*design), design, simulations, seed, m)
        new = delivered(family_mde, design, simulations, seed, m)
        # Holm's power at α/m is a lower bound, reached up to the rare extra rejection after a null one
        ok = new.rate >= 0.8 - tolerance(simulations)
        print(f"{_name(design)} | {_cell(old)} | {_cell(new)} | {'yes' if ok else 'NO'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--simulations", type=int, default=2000)
    parser.add_argument("--family-size", type=int, default=3, help="m of the family table; 1 skips it")
    parser.add_argument("--family-simulations", type=int, default=500)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    print(f"{args.simulations} experiments per cell; tolerance around 0.8: ±{tolerance(args.simulations):.3f}")
    print("design | t-test MDE: power delivered [95% CI] | reported MDE: power delivered [95% CI] | ok")
    for design in DESIGNS:
        old = delivered(t_test_mde(*design), design, args.simulations, args.seed)
        new = delivered(reported_mde(*design), design, args.simulations, args.seed)
        ok = new.effect is None or abs(new.rate - 0.8) <= tolerance(args.simulations)
        print(f"{_name(design)} | {_cell(old)} | {_cell(new)} | {'yes' if ok else 'NO'}")
    if args.family_size > 1:
        family_table(args.family_size, args.family_simulations, args.seed)


if __name__ == "__main__":
    main()
