"""The whole analysis on fabricated raw results: exclusions, pairing, families, caveats, determinism."""

from __future__ import annotations

import copy
import dataclasses
import math

import numpy as np
import pytest

from mlmclm.analysis import analyze, metric_direction, power
from mlmclm.analysis.compare import CROSS_OBJECTIVE_CAVEAT
from mlmclm.analysis.power import runs_needed
from mlmclm.analysis.variance_components import fold_seed_variance
from mlmclm.config import StatisticsConfig
from mlmclm.errors import UserError
from tests.analysis.synthetic_results import make_raw_results

FAST = StatisticsConfig(bootstrap_resamples=500)


@pytest.fixture(scope="module")
def analysis():
    return analyze(make_raw_results(), FAST)


def test_metric_direction_from_name():
    assert metric_direction("val_loss") == "lower"
    assert metric_direction("test_perplexity") == "lower"
    assert metric_direction("convergence_step") == "lower"
    assert metric_direction("train_time_s") == "lower"
    assert metric_direction("val_accuracy") == "higher"
    assert metric_direction("probe/coherence/f1") == "higher"
    assert metric_direction("num_params") is None


def test_default_metrics_are_primary_secondary_and_probes(analysis):
    assert analysis.metrics[:2] == ("val_loss", "val_accuracy")
    assert (
        "probe/bigram_shift/accuracy" in analysis.metrics and "probe/sentence_length/f1" in analysis.metrics
    )


def test_families_and_comparison_counts(analysis):
    families = {c.family.name for c in analysis.comparisons if c.metric == "val_loss"}
    assert families == {
        "mlm_vs_clm/val_loss",
        "attention_within_mlm/val_loss",
        "attention_within_clm/val_loss",
    }
    assert len(analysis.comparisons_in("mlm_vs_clm/val_loss")) == 3
    assert len(analysis.comparisons_in("attention_within_mlm/val_loss")) == 3  # C(3, 2)


def test_failed_run_is_excluded_and_reported(analysis):
    assert [run.run_id for run in analysis.unfinished_runs] == ["alibi_clm_run2"]
    alibi_clm = next(s for s in analysis.summaries_for("val_loss") if s.condition == "alibi_clm")
    assert alibi_clm.n == 2 and [run.run_id for run in alibi_clm.excluded] == ["alibi_clm_run2"]


def test_incomplete_pairing_uses_independent_test_and_complete_pairing_is_paired(analysis):
    by_pair = {(c.group_a, c.group_b): c for c in analysis.comparisons_in("mlm_vs_clm/val_loss")}
    assert by_pair[("rope_mlm", "rope_clm")].paired is True
    alibi = by_pair[("alibi_mlm", "alibi_clm")]
    assert alibi.paired is False and (alibi.n_a, alibi.n_b) == (3, 2)


def test_diverged_and_non_finite_runs_are_excluded_with_reasons():
    raw = make_raw_results(failed_run=False)
    raw["runs"][0] = {**raw["runs"][0], "status": "diverged", "error": "loss became NaN at step 120"}
    raw["runs"][1]["metrics"] = {**raw["runs"][1]["metrics"], "val_loss": math.nan}
    del raw["runs"][2]["metrics"]["val_loss"]
    result = analyze(raw, FAST, metrics=["val_loss"])
    summary = next(s for s in result.summaries if s.condition == "standard_mlm")
    reasons = {run.run_id: run.reason for run in summary.excluded}
    assert summary.n == 0
    assert "diverged" in reasons["standard_mlm_run0"] and "loss became NaN" in reasons["standard_mlm_run0"]
    assert "not a finite number" in reasons["standard_mlm_run1"]
    assert "not recorded" in reasons["standard_mlm_run2"]
    comparison = result.comparisons_in("mlm_vs_clm/val_loss")[0]
    test = comparison.test
    assert test.p_value is None and test.significant is False and test.p_adjusted is None


def test_cross_objective_caveat_on_loss_not_on_probes(analysis):
    loss = analysis.comparisons_in("mlm_vs_clm/val_loss")[0]
    probe = analysis.comparisons_in("mlm_vs_clm/probe/bigram_shift/accuracy")[0]
    within = analysis.comparisons_in("attention_within_mlm/val_loss")[0]
    assert loss.caveat == CROSS_OBJECTIVE_CAVEAT and not loss.like_for_like
    assert probe.caveat is None and probe.like_for_like
    assert within.caveat is None


