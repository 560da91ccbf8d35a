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
