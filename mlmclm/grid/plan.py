"""The experiment plan: objectives x attention x folds x seeds, one RunSpec per training run.

Every condition gets the same seed list (and the same folds), so runs pair up across conditions by
(fold, seed) and the statistics can use paired tests.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from mlmclm.config import ExperimentConfig


@dataclass(frozen=True)
class RunSpec:
    """One training run: a condition (objective, attention) on one fold with one seed."""

    objective: str
    attention: str
    fold: int | None
    seed: int
    run_index: int

    @property
    def run_id(self) -> str:
        """Directory-safe identifier, ``<attention>_<objective>[_fold<k>]_run<i>`` as documented."""
        fold = "" if self.fold is None else f"_fold{self.fold}"
        return f"{self.attention}_{self.objective}{fold}_run{self.run_index}"

    def to_dict(self) -> dict:
        return {"run_id": self.run_id, **asdict(self)}

    def describe(self) -> str:
        fold = "-" if self.fold is None else str(self.fold)
        return (
            f"{self.run_id:<32} objective={self.objective:<3} attention={self.attention:<13} "
            f"fold={fold:<2} seed={self.seed}"
        )


def plan_runs(config: ExperimentConfig) -> list[RunSpec]:
    """All runs of the grid, ordered so that every condition's first seed finishes before the second.

    Seed-major order means an interrupted grid still holds complete, pairable sets of conditions.
    """
    folds: list[int | None] = list(range(config.folds)) if config.cross_validation else [None]
    runs = []
    for run_index, seed in enumerate(config.run_seeds()):
        for fold in folds:
            for objective in config.objectives:
                for attention in config.attention:
                    runs.append(RunSpec(objective, attention, fold, seed, run_index))
    return runs
