"""The headline's false-claim rate under a global null (benchmarks/simulations/global_null.py, reduced)."""

from __future__ import annotations

import pytest

from benchmarks.simulations import global_null
from mlmclm.config import StatisticsConfig


@pytest.mark.slow
def test_headline_false_claim_rate_is_within_alpha_under_a_global_null(monkeypatch):
    monkeypatch.setattr(global_null, "MECHANISMS", ("standard", "rope"))
    monkeypatch.setattr(global_null, "TASKS", ("bigram_shift", "coherence"))
    rates = global_null.simulate(10, seeds=4, seed=1, settings=StatisticsConfig(bootstrap_resamples=100))
    assert rates.headline_ci[0] <= rates.alpha  # the rate is consistent with at most alpha
    # the primary family is one of the pooled like-for-like MLM-vs-CLM families, so it can only claim less
    assert rates.headline_claims <= rates.pooled_mlm_vs_clm_claims


def test_null_grids_have_no_true_difference_and_carry_the_endpoint_inputs():
    import numpy as np

    raw = global_null.null_raw_results(np.random.default_rng(0), seeds=3)
    assert len(raw["runs"]) == len(global_null.OBJECTIVES) * len(global_null.MECHANISMS) * 3
    assert all(f"probe/{task}/random_init_accuracy" in raw["runs"][0]["metrics"] for task in global_null.TASKS)
