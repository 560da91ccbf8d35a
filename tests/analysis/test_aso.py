"""Almost Stochastic Order against the reference implementation deepsig (Ulmer et al. 2022)."""

from __future__ import annotations

import numpy as np
import pytest
from deepsig import aso as deepsig_aso
from deepsig.aso import compute_violation_ratio

from mlmclm.analysis import analyze
from mlmclm.analysis.aso import almost_stochastic_order, violation_ratio
from mlmclm.config import StatisticsConfig
from tests.analysis.synthetic_results import make_raw_results


@pytest.mark.parametrize("shift", [-0.5, 0.0, 0.3, 1.0])
def test_violation_ratio_equals_deepsig(shift):
    rng = np.random.default_rng(7)
    a, b = rng.normal(shift, 1, 8), rng.normal(0, 1, 6)
    assert violation_ratio(a, b, 0.005) == pytest.approx(compute_violation_ratio(a, b, dt=0.005))


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore")
def test_min_epsilon_agrees_with_deepsig_within_bootstrap_noise():
    rng = np.random.default_rng(0)
    a, b = rng.normal(0.3, 1, 8), rng.normal(0, 1, 6)
    reference = deepsig_aso(a, b, seed=1, show_progress=False, num_bootstrap_iterations=1000)
    ours = almost_stochastic_order(a, b, rng=np.random.default_rng(1), n_bootstrap=4000).min_epsilon
    assert ours == pytest.approx(reference, abs=0.02)


def test_dominance_gives_zero_and_bonferroni_raises_the_bound():
    rng = np.random.default_rng(3)
    better, worse = rng.normal(10, 1, 6), rng.normal(0, 1, 6)  # no overlap
    assert almost_stochastic_order(better, worse, rng=rng).min_epsilon == 0.0
    a, b = rng.normal(0.2, 1, 5), rng.normal(0, 1, 5)
    one = almost_stochastic_order(a, b, rng=np.random.default_rng(0))
    six = almost_stochastic_order(a, b, rng=np.random.default_rng(0), num_comparisons=6)
    assert six.confidence_level == pytest.approx(1 - 0.05 / 6) and six.min_epsilon >= one.min_epsilon


def test_a_larger_family_never_lowers_the_bound():
    """Bonferroni: more comparisons, a higher level, a larger ε_min (deepsig's γ + (1 - γ)/m went down)."""
    rng = np.random.default_rng(5)
    a, b = rng.normal(0.3, 1, 6), rng.normal(0, 1, 6)
    results = [almost_stochastic_order(a, b, rng=np.random.default_rng(0), num_comparisons=m) for m in (1, 2, 3, 6, 15)]
    levels = [result.confidence_level for result in results]
    assert levels == pytest.approx([0.95, 0.975, 1 - 0.05 / 3, 1 - 0.05 / 6, 1 - 0.05 / 15])
    epsilons = [result.min_epsilon for result in results]
    assert epsilons == sorted(epsilons) and epsilons[-1] > epsilons[0]


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore")
def test_family_bound_agrees_with_deepsig_at_the_bonferroni_level():
    """deepsig given the Bonferroni level itself (one comparison) is the reference for m = 6."""
    rng = np.random.default_rng(0)
    a, b = rng.normal(0.3, 1, 8), rng.normal(0, 1, 6)
    reference = deepsig_aso(a, b, confidence_level=1 - 0.05 / 6, seed=1, show_progress=False,
                            num_bootstrap_iterations=1000)
    ours = almost_stochastic_order(a, b, rng=np.random.default_rng(1), n_bootstrap=4000, num_comparisons=6)
    assert ours.min_epsilon == pytest.approx(reference, abs=0.02)


def test_aso_fields_only_with_test_aso_and_oriented_by_direction():
    raw = make_raw_results()
    plain = analyze(raw, StatisticsConfig(bootstrap_resamples=200), metrics=["val_loss"])
    assert all(c.test.aso_min_epsilon is None for c in plain.comparisons)
    analysis = analyze(raw, StatisticsConfig(bootstrap_resamples=500, test="aso"), metrics=["val_loss"])
    mlm_vs_clm = [c for c in analysis.comparisons if c.family.across_objectives]
    # MLM's validation loss is lower in every run: MLM dominates on a lower-is-better metric.
    assert all(c.test.aso_min_epsilon == 0.0 and c.test.aso_min_epsilon_reverse > 0.9 for c in mlm_vs_clm)
