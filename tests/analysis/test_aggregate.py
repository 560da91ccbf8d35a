"""IQM and probability of improvement against rliable's metrics; the bootstrap is stratified by task."""

from __future__ import annotations

import numpy as np
import pytest
from rliable import metrics as rliable_metrics

from mlmclm.analysis import analyze
from mlmclm.analysis.aggregate import aggregate_iqm, probability_of_improvement
from mlmclm.config import StatisticsConfig
from tests.analysis.rliable_compat import rliable_library
from tests.analysis.synthetic_results import make_raw_results

TASKS = ("a", "b", "c")


def _kwargs(seed: int = 0) -> dict:
    return {"score": "accuracy", "confidence_level": 0.95, "n_resamples": 2000, "rng": np.random.default_rng(seed)}


def test_iqm_equals_rliable_aggregate_iqm():
    scores = np.random.default_rng(0).uniform(size=(5, 3))
    result = aggregate_iqm("x", scores, TASKS, **_kwargs())
    assert result.iqm == pytest.approx(rliable_metrics.aggregate_iqm(scores))
    assert result.ci.low < result.iqm < result.ci.high


def test_probability_of_improvement_equals_rliable_with_ties():
    x = np.array([[0.5, 0.7, 0.2], [0.6, 0.7, 0.3], [0.4, 0.9, 0.3], [0.8, 0.1, 0.2]])
    y = np.array([[0.5, 0.6, 0.3], [0.3, 0.7, 0.1], [0.2, 0.8, 0.4]])
    result = probability_of_improvement("x", x, "y", y, TASKS, **_kwargs())
    assert result.probability == pytest.approx(rliable_metrics.probability_of_improvement(x, y))
    assert result.ci.low <= result.probability <= result.ci.high


def test_bootstrap_resamples_runs_within_each_task():
    # Each resample keeps 3 scores of task a (0.1-0.3) and 3 of task b (0.9-1.1); the 25%-trimmed mean of 6 values
    # drops one at each end, so every stratified IQM lies in [0.5, 0.7]. Pooled resampling would reach 0.2.
    scores = np.array([[0.1, 0.9], [0.2, 1.0], [0.3, 1.1]])
    result = aggregate_iqm("x", scores, ("a", "b"), **_kwargs())
    assert 0.5 <= result.ci.low and result.ci.high <= 0.7


# Two independent percentile bootstraps of the same statistic differ only by Monte Carlo error: with B resamples a
# 2.5% quantile moves by about sqrt(0.025·0.975/B)/f(q) — here well under 0.02 on a [0, 1] score scale.
MC_TOLERANCE = 0.03


def test_iqm_interval_matches_rliable_get_interval_estimates(monkeypatch):
    library = rliable_library(monkeypatch)
    scores = np.random.default_rng(0).uniform(size=(6, 3))
    _, reference = library.get_interval_estimates(
        {"x": scores}, lambda m: np.array([rliable_metrics.aggregate_iqm(m)]), reps=5000,
        random_state=np.random.RandomState(0),
    )
    result = aggregate_iqm("x", scores, TASKS, **{**_kwargs(), "n_resamples": 5000})
    assert [result.ci.low, result.ci.high] == pytest.approx(reference["x"][:, 0], abs=MC_TOLERANCE)


def test_improvement_interval_matches_rliable_get_interval_estimates(monkeypatch):
    library = rliable_library(monkeypatch)
    rng = np.random.default_rng(1)
    x, y = rng.uniform(size=(5, 3)) + 0.1, rng.uniform(size=(4, 3))
    _, reference = library.get_interval_estimates(
        {"xy": (x, y)}, rliable_metrics.probability_of_improvement, reps=1000, random_state=np.random.RandomState(0)
    )
    result = probability_of_improvement("x", x, "y", y, TASKS, **{**_kwargs(), "n_resamples": 5000})
    assert [result.ci.low, result.ci.high] == pytest.approx(reference["xy"][:, 0], abs=MC_TOLERANCE)


def test_complete_separation_gives_no_zero_width_interval():
    x, y = np.full((3, 2), 0.9) + np.arange(3)[:, None] * 0.01, np.full((3, 2), 0.1)
    result = probability_of_improvement("x", x, "y", y, ("a", "b"), **_kwargs())
    assert result.probability == 1.0 and result.ci.low is None and "same value" in result.ci.note


def test_analysis_summarises_probe_accuracy_per_condition_and_mlm_vs_clm():
    analysis = analyze(make_raw_results(), StatisticsConfig(bootstrap_resamples=300), metrics=["val_loss"])
    assert {a.condition for a in analysis.probe_iqm} >= {"rope_mlm", "rope_clm"}
    assert all(a.tasks == ("bigram_shift", "sentence_length") for a in analysis.probe_iqm)
    assert [p.group_x for p in analysis.probe_improvement] == ["standard_mlm", "rope_mlm", "alibi_mlm"]
