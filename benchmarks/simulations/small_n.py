"""Print the simulated coverage and type-I tables of docs/statistics.md (mlmclm/analysis/simulate.py).

    python benchmarks/simulations/small_n.py                  # the documented sizes (~1 minute on 2 cores)
    python benchmarks/simulations/small_n.py --reps 500 --cv-reps 50   # quick look

The test suite runs the same functions at reduced size (tests/analysis/test_simulate.py).
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np

from mlmclm.analysis import simulate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=2000, help="replications per coverage / type-I cell")
    parser.add_argument("--cv-reps", type=int, default=500, help="replications of the cross-validation null")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy warns about Shapiro-Wilk / BCa on tiny samples; counted, not shown
        coverage = [
            rate for n in (3, 5, 10) for population in simulate.POPULATIONS
            for rate in simulate.interval_coverage(n, population, reps=args.reps, rng=rng)
        ]
        type_one = [
            rate for n in (3, 5, 6, 8, 10) for null in simulate.NULLS
            for rate in simulate.type_one_error(n, null, reps=args.reps, rng=rng)
        ]
    cv = simulate.cv_null_rejection(reps=args.cv_reps, seed=args.seed)
    print("\n".join(["### Coverage of nominal 95% intervals of a mean", ""]
                    + simulate.markdown_table(coverage, "coverage")))
    print("\n".join(["", "### Type-I error of paired procedures at α = 0.05", ""]
                    + simulate.markdown_table(type_one, "type-I error")))
    print("\n".join(["", "### Cross-validation null (Nadeau & Bengio setting), α = 0.05", ""]
                    + simulate.markdown_table(cv, "rejection rate")))


if __name__ == "__main__":
    main()
