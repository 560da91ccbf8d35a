"""Diverged runs: counted per condition and tested with Fisher's exact test, never silently dropped."""

from __future__ import annotations

import pytest
from scipy import stats

from mlmclm.analysis import analyze
from mlmclm.analysis.divergence import analyze_divergence, divergence_rate
from mlmclm.config import StatisticsConfig
from mlmclm.grid.records import RunRecord
from tests.analysis.synthetic_results import make_raw_results

FAST = StatisticsConfig(bootstrap_resamples=200)
SEEDS = tuple(range(8))


def diverge(raw: dict, condition: tuple[str, str], count: int) -> dict:
    """Mark the first ``count`` runs of (objective, attention) diverged, as the trainer records them."""
    hits = 0
    for index, run in enumerate(raw["runs"]):
        if (run["objective"], run["attention"]) == condition and hits < count:
            raw["runs"][index] = {**run, "status": "diverged", "error": "loss became nan at step 3",
                                  "metrics": {"diverged_step": 3.0}, "curves": {}}
            hits += 1
    return raw


def test_rate_counts_diverged_among_finished_runs_and_not_failed_ones():
    runs = [RunRecord(f"r{i}", "mlm", "rope", None, i, i, status=status) for i, status in
            enumerate(["completed", "diverged", "diverged", "completed", "completed", "failed"])]
    rate = divergence_rate("mlm", "rope", runs, 0.95)
    assert (rate.diverged, rate.finished, rate.rate) == (2, 5, 0.4)
    assert rate.diverged_runs == ("r1", "r2")
    exact = stats.binomtest(2, 5).proportion_ci(0.95, method="exact")
    assert (rate.ci.low, rate.ci.high) == pytest.approx((exact.low, exact.high))
    assert divergence_rate("mlm", "rope", runs[-1:], 0.95).rate is None


def test_an_unstable_condition_is_flagged_by_fishers_exact_test_after_correction():
    raw = diverge(make_raw_results(seeds=SEEDS, failed_run=False), ("mlm", "rope"), 7)
    analysis = analyze(raw, FAST, metrics=["val_loss"])
    rates = {rate.condition: rate for rate in analysis.divergence_rates}
    assert (rates["rope_mlm"].diverged, rates["rope_mlm"].finished) == (7, 8)
    assert rates["rope_clm"].diverged == 0 and rates["standard_mlm"].rate == 0.0
    tests = {(c.family, c.group_a, c.group_b): c for c in analysis.divergence_comparisons}
    cross = tests["divergence/mlm_vs_clm", "rope_mlm", "rope_clm"]
    assert cross.p_value == pytest.approx(stats.fisher_exact([[7, 1], [0, 8]]).pvalue)
    assert cross.significant and cross.p_adjusted >= cross.p_value  # Holm over the three mechanisms
    within = tests["divergence/attention_within_mlm", "standard_mlm", "rope_mlm"]
    assert within.significant and within.rate_b == 7 / 8
    assert not tests["divergence/attention_within_clm", "standard_clm", "rope_clm"].significant
    # the metric analyses still use only completed runs: the one surviving rope_mlm run
    summary = next(s for s in analysis.summaries_for("val_loss") if s.condition == "rope_mlm")
    assert summary.n == 1 and len(summary.excluded) == 7


def test_without_divergence_every_test_has_p_one():
    runs = [RunRecord.from_json(run) for run in make_raw_results(failed_run=False)["runs"]]
    _, comparisons = analyze_divergence(
        runs, ("mlm", "clm"), ("standard", "rope", "alibi"), confidence_level=0.95, correction="holm", alpha=0.05,
    )
    assert len(comparisons) == 3 + 3 + 3
    assert {c.p_value for c in comparisons} == {1.0} and not any(c.significant for c in comparisons)


def test_lr_sweep_runs_in_the_runs_list_are_not_analysed():
    raw = make_raw_results(failed_run=False)
    clean = analyze(raw, FAST, metrics=["val_loss"])
    stray = {**raw["runs"][0], "run_id": "standard_mlm_lrsweep0", "phase": "lr_sweep", "seed": 7,
             "status": "diverged", "metrics": {}}
    polluted = analyze({**raw, "runs": [*raw["runs"], {**stray, "status": "completed",
                                                       "metrics": {"val_loss": 99.0}}, stray]}, FAST,
                       metrics=["val_loss"])
    assert [s.mean for s in polluted.summaries] == [s.mean for s in clean.summaries]
    assert polluted.divergence_rates == clean.divergence_rates
