"""The markdown report: setup, budget, data, environment, summaries, every comparison in words, the figures,
and the command that reproduces the experiment. Wording follows docs/statistics.md: adjusted p-values decide,
non-significance is never read as equivalence, and MLM-vs-CLM differences in objective-specific metrics always
carry the caveat that the two objectives score different tasks.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from mlmclm.analysis import Analysis, Comparison
from mlmclm.analysis.compare import CROSS_OBJECTIVE_CAVEAT
from mlmclm.analysis.conditions import condition_label, is_like_for_like, is_probe_metric
from mlmclm.analysis.families import Family
from mlmclm.analysis.hypothesis_tests import min_runs_for_significance
from mlmclm.analysis.power import NO_POWER
from mlmclm.grid.invocations import contributing_invocations
from mlmclm.objectives import OBJECTIVE_DEFINITIONS, uses_masking
from mlmclm.report.aggregate_section import probe_aggregate_section
from mlmclm.report.caveats import banner_lines, fmt_spread, fmt_statistic, is_noise_level, is_void_comparison
from mlmclm.report.endpoint_sections import (
    analysis_log_lines,
    band_separation_lines,
    family_role_label,
    headline_lines,
    item_level_lines,
    probe_baseline_lines,
)
from mlmclm.report.labels import CORRECTION_NAMES, direction_words, fmt, fmt_p, metric_label
from mlmclm.report.procedures import procedure_lines
from mlmclm.report.ranking_section import ranking_section

FIGURE_SUFFIXES = {
    "mlm_vs_clm_plot": "mlm_vs_clm_comparison.png",
    "attention_heatmap": "attention_heatmap.png",
    "training_curves": "training_curves.png",
    "effect_size_plot": "statistical_analysis.png",
    "critical_difference": "critical_difference.png",
    "performance_profile": "performance_profile.png",
}


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
        *_hybrid_setup(analysis.objectives, config.get("training") or {}),
        f"- Attention / position mechanisms: {', '.join(analysis.attentions)}",
        f"- Seeds: {config.get('seeds') or config.get('num_runs', 'n/a')}; cross-validation: {folds}",
    ]
    if model:
        lines.append(
            f"- Model: {model.get('num_layers')} layers, hidden size {model.get('hidden_size')}, "
            f"{model.get('num_heads')} heads, {model.get('norm', 'post')}-norm; identical for every condition"
        )
    lines += [
        f"- Statistics: two-sided tests at α = {s.significance_level:g}; {_level(analysis)} t-intervals "
        f"for means and differences (seed {s.seed} for permutations and bootstraps) and "
        "noncentral-t intervals for effect sizes; "
        f"{CORRECTION_NAMES[s.correction]} correction within each family; power target {s.power:g}",
        f"- Primary metric: `{analysis.primary_metric}` ({direction_words(analysis.primary_metric)})"
        + (f", instead of the declared `{s.primary_metric}`" if analysis.primary_metric != s.primary_metric else "")
        + "; secondary: " + (", ".join(f"`{m}`" for m in s.secondary_metrics) or "none"),
        "",
    ]
    return lines


def _sweep_cell(result: Mapping[str, Any], chosen: float | None) -> str:
    if result.get("status") != "completed":
        return str(result.get("status"))
    cell = fmt(result.get("val_loss"))
    return f"**{cell}**" if result.get("learning_rate") == chosen else cell


def learning_rate_lines(raw: Mapping[str, Any]) -> list[str]:
    """The setup's learning rates: the one shared rate, or each condition's sweep choice with the sweep table."""
    training = (raw.get("config") or {}).get("training") or {}
    sweep = raw.get("lr_sweep")
    if not sweep or not sweep.get("conditions"):
        return [
            "### Learning rate",
            "",
            f"Peak learning rate {fmt(training.get('learning_rate'))} for every condition; it was not tuned per "
            "condition (no `training.lr_sweep`), so a condition that prefers another rate may be disadvantaged.",
            "",
        ]
    rates = list(sweep["rates"])
    fold = "the single train/validation split" if sweep.get("fold") is None else f"fold {sweep['fold']}"
    lines = [
        "### Learning rate",
        "",
        f"Each condition's peak learning rate was chosen from {', '.join(fmt(rate) for rate in rates)} by the "
        f"lowest final validation loss of one sweep run per rate (seed {sweep.get('seed')}, not a final seed; "
        f"{fold}; same budget as the final runs); the final seeds then ran at that rate. Sweep runs are not "
        "part of any analysis in this report. Validation loss per rate (**bold**: chosen):",
        "",
    ]
    rows = []
    for condition in sweep["conditions"]:
        chosen = condition.get("chosen_learning_rate")
        by_rate = {result["learning_rate"]: result for result in condition.get("results", [])}
        cells = [_sweep_cell(by_rate[rate], chosen) if rate in by_rate else "n/a" for rate in rates]
        rows.append([f"`{condition['condition']}`", fmt(chosen), *cells, condition.get("reason", "")])
    return lines + _table(["condition", "chosen rate", *(f"lr {fmt(rate)}" for rate in rates), "why"], rows)


def divergence_lines(analysis: Analysis) -> list[str]:
    """Diverged runs as their own outcome: rate per condition and Fisher's exact tests (docs/statistics.md)."""
    correction = CORRECTION_NAMES[analysis.settings.correction]
    lines = [
        "## Diverged runs",
        "",
        "A diverged run (NaN/inf training loss) has no final value, so it is excluded from the metric analyses; "
        "so that this does not favour unstable conditions, divergence is analysed as its own outcome: the "
        "share of finished runs that diverged per condition (Clopper–Pearson interval), and Fisher's exact "
        f"test for the same pairs of conditions as the metric comparisons, {correction}-corrected within each "
        "family. Failed (crashed) runs are not counted.",
        "",
    ]
    if not any(rate.diverged for rate in analysis.divergence_rates):
        return lines + ["No run diverged.", ""]
    level = _level(analysis)
    lines += _table(
        ["condition", "diverged / finished", "rate", f"{level} CI", "diverged runs"],
        [
            [f"`{r.condition}`", f"{r.diverged} / {r.finished}", fmt(r.rate, 3), _ci(r.ci),
             ", ".join(f"`{run}`" for run in r.diverged_runs) or "none"]
            for r in analysis.divergence_rates
        ],
    )
    tested = [c for c in analysis.divergence_comparisons if c.diverged_a + c.diverged_b > 0]
    lines += ["Tests (pairs in which neither condition diverged have p = 1 and are not listed):", ""]
    lines += _table(
        ["family", "a vs b", "diverged a / b", "p (Fisher)", f"p adj ({correction})"],
        [
            [c.scope, f"`{c.group_a}` vs `{c.group_b}`",
             f"{c.diverged_a}/{c.finished_a} vs {c.diverged_b}/{c.finished_b}", fmt_p(c.p_value),
             f"**{fmt_p(c.p_adjusted)}**" if c.significant else fmt_p(c.p_adjusted)]
            for c in tested
        ],
    )
    return lines
