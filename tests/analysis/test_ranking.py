"""Friedman omnibus, average ranks, Nemenyi CD and Holm-corrected Wilcoxon pairs against scipy, scikit-posthocs
and Demšar (2006)."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
import scikit_posthocs as sp
from scipy import stats

from mlmclm.analysis import analyze
from mlmclm.analysis.conditions import ConditionSample, Observation
from mlmclm.analysis.ranking import nemenyi_critical_difference, rank_mechanisms
from mlmclm.config import StatisticsConfig
from tests.analysis.synthetic_results import make_raw_results

MECHANISMS = ("standard", "rope", "alibi", "nope")


def _samples(matrix: np.ndarray, folds: tuple[int | None, ...] = (None,)) -> dict[str, ConditionSample]:
    """Mechanism → sample; row r of ``matrix`` is seed r (repeated over ``folds`` in order)."""
    samples = {}
    for column, mechanism in enumerate(MECHANISMS[: matrix.shape[1]]):
        observations = []
        for row in range(matrix.shape[0]):
            fold = folds[row % len(folds)]
            seed = row // len(folds)
            observations.append(Observation(f"{mechanism}_{row}", fold, seed, float(matrix[row, column])))
        samples[mechanism] = ConditionSample("mlm", mechanism, "val_loss", tuple(observations), ())
    return samples


def _rank(samples, cross_validation=False):
    return rank_mechanisms(
        samples, metric="val_loss", objective="mlm", direction="lower", alpha=0.05, cross_validation=cross_validation
    )


def _matrix(seed: int = 0, blocks: int = 10) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(blocks, 4)) + np.array([0.0, 0.8, 0.3, 1.5])


def test_friedman_and_average_ranks_match_scipy_and_pandas():
    matrix = _matrix()
    ranking = _rank(_samples(matrix))
    reference = stats.friedmanchisquare(*matrix.T)
    assert ranking.statistic == pytest.approx(reference.statistic)
    assert ranking.p_value == pytest.approx(reference.pvalue)
    expected_ranks = pd.DataFrame(matrix).rank(axis=1).mean().to_numpy()  # lower loss = rank 1
    assert ranking.average_ranks == pytest.approx(expected_ranks)
    assert ranking.n_blocks == 10 and ranking.block == "seed"


def test_posthoc_pairs_match_scikit_posthocs_wilcoxon_with_holm():
    matrix = _matrix(1)
    ranking = _rank(_samples(matrix))
    reference = sp.posthoc_wilcoxon(matrix.T.tolist(), p_adjust="holm")
    for pair in ranking.posthoc:
        i, j = MECHANISMS.index(pair.mechanism_a), MECHANISMS.index(pair.mechanism_b)
        assert pair.p_adjusted == pytest.approx(reference.iloc[i, j])
    assert ranking.omnibus_significant
    assert any(pair.significant for pair in ranking.posthoc)


@pytest.mark.parametrize("k,q", [(3, 2.343), (4, 2.569), (5, 2.728), (6, 2.850)])
def test_nemenyi_critical_difference_uses_demsar_table_5a(k, q):
    assert nemenyi_critical_difference(k, 14, 0.05) == pytest.approx(q * np.sqrt(k * (k + 1) / 84), abs=2e-3)


def test_demsar_worked_example_critical_difference_is_1_25():
    assert nemenyi_critical_difference(4, 14, 0.05) == pytest.approx(1.25, abs=5e-3)  # Demšar 2006, sec. 3.2.2


def test_no_pair_is_significant_when_the_omnibus_test_does_not_reject():
    matrix = np.random.default_rng(3).normal(size=(8, 4))  # the null: no mechanism differs
    ranking = _rank(_samples(matrix))
    assert not ranking.omnibus_significant
    assert not any(pair.significant for pair in ranking.posthoc)


def test_cross_validation_blocks_are_seeds_averaged_over_folds():
    matrix = _matrix(2, blocks=12)  # 4 seeds x 3 folds
    ranking = _rank(_samples(matrix, folds=(0, 1, 2)), cross_validation=True)
    seed_means = matrix.reshape(4, 3, 4).mean(axis=1)
    assert ranking.n_blocks == 4 and ranking.block == "seed (mean over folds)"
    assert ranking.statistic == pytest.approx(stats.friedmanchisquare(*seed_means.T).statistic)


def test_two_mechanisms_get_no_ranking_and_analyze_ranks_each_objective():
    matrix = _matrix()
    assert _rank({k: v for k, v in list(_samples(matrix).items())[:2]}) is None
    analysis = analyze(make_raw_results(), StatisticsConfig(bootstrap_resamples=200), metrics=["val_loss"])
    assert [(r.objective, r.metric) for r in analysis.rankings] == [("mlm", "val_loss"), ("clm", "val_loss")]


def test_critical_difference_separates_exactly_the_pairs_scikit_posthocs_nemenyi_rejects():
    matrix = _matrix(4, blocks=30)
    ranking = _rank(_samples(matrix))
    nemenyi = sp.posthoc_nemenyi_friedman(matrix)  # blocks x groups, the same q_α as Demšar's CD
    for i, j in itertools.combinations(range(4), 2):
        apart = abs(ranking.average_ranks[i] - ranking.average_ranks[j]) > ranking.critical_difference
        assert apart == (nemenyi.iloc[i, j] < 0.05)


def test_ties_within_blocks_and_zero_differences_match_scipy_pandas_and_scikit_posthocs():
    matrix = np.random.default_rng(5).integers(0, 4, size=(12, 4)).astype(float)  # many ties and zero differences
    ranking = _rank(_samples(matrix))
    assert ranking.statistic == pytest.approx(stats.friedmanchisquare(*matrix.T).statistic)  # tie-corrected
    assert ranking.average_ranks == pytest.approx(pd.DataFrame(matrix).rank(axis=1).mean().to_numpy())
    reference = sp.posthoc_wilcoxon(matrix.T.tolist(), p_adjust="holm")
    tested = [pair for pair in ranking.posthoc if pair.p_value is not None]
    assert tested
    for pair in tested:
        i, j = MECHANISMS.index(pair.mechanism_a), MECHANISMS.index(pair.mechanism_b)
        assert pair.p_adjusted == pytest.approx(reference.iloc[i, j])