def test_decisions_use_adjusted_pvalues(analysis):
    for comparison in analysis.comparisons:
        if comparison.test.p_value is None:
            continue
        assert comparison.test.p_adjusted >= comparison.test.p_value - 1e-12
        significant = comparison.test.p_adjusted <= comparison.test.alpha and not comparison.noise_level
        assert comparison.test.significant == significant


def test_better_group_follows_metric_direction(analysis):
    rope = next(c for c in analysis.comparisons_in("mlm_vs_clm/val_loss") if c.group_a == "rope_mlm")
    assert rope.mean_difference < 0 and rope.better_group == "rope_mlm"  # lower loss
    accuracy = next(c for c in analysis.comparisons_in("mlm_vs_clm/val_accuracy") if c.group_a == "rope_mlm")
    assert accuracy.mean_difference > 0 and accuracy.better_group == "rope_mlm"  # higher accuracy


def test_same_seed_gives_identical_analysis():
    raw = make_raw_results()
    assert analyze(copy.deepcopy(raw), FAST) == analyze(copy.deepcopy(raw), FAST)


def test_unknown_metric_is_a_user_error_listing_recorded_metrics():
    with pytest.raises(UserError, match="val_loss"):
        analyze(make_raw_results(), FAST, metrics=["val_los"])


def test_test_split_metric_is_selectable():
    result = analyze(make_raw_results(), FAST, metrics=["test_loss"])
    assert result.metrics == ("test_loss",) and result.comparisons_in("mlm_vs_clm/test_loss")


def test_single_objective_has_no_cross_objective_family():
    result = analyze(make_raw_results(objectives=("clm",)), FAST, metrics=["val_loss"])
    assert not any(c.family.across_objectives for c in result.comparisons)


def test_cross_validation_runs_get_variance_components_matching_two_way_anova():
    result = analyze(make_raw_results(folds=(0, 1, 2), failed_run=False), FAST, metrics=["val_loss"])
    summary = result.summaries[0]
    table = np.array([[obs.value for obs in summary.observations if obs.fold == f] for f in range(3)])
    folds, seeds = table.shape
    grand = table.mean()
    ms_fold = seeds * np.sum((table.mean(axis=1) - grand) ** 2) / (folds - 1)
    ms_seed = folds * np.sum((table.mean(axis=0) - grand) ** 2) / (seeds - 1)
    residual = table - table.mean(axis=1, keepdims=True) - table.mean(axis=0, keepdims=True) + grand
    ms_res = np.sum(residual**2) / ((folds - 1) * (seeds - 1))
    variance = summary.variance
    assert variance.residual_component == pytest.approx(ms_res)
    assert variance.fold_component == pytest.approx(max(0.0, (ms_fold - ms_res) / seeds))
    assert variance.seed_component == pytest.approx(max(0.0, (ms_seed - ms_res) / folds))
    assert variance.fold_mean_variance == pytest.approx(np.var(table.mean(axis=1), ddof=1))
    assert all(c.paired for c in result.comparisons)  # (fold, seed) pairs are complete


def test_runs_without_folds_have_no_variance_components(analysis):
    assert fold_seed_variance(analysis.summaries[0].observations) is None


def test_every_defined_effect_size_has_an_interval_even_with_three_runs(analysis):
    # A bootstrap of a standardised effect is undefined with 3 runs (resamples without spread); the
    # noncentral-t interval is not, and it brackets Cohen's d (d_z) from which it is inverted.
    for comparison in analysis.comparisons:
        if comparison.effect.cohens_d is None:
            continue
        interval = comparison.effect.effect_size_ci
        assert interval.method == "noncentral t"
        assert interval.low < comparison.effect.cohens_d < interval.high


def test_runs_needed_uses_the_bias_corrected_effect(analysis):
    # d_z from 3 pairs overstates |δ| by 1/J(2) ≈ 1.77; sample sizes are planned on Hedges' g, and never below
    # the 6 pairs the sign-flip test needs before any p can reach 0.05.
    paired = [c for c in analysis.comparisons if c.test.name == "sign-flip permutation" and c.effect.hedges_g]
    assert paired
    for comparison in paired:
        planned = runs_needed(comparison.effect.hedges_g, paired=True, alpha=0.05, power=0.8)
        assert comparison.power.runs_needed == max(planned, 6)


