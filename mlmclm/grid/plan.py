"""The experiment plan: objectives x attention x folds x seeds, one RunSpec per training run.

Every condition gets the same seed list (and the same folds), so runs pair up across conditions by
(fold, seed) and the statistics can use paired tests. With ``training.lr_sweep`` the plan has a first phase:
one *sweep* run per condition and rate (seed ``training.lr_sweep_seed``, fold 0 under cross-validation); each
condition's final runs then use the rate its sweep chose (:mod:`mlmclm.grid.lr_sweep`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass

from mlmclm.config import ExperimentConfig

FINAL = "final"
LR_SWEEP = "lr_sweep"


@dataclass(frozen=True)
class RunSpec:
    """One training run: a condition (objective, attention) on one fold with one seed."""

    objective: str
    attention: str
    fold: int | None
    seed: int
    run_index: int  # the seed's position; for a sweep run, the rate's position in training.lr_sweep
    learning_rate: float | None = None  # peak rate of this run; None: undecided until the sweep has chosen
    phase: str = FINAL  # "final" runs are analysed; "lr_sweep" runs only choose the learning rate

    @property
    def run_id(self) -> str:
        """Directory-safe identifier, ``<attention>_<objective>[_fold<k>]_run<i>`` (sweep: ``_lrsweep<i>``)."""
        fold = "" if self.fold is None else f"_fold{self.fold}"
        kind = "lrsweep" if self.phase == LR_SWEEP else "run"
        return f"{self.attention}_{self.objective}{fold}_{kind}{self.run_index}"

    def to_dict(self) -> dict:
        return {"run_id": self.run_id, **asdict(self)}

    def describe(self) -> str:
        fold = "-" if self.fold is None else str(self.fold)
        rate = "chosen by the sweep" if self.learning_rate is None else f"{self.learning_rate:g}"
        return (
            f"{self.run_id:<32} objective={self.objective:<3} attention={self.attention:<13} "
            f"fold={fold:<2} seed={self.seed} lr={rate}"
        )

    @property
    def condition(self) -> tuple[str, str]:
        return (self.objective, self.attention)


def plan_runs(
    config: ExperimentConfig, learning_rates: Mapping[tuple[str, str], float] | None = None
) -> list[RunSpec]:
    """All final runs of the grid, ordered so that every condition's first seed finishes before the second.

    Seed-major order means an interrupted grid still holds complete, pairable sets of conditions. Each run's
    rate is ``training.learning_rate``, or with a sweep the condition's entry in ``learning_rates`` (None
    while the sweep has not chosen one).
    """
    folds: list[int | None] = list(range(config.folds)) if config.cross_validation else [None]
    runs = []
    for run_index, seed in enumerate(config.run_seeds()):
        for fold in folds:
            for objective in config.objectives:
                for attention in config.attention:
                    rate = _final_rate(config, (objective, attention), learning_rates)
                    runs.append(RunSpec(objective, attention, fold, seed, run_index, rate))
    return runs


def _final_rate(
    config: ExperimentConfig, condition: tuple[str, str], learning_rates: Mapping[tuple[str, str], float] | None
) -> float | None:
    if not config.training.lr_sweep:
        return config.training.learning_rate
    return (learning_rates or {}).get(condition)


def sweep_fold(config: ExperimentConfig) -> int | None:
    """The fold the sweep trains and validates on: fold 0 under cross-validation (the final runs still use
    every fold), the one fixed split otherwise."""
    return 0 if config.cross_validation else None


def plan_sweep_runs(config: ExperimentConfig) -> list[RunSpec]:
    """One run per condition and swept rate, all with ``training.lr_sweep_seed``; empty without a sweep."""
    return [
        RunSpec(objective, attention, sweep_fold(config), config.training.lr_sweep_seed, index, rate, LR_SWEEP)
        for index, rate in enumerate(config.training.lr_sweep)
        for objective in config.objectives
        for attention in config.attention
    ]