def _mean_of(records: list[Mapping[str, Any]], key: str) -> float | None:
    values = [record[key] for record in records if isinstance(record.get(key), (int, float))]
    return float(np.mean(values)) if values else None


def _count(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.0f}"


def _masking_and_tokens(raw: Mapping[str, Any]) -> list[str]:
    """Setup: the MLM masking regime and what each condition's training saw and scored (docs/data.md)."""
    config = raw.get("config") or {}
    data_config = config.get("data") or {}
    objectives = config.get("objectives") or ["mlm", "clm"]
    regime = (raw.get("data") or {}).get("mlm_masking")
    lines = ["### Masking and tokens seen", ""]
    if regime and uses_masking(objectives):
        lines.append(f"- MLM masking: `{data_config.get('mlm_strategy')}`, {regime}")
    if data_config.get("clm_strategy") and "clm" in objectives:
        lines.append(
            f"- CLM sequences: `{data_config['clm_strategy']}`; neither objective scores special tokens ([SEP])"
        )
    by_condition: dict[str, list[Mapping[str, Any]]] = {}
    for run in raw.get("runs") or []:
        if run.get("status") == "completed" and isinstance(run.get("tokens"), Mapping):
            by_condition.setdefault(condition_label(run["objective"], run["attention"]), []).append(run["tokens"])
    if not by_condition:
        return lines + ["- No run recorded the tokens it saw.", ""]
    rows = [
        [
            f"`{condition}`",
            len(records),
            _count(_mean_of(records, "processed")),
            _count(_mean_of(records, "scored")),
            fmt(_mean_of(records, "distinct_target_fraction"), 3),
            fmt(_mean_of(records, "processed_vs_shared"), 3),
        ]
        for condition, records in by_condition.items()
    ]
    header = ["condition", "runs", "non-pad tokens processed", "tokens scored", "distinct-target fraction",
              "processed vs shared"]
    return lines + [
        "",
        "Training tokens per run, means over completed runs. Distinct-target fraction: share of the training "
        "text ever scored. Processed vs shared: non-pad tokens relative to the shared segmentation's for as "
        "many micro-batches (≈ 1 when the arms are token-matched; otherwise the ratio).",
        "",
    ] + _table(header, rows)


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
        lines += ["", "Excluded from every metric analysis (not completed; diverged runs are tested below):", ""]
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


