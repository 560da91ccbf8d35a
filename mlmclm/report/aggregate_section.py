"""The report's "Probe aggregates" section: IQM per condition and P(MLM > CLM) across probe tasks (rliable).

Reads :class:`~mlmclm.analysis.aggregate.AggregateScore` / ``ImprovementProbability`` fields only.
"""

from __future__ import annotations

from collections.abc import Mapping

from mlmclm.analysis import Analysis
from mlmclm.analysis.profiles import MIN_PROFILE_RUNS
from mlmclm.report.labels import fmt


def _interval(ci) -> str:
    return "n/a" if ci.low is None else f"[{fmt(ci.low, 3)}, {fmt(ci.high, 3)}]"


def profile_lines(analysis: Analysis, figures: Mapping[str, str] | None) -> list[str]:
    """The performance-profile figure, the conditions it covers and those left out by the runs rule."""
    drawn = {p.condition for p in analysis.probe_profiles}
    left_out = [a.condition for a in analysis.probe_iqm if a.condition not in drawn]
    lines = [
        "### Performance profiles",
        "",
        "For each threshold τ, the fraction of a condition's runs × tasks probe scores above τ (Agarwal et al. 2021, "
        "score distributions): a curve above another everywhere is better on every part of the distribution. Bands "
        f"are pointwise stratified bootstrap intervals; a condition is drawn only with ≥ {MIN_PROFILE_RUNS} runs that "
        "recorded every probe task.",
        "",
    ]
    if left_out:
        lines += [f"Too few runs for a profile: {', '.join(f'`{c}`' for c in left_out)}.", ""]
    if drawn and figures and "performance_profile" in figures:
        lines += [f"![Performance profiles]({figures['performance_profile']})", ""]
    elif not drawn:
        lines += ["No condition has enough runs for a profile.", ""]
    return lines


def probe_aggregate_section(analysis: Analysis, figures: Mapping[str, str] | None = None) -> list[str]:
    """IQM and probability-of-improvement tables and the performance profiles; empty when fewer than 2 probe
    tasks were recorded."""
    if not analysis.probe_iqm:
        return []
    first = analysis.probe_iqm[0]
    level = f"{analysis.settings.confidence_level * 100:g}%"
    lines = [
        "## Probe aggregates",
        "",
        f"Probe {first.score} over the tasks {', '.join(f'`{t}`' for t in first.tasks)} (Agarwal et al. 2021): "
        "the interquartile mean (IQM) of all runs × tasks, and the probability that a run of MLM beats a run of "
        f"CLM on a task, averaged over tasks; {level} stratified bootstrap intervals (runs resampled within each "
        "task), descriptive at small n.",
        "",
        *(
            [
                "Cross-validation: folds share training data, so each seed's scores are averaged over its folds and "
                "the seeds are what is resampled (the *runs* columns count seeds).",
                "",
            ]
            if analysis.cross_validation is not None
            else []
        ),
        "| condition | runs | IQM [CI] |",
        "|---|---|---|",
    ]
    lines += [f"| `{a.condition}` | {a.n_runs} | {fmt(a.iqm, 3)} {_interval(a.ci)} |" for a in analysis.probe_iqm]
    lines.append("")
    if analysis.probe_improvement:
        lines += ["| X vs Y | runs | P(X > Y) [CI] |", "|---|---|---|"]
        lines += [
            f"| `{p.group_x}` vs `{p.group_y}` | {p.n_x} vs {p.n_y} | {fmt(p.probability, 3)} {_interval(p.ci)} |"
            for p in analysis.probe_improvement
        ]
        lines.append("")
    return lines + profile_lines(analysis, figures)
