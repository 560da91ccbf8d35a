"""The markdown report: setup, budget, data, environment, summaries, every comparison in words, the figures,
and the command that reproduces the experiment. Wording follows docs/statistics.md: adjusted p-values decide,
non-significance is never read as equivalence, and MLM-vs-CLM differences in objective-specific metrics always
carry the caveat that the two objectives score different tasks.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mlmclm.analysis import Analysis, Comparison
from mlmclm.analysis.compare import CROSS_OBJECTIVE_CAVEAT, MLM_VS_CLM
from mlmclm.analysis.conditions import is_like_for_like, is_probe_metric
from mlmclm.report.labels import direction_words, fmt, fmt_p, metric_label

FIGURE_SUFFIXES = {
    "mlm_vs_clm_plot": "mlm_vs_clm_comparison.png",
    "attention_heatmap": "attention_heatmap.png",
    "training_curves": "training_curves.png",
    "effect_size_plot": "statistical_analysis.png",
}
_CORRECTION_NAMES = {"holm": "Holm", "bonferroni": "Bonferroni", "fdr_bh": "Benjamini-Hochberg", "none": "no"}


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return lines + [""]


def _mapping_table(mapping: Mapping[str, Any] | None, empty: str) -> list[str]:
    if not mapping:
        return [empty, ""]
    return _table(["field", "value"], [[f"`{key}`", f"`{value}`"] for key, value in mapping.items()])


def _ci(interval: Any) -> str:
    if interval.low is None:
        return "n/a"
    return f"[{fmt(interval.low)}, {fmt(interval.high)}]"


def _level(analysis: Analysis) -> str:
    return f"{analysis.settings.confidence_level * 100:g}%"


def _setup(analysis: Analysis, raw: Mapping[str, Any]) -> list[str]:
    config = raw.get("config") or {}
    model = config.get("model") or {}
    s = analysis.settings
    folds = "yes, " + str(config.get("folds")) + " folds" if config.get("cross_validation") else "no"
    lines = [
        "## Setup",
        "",
        f"- Objectives: {', '.join(o.upper() for o in analysis.objectives)}",
        f"- Attention / position mechanisms: {', '.join(analysis.attentions)}",
        f"- Seeds: {config.get('seeds') or config.get('num_runs', 'n/a')}; cross-validation: {folds}",
    ]
    if model:
        lines.append(
            f"- Model: {model.get('num_layers')} layers, hidden size {model.get('hidden_size')}, "
            f"{model.get('num_heads')} heads, {model.get('norm', 'post')}-norm; identical for every condition"
        )
    lines += [
        f"- Statistics: two-sided tests at α = {s.significance_level:g}; {_level(analysis)} BCa bootstrap "
        f"intervals ({s.bootstrap_resamples} resamples, seed {s.seed}); "
        f"{_CORRECTION_NAMES[s.correction]} correction within each family; power target {s.power:g}",
        f"- Primary metric: `{s.primary_metric}` ({direction_words(s.primary_metric)}); secondary: "
        + (", ".join(f"`{m}`" for m in s.secondary_metrics) or "none"),
        "",
    ]
    return lines


def _data(raw: Mapping[str, Any]) -> list[str]:
    data = dict(raw.get("data") or {})
    notes = data.pop("notes", None) or []
    lines = ["## Data", ""] + _mapping_table(data, "No data description was recorded.")
    lines += ["Data control notes:", ""] + [f"- {note}" for note in notes] if notes else []
    return lines + ([""] if notes else [])


def _runs(analysis: Analysis, raw: Mapping[str, Any]) -> list[str]:
    runs = raw.get("runs") or []
    completed = sum(run.get("status") == "completed" for run in runs)
    lines = ["## Runs", "", f"{completed} of {len(runs)} runs completed."]
    if analysis.unfinished_runs:
        lines += ["", "Excluded from every analysis (not completed):", ""]
        lines += [
            f"- `{run.run_id}`: {run.status}" + (f" ({run.reason})" if run.reason else "")
            for run in analysis.unfinished_runs
        ]
    missing = [
        (summary.metric, excluded)
        for summary in analysis.summaries
        for excluded in summary.excluded
        if excluded.status == "completed"
    ]
    if missing:
        lines += ["", "Completed runs without a usable value (excluded for that metric only):", ""]
        lines += [f"- `{excluded.run_id}`: {excluded.reason}" for _, excluded in missing]
    return lines + [""]


def _summary_tables(analysis: Analysis) -> list[str]:
    lines = ["## Summary", ""]
    for metric in analysis.metrics:
        summaries = analysis.summaries_for(metric)
        lines += [f"### {metric_label(metric)} — {direction_words(metric)}", ""]
        rows = [
            [
                f"`{s.condition}`",
                s.n,
                fmt(s.mean),
                fmt(s.std, 3),
                fmt(s.median),
                f"{fmt(s.min)} – {fmt(s.max)}",
                _ci(s.ci),
                len(s.excluded),
            ]
            for s in summaries
        ]
        header = [
            "condition",
            "n",
            "mean",
            "SD",
            "median",
            "min – max",
            f"{_level(analysis)} CI of mean",
            "excluded",
        ]
        lines += _table(header, rows)
        variance = [s for s in summaries if s.variance is not None]
        if variance:
            lines += [
                "Fold-to-fold and seed-to-seed variability (docs/statistics.md, variance components):",
                "",
            ]
            lines += _table(
                [
                    "condition",
                    "folds × seeds",
                    "var(fold means)",
                    "var(seed means)",
                    "σ²_fold",
                    "σ²_seed",
                    "σ²_residual",
                ],
                [
                    [
                        f"`{s.condition}`",
                        f"{s.variance.n_folds} × {s.variance.n_seeds}",
                        fmt(s.variance.fold_mean_variance, 3),
                        fmt(s.variance.seed_mean_variance, 3),
                        fmt(s.variance.fold_component, 3),
                        fmt(s.variance.seed_component, 3),
                        fmt(s.variance.residual_component, 3),
                    ]
                    for s in variance
                ],
            )
    return lines


def _decision(comparison: Comparison, correction: str) -> str:
    if comparison.p_value is None:
        return "no test was possible"
    adjusted = f"{_CORRECTION_NAMES[correction]}-adjusted p = {fmt_p(comparison.p_adjusted)}"
    if correction == "none":
        adjusted = "no correction"
    verdict = "**significant**" if comparison.significant else "not significant"
    return f"p = {fmt_p(comparison.p_value)}, {adjusted} → {verdict} at α = {comparison.alpha:g}"


def _statistic_name(test: str) -> str:
    return {
        "paired t-test": "t",
        "Welch t-test": "t",
        "Wilcoxon signed-rank": "W",
        "Mann-Whitney U": "U",
    }.get(test, "statistic")


def describe_comparison(comparison: Comparison, analysis: Analysis) -> list[str]:
    """One comparison in words: means, difference with CI, test and decision, effect sizes, power, caveats."""
    c, level = comparison, _level(analysis)
    design = (
        f"paired by (fold, seed), n = {c.n_a} pairs" if c.paired else f"independent, n = {c.n_a} vs {c.n_b}"
    )
    head = (
        f"- **`{c.group_a}` vs `{c.group_b}`** ({design}): mean {fmt(c.mean_a)} vs {fmt(c.mean_b)}, "
        f"difference {fmt(c.mean_difference)} ({level} CI {_ci(c.mean_difference_ci)})."
    )
    if c.p_value is not None:
        head += f" {c.test}: {_statistic_name(c.test)} = {fmt(c.statistic, 4)}, {_decision(c, c.correction)}."
        if c.better_group is not None and not c.like_for_like:
            side = "lower" if (c.mean_difference or 0) < 0 else "higher"
            head += f" `{c.group_a}` has the {side} value (not a ranking of the objectives, see the caveat)."
        elif c.better_group is not None:
            verb = "is better" if c.significant else "looks better but the difference is not significant"
            head += f" `{c.better_group}` {verb} ({direction_words(c.metric)})."
    effect = "d_z" if c.paired else "Cohen's d"
    lines = [
        head,
        f"  - Effect size: {effect} = {fmt(c.cohens_d, 3)}, Hedges' g = {fmt(c.hedges_g, 3)} "
        f"({level} bootstrap CI {_ci(c.effect_size_ci)}), rank-biserial r = {fmt(c.rank_biserial, 3)} "
        f"(CI {_ci(c.rank_biserial_ci)}).",
        f"  - Why this test: {c.test_reason}.",
    ]
    power = analysis.settings.power
    if c.min_detectable_effect is not None:
        needed = (
            f"{c.runs_needed} runs per condition"
            if c.runs_needed is not None
            else "an undefined number of runs"
        )
        lines.append(
            f"  - Power: with these n, the smallest effect detectable with {power:.0%} power is |{effect}| = "
            f"{fmt(c.min_detectable_effect, 3)}; detecting the observed effect with {power:.0%} power needs "
            f"{needed}{' (pairs)' if c.paired else ''}."
        )
    if c.p_value is not None and not c.can_reach_significance:
        unit = "pairs" if c.paired else "runs per condition"
        lines.append(
            f"  - ⚠ **Cannot reach significance**: with these n the smallest two-sided p-value the "
            f"{c.test} test can produce is {fmt(c.min_achievable_p, 3)} > α = {c.alpha:g}, whatever the "
            f"data. At least {c.min_runs_for_significance} {unit} are needed."
        )
    if c.p_value is not None and not c.significant:
        lines.append("  - Not significant is not evidence of no difference; see the power line above.")
    if c.mean_difference_ci.note:
        lines.append(f"  - Interval note: {c.mean_difference_ci.note}.")
    if c.caveat:
        lines.append(f"  - ⚠ Caveat: {c.caveat}.")
    return lines


def _comparison_sections(analysis: Analysis, family_prefix: str, metrics: list[str]) -> list[str]:
    lines: list[str] = []
    for metric in metrics:
        comparisons = analysis.comparisons_in(f"{family_prefix}/{metric}")
        if not comparisons:
            continue
        lines += [f"#### {metric_label(metric)} — {direction_words(metric)}", ""]
        for comparison in comparisons:
            lines += describe_comparison(comparison, analysis)
        lines.append("")
    return lines


def _mlm_vs_clm(analysis: Analysis, figures: Mapping[str, str]) -> list[str]:
    if not any(c.family.startswith(MLM_VS_CLM) for c in analysis.comparisons):
        return [
            "## MLM vs CLM",
            "",
            "Only one objective has runs, so there is no cross-objective comparison.",
            "",
        ]
    probes = [m for m in analysis.metrics if is_probe_metric(m)]
    neutral = [m for m in analysis.metrics if is_like_for_like(m) and not is_probe_metric(m)]
    specific = [m for m in analysis.metrics if not is_like_for_like(m)]
    lines = ["## MLM vs CLM", ""]
    if probes:
        lines += [
            "### Like-for-like: downstream probes",
            "",
            "Both objectives' encoders are scored on the same probe tasks, so these comparisons rank them.",
            "",
        ] + _comparison_sections(analysis, MLM_VS_CLM, probes + neutral)
    else:
        lines += [
            "No probe metrics were recorded, so there is no like-for-like ranking of the objectives.",
            "",
        ]
    if specific:
        lines += [
            "### Pre-training metrics (not like-for-like)",
            "",
            f"> ⚠ {CROSS_OBJECTIVE_CAVEAT[0].upper() + CROSS_OBJECTIVE_CAVEAT[1:]}. "
            "Read these as descriptions of each objective's own task, not as a ranking.",
            "",
        ] + _comparison_sections(analysis, MLM_VS_CLM, specific)
    lines += [f"![MLM vs CLM per mechanism]({figures['mlm_vs_clm_plot']})", ""]
    return lines


def _within_objectives(analysis: Analysis, figures: Mapping[str, str]) -> list[str]:
    lines = ["## Attention mechanisms within each objective", ""]
    for objective in analysis.objectives:
        section = _comparison_sections(analysis, f"attention_within_{objective}", list(analysis.metrics))
        if section:
            lines += [f"### {objective.upper()}", ""] + section
    if len(lines) == 2:
        lines += ["Fewer than two mechanisms per objective have runs, so there is nothing to compare.", ""]
    return lines + [f"![Objective × mechanism heatmap]({figures['attention_heatmap']})", ""]


def _methods(analysis: Analysis) -> list[str]:
    s = analysis.settings
    correction = _CORRECTION_NAMES[s.correction]
    return [
        "## Methods and caveats",
        "",
        "- Runs of two conditions that share (fold, seed) are paired; with complete pairing the test works "
        "on the paired differences, otherwise on the two groups independently. Only completed runs with a "
        "finite value count.",
        f"- Shapiro–Wilk at α = {s.significance_level:g} chooses between the t-test (paired or Welch) and "
        "the rank test (Wilcoxon signed-rank or Mann–Whitney U, exact p-values without ties). With n < 3 "
        "normality cannot be tested and the rank test is used; at small n Shapiro–Wilk has little power, "
        "so 'consistent with normal' is weak evidence.",
        f"- Families are comparison type × metric; {correction} correction is applied within each family "
        "and decisions use the adjusted p-values. Metrics are separate families, so the primary metric "
        f"(`{s.primary_metric}`) is the confirmatory one; the rest are supporting evidence.",
        "- Bootstrap intervals from few runs (n < 10) under-cover; read them as descriptive.",
        "- Effect sizes: Cohen's d (d_z when paired), Hedges' g (exact small-sample correction), "
        "rank-biserial r. Full rules and references: docs/statistics.md.",
        "",
    ]


def render_report(
    analysis: Analysis, raw: Mapping[str, Any], experiment_name: str, figures: Mapping[str, str]
) -> str:
    """The full markdown report; ``figures`` maps figure kinds to paths relative to the report."""
    command = raw.get("command") or "(not recorded)"
    lines = [
        f"# {experiment_name}: masked (MLM) vs causal (CLM) language modelling",
        "",
        f"Created from raw results of {raw.get('created', 'unknown date')}. Reproduce the experiment with:",
        "",
        "```bash",
        command,
        "```",
        "",
    ]
    lines += _setup(analysis, raw)
    lines += ["## Budget", "", "Every run had the same budget:", ""]
    lines += _mapping_table(raw.get("budget"), "No budget was recorded.")
    lines += _data(raw)
    lines += ["## Environment", ""] + _mapping_table(raw.get("environment"), "No environment was recorded.")
    lines += _runs(analysis, raw)
    lines += _summary_tables(analysis)
    lines += _mlm_vs_clm(analysis, figures)
    lines += _within_objectives(analysis, figures)
    lines += [
        "## Training curves",
        "",
        "Validation loss against optimizer steps, mean ± 1 SD over runs; one panel per objective because "
        "their losses score different tasks.",
        "",
        f"![Training curves]({figures['training_curves']})",
        "",
        "## Effect sizes",
        "",
        f"Hedges' g with {_level(analysis)} bootstrap CIs for `{analysis.primary_metric}`; filled markers "
        "are significant after correction.",
        "",
        f"![Effect sizes]({figures['effect_size_plot']})",
        "",
    ]
    lines += _methods(analysis)
    lines += ["## Reproduce", "", "```bash", command, "```", ""]
    return "\n".join(lines)