def _squared(mean: float | None) -> float | None:
    return None if mean is None else mean * mean


def _summary_tables(analysis: Analysis) -> list[str]:
    lines = ["## Per-condition summaries", ""]
    for metric in analysis.metrics:
        summaries = analysis.summaries_for(metric)
        lines += [f"### {metric_label(metric)} — {direction_words(metric)}", ""]
        rows = [
            [
                f"`{s.condition}`",
                s.n,
                fmt(s.mean),
                fmt_spread(s.std, s.mean),
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
                        fmt_spread(s.variance.fold_mean_variance, _squared(s.mean)),
                        fmt_spread(s.variance.seed_mean_variance, _squared(s.mean)),
                        fmt_spread(s.variance.fold_component, _squared(s.mean)),
                        fmt_spread(s.variance.seed_component, _squared(s.mean)),
                        fmt_spread(s.variance.residual_component, _squared(s.mean)),
                    ]
                    for s in variance
                ],
            )
    return lines


_NOT_LIKE_FOR_LIKE = "†"


def _table_legend(analysis: Analysis) -> list[str]:
    s, level = analysis.settings, _level(analysis)
    correction = CORRECTION_NAMES[s.correction]
    return [
        f"How to read the comparison tables: *a − b* is group a minus group b with its {level} t-interval; "
        "*Shapiro p* (on the paired differences, or on a / b when the runs are independent) describes the "
        f"data and does not choose the test; *p* is raw and *p adj* is {correction}-adjusted within the "
        "table's family — **bold** "
        f"means significant at α = {s.significance_level:g} after correction; *d* is Cohen's d (d_z when "
        f"paired) and *g* Hedges' g with the {level} noncentral-t CI of the effect; *r* is the rank-biserial "
        f"correlation; *MDE* is the smallest |d| detectable with {s.power:.0%} power at this n, and *runs* "
        f"the runs per condition (pairs when paired) needed to detect the observed g with {s.power:.0%} "
        f"power{_power_methods(analysis)}; *family* gives both at α/m, the level that the correction asks "
        "of each of the family's m tested comparisons (exact for Bonferroni, the worst case for Holm and BH): "
        "plan runs on it. Not significant is not evidence of no difference.",
        "",
    ]


def _power_methods(analysis: Analysis) -> str:
    """The powers behind the MDE and runs columns, as the records name them (docs/statistics.md, Power)."""
    methods = dict.fromkeys(
        method for c in analysis.comparisons
        for method in (c.power.min_detectable_effect_method, c.power.runs_needed_method,
                       c.power.min_detectable_effect_family_method, c.power.runs_needed_family_method)
        if method != NO_POWER
    )
    return f", by the power of the test used ({'; '.join(methods)})" if methods else ""


def _design(c: Comparison) -> str:
    return f"{c.n_a} pairs" if c.paired else f"{c.n_a} vs {c.n_b}"


def _test_cell(c: Comparison) -> str:
    if c.test.p_value is None:
        return "none"
    symbol = c.test.symbol or "statistic"
    if is_void_comparison(c):
        value = "0" if fmt_statistic(c.test.statistic) == "0" else "void"
        return f"{c.test.name}: {symbol} = {value} (no difference)"
    return f"{c.test.name}: {symbol} = {fmt_statistic(c.test.statistic)}"


