"""Family-wise corrections: statsmodels equivalence and the false-positive rate under the null."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from statsmodels.stats.multitest import multipletests

from mlmclm.analysis import hypothesis_tests as ht
from mlmclm.analysis.multiple_comparisons import adjust_pvalues, family_alpha
from mlmclm.errors import ConfigError

ALPHA = 0.05


@pytest.mark.parametrize("method", ["holm", "bonferroni", "fdr_bh"])
def test_adjusted_pvalues_match_statsmodels(method):
    raw = [0.01, 0.04, 0.03, 0.2, 0.005]
    reject, corrected, _, _ = multipletests(raw, alpha=ALPHA, method=method)
    result = adjust_pvalues(raw, method=method, alpha=ALPHA)
    assert result.p_adjusted == pytest.approx(tuple(corrected))
    assert result.reject == tuple(bool(r) for r in reject)


def test_comparisons_without_p_value_are_left_out_of_the_family():
    result = adjust_pvalues([0.01, None, 0.04], method="holm", alpha=ALPHA)
    _, corrected, _, _ = multipletests([0.01, 0.04], method="holm")
    assert result.p_adjusted[1] is None and result.reject[1] is False
    assert (result.p_adjusted[0], result.p_adjusted[2]) == pytest.approx(tuple(corrected))


def test_unknown_method_is_a_config_error():
    with pytest.raises(ConfigError, match="holm"):
        adjust_pvalues([0.1], method="sidakk", alpha=ALPHA)


def _null_families(families: int, seed: int = 0) -> list[list[float]]:
    """Four mechanisms compared pairwise (6 tests, as in one attention family), all from one normal law."""
    rng = np.random.default_rng(seed)
    simulated = []
    for _ in range(families):
        groups = rng.normal(0.0, 1.0, size=(4, 10))
        simulated.append(
            [
                ht.independent_test(
                    groups[i], groups[j], labels=("a", "b"), alpha=ALPHA, n_resamples=999, rng=rng
                ).pvalue
                for i, j in itertools.combinations(range(4), 2)
            ]
        )
    return simulated


@pytest.mark.slow
def test_holm_keeps_familywise_error_at_alpha_under_the_null():
    families = _null_families(300)
    tolerance = 3 * math.sqrt(ALPHA * (1 - ALPHA) / len(families))  # Monte-Carlo error: 3 binomial SDs

    def familywise_rate(method: str) -> float:
        return float(np.mean([any(adjust_pvalues(p, method=method, alpha=ALPHA).reject) for p in families]))

    assert familywise_rate("holm") <= ALPHA + tolerance
    # The same p-values without correction exceed alpha, so the check above is able to fail.
    assert familywise_rate("none") > ALPHA + tolerance


def test_a_correction_is_added_by_one_entry_in_the_config_table(monkeypatch):
    """The done-when of issue 16: a new correction touches one module. Benjamini-Yekutieli, added to the table
    alone, is validated, applied (checked against statsmodels) and named in the report."""
    from mlmclm import config
    from mlmclm.report.labels import CORRECTION_NAMES

    monkeypatch.setitem(config.CORRECTIONS, "fdr_by", "Benjamini-Yekutieli")
    pvalues = [0.01, 0.02, 0.03, 0.5]
    adjusted = adjust_pvalues(pvalues, method="fdr_by", alpha=0.05)
    expected = multipletests(pvalues, alpha=0.05, method="fdr_by")[1]
    assert adjusted.p_adjusted == pytest.approx(tuple(expected))
    assert CORRECTION_NAMES["fdr_by"] == "Benjamini-Yekutieli"
    config.validate_statistics(config.StatisticsConfig(correction="fdr_by"))  # the setting accepts it


def test_every_correction_but_none_is_a_statsmodels_method():
    from mlmclm.config import CORRECTIONS

    for name in set(CORRECTIONS) - {"none"}:
        assert adjust_pvalues([0.01, 0.04], method=name, alpha=0.05).p_adjusted == pytest.approx(
            tuple(multipletests([0.01, 0.04], alpha=0.05, method=name)[1])
        )


def test_holm_runs_without_statsmodels_forced_collection_and_restores_gc(monkeypatch):
    """statsmodels' Holm branch calls gc.collect(), which dominated analysis time; it is skipped during the call
    only, with the same p-values as statsmodels, and gc.collect is the original afterwards."""
    import gc

    calls = []
    original = gc.collect
    monkeypatch.setattr(gc, "collect", lambda *a, **k: calls.append(1) or original(*a, **k))
    patched = gc.collect
    pvalues = [0.001, 0.02, 0.04, 0.3]
    adjusted = adjust_pvalues(pvalues, method="holm", alpha=0.05)
    assert adjusted.p_adjusted == pytest.approx(tuple(multipletests(pvalues, alpha=0.05, method="holm")[1]))
    assert gc.collect is patched
    calls.clear()
    adjust_pvalues(pvalues, method="holm", alpha=0.05)
    assert calls == []


@pytest.mark.parametrize("method", ["holm", "bonferroni", "fdr_bh"])
def test_every_correction_rejects_a_p_at_alpha_over_m_whatever_the_others(method):
    """The family level of power (family_alpha): a p just at α/m is rejected even when every other p is 1."""
    level = family_alpha(method, ALPHA, 4)
    assert level == pytest.approx(ALPHA / 4)
    assert adjust_pvalues([level, 1.0, 1.0, 1.0], method=method, alpha=ALPHA).reject[0]
    assert not adjust_pvalues([level * 1.01, 1.0, 1.0, 1.0], method=method, alpha=ALPHA).reject[0]


def test_without_correction_or_with_one_comparison_the_family_level_is_alpha():
    assert family_alpha("none", ALPHA, 6) == ALPHA == family_alpha("holm", ALPHA, 1)
    with pytest.raises(ConfigError):
        family_alpha("sidak", ALPHA, 3)
