"""Performance profiles against rliable's ``score_distributions`` and ``create_performance_profile``."""

from __future__ import annotations

import numpy as np
import pytest

from mlmclm.analysis import analyze
from mlmclm.analysis.profiles import MIN_PROFILE_RUNS, performance_profile, profile_thresholds
from mlmclm.config import StatisticsConfig
from tests.analysis.rliable_compat import rliable_library
from tests.analysis.synthetic_results import make_raw_results

TASKS = ("a", "b", "c")


def _profile(scores, thresholds, n_resamples=2000, seed=0):
    return performance_profile(
        "mlm", "rope", "rope_mlm", scores, TASKS, thresholds, score="accuracy", confidence_level=0.95,
        n_resamples=n_resamples, rng=np.random.default_rng(seed),
    )


def test_profile_and_bands_match_rliable_create_performance_profile(monkeypatch):
    library = rliable_library(monkeypatch)
    scores = np.random.default_rng(0).beta(5, 2, size=(10, 3))
    thresholds = np.linspace(0.3, 0.95, 11)
    profile = _profile(scores, thresholds)
    assert profile.fraction_above == pytest.approx(library.score_distributions(scores, thresholds))
    np.random.seed(0)  # rliable's bootstrap draws from numpy's global state
    points, bands = library.create_performance_profile({"x": scores}, thresholds, reps=2000)
    assert profile.fraction_above == pytest.approx(points["x"])
    # Independent resamples: a pointwise percentile of a fraction of 30 scores can move by one step of 1/30.
    step = 1 / scores.size
    assert profile.band_low == pytest.approx(bands["x"][0], abs=step + 1e-9)
    assert profile.band_high == pytest.approx(bands["x"][1], abs=step + 1e-9)


def test_bands_contain_the_profile_and_pin_at_thresholds_beyond_every_score():
    scores = np.random.default_rng(1).uniform(0.4, 0.8, size=(4, 3))
    thresholds = np.array([0.0, 0.6, 1.0])
    profile = _profile(scores, thresholds, n_resamples=500)
    assert profile.fraction_above[0] == profile.band_low[0] == profile.band_high[0] == 1.0
    assert profile.fraction_above[-1] == profile.band_low[-1] == profile.band_high[-1] == 0.0
    assert profile.band_low[1] <= profile.fraction_above[1] <= profile.band_high[1]


def test_too_few_runs_give_no_profile_and_the_threshold_grid_spans_every_condition():
    assert MIN_PROFILE_RUNS == 3
    assert _profile(np.full((2, 3), 0.5), np.array([0.5])) is None
    grid = profile_thresholds([np.array([[0.2, 0.5]]), np.array([[0.9, 0.4]])], points=8)
    assert grid[0] == 0.2 and grid[-1] == 0.9 and grid.size == 8


def test_analysis_profiles_every_condition_with_three_runs():
    analysis = analyze(make_raw_results(), StatisticsConfig(bootstrap_resamples=200), metrics=["val_loss"])
    drawn = {(p.objective, p.attention) for p in analysis.probe_profiles}
    # The synthetic grid has 3 seeds; its last run (alibi, CLM) failed, leaving that condition 2 runs.
    assert ("clm", "alibi") not in drawn and ("mlm", "alibi") in drawn and len(drawn) == 5
    assert all(p.tasks == ("bigram_shift", "sentence_length") for p in analysis.probe_profiles)
    assert len({p.thresholds for p in analysis.probe_profiles}) == 1