def _difference_cell(c: Comparison) -> str:
    if is_void_comparison(c):
        return "0 (no difference)"
    if is_noise_level(c):
        return f"0 {_ci(c.mean_difference_ci)}"
    return f"{fmt(c.mean_difference)} {_ci(c.mean_difference_ci)}"


def _normality_cell(c: Comparison) -> str:
    return " / ".join("n/a" if n.pvalue is None else fmt_p(n.pvalue) for n in c.test.normality)


def _adjusted_cell(c: Comparison) -> str:
    cell = fmt_p(c.test.p_adjusted)
    return f"**{cell}**" if c.test.significant else cell


def _effect_cell(c: Comparison) -> str:
    if is_void_comparison(c):
        return "—"
    return f"{fmt_statistic(c.effect.hedges_g, 3)} {_ci(c.effect.effect_size_ci)}"


def _is_family_stricter(c: Comparison) -> bool:
    """Whether the family's correction asks this comparison for less than α (m > 1 tested comparisons)."""
    return c.power.family_alpha is not None and c.power.family_alpha < c.test.alpha


def _power_cell(c: Comparison) -> str:
    """MDE / runs at α, then at the family level α/m where that is stricter (comparison.PowerEstimate)."""

    def runs(needed: int | None) -> int | str:
        return needed if needed is not None and not is_noise_level(c) else "n/a"

    cell = f"{fmt(c.power.min_detectable_effect, 3)} / {runs(c.power.runs_needed)}"
    if _is_family_stricter(c):
        cell += f"; family {fmt(c.power.min_detectable_effect_family, 3)} / {runs(c.power.runs_needed_family)}"
    return cell


def _family_floor_words(c: Comparison) -> str:
    """Where the family's level α/m is below this test's p-value floor: the n at which the floor reaches it
    (the family's correction asks each comparison for p ≤ α/m first, multiple_comparisons.family_alpha)."""
    floor = c.test.min_achievable_p
    if not _is_family_stricter(c) or floor is None or c.test.p_value is None or floor <= c.power.family_alpha:
        return ""
    needed = min_runs_for_significance(c.test.name, c.power.family_alpha)
    unit = "pairs" if c.paired else "runs per condition"
    return f" (≥ {needed} {unit} within this family of comparisons)" if needed else ""


def _notes(c: Comparison) -> str:
    notes = []
    family_floor = _family_floor_words(c)
    if is_void_comparison(c):
        notes.append("no difference: the runs' values are equal up to floating-point rounding, so p and effect "
                     "sizes are void")
    elif c.test.p_value is None:
        notes.append(c.test.reason)
    elif not c.test.can_reach_significance:
        unit = "pairs" if c.paired else "runs per condition"
        notes.append(
            f"⚠ cannot reach significance: the smallest possible p at this n is {fmt(c.test.min_achievable_p, 3)}; "
            f"≥ {c.test.min_runs_for_significance} {unit} needed{family_floor}"
        )
    elif family_floor:
        notes.append(
            f"⚠ cannot reach significance after correction: the smallest possible p at this n is "
            f"{fmt(c.test.min_achievable_p, 3)}, above α/m = {fmt(c.power.family_alpha, 3)}{family_floor}"
        )
    if is_noise_level(c) and not is_void_comparison(c):
        notes.append("equal means (a − b = 0 up to floating-point rounding): neither is better")
    if not c.like_for_like:
        notes.append(f"{_NOT_LIKE_FOR_LIKE} different tasks: not a ranking")
    elif c.test.significant and c.better_group is not None:
        notes.append(f"`{c.better_group}` better")
    if c.mean_difference_ci.note:
        notes.append(f"a − b CI: {c.mean_difference_ci.note}")
    return "; ".join(notes)


