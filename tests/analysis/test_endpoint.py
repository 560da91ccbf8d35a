"""The declared primary endpoint: computed per run from stored probe results, one primary family, roles,
an explicit fallback without probes, and which families may lead the report."""

from __future__ import annotations

import pytest

from mlmclm.analysis import analyze
from mlmclm.analysis.endpoint import (
    PRIMARY_ENDPOINT,
    family_role,
    primary_endpoint_value,
    resolve_primary,
)
from mlmclm.analysis.families import Family
from mlmclm.config import StatisticsConfig
from tests.analysis.synthetic_results import make_raw_results

FAST = StatisticsConfig(bootstrap_resamples=200)


def test_primary_endpoint_is_the_mean_gain_over_random_init_across_the_declared_tasks():
    metrics = {
        "probe/a/accuracy": 0.80, "probe/a/random_init_accuracy": 0.60,
        "probe/b/accuracy": 0.55, "probe/b/random_init_accuracy": 0.65,
        "probe/user/accuracy": 0.99, "probe/user/random_init_accuracy": 0.10,  # not declared: not averaged
    }
    assert primary_endpoint_value(metrics, ["a", "b"]) == pytest.approx(((0.80 - 0.60) + (0.55 - 0.65)) / 2)
    assert primary_endpoint_value(metrics, ["a", "missing"]) is None


def test_analysis_makes_the_endpoint_primary_in_one_family_and_labels_the_rest():
    raw = make_raw_results(baselines=True)
    analysis = analyze(raw, FAST)
    assert analysis.primary_metric == PRIMARY_ENDPOINT
    assert analysis.metrics[0] == PRIMARY_ENDPOINT
    run = next(r for r in raw["runs"] if r["status"] == "completed")
    observation = next(
        obs for s in analysis.summaries_for(PRIMARY_ENDPOINT) for obs in s.observations if obs.run_id == run["run_id"]
    )
    expected = primary_endpoint_value(run["metrics"], ["bigram_shift", "sentence_length"])
    assert observation.value == pytest.approx(expected)
    primary = [family for family, role in analysis.family_roles.items() if role == "primary"]
    assert primary == [Family(PRIMARY_ENDPOINT)]
    assert analysis.family_roles[Family("val_accuracy")] == "secondary"
    assert analysis.family_roles[Family("probe/bigram_shift/f1")] == "exploratory"
    assert not any(metric.endswith(("random_init_accuracy", "selectivity")) for metric in analysis.metrics)
    assert analysis.primary_endpoint.fallback_reason is None and analysis.primary_endpoint.warning is None


def test_without_probe_baselines_the_analysis_falls_back_to_val_loss_and_says_why():
    analysis = analyze(make_raw_results(), FAST)
    assert analysis.primary_metric == "val_loss"
    assert "unavailable" in analysis.primary_endpoint.fallback_reason
    assert "not like for like" in analysis.primary_endpoint.warning


def test_a_declared_metric_that_is_not_like_for_like_is_warned_about():
    endpoint = resolve_primary("val_loss", ["val_loss"], [], ["mlm", "clm"])
    assert endpoint.metric == "val_loss" and endpoint.fallback_reason is None and endpoint.warning
    assert resolve_primary("val_loss", ["val_loss"], [], ["mlm"]).warning is None


def test_family_roles():
    assert family_role(Family("m"), "m", ["s"]) == "primary"
    assert family_role(Family("m", "mlm"), "m", ["s"]) == "secondary"
    assert family_role(Family("s"), "m", ["s"]) == "secondary"
    assert family_role(Family("probe/x/accuracy"), "m", ["s"]) == "exploratory"


def test_family_names_are_the_json_strings_and_parse_back():
    assert Family("val_loss").name == "mlm_vs_clm/val_loss"
    assert Family("probe/x/accuracy", "clm_mlm").name == "attention_within_clm_mlm/probe/x/accuracy"
    for family in (Family("probe/x/accuracy"), Family("val_loss", "clm_mlm")):
        assert Family.from_name(family.name) == family
    with pytest.raises(ValueError):
        Family.from_name("attention_omnibus_mlm/m")


def test_the_headline_reads_exactly_the_primary_family():
    """The report's first paragraph counts and cites the comparisons of the one primary family, no other."""
    from mlmclm.report.documents import analysis_document
    from mlmclm.report.endpoint_sections import headline_lines
    from mlmclm.report.labels import fmt_p

    analysis = analyze(make_raw_results(baselines=True), FAST)
    primary = analysis.comparisons_in(Family(PRIMARY_ENDPOINT))
    assert len(primary) == len(analysis.attentions) and all(c.family.across_objectives for c in primary)
    assert analysis_document(analysis, "x")["headline_families"] == [f"mlm_vs_clm/{PRIMARY_ENDPOINT}"]
    text = "\n".join(headline_lines(analysis))
    assert f"one family of {len(primary)} comparison(s)" in text
    hits = [c for c in primary if c.test.significant]
    smallest = min(c.test.p_adjusted for c in primary)
    expected = [f"p adj = {fmt_p(c.test.p_adjusted)}" for c in hits] or [f"smallest adjusted p = {fmt_p(smallest)}"]
    assert all(sentence in text for sentence in expected)
