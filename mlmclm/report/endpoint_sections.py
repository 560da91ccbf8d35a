"""Report sections of the declared primary endpoint (docs/statistics.md): the opening answer, the probe-validity
baselines, the item-level analysis, where training curves separate, and the analysis log.

The opening paragraph speaks about the primary endpoint (and the omnibus mechanism ranking when present)
only; every other significant result is listed as exploratory, because under a global null a headline
that pools hits across families reports a "finding" far more often than α.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from mlmclm.analysis import Analysis, Comparison
from mlmclm.analysis.analysis_log import optional_stopping_seeds
from mlmclm.analysis.conditions import condition_label, is_probe_baseline
from mlmclm.analysis.endpoint import PRIMARY_ENDPOINT
from mlmclm.analysis.families import Family
from mlmclm.analysis.item_level import item_standard_error
from mlmclm.analysis.metrics import PROBE_BASELINES
from mlmclm.report.labels import CORRECTION_NAMES, fmt, fmt_p


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows] + [""]


def _finding(c: Comparison) -> bool:
    return c.test.significant


def _describe_endpoint(analysis: Analysis) -> str:
    endpoint = analysis.primary_endpoint
    if endpoint is not None and endpoint.metric == PRIMARY_ENDPOINT:
        tasks = ", ".join(f"`{task}`" for task in endpoint.tasks)
        return (
            f"`{PRIMARY_ENDPOINT}`, the mean over the probe tasks {tasks} of probe accuracy above that of a "
            "random-init encoder of the same architecture (higher is better)"
        )
    return f"`{analysis.primary_metric}`"


def _omnibus_sentences(analysis: Analysis) -> list[str]:
    """The omnibus mechanism ranking (Friedman, then Holm-corrected post-hoc pairs; ranking.py) of the primary
    metric within each objective: the only other result allowed to lead the report."""
    sentences = []
    for ranking in analysis.rankings:
        if ranking.metric != analysis.primary_metric:
            continue
        if len(ranking.average_ranks) != len(ranking.mechanisms):  # no common blocks: nothing was ranked
            ranks = "none (no block has every mechanism)"
        else:
            pairs_of_ranks = zip(ranking.mechanisms, ranking.average_ranks, strict=True)
            ranks = ", ".join(f"`{mechanism}` {rank:.2f}" for mechanism, rank in pairs_of_ranks)
        if ranking.p_value is None:
            verdict = f"{ranking.omnibus_test} not computed ({ranking.note or 'too few blocks'})"
        else:
            verdict = (
                f"{ranking.omnibus_test} p = {fmt_p(ranking.p_value)}, "
                + ("mechanisms differ" if ranking.omnibus_significant else "no difference between mechanisms shown")
            )
        hits = [pair for pair in ranking.posthoc if pair.significant]
        pairs = (
            "; post-hoc (Holm): " + ", ".join(f"`{p.mechanism_a}` vs `{p.mechanism_b}`" for p in hits)
            if ranking.omnibus_significant and hits else ""
        )
        blocks = f"{ranking.n_blocks} blocks" + (", each a seed's mean over the folds" if ranking.cv_statement else "")
        sentences.append(
            f"Mechanisms under {ranking.objective.upper()} ({blocks}): {verdict}; "
            f"average ranks (1 = best) {ranks}{pairs}."
        )
    return sentences


def headline_lines(analysis: Analysis) -> list[str]:
    """The report's first paragraph: the answer on the primary endpoint only (plus the omnibus ranking)."""
    endpoint = analysis.primary_endpoint
    correction = CORRECTION_NAMES[analysis.settings.correction]
    family = Family(analysis.primary_metric)
    rows = [c for c in analysis.comparisons_in(family) if c.test.p_value is not None]
    lines = ["## Primary endpoint", ""]
    text = f"**Primary endpoint:** {_describe_endpoint(analysis)}, declared before the runs. "
    if endpoint is not None and endpoint.fallback_reason:
        text += f"⚠ {endpoint.fallback_reason[0].upper() + endpoint.fallback_reason[1:]}. "
    if endpoint is not None and endpoint.warning:
        text += f"⚠ Warning: {endpoint.warning}. "
    if not rows:
        text += "There is no MLM-vs-CLM comparison of it (only one objective has runs, or no usable values)."
    else:
        hits = [c for c in rows if _finding(c)]
        text += (
            f"MLM vs CLM, one family of {len(rows)} comparison(s) (one per mechanism), {correction}-corrected: "
        )
        if hits:
            text += "; ".join(f"{_ranked(c)} (MLM − CLM = {fmt(c.mean_difference, 3)} {_ci(c)}, "
                              f"p adj = {fmt_p(c.test.p_adjusted)})" for c in hits)
            text += f"; not significant for the other {len(rows) - len(hits)}." if len(rows) > len(hits) else "."
        else:
            smallest = min(rows, key=lambda c: c.test.p_adjusted if c.test.p_adjusted is not None else 1.0)
            text += (
                f"no significant difference (smallest adjusted p = {fmt_p(smallest.test.p_adjusted)}, "
                f"`{smallest.group_a}` vs `{smallest.group_b}`); this does not show that the objectives are "
                "equivalent."
            )
    lines.append(text)
    omnibus = _omnibus_sentences(analysis)
    lines += ["", *omnibus] if omnibus else []
    seeds = optional_stopping_seeds(analysis.analysis_log)
    if seeds:
        lines += [
            "",
            f"⚠ **Optional stopping:** seed(s) {', '.join(map(str, seeds))} were added after an earlier analysis "
            "of these results (see the analysis log); p-values do not account for looking before adding runs.",
        ]
    lines += [
        "",
        "Only this endpoint (and the omnibus ranking, when present) is confirmatory; every other result in this "
        "report is secondary or exploratory, whatever its p-value.",
        "",
    ]
    return lines