def comparison_table(comparisons: list[Comparison], analysis: Analysis) -> list[str]:
    """One row per comparison: design, means, difference, test, raw and adjusted p, effect sizes, power."""
    level, correction = _level(analysis), CORRECTION_NAMES[analysis.settings.correction]
    header = [
        "a vs b",
        "n",
        "mean a / b",
        f"a − b [{level} CI]",
        "test",
        "Shapiro p",
        "p",
        "p adj" if correction == "no" else f"p adj ({correction})",
        "d",
        f"g [{level} CI]",
        "r",
        "MDE / runs",
        "notes",
    ]
    rows = [
        [
            f"`{c.group_a}` vs `{c.group_b}`",
            _design(c),
            f"{fmt(c.mean_a)} / {fmt(c.mean_b)}",
            _difference_cell(c),
            _test_cell(c),
            _normality_cell(c),
            fmt_p(c.test.p_value),
            _adjusted_cell(c),
            "—" if is_void_comparison(c) else fmt_statistic(c.effect.cohens_d, 3),
            _effect_cell(c),
            "—" if is_void_comparison(c) else fmt(c.effect.rank_biserial, 3),
            _power_cell(c),
            _notes(c),
        ]
        for c in comparisons
    ]
    return _table(header, rows)


def _comparison_sections(analysis: Analysis, families: list[Family]) -> list[str]:
    lines: list[str] = []
    for family in families:
        metric = family.metric
        comparisons = analysis.comparisons_in(family)
        if comparisons:
            role = family_role_label(analysis, family)
            lines += [f"#### {metric_label(metric)} — {direction_words(metric)} ({role})", ""]
            lines += comparison_table(comparisons, analysis)
    return lines


def _significant_sentence(c: Comparison) -> str:
    """Better/worse when the metric has a direction (a lower loss is better), else higher/lower."""
    higher = (c.mean_difference or 0) > 0
    if c.better_group is not None:
        side = "better" if c.better_group == c.group_a else "worse"
        how = f"{'higher' if higher else 'lower'}, and {direction_words(c.metric)}; "
    else:
        side, how = ("higher" if higher else "lower"), ""
    return (
        f"`{c.group_a}` {side} than `{c.group_b}` on `{c.metric}` "
        f"({how}a − b = {fmt(c.mean_difference, 3)}, p adj = {fmt_p(c.test.p_adjusted)}, "
        f"g = {fmt(c.effect.hedges_g, 3)})"
    )


def _is_finding(c: Comparison) -> bool:
    return c.test.significant  # never true for a noise-level difference (compare.correct_families)


def _key_results(analysis: Analysis) -> list[str]:
    """The findings a reader needs first: like-for-like MLM vs CLM, then mechanisms, then what n allows."""
    correction = CORRECTION_NAMES[analysis.settings.correction]
    cross = [c for c in analysis.comparisons if c.family.across_objectives and c.test.p_value is not None]
    like = [c for c in cross if c.like_for_like]
    title = _cross_title(analysis.objectives)
    lines = [
        "## Key results",
        "",
        "Secondary and exploratory: the confirmatory answer is the primary endpoint above. These results span "
        "many families, so under no true difference at all some of them would still be significant.",
        "",
    ]
    if like:
        hits = [c for c in like if _is_finding(c)]
        if hits:
            found = "; ".join(_significant_sentence(c) for c in hits)
            lines.append(f"- {title}, like for like, significant after {correction} correction: {found}.")
        else:
            smallest = min(like, key=lambda c: c.test.p_adjusted if c.test.p_adjusted is not None else 1.0)
            lines.append(
                f"- {title}, like for like: none of the {len(like)} comparisons is significant after "
                f"{correction} correction (smallest adjusted p = {fmt_p(smallest.test.p_adjusted)}, "
                f"`{smallest.group_a}` vs `{smallest.group_b}` on `{smallest.metric}`). This does "
                "not show the objectives are equivalent; see the power columns."
            )
    elif cross:
        lines.append(f"- {title}: no like-for-like (probe) metric was recorded, so the objectives are not ranked.")
    unlike = [c for c in cross if not c.like_for_like]
    if unlike:
        lines.append(
            f"- {title} on pre-training metrics: {sum(_is_finding(c) for c in unlike)} of {len(unlike)} "
            "differences are significant, but these metrics score different tasks for the two objectives and "
            "do not rank them."
        )
    for objective in analysis.objectives:
        within = [c for c in analysis.comparisons if c.family.objective == objective]
        tested = [c for c in within if c.test.p_value is not None]
        if not tested:
            continue
        hits = [c for c in tested if _is_finding(c)]
        found = "; ".join(_significant_sentence(c) for c in hits) if hits else "none"
        lines.append(
            f"- Mechanisms within {objective.upper()}: {len(hits)} of {len(tested)} comparisons significant "
            f"after {correction} correction: {found}."
        )
    tested = [c for c in analysis.comparisons if c.test.p_value is not None]
    noise = [c for c in analysis.comparisons if is_noise_level(c)]
    if noise:
        lines.append(
            f"- No difference: in {len(noise)} of {len(analysis.comparisons)} comparisons the two means are equal "
            "up to floating-point rounding (the tables show a − b = 0), so neither group is better; where the runs "
            "themselves are equal up to rounding, p and the effect sizes are marked void."
        )
    return lines + _power_line(analysis, tested) + [""]


