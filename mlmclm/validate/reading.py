"""Reading the ordinary analysis: find a comparison or a condition summary, and state its numbers."""

from __future__ import annotations

from typing import Any

from mlmclm.analysis.compare import Analysis, Comparison, ConditionSummary
from mlmclm.analysis.conditions import condition_label


def find_comparison(analysis: Analysis, metric: str, first: tuple[str, str], second: tuple[str, str]) -> Comparison:
    """The comparison of conditions ``first`` and ``second`` (objective, attention) on ``metric``, either order."""
    wanted = {condition_label(*first), condition_label(*second)}
    for comparison in analysis.comparisons:
        if comparison.metric == metric and {comparison.group_a, comparison.group_b} == wanted:
            return comparison
    raise LookupError(f"the analysis has no comparison of {sorted(wanted)} on {metric}")


def find_summary(analysis: Analysis, metric: str, objective: str, attention: str) -> ConditionSummary:
    for summary in analysis.summaries_for(metric):
        if summary.objective == objective and summary.attention == attention:
            return summary
    raise LookupError(f"the analysis has no summary of {attention}_{objective} on {metric}")


def comparison_numbers(comparison: Comparison) -> dict[str, Any]:
    """The numbers a reader checks: test, statistic, p, adjusted p, effect size with its interval."""
    return {
        "metric": comparison.metric,
        "family": comparison.family.name,
        "groups": [comparison.group_a, comparison.group_b],
        "n": [comparison.n_a, comparison.n_b],
        "paired": comparison.paired,
        "test": comparison.test.name,
        "statistic": comparison.test.statistic,
        "p_value": comparison.test.p_value,
        "p_adjusted": comparison.test.p_adjusted,
        "correction": comparison.test.correction,
        "significant": comparison.test.significant,
        "mean_difference": comparison.mean_difference,
        "mean_difference_ci": [comparison.mean_difference_ci.low, comparison.mean_difference_ci.high],
        "hedges_g": comparison.effect.hedges_g,
        "effect_size_ci": [comparison.effect.effect_size_ci.low, comparison.effect.effect_size_ci.high],
        "better_group": comparison.better_group,
        "min_detectable_effect": comparison.power.min_detectable_effect,
    }


def summary_numbers(summary: ConditionSummary) -> dict[str, Any]:
    return {
        "metric": summary.metric, "condition": summary.condition, "n": summary.n, "mean": summary.mean,
        "ci": [summary.ci.low, summary.ci.high], "ci_method": summary.ci.method,
    }


def describe_comparison(comparison: Comparison) -> str:
    """One line: 'a - b = d [lo, hi]; test stat, p, adjusted p; g [lo, hi]'."""
    def fmt(value: float | None, spec: str = ".4g") -> str:
        return "n/a" if value is None else format(value, spec)

    ci, eff, test = comparison.mean_difference_ci, comparison.effect.effect_size_ci, comparison.test
    return (
        f"{comparison.group_a} - {comparison.group_b} = {fmt(comparison.mean_difference)} "
        f"[{fmt(ci.low)}, {fmt(ci.high)}]; {test.name} statistic {fmt(test.statistic)}, "
        f"p {fmt(test.p_value)}, adjusted p {fmt(test.p_adjusted)} ({test.correction}); "
        f"g {fmt(comparison.effect.hedges_g)} [{fmt(eff.low)}, {fmt(eff.high)}]"
    )


def describe_summary(summary: ConditionSummary) -> str:
    def fmt(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.4g}"

    ci = summary.ci
    return f"{summary.condition} mean {fmt(summary.mean)} [{fmt(ci.low)}, {fmt(ci.high)}] (n={summary.n})"


def statistics_of(raw: dict[str, Any]):
    """The statistics settings a grid was trained with, as ``mlmclm analyze`` reads them."""
    from mlmclm.config import StatisticsConfig, from_dict

    return from_dict(StatisticsConfig, (raw.get("config") or {}).get("statistics") or {}, "statistics.")


def analyze_document(raw: dict[str, Any], metrics=None):
    """The ordinary analysis (:func:`mlmclm.analysis.compare.analyze`) of a (merged) raw-results document."""
    from mlmclm.analysis.compare import analyze

    return analyze(raw, statistics_of(raw), metrics)


def chance_of(raw: dict[str, Any], task: str) -> float:
    """The probe task's chance accuracy as the grid recorded it (majority label of the test split)."""
    return float(raw["probe_tasks"][task]["chance_accuracy"])
