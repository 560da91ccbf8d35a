"""Further objectives (the hybrids): every pair of objectives within each mechanism, corrected together."""

from __future__ import annotations

import pytest

from mlmclm.analysis import analyze
from mlmclm.analysis.compare import CROSS_OBJECTIVE_CAVEAT
from mlmclm.analysis.multiple_comparisons import adjust_pvalues
from mlmclm.config import StatisticsConfig
from tests.analysis.synthetic_results import MECHANISMS, make_raw_results


@pytest.fixture(scope="module")
def three():
    raw = make_raw_results(objectives=("mlm", "clm", "clm_mlm"), failed_run=False)
    return analyze(raw, StatisticsConfig(bootstrap_resamples=200), ["val_loss", "probe/bigram_shift/accuracy"])


def test_three_objectives_give_three_pairs_per_mechanism_corrected_as_one_family(three):
    family = three.comparisons_in("mlm_vs_clm/val_loss")
    pairs = [(c.group_a, c.group_b) for c in family]
    expected = [
        (f"{attention}_{a}", f"{attention}_{b}")
        for attention in MECHANISMS
        for a, b in (("mlm", "clm"), ("mlm", "clm_mlm"), ("clm", "clm_mlm"))
    ]
    assert pairs == expected  # 3 mechanisms x C(3, 2)
    adjusted = adjust_pvalues([c.test.p_value for c in family], method="holm", alpha=0.05).p_adjusted
    assert [c.test.p_adjusted for c in family] == pytest.approx(adjusted)
    assert "attention_within_clm_mlm/val_loss" in {c.family.name for c in three.comparisons}


def test_losses_compare_like_for_like_only_between_objectives_scored_in_the_same_view(three):
    by_pair = {(c.group_a, c.group_b): c for c in three.comparisons_in("mlm_vs_clm/val_loss")}
    same_view = by_pair[("rope_mlm", "rope_clm_mlm")]  # both scored as MLM on the same batches
    assert same_view.like_for_like and same_view.caveat is None
    assert by_pair[("rope_mlm", "rope_clm")].caveat == CROSS_OBJECTIVE_CAVEAT
    hybrid = by_pair[("rope_clm", "rope_clm_mlm")]
    assert not hybrid.like_for_like and "causal view" in hybrid.caveat and "masked view" in hybrid.caveat
    probe = three.comparisons_in("mlm_vs_clm/probe/bigram_shift/accuracy")
    assert len(probe) == 9 and all(c.like_for_like for c in probe)


def test_divergence_compares_every_pair_of_objectives_too():
    raw = make_raw_results(objectives=("mlm", "clm", "mntp"), failed_run=False)
    result = analyze(raw, StatisticsConfig(bootstrap_resamples=200), ["val_loss"])
    cross = [c for c in result.divergence_comparisons if c.family == "divergence/mlm_vs_clm"]
    assert len(cross) == 9