def _effect_range(effects: list[float]) -> str:
    low, high = fmt(min(effects), 3), fmt(max(effects), 3)
    return f"|d| = {low if low == high else f'{low} to {high}'}"


def _family_mde_words(tested: list[Comparison], correction: str) -> str:
    """The MDEs at the family level α/m, where some family has m > 1 tested comparisons; else nothing."""
    if not any(_is_family_stricter(c) for c in tested):
        return ""
    family = [c.power.min_detectable_effect_family for c in tested if c.power.min_detectable_effect_family is not None]
    floored = sum(c.power.min_detectable_effect is not None and c.power.min_detectable_effect_family is None
                  for c in tested)
    found = _effect_range(family) if family else "none"
    if floored:
        found += f" ({f'none for {floored}: ' if family else ''}the p-value floor is above α/m)"
    return f"; within its family, at α/m after {CORRECTION_NAMES[correction]} correction, {found} (plan runs on this)"


def _power_line(analysis: Analysis, tested: list[Comparison]) -> list[str]:
    """The MDEs of the tested comparisons at α and, where a family has m > 1 of them, at the family level α/m."""
    detectable = [c.power.min_detectable_effect for c in tested if c.power.min_detectable_effect is not None]
    if not detectable:
        return []
    s = analysis.settings
    sentence = (f"- Power: at these n the smallest effect detectable with {s.power:.0%} power is "
                f"{_effect_range(detectable)} for a comparison alone (α = {s.significance_level:g})"
                f"{_family_mde_words(tested, s.correction)}")
    blocked = [c for c in tested if not c.test.can_reach_significance]
    if blocked:
        sentence += (f"; {len(blocked)} of {len(tested)} comparisons used a permutation test that cannot reach "
                     "significance at this n")
    return [sentence + "."]


def _mlm_vs_clm(analysis: Analysis, figures: Mapping[str, str]) -> list[str]:
    title = _cross_title(analysis.objectives)
    if not any(c.family.across_objectives for c in analysis.comparisons):
        return [
            f"## {title}",
            "",
            "Only one objective has runs, so there is no cross-objective comparison.",
            "",
        ]
    probes = [m for m in analysis.metrics if is_probe_metric(m)]
    neutral = [m for m in analysis.metrics if is_like_for_like(m) and not is_probe_metric(m)]
    specific = [m for m in analysis.metrics if not is_like_for_like(m)]
    hybrids = [o for o in analysis.objectives if o in OBJECTIVE_DEFINITIONS and OBJECTIVE_DEFINITIONS[o].hybrid]
    if hybrids:
        lines = [f"## {title}", "", "Every pair of objectives within each mechanism; in each pair group a is the "
                 "objective listed first (MLM before CLM), and the pairs are corrected together.", ""]
    else:
        lines = [f"## {title}", "", "MLM is group a in every row.", ""]
    if probes or neutral:
        lines += [
            "### Like for like: downstream probes and cost",
            "",
            "Both objectives' encoders are scored on the same tasks, so these comparisons can rank them.",
            "",
        ] + _comparison_sections(analysis, [Family(metric) for metric in probes + neutral])
    else:
        lines += [
            "No probe metrics were recorded, so there is no like-for-like ranking of the objectives.",
            "",
        ]
    if specific:
        heading = "like for like only between objectives in the same view" if hybrids else "not like for like"
        lines += [
            f"### Pre-training metrics ({heading})",
            "",
            f"> ⚠ {_NOT_LIKE_FOR_LIKE} {CROSS_OBJECTIVE_CAVEAT[0].upper() + CROSS_OBJECTIVE_CAVEAT[1:]}. "
            "Read these rows as descriptions of each objective's own task, not as a ranking.",
            "",
        ] + _hybrid_evaluation_note(analysis.objectives) + _comparison_sections(
            analysis, [Family(metric) for metric in specific]
        )
    lines += [f"![MLM vs CLM per mechanism]({figures['mlm_vs_clm_plot']})", ""]
    return lines