def test_power_figures_name_the_power_they_rest_on(analysis):
    # 3 pairs: the sign-flip test cannot reach 0.05, so no MDE; runs needed come from its simulated power
    for comparison in analysis.comparisons:
        expected = power.power_method(comparison.power.runs_needed or 0, comparison.power.runs_needed or 0,
                                      paired=comparison.paired)
        assert comparison.power.runs_needed_method == (expected if comparison.power.runs_needed else power.NO_POWER)
        assert comparison.power.min_detectable_effect is None
        assert comparison.power.min_detectable_effect_method == power.NO_POWER
    cross_validated = analyze(make_raw_results(folds=(0, 1, 2), failed_run=False), FAST, metrics=["val_loss"])
    assert {c.power.min_detectable_effect_method for c in cross_validated.comparisons} == {power.CORRECTED_T_POWER}


def test_without_folds_intervals_are_t_intervals_and_tests_permutation_tests(analysis):
    from scipy import stats

    for summary in analysis.summaries:
        if summary.n >= 2:
            values = [obs.value for obs in summary.observations]
            reference = stats.ttest_1samp(values, 0.0).confidence_interval(0.95)
            assert summary.ci.method == "t"
            assert (summary.ci.low, summary.ci.high) == pytest.approx((reference.low, reference.high))
    assert analysis.cross_validation is None
    assert {c.test.name for c in analysis.comparisons} <= {"sign-flip permutation", "two-sample permutation"}
    assert all(c.test.cv_correction == "none" and c.test.cv_test_train_ratio is None for c in analysis.comparisons)


def test_cross_validation_grid_gets_the_nadeau_bengio_correction_everywhere():
    from scipy import stats

    raw = make_raw_results(folds=(0, 1, 2), failed_run=False)
    raw["config"] = {**raw["config"], "cross_validation": True, "folds": 3}
    analysis = analyze(raw, FAST, metrics=["val_loss"])
    assert analysis.cross_validation is not None and analysis.cross_validation.folds == 3
    for comparison in analysis.comparisons:
        assert comparison.test.name == "corrected resampled t-test"
        assert comparison.test.cv_correction == "nadeau_bengio"
        assert comparison.test.cv_test_train_ratio == pytest.approx(0.5)
        assert comparison.mean_difference_ci.method == "corrected t"
    summary = analysis.summaries[0]
    values = np.array([obs.value for obs in summary.observations])
    n = values.size
    half_width = stats.t.ppf(0.975, n - 1) * np.sqrt((1 / n + 0.5) * values.var(ddof=1))
    assert summary.ci.method == "corrected t"
    expected = (values.mean() - half_width, values.mean() + half_width)
    assert (summary.ci.low, summary.ci.high) == pytest.approx(expected)


def test_a_noise_level_difference_is_never_significant_whatever_its_p(analysis):
    """significant (JSON) agrees with the report: a − b at rounding level is no difference, even at p = 0.001."""
    from mlmclm.analysis.compare import correct_families

    real = analysis.comparisons_in("mlm_vs_clm/val_loss")[0]
    real = dataclasses.replace(real, test=dataclasses.replace(real.test, p_value=0.001))
    noise = dataclasses.replace(real, mean_a=0.3, mean_b=0.3 - 1e-17, mean_difference=1e-17)
    corrected = correct_families([real, noise], FAST, design=None)
    assert [c.test.p_adjusted for c in corrected] == pytest.approx([0.002, 0.002])  # Holm keeps both p's
    assert [c.test.significant for c in corrected] == [True, False]


def test_the_effect_size_bootstrap_does_not_depend_on_what_the_test_draws(monkeypatch):
    """docs/statistics.md: each quantity on its own stream. A test that draws (Monte Carlo) or not (exact)
    must leave the rank-biserial interval where it was."""
    from mlmclm.analysis import hypothesis_tests

    raw = make_raw_results(seeds=tuple(range(40, 48)))
    noise = np.random.default_rng(0)
    for run in raw["runs"]:  # no effect anywhere: rank-biserial resamples vary, so the interval exists
        run["metrics"]["val_loss"] = float(noise.normal(3.0, 0.1))
    settings = StatisticsConfig(bootstrap_resamples=300)
    before = analyze(raw, settings, metrics=["val_loss"]).comparisons
    original = hypothesis_tests.paired_test

    def drawing_test(x, y, *, rng, **kwargs):
        rng.random(5000)  # a Monte Carlo test's draws
        return original(x, y, rng=rng, **kwargs)

    monkeypatch.setattr(hypothesis_tests, "paired_test", drawing_test)
    after = analyze(raw, settings, metrics=["val_loss"]).comparisons
    assert [c.effect.rank_biserial_ci for c in after] == [c.effect.rank_biserial_ci for c in before]
    assert any(c.paired and c.effect.rank_biserial_ci.low is not None for c in after)
