"""Ranking the attention mechanisms within one objective: omnibus test first, then post-hoc pairs (Demšar 2006).

For k ≥ 3 mechanisms measured on the same blocks, the **Friedman test** (Friedman 1937;
``scipy.stats.friedmanchisquare``) asks whether any mechanism differs; it needs neither normality nor sphericity, so
it is used rather than a repeated-measures ANOVA whose assumptions cannot be checked with a handful of blocks.
Mechanisms are ranked within each block (rank 1 = best, ties share the mean rank) and the **average ranks**
summarise the ordering. Post-hoc, every pair gets the **Wilcoxon signed-rank test with Holm's correction**, as
Benavoli, Corani & Mangili (2016) recommend instead of mean-rank tests, whose outcome depends on the other
mechanisms in the comparison; a pair is significant only when the omnibus test also rejects (gatekeeping).
The **Nemenyi critical difference** CD = q_α·√(k(k + 1)/(6N)) (Demšar 2006, eq. 4; q_α the studentized range
quantile / √2) is what the critical-difference diagram draws.

Blocks: without cross-validation a block is one seed (its (fold, seed) pair). Under cross-validation the folds share
training data, so blocks of different folds are not independent; a block is then one seed with its scores
**averaged over the folds**, which are independent across seeds given the fixed folds (inference is conditional on
the data split). Only blocks in which every mechanism has a value count.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from mlmclm.analysis.conditions import ConditionSample
from mlmclm.analysis.multiple_comparisons import adjust_pvalues

FRIEDMAN = "Friedman"
CV_BLOCK_STATEMENT = (
    "cross-validation: folds share training data, so runs of different folds are not independent and no rank "
    "test over (fold, seed) runs is valid; each seed's scores are averaged over the folds and the seeds are the "
    "blocks (independent given the fixed folds; inference is conditional on the data split)"
)


@dataclass(frozen=True)
class PairwiseRankTest:
    """Post-hoc Wilcoxon signed-rank test of two mechanisms over the common blocks, Holm-adjusted."""

    mechanism_a: str
    mechanism_b: str
    statistic: float | None
    p_value: float | None
    p_adjusted: float | None
    significant: bool
    # Blocks whose two scores differ: scipy's Wilcoxon drops zero differences, so its p-value floor is that
    # of this many pairs, not of every block (None where not recorded).
    n_nonzero: int | None = None


@dataclass(frozen=True)
class MechanismRanking:
    """Friedman omnibus, average ranks (1 = best), Nemenyi CD and Holm-corrected pairs for one objective/metric."""

    metric: str
    objective: str
    direction: str | None
    block: str  # "seed" | "seed (mean over folds)"
    n_blocks: int
    mechanisms: tuple[str, ...]
    average_ranks: tuple[float, ...]
    omnibus_test: str
    statistic: float | None
    p_value: float | None
    omnibus_significant: bool
    critical_difference: float | None
    posthoc: tuple[PairwiseRankTest, ...]
    alpha: float
    note: str | None = None
    cv_statement: str | None = None  # under cross-validation: why the blocks are seeds averaged over folds


def block_matrix(
    samples: Sequence[ConditionSample], *, average_folds: bool
) -> tuple[np.ndarray, list[tuple[int | None, ...]]]:
    """Blocks × mechanisms matrix over the blocks every mechanism has (rows sorted by block key)."""
    tables: list[dict[tuple[int | None, ...], float]] = []
    for sample in samples:
        groups: dict[tuple[int | None, ...], list[float]] = {}
        for obs in sample.observations:
            key = (obs.seed,) if average_folds else obs.pair_key
            groups.setdefault(key, []).append(obs.value)
        tables.append({key: float(np.mean(values)) for key, values in groups.items()})
    common = set(tables[0]).intersection(*tables[1:]) if tables else set()
    keys = sorted(common, key=lambda key: tuple((k is None, k or 0) for k in key))
    matrix = np.array([[table[key] for table in tables] for key in keys], dtype=float)
    return matrix.reshape(len(keys), len(tables)), keys


def average_ranks(matrix: np.ndarray, direction: str | None) -> np.ndarray:
    """Mean over blocks of the within-block rank, 1 = best (lowest when lower is better, else highest)."""
    oriented = matrix if direction == "lower" else -matrix
    return np.mean(stats.rankdata(oriented, axis=1), axis=0)


def nemenyi_critical_difference(k: int, n_blocks: int, alpha: float) -> float:
    """CD = q_α √(k(k + 1)/(6N)), q_α = studentized range quantile (k groups, ∞ df) / √2 (Demšar 2006, eq. 4)."""
    q_alpha = float(stats.studentized_range.ppf(1 - alpha, k, np.inf)) / math.sqrt(2)
    return q_alpha * math.sqrt(k * (k + 1) / (6 * n_blocks))


def _pairwise(
    matrix: np.ndarray, mechanisms: Sequence[str], alpha: float, gate: bool
) -> tuple[PairwiseRankTest, ...]:
    pairs = list(itertools.combinations(range(len(mechanisms)), 2))
    raw: list[tuple[float | None, float | None]] = []
    nonzero = [int(np.count_nonzero(matrix[:, i] - matrix[:, j])) for i, j in pairs]
    for (i, j), count in zip(pairs, nonzero, strict=True):
        if not count:
            raw.append((None, None))
            continue
        result = stats.wilcoxon(matrix[:, i], matrix[:, j])
        raw.append((float(result.statistic), float(result.pvalue)))
    adjusted = adjust_pvalues([p for _, p in raw], method="holm", alpha=alpha)
    return tuple(
        PairwiseRankTest(
            mechanisms[i], mechanisms[j], statistic, p, adjusted.p_adjusted[index],
            bool(gate and adjusted.reject[index]), nonzero[index],
        )
        for index, ((i, j), (statistic, p)) in enumerate(zip(pairs, raw, strict=True))
    )


def rank_mechanisms(
    samples: Mapping[str, ConditionSample],
    *,
    metric: str,
    objective: str,
    direction: str | None,
    alpha: float,
    cross_validation: bool,
) -> MechanismRanking | None:
    """The ranking of the mechanisms in ``samples`` (mechanism → sample); ``None`` with fewer than 3 mechanisms."""
    mechanisms = tuple(samples)
    if len(mechanisms) < 3:
        return None
    matrix, keys = block_matrix([samples[m] for m in mechanisms], average_folds=cross_validation)
    block = "seed (mean over folds)" if cross_validation else "seed"
    statement = CV_BLOCK_STATEMENT if cross_validation else None
    n = len(keys)
    empty = (None, None, False, None, ())
    if n < 2:
        note = f"{n} block(s) with a value for every mechanism: no ranking test"
        return MechanismRanking(
            metric, objective, direction, block, n, mechanisms, (), FRIEDMAN, *empty, alpha, note, statement
        )
    ranks = tuple(float(r) for r in average_ranks(matrix, direction))
    if np.all(np.ptp(matrix, axis=1) == 0):
        note = "every mechanism has the same value in every block: the Friedman test is undefined"
        return MechanismRanking(
            metric, objective, direction, block, n, mechanisms, ranks, FRIEDMAN, *empty, alpha, note, statement
        )
    result = stats.friedmanchisquare(*matrix.T)
    p_value = float(result.pvalue)
    rejects = p_value <= alpha
    note = None
    if n < 6:
        note = f"{n} blocks: the Friedman p-value uses the chi-square approximation, rough below about 6 blocks"
    critical_difference = nemenyi_critical_difference(len(mechanisms), n, alpha)
    posthoc = _pairwise(matrix, mechanisms, alpha, rejects)
    return MechanismRanking(
        metric, objective, direction, block, n, mechanisms, ranks, FRIEDMAN, float(result.statistic), p_value,
        rejects, critical_difference, posthoc, alpha, note, statement,
    )