def _cross_title(objectives: tuple[str, ...]) -> str:
    """``MLM vs CLM`` for the two single objectives, else every objective's name (with hybrids)."""
    if set(objectives) <= {"mlm", "clm"}:
        return "MLM vs CLM"
    return "Objectives compared: " + " vs ".join(o.upper() for o in objectives)


def _hybrid_setup(objectives: tuple[str, ...], training: Mapping[str, Any]) -> list[str]:
    """Setup lines stating each hybrid objective's split or ratio (mlmclm/objectives.py)."""
    lines = []
    if "clm_mlm" in objectives:
        share = _share(training.get("hybrid_clm_fraction"))
        lines.append(f"- CLM_MLM: CLM for the first {share} of the steps, then MLM (optimizer and schedule carry "
                     "across the switch; each run records its switch step)")
    if "mntp" in objectives:
        lines.append(f"- MNTP (GPT-BERT): {_share(training.get('mntp_causal_fraction'))} of the micro-batches causal, "
                     "the rest masked with the next-token read-out")
    return lines


def _share(fraction: Any) -> str:
    return f"{fraction:.4g} (= {100 * fraction:.4g}%)" if isinstance(fraction, (int, float)) else "n/a"


def _hybrid_evaluation_note(objectives: tuple[str, ...]) -> list[str]:
    """Which evaluation task each objective's loss scores, when hybrids are in the comparison."""
    if not any(o in OBJECTIVE_DEFINITIONS and OBJECTIVE_DEFINITIONS[o].hybrid for o in objectives):
        return []
    views = ", ".join(
        f"{o.upper()}: {OBJECTIVE_DEFINITIONS[o].evaluation.replace('_', ' ')}"
        for o in objectives if o in OBJECTIVE_DEFINITIONS
    )
    return [
        f"Evaluation views ({views}). Rows between objectives with the same view score identical batches and "
        "are like for like (no ⚠ in their notes); docs/training.md, Hybrid objectives.",
        "",
    ]


def _within_objectives(analysis: Analysis, figures: Mapping[str, str]) -> list[str]:
    lines = ["## Attention mechanisms within each objective", ""]
    for objective in analysis.objectives:
        section = _comparison_sections(analysis, [Family(metric, objective) for metric in analysis.metrics])
        if section:
            lines += [f"### {objective.upper()}", ""] + section
    if len(lines) == 2:
        lines += ["Fewer than two mechanisms per objective have runs, so there is nothing to compare.", ""]
    return lines + [f"![Objective × mechanism heatmap]({figures['attention_heatmap']})", ""]


def _methods(analysis: Analysis) -> list[str]:
    s = analysis.settings
    correction = CORRECTION_NAMES[s.correction]
    return [
        "## Methods and caveats",
        "",
        "- Runs of two conditions that share (fold, seed) are paired; with complete pairing the test works "
        "on the paired differences, otherwise on the two groups independently. Only completed runs with a "
        "finite value count.",
        *procedure_lines(analysis),
        f"- Families are comparison type × metric; {correction} correction is applied within each family "
        "and decisions use the adjusted p-values. Metrics are separate families, so only the MLM-vs-CLM "
        f"family of the primary metric (`{analysis.primary_metric}`) is confirmatory (primary); families of "
        "the secondary metrics are secondary, all others exploratory (each table heading says which).",
        "- Effect sizes: Cohen's d (d_z when paired), Hedges' g (exact small-sample correction), "
        "rank-biserial r. Full rules and references: docs/statistics.md.",
        "",
    ]