def _ranked(c: Comparison) -> str:
    if c.better_group is None:
        return f"`{c.group_a}` {'higher' if (c.mean_difference or 0) > 0 else 'lower'} than `{c.group_b}`"
    worse = c.group_b if c.better_group == c.group_a else c.group_a
    return f"`{c.better_group}` better than `{worse}`"


def _ci(c: Comparison) -> str:
    interval = c.mean_difference_ci
    return "" if interval.low is None else f"[{fmt(interval.low, 3)}, {fmt(interval.high, 3)}]"


def family_role_label(analysis: Analysis, family: Family) -> str:
    """The role of a family as the report prints it beside a heading."""
    return analysis.family_roles.get(family, "exploratory")


def _mean(values: list[float]) -> float | None:
    return float(np.mean(values)) if values else None


def probe_baseline_lines(raw: Mapping[str, Any], analysis: Analysis) -> list[str]:
    """Per task and condition: trained accuracy beside its random-init and control-task baselines."""
    runs = [run for run in raw.get("runs") or [] if run.get("status") == "completed"]
    tasks = list(dict.fromkeys(
        metric.split("/")[1] for run in runs for metric in (run.get("metrics") or {}) if is_probe_baseline(metric)
    ))
    lines = [
        "## Probe validity baselines",
        "",
        "Did a probe measure anything? Beside each trained encoder's probe accuracy: the same probe on an "
        "untrained encoder of the same shape initialised from the run's seed (*random init*), on a control task "
        "with labels fixed by input type (*control*; Hewitt & Liang, 2019), *selectivity* = accuracy − control, "
        "and the item-level standard error sqrt(p(1 − p)/n) of the accuracy on the n test items. A trained "
        "accuracy within a few standard errors of random init or chance has measured little. Means over "
        "completed runs (docs/probes.md).",
        "",
    ]
    if not tasks:
        return lines + ["No run recorded probe baselines (probes disabled, finetune mode, or older runs).", ""]
    described = raw.get("probe_tasks") or {}
    rows = []
    for task in tasks:
        n_items = (described.get(task) or {}).get("test_examples")
        chance = (described.get(task) or {}).get("chance_accuracy")
        for objective in analysis.objectives:
            for attention in analysis.attentions:
                members = [r for r in runs if r["objective"] == objective and r["attention"] == attention]
                values = {
                    name: _mean([float(r["metrics"][f"probe/{task}/{name}"]) for r in members
                                 if isinstance((r.get("metrics") or {}).get(f"probe/{task}/{name}"), (int, float))])
                    for name in ("accuracy", *PROBE_BASELINES)
                }
                if values["accuracy"] is None:
                    continue
                se = item_standard_error(values["accuracy"], int(n_items)) if n_items else math.nan
                rows.append([
                    f"`{task}`", f"`{condition_label(objective, attention)}`", len(members), fmt(values["accuracy"], 3),
                    fmt(values["random_init_accuracy"], 3), fmt(values["gain_over_random_init"], 3),
                    fmt(values["control_accuracy"], 3), fmt(values["selectivity"], 3),
                    fmt(chance, 3), f"{fmt(se, 2)} (n = {n_items})" if n_items else "n/a",
                ])
    return lines + _table(
        ["task", "condition", "runs", "accuracy", "random init", "gain", "control", "selectivity", "chance",
         "item SE"],
        rows,
    )


