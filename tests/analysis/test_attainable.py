"""Each family's p-value floor after correction, against scipy's exact permutation test and statsmodels' Holm."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests

from mlmclm.analysis import analyze
from mlmclm.analysis.attainable import runs_needed
from mlmclm.analysis.hypothesis_tests import SIGN_FLIP
from mlmclm.config import StatisticsConfig
from mlmclm.report.procedures import attainable_lines
from tests.analysis.synthetic_results import make_raw_results


def _sign_flip_floor(n: int) -> float:
    """scipy's exact sign-flip p for n differences of one sign: the smallest p the test can return."""
    differences = np.arange(1.0, n + 1)
    result = stats.permutation_test(
        (differences,), np.mean, permutation_type="samples", n_resamples=np.inf, alternative="two-sided"
    )
    return float(result.pvalue)


def _analysis(seeds, mechanisms=("standard", "rope", "alibi"), **kwargs):
    raw = make_raw_results(seeds=tuple(seeds), mechanisms=mechanisms, failed_run=False, **kwargs)
    return analyze(raw, StatisticsConfig(bootstrap_resamples=200), metrics=["val_loss"])


def _floor(analysis, family):
    return next(floor for floor in analysis.attainable_p if floor.family == family)


def test_three_seeds_cannot_reach_alpha_and_the_floor_matches_scipy_and_holm():
    floor = _floor(_analysis([42, 43, 44], mechanisms=("standard", "rope")), "mlm_vs_clm/val_loss")
    assert floor.min_attainable_p == pytest.approx(_sign_flip_floor(3)) == pytest.approx(0.25)
    holm = multipletests([_sign_flip_floor(3)] * 2, method="holm")[1]
    assert floor.min_attainable_p_adjusted == pytest.approx(holm.min()) == pytest.approx(0.5)
    assert not floor.can_reach_alpha and floor.n == 3 and floor.n_comparisons == 2


@pytest.mark.parametrize("family_size", [1, 3, 6])
def test_runs_needed_is_the_first_n_whose_holm_adjusted_floor_reaches_alpha(family_size):
    needed = runs_needed([SIGN_FLIP] * family_size, "holm", 0.05)
    below = multipletests([_sign_flip_floor(needed - 1)] * family_size, method="holm")[1].min()
    at = multipletests([_sign_flip_floor(needed)] * family_size, method="holm")[1].min()
    assert below > 0.05 >= at
    if family_size == 1:
        assert needed == 6  # 2/2^6 = 0.031; 2/2^5 = 0.0625


def test_enough_seeds_reach_alpha():
    analysis = _analysis(range(42, 50), mechanisms=("standard",))
    floor = _floor(analysis, "mlm_vs_clm/val_loss")
    assert floor.can_reach_alpha and floor.min_attainable_p == pytest.approx(_sign_flip_floor(8))
    assert attainable_lines(analysis) == []


def test_cross_validation_t_tests_have_no_floor():
    analysis = _analysis([42, 43, 44], mechanisms=("standard",), folds=(0, 1, 2))
    floor = _floor(analysis, "mlm_vs_clm/val_loss")
    assert floor.min_attainable_p == 0.0 and floor.can_reach_alpha and floor.runs_needed is None


def test_report_says_up_front_that_nothing_can_be_significant():
    lines = attainable_lines(_analysis([42, 43, 44], mechanisms=("standard",)))
    text = " ".join(lines)
    assert "No comparison in this report can be significant" in text
    assert "with n = 3 paired runs the smallest attainable p is 0.25" in text
    assert "use --num-runs >= 6" in text



def test_posthoc_floor_counts_only_the_blocks_whose_scores_differ():
    """scipy's Wilcoxon drops zero differences: 6 blocks where every pair ties once reach at best the exact
    p-value of 5 pairs, 2/2**5, not 2/2**6."""
    raw = make_raw_results(objectives=("mlm",), seeds=tuple(range(42, 48)), failed_run=False)
    offsets = {"standard": 0.0, "rope": 1.0, "alibi": 2.0}
    for run in raw["runs"]:
        block = run["seed"] - 42
        # block 0 ties every pair; elsewhere the mechanisms keep one order, on a level that varies by block
        run["metrics"]["val_loss"] = 3.0 + block + (0.0 if block == 0 else offsets[run["attention"]])
    analysis = analyze(raw, StatisticsConfig(bootstrap_resamples=200), metrics=["val_loss"])
    floor = _floor(analysis, "posthoc_within_mlm/val_loss")
    ranking = next(r for r in analysis.rankings if r.objective == "mlm")
    scipy_p = stats.wilcoxon([0, 1, 1, 1, 1, 1]).pvalue  # the one tie dropped: 5 pairs, all one way
    assert [pair.p_value for pair in ranking.posthoc] == pytest.approx([scipy_p] * 3) and scipy_p == 2 / 2**5
    assert floor.min_attainable_p == pytest.approx(2 / 2**5) and floor.n == 5