def _origin(raw: Mapping[str, Any], analyze_command: str | None) -> str:
    created = f"Created from raw results of {raw.get('created', 'unknown date')}"
    if analyze_command is None:
        return f"{created}."
    return (
        f"{created} by `mlmclm analyze`, with the statistics settings below; this re-analysis is written beside "
        "the training report and leaves it unchanged."
    )


def render_report(
    analysis: Analysis,
    raw: Mapping[str, Any],
    experiment_name: str,
    figures: Mapping[str, str],
    analyze_command: str | None = None,
    optional_sections: list[str] | None = None,
) -> str:
    """The full markdown report; ``figures`` maps figure kinds to paths relative to the report.

    ``analyze_command`` is the ``mlmclm analyze`` invocation of a re-analysis, reproduced after the training
    command. ``optional_sections``: markdown lines of the parts only some experiments have (length
    generalisation, learning over time), placed after the training curves."""
    reproduce = reproduce_lines(raw, analyze_command)
    lines = [
        f"# {experiment_name}: masked (MLM) vs causal (CLM) language modelling",
        "",
        *banner_lines(analysis, raw),
        *headline_lines(analysis),
        f"{_origin(raw, analyze_command)} {reproduce[0]}",
        *reproduce[1:],
    ]
    lines += _setup(analysis, raw)
    lines += learning_rate_lines(raw)
    lines += _masking_and_tokens(raw)
    lines += _runs(analysis, raw)
    lines += divergence_lines(analysis)
    lines += _key_results(analysis)
    lines += _table_legend(analysis)
    lines += _mlm_vs_clm(analysis, figures)
    lines += probe_baseline_lines(raw, analysis)
    lines += item_level_lines(analysis)
    lines += _within_objectives(analysis, figures)
    lines += [
        "## Training curves",
        "",
        "Validation loss against training tokens (optimizer steps for runs that did not record tokens), mean "
        "over runs; one panel per objective because their losses score different tasks.",
        "",
        f"![Training curves]({figures['training_curves']})",
        "",
        *band_separation_lines(analysis),
        *(optional_sections or []),
        "## Effect sizes",
        "",
        f"Hedges' g with {_level(analysis)} noncentral-t CIs for `{analysis.primary_metric}`; filled markers "
        "are significant after correction.",
        "",
        f"![Effect sizes]({figures['effect_size_plot']})",
        "",
    ]
    lines += ranking_section(analysis, figures) + probe_aggregate_section(analysis, figures)
    lines += _summary_tables(analysis)
    lines += ["## Budget", "", "Every run had the same budget:", ""]
    lines += _mapping_table(raw.get("budget"), "No budget was recorded.")
    lines += _data(raw)
    lines += ["## Environment", ""] + _mapping_table(raw.get("environment"), "No environment was recorded.")
    lines += _methods(analysis)
    lines += analysis_log_lines(analysis)
    lines += ["## Reproduce", "", *reproduce]
    return "\n".join(lines)


def reproduce_lines(raw: Mapping[str, Any], analyze_command: str | None = None) -> list[str]:
    """The command(s) that reproduce every run in ``raw``: one when a single command produced them all,
    else each contributing command, in order, with the runs it added (later ones resume into the same
    output directory); then the ``analyze`` command of a re-analysis."""
    invocations = contributing_invocations(dict(raw))
    if len(invocations) <= 1:
        intro = "Reproduce the experiment with:"
        commands = [invocations[0]["command"] if invocations else raw.get("command") or "(not recorded)"]
    else:
        intro = (
            f"The runs were produced by {len(invocations)} commands; run them in this order, in the same output "
            "directory (each one resumes into the results of the ones before), to reproduce all of them:"
        )
        commands = []
        for entry in invocations:
            runs = entry["runs"]
            shown = ", ".join(runs[:6]) + (f", ... ({len(runs)} runs)" if len(runs) > 6 else "")
            commands += [f"# {entry.get('started') or 'unknown time'}: added {shown}", entry["command"]]
    if analyze_command is not None:
        commands = [
            "# train the runs (writes the raw results and the training report)",
            *commands,
            "# re-analyse them with these settings (this report)",
            analyze_command,
        ]
    return [intro, "", "```bash", *commands, "```", ""]