def item_level_lines(analysis: Analysis) -> list[str]:
    """MLM vs CLM with the probe test items as the sampling unit, beside the seed-level tables."""
    lines = [
        "## Item-level analysis of the probes (exploratory)",
        "",
        "Every run is scored on the same fixed probe test items, so a seed-level test ignores that the items "
        "are a sample too. Here the items are the unit: per item, correctness averaged over a condition's "
        "seeds; *a − b* is the accuracy difference with a bootstrap CI over items; p is a sign-flip permutation "
        "test over items (McNemar's exact test when each condition has one run), "
        f"{CORRECTION_NAMES[analysis.settings.correction]}-corrected per task. *SE a / b* is sqrt(p(1 − p)/n) "
        "of each accuracy: differences much smaller than it cannot be resolved by these items.",
        "",
    ]
    if not analysis.item_level:
        return lines + ["No run recorded per-item probe results.", ""]
    rows = [
        [f"`{r.task}`", f"`{r.group_a}` vs `{r.group_b}`", r.n_items, f"{r.runs_a} / {r.runs_b}",
         f"{fmt(r.accuracy_a, 3)} / {fmt(r.accuracy_b, 3)}",
         f"{fmt(r.difference, 3)} " + ("n/a" if r.difference_ci.low is None
                                       else f"[{fmt(r.difference_ci.low, 3)}, {fmt(r.difference_ci.high, 3)}]"),
         f"{fmt(r.standard_error_a, 2)} / {fmt(r.standard_error_b, 2)}", r.test, fmt_p(r.p_value),
         f"**{fmt_p(r.p_adjusted)}**" if r.significant else fmt_p(r.p_adjusted)]
        for r in analysis.item_level
    ]
    return lines + _table(
        ["task", "a vs b", "items", "runs a / b", "accuracy a / b", "a − b [CI]", "SE a / b", "test", "p", "p adj"],
        rows,
    )


def band_separation_lines(analysis: Analysis) -> list[str]:
    """Where two mechanisms' validation-loss bands (per-point t-intervals over seeds) stop overlapping."""
    level = f"{analysis.settings.confidence_level * 100:g}%"
    folds_averaged = any(s.folds_averaged for s in analysis.band_separations)
    cv = (
        " Under cross-validation each seed's folds are averaged into one curve first (folds share training "
        "data, so (fold, seed) runs are not independent); n counts seeds."
        if folds_averaged else ""
    )
    lines = [
        f"Sample efficiency: the shaded bands are per-point {level} t-intervals of the mean over seeds.{cv} For "
        "each pair of mechanisms within an objective, the first point from which the bands never overlap "
        "again (a pointwise, descriptive criterion):",
        "",
    ]
    if not analysis.band_separations:
        return lines + ["- no two mechanisms of one objective have curves to compare.", ""]
    for s in analysis.band_separations:
        unit = "training tokens" if s.axis == "tokens" else "optimizer steps"
        where = (
            "never" if s.separated_from is None
            else f"from {s.separated_from:,.0f} {unit} on (`{s.better_group}` lower)"
        )
        units = f" (n = {s.units_a} vs {s.units_b} seeds)" if s.folds_averaged else ""
        lines.append(f"- {s.objective.upper()} `{s.group_a}` vs `{s.group_b}`: {where}{units}.")
    return lines + [""]


def analysis_log_lines(analysis: Analysis) -> list[str]:
    """Every analysis of these raw results, oldest first; seeds added after a first analysis are flagged."""
    lines = ["## Analysis log", ""]
    if not analysis.analysis_log:
        return lines + ["No analysis log was kept for this report.", ""]
    lines += [
        "Every analysis of these raw results (`<experiment>_analysis_log.json` beside them), this one last. "
        "Seeds new since an earlier analysis are **optional stopping**: adding runs after looking inflates "
        "the false-positive rate.",
        "",
    ]
    rows = [
        [i + 1, e.timestamp, f"`{e.command}`" if e.command else "n/a",
         ", ".join(f"`{m}`" for m in e.metrics_requested) if e.metrics_requested else "default",
         f"`{e.primary_metric}`", f"{CORRECTION_NAMES.get(e.correction, e.correction)}, α = {e.alpha:g}",
         len(e.runs), ", ".join(map(str, e.seeds)),
         f"⚠ new seeds {', '.join(map(str, e.new_seeds))}" if e.optional_stopping else ""]
        for i, e in enumerate(analysis.analysis_log)
    ]
    return lines + _table(
        ["#", "when (UTC)", "command", "metrics", "primary", "correction", "runs", "seeds", "optional stopping"],
        rows,
    )
