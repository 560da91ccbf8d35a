"""Per-condition learning-rate selection: each condition's final runs use the swept rate with the lowest
validation loss on its own sweep run.

One shared, untuned rate favours whichever condition it happens to suit; objectives and position mechanisms
differ in the rate they tolerate, so a fair comparison tunes each on validation data with the same budget
(as Liu et al. 2019, RoBERTa, Table 3, tune the rate per batch-size setting, and Izsak et al. 2021, "How to
train BERT with an academic budget", search it per recipe). The sweep run uses its own seed
(``training.lr_sweep_seed``), so the final seeds that the statistics test are never the ones the rate was selected on.

Rules, stated in docs/training.md: the criterion is the sweep run's final ``val_loss``; a diverged run (or a
completed one whose validation loss is not finite) is never chosen; an exact tie goes to the smaller rate
(the more conservative one); when every rate diverged the smallest rate is used and the reason says so; when
a sweep run failed (crashed) or has not run yet, the condition gets no rate and its final runs wait for a
rerun, which retries the failed run, so a crash can never silently shrink the set of candidate rates.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from mlmclm.config import ExperimentConfig
from mlmclm.grid.plan import RunSpec, plan_sweep_runs, sweep_fold

CRITERION = "val_loss"
FINISHED = ("completed", "diverged")


@dataclass(frozen=True)
class SweepResult:
    """The outcome of one sweep run: its rate, status and validation loss (None unless finite)."""

    learning_rate: float
    run_id: str
    status: str  # completed | diverged | failed | pending
    val_loss: float | None

    @property
    def selectable(self) -> bool:
        return self.status == "completed" and self.val_loss is not None


@dataclass(frozen=True)
class SweepChoice:
    """One condition's sweep results and the rate its final runs use (None: undecided, see ``reason``)."""

    objective: str
    attention: str
    results: tuple[SweepResult, ...]
    chosen_learning_rate: float | None
    reason: str

    @property
    def condition(self) -> str:
        return f"{self.attention}_{self.objective}"

    def to_json(self) -> dict[str, Any]:
        return {
            "objective": self.objective,
            "attention": self.attention,
            "condition": self.condition,
            "results": [asdict(result) for result in self.results],
            "chosen_learning_rate": self.chosen_learning_rate,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class LearningRateSweep:
    """The whole sweep as the raw results record it (``lr_sweep`` in docs/raw_results.schema.json)."""

    rates: tuple[float, ...]
    seed: int
    fold: int | None
    choices: tuple[SweepChoice, ...]
    criterion: str = CRITERION

    def chosen_rates(self) -> dict[tuple[str, str], float]:
        """(objective, attention) -> chosen rate, for the conditions that have one."""
        return {
            (choice.objective, choice.attention): choice.chosen_learning_rate
            for choice in self.choices
            if choice.chosen_learning_rate is not None
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "rates": list(self.rates),
            "seed": self.seed,
            "fold": self.fold,
            "criterion": self.criterion,
            "conditions": [choice.to_json() for choice in self.choices],
        }


def _finite(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def sweep_result(spec: RunSpec, record: Mapping[str, Any] | None) -> SweepResult:
    """What one sweep run contributes; a missing record is ``pending``, any unfinished status ``failed``."""
    assert spec.learning_rate is not None
    if record is None:
        return SweepResult(spec.learning_rate, spec.run_id, "pending", None)
    status = str(record.get("status"))
    if status not in FINISHED:
        status = "failed"
    val_loss = _finite((record.get("metrics") or {}).get(CRITERION)) if status == "completed" else None
    return SweepResult(spec.learning_rate, spec.run_id, status, val_loss)


def choose_learning_rate(objective: str, attention: str, results: Iterable[SweepResult]) -> SweepChoice:
    """The lowest-validation-loss rate of one condition, by the rules in the module docstring."""
    results = tuple(sorted(results, key=lambda result: result.learning_rate))
    unfinished = [result for result in results if result.status not in FINISHED]
    if unfinished:
        rates = ", ".join(f"{result.learning_rate:g} ({result.status})" for result in unfinished)
        reason = f"undecided: sweep run(s) at {rates} not finished; rerun to retry them"
        return SweepChoice(objective, attention, results, None, reason)
    candidates = [result for result in results if result.selectable]
    if not candidates:
        reason = "every swept rate diverged; the smallest rate is used"
        return SweepChoice(objective, attention, results, results[0].learning_rate, reason)
    best = min(candidates, key=lambda result: (result.val_loss, result.learning_rate))
    tied = [result for result in candidates if result.val_loss == best.val_loss]
    reason = f"lowest validation loss ({best.val_loss:.4f})"
    if len(tied) > 1:
        reason += "; exact tie broken towards the smaller rate"
    skipped = len(results) - len(candidates)
    if skipped:
        reason += f"; {skipped} rate(s) diverged and were not eligible"
    return SweepChoice(objective, attention, results, best.learning_rate, reason)


def choose_learning_rates(
    config: ExperimentConfig, records: Mapping[str, Mapping[str, Any]]
) -> LearningRateSweep:
    """Every condition's choice from the sweep run records (by run id) found so far."""
    by_condition: dict[tuple[str, str], list[SweepResult]] = {}
    for spec in plan_sweep_runs(config):
        by_condition.setdefault(spec.condition, []).append(sweep_result(spec, records.get(spec.run_id)))
    choices = tuple(
        choose_learning_rate(objective, attention, results) for (objective, attention), results in by_condition.items()
    )
    return LearningRateSweep(
        tuple(config.training.lr_sweep), config.training.lr_sweep_seed, sweep_fold(config), choices
    )
