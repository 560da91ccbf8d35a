"""The analysis of one experiment: condition summaries and every planned comparison, corrected per family.

Pure: a raw-results dict and a :class:`~mlmclm.config.StatisticsConfig` in, frozen result objects out.
Comparisons (docs/statistics.md): every pair of objectives within each attention mechanism (the
cross-objective family ``mlm_vs_clm/<metric>``, named after its first pair; with the hybrids of
mlmclm/objectives.py three objectives give three pairs per mechanism, corrected together) and every pair of
mechanisms within each objective (family ``attention_within_<objective>/<metric>``). Group a minus group b
throughout; in a cross-objective pair group a is the objective listed first (MLM before CLM).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mlmclm.analysis import effect_sizes, hypothesis_tests, intervals, power
from mlmclm.analysis.aggregate import (
    AggregateScore,
    ImprovementProbability,
    aggregate_iqm,
    probability_of_improvement,
    probe_score_matrix,
    probe_tasks,
)
from mlmclm.analysis.analysis_log import AnalysisLogEntry
from mlmclm.analysis.aso import almost_stochastic_order
from mlmclm.analysis.attainable import AttainablePValue, comparison_floors, ranking_floors
from mlmclm.analysis.comparison import Comparison, ComparisonTest, EffectSizes, PowerEstimate
from mlmclm.analysis.conditions import (
    ConditionSample,
    ExcludedRun,
    Observation,
    collect_samples,
    condition_label,
    is_length_metric,
    is_like_for_like,
    is_probe_baseline,
    is_probe_metric,
    metric_direction,
    paired_values,
    recorded_metrics,
)
from mlmclm.analysis.curves import BandSeparation, band_separations
from mlmclm.analysis.divergence import DivergenceComparison, DivergenceRate, analyze_divergence
from mlmclm.analysis.endpoint import (
    PrimaryEndpoint,
    endpoint_tasks,
    family_role,
    resolve_primary,
    with_primary_endpoint,
)
from mlmclm.analysis.families import MLM_VS_CLM, Family
from mlmclm.analysis.intervals import ConfidenceInterval
from mlmclm.analysis.item_level import ItemLevelComparison, compare_items
from mlmclm.analysis.multiple_comparisons import adjust_pvalues, family_alpha
from mlmclm.analysis.profiles import PerformanceProfile, performance_profile, profile_thresholds
from mlmclm.analysis.ranking import MechanismRanking, rank_mechanisms
from mlmclm.analysis.resampled import CrossValidationDesign
from mlmclm.analysis.variance_components import VarianceComponents, fold_seed_variance
from mlmclm.config import OBJECTIVES, StatisticsConfig
from mlmclm.errors import UserError
from mlmclm.grid.records import RunRecord
from mlmclm.objectives import OBJECTIVE_DEFINITIONS, same_evaluation

CROSS_OBJECTIVE_CAVEAT = (
    "MLM and CLM are scored on different prediction tasks (masked tokens seen with context on both sides vs "
    "the next token seen with left context only), so this difference is not a like-for-like ranking of the "
    "objectives"
)


@dataclass(frozen=True)
class ConditionSummary:
    """Descriptive statistics of one metric in one condition, with the runs that did not count."""

    metric: str
    objective: str
    attention: str
    condition: str
    n: int
    mean: float | None
    std: float | None
    median: float | None
    min: float | None
    max: float | None
    ci: ConfidenceInterval
    observations: tuple[Observation, ...]
    excluded: tuple[ExcludedRun, ...]
    variance: VarianceComponents | None


@dataclass(frozen=True)
class Analysis:
    """Everything the report needs, in the order it is reported."""

    metrics: tuple[str, ...]
    primary_metric: str
    objectives: tuple[str, ...]
    attentions: tuple[str, ...]
    summaries: tuple[ConditionSummary, ...]
    comparisons: tuple[Comparison, ...]
    unfinished_runs: tuple[ExcludedRun, ...]
    settings: StatisticsConfig
    # Diverged runs drop out of the metric analyses; divergence is tested as its own outcome (divergence.py).
    divergence_rates: tuple[DivergenceRate, ...] = ()
    divergence_comparisons: tuple[DivergenceComparison, ...] = ()
    cross_validation: CrossValidationDesign | None = None  # the design behind every CV correction
    rankings: tuple[MechanismRanking, ...] = ()  # Friedman + post-hoc per objective and metric (ranking.py)
    probe_iqm: tuple[AggregateScore, ...] = ()  # IQM over runs x probe tasks per condition (aggregate.py)
    probe_improvement: tuple[ImprovementProbability, ...] = ()  # P(MLM > CLM) over probe tasks per mechanism
    # The declared primary endpoint (endpoint.py) and each family's role: primary | secondary | exploratory.
    primary_endpoint: PrimaryEndpoint | None = None
    family_roles: dict[Family, str] = field(default_factory=dict)
    item_level: tuple[ItemLevelComparison, ...] = ()  # probe scores with items as the sampling unit
    band_separations: tuple[BandSeparation, ...] = ()  # sample efficiency: where validation-loss bands separate
    analysis_log: tuple[AnalysisLogEntry, ...] = ()  # filled by the caller that keeps the log file
    attainable_p: tuple[AttainablePValue, ...] = ()  # each family's p-value floor after correction (attainable.py)
    probe_profiles: tuple[PerformanceProfile, ...] = ()  # run-score distributions over probe tasks (profiles.py)

    def summaries_for(self, metric: str) -> list[ConditionSummary]:
        return [summary for summary in self.summaries if summary.metric == metric]

    def comparisons_in(self, family: Family | str) -> list[Comparison]:
        """The comparisons of ``family`` (a :class:`Family`, or its JSON name)."""
        wanted = family if isinstance(family, Family) else Family.from_name(family)
        return [comparison for comparison in self.comparisons if comparison.family == wanted]


def _number(value: Any) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def _rng(seed: int, key: str) -> np.random.Generator:
    """A stream per named quantity, so results do not depend on the order things are computed in."""
    return np.random.default_rng([seed, zlib.crc32(key.encode())])


def cross_validation_design(raw_results: Mapping[str, Any], runs: Sequence[RunRecord]) -> CrossValidationDesign | None:
    """The k-fold design of the grid: ``folds`` from the config when ``cross_validation`` is on, else the number
    of distinct fold labels when the runs carry two or more (hand-assembled results); ``None`` without folds."""
    config = raw_results.get("config") or {}
    labels = {run.fold for run in runs if run.fold is not None}
    folds = config.get("folds") if config.get("cross_validation") else None
    if not isinstance(folds, int) or isinstance(folds, bool):
        folds = len(labels)
    return CrossValidationDesign(folds) if folds >= 2 and len(labels) >= 2 else None


def summarize_condition(
    sample: ConditionSample, settings: StatisticsConfig, design: CrossValidationDesign | None = None
) -> ConditionSummary:
    """n, mean, SD (ddof=1), median, range and a t-interval of the mean (CV-corrected under ``design``)."""
    values = sample.values
    n = values.size
    ci = intervals.mean_t_interval(values, design=design, confidence_level=settings.confidence_level)
    return ConditionSummary(
        metric=sample.metric,
        objective=sample.objective,
        attention=sample.attention,
        condition=sample.label,
        n=n,
        mean=_number(np.mean(values)) if n else None,
        std=_number(np.std(values, ddof=1)) if n >= 2 else None,
        median=_number(np.median(values)) if n else None,
        min=_number(np.min(values)) if n else None,
        max=_number(np.max(values)) if n else None,
        ci=ci,
        observations=sample.observations,
        excluded=sample.excluded,
        variance=fold_seed_variance(sample.observations),
    )


def _better_group(direction: str | None, difference: float | None, a: str, b: str) -> str | None:
    if direction is None or difference is None or difference == 0:
        return None
    a_is_lower = difference < 0
    return a if a_is_lower == (direction == "lower") else b


def _power_figures(
    effect: float | None, floor_runs: int | None, n: tuple[int, int], *, paired: bool,
    design: CrossValidationDesign | None, settings: StatisticsConfig, alpha: float,
) -> tuple[float | None, int | None, str, str]:
    """MDE at this n, runs needed for ``effect`` (never below ``floor_runs``, where the test's p-value floor
    first reaches ``alpha``) and the power each rests on, at two-sided level ``alpha``."""
    cv_ratio = None if design is None else design.test_train_ratio
    options = {"paired": paired, "alpha": alpha, "power": settings.power, "permutation": design is None,
               "cv_ratio": cv_ratio}
    mde = power.minimum_detectable_effect(*n, **options)
    needed = power.runs_needed(effect, **options)
    if needed is not None and floor_runs is not None:
        needed = max(needed, floor_runs)

    def method(n_a: int, n_b: int) -> str:
        return power.power_method(n_a, n_b, paired=paired, permutation=design is None, cv_ratio=cv_ratio)

    return (mde, needed, power.NO_POWER if mde is None else method(*n),
            power.NO_POWER if needed is None else method(needed, needed))


def _power_part(
    effect: float | None, result: hypothesis_tests.TestResult, n: tuple[int, int], *, paired: bool,
    design: CrossValidationDesign | None, settings: StatisticsConfig,
) -> PowerEstimate:
    """MDE at this n and runs needed for the observed Hedges' g (the bias-corrected estimate of δ; d overstates
    it at small n), with the power of the test used: the permutation test's, simulated, where the design is
    small enough (power.py), the corrected t-test's in a CV grid, else the t-test's; never below the test's
    p-value floor. The family-level figures wait for the family (:func:`correct_families`)."""
    mde, needed, mde_method, needed_method = _power_figures(
        effect, result.min_runs_for_significance, n, paired=paired, design=design, settings=settings,
        alpha=settings.significance_level,
    )
    return PowerEstimate(min_detectable_effect=mde, runs_needed=needed, min_detectable_effect_method=mde_method,
                         runs_needed_method=needed_method)


def _family_power(
    c: Comparison, level: float, settings: StatisticsConfig, design: CrossValidationDesign | None
) -> PowerEstimate:
    """The power record with the same figures at the family level ``level`` (α/m, multiple_comparisons.py),
    the same test's power at that level; its p-value floor must reach α/m too (the floor behind runs needed)."""
    if level == settings.significance_level:  # m = 1, or no correction: the per-comparison figures
        figures = (c.power.min_detectable_effect, c.power.runs_needed, c.power.min_detectable_effect_method,
                   c.power.runs_needed_method)
    else:
        figures = _power_figures(
            c.effect.hedges_g, hypothesis_tests.min_runs_for_significance(c.test.name, level), (c.n_a, c.n_b),
            paired=c.paired, design=design, settings=settings, alpha=level,
        )
    return dataclasses.replace(
        c.power, family_alpha=level, min_detectable_effect_family=figures[0], runs_needed_family=figures[1],
        min_detectable_effect_family_method=figures[2], runs_needed_family_method=figures[3],
    )


def aso_epsilons(
    a: np.ndarray, b: np.ndarray, direction: str | None, settings: StatisticsConfig, family_size: int, key: str
) -> tuple[float | None, float | None]:
    """ε_min of "a better than b" and of "b better than a" (Dror et al. 2019), scores oriented so higher is
    better (negated when lower is better), Bonferroni-adjusted for the family; ``None`` unless test is "aso"."""
    if settings.test != "aso" or a.size == 0 or b.size == 0:
        return None, None
    sign = -1.0 if direction == "lower" else 1.0
    options = {
        "confidence_level": settings.confidence_level, "num_comparisons": family_size,
        "n_bootstrap": settings.bootstrap_resamples,
    }
    forward = almost_stochastic_order(sign * a, sign * b, rng=_rng(settings.seed, f"aso/{key}"), **options)
    reverse = almost_stochastic_order(sign * b, sign * a, rng=_rng(settings.seed, f"aso-reverse/{key}"), **options)
    return forward.min_epsilon, reverse.min_epsilon


def _paired_parts(
    differences: np.ndarray, boot: dict[str, Any]
) -> tuple[float, float, float, ConfidenceInterval]:
    """Cohen's d_z, Hedges' g_z, rank-biserial r and its bootstrap CI of paired differences."""
    enough = differences.size >= 2
    d = effect_sizes.cohens_dz(differences) if enough else math.nan
    g = effect_sizes.hedges_gz(differences) if enough else math.nan
    r = effect_sizes.rank_biserial_paired(differences)
    return d, g, r, intervals.bootstrap_ci((differences,), effect_sizes.rank_biserial_paired, **boot)


def _independent_parts(
    x: np.ndarray, y: np.ndarray, boot: dict[str, Any]
) -> tuple[float, float, float, ConfidenceInterval]:
    """Cohen's d, Hedges' g, rank-biserial r and its bootstrap CI of two independent groups."""
    enough = x.size >= 2 and y.size >= 2
    d = effect_sizes.cohens_d(x, y) if enough else math.nan
    g = effect_sizes.hedges_g(x, y) if enough else math.nan
    r = effect_sizes.rank_biserial_independent(x, y) if x.size and y.size else math.nan
    return d, g, r, intervals.bootstrap_ci((x, y), effect_sizes.rank_biserial_independent, **boot)


def _test_part(
    result: hypothesis_tests.TestResult, settings: StatisticsConfig, aso: tuple[float | None, float | None]
) -> ComparisonTest:
    """The test as run, before the family's correction (``p_adjusted`` unset, ``significant`` False)."""
    return ComparisonTest(
        name=result.test, symbol=result.symbol, p_value_method=result.p_value_method, reason=result.test_reason,
        statistic=result.statistic, p_value=result.pvalue, p_adjusted=None, significant=False,
        correction=settings.correction, alpha=settings.significance_level, normality=result.normality,
        can_reach_significance=result.can_reach_significance, min_achievable_p=result.min_achievable_p,
        min_runs_for_significance=result.min_runs_for_significance, cv_correction=result.cv_correction,
        cv_test_train_ratio=result.cv_test_train_ratio, aso_min_epsilon=aso[0], aso_min_epsilon_reverse=aso[1],
    )


def compare_samples(
    a: ConditionSample,
    b: ConditionSample,
    *,
    family: Family,
    settings: StatisticsConfig,
    design: CrossValidationDesign | None = None,
    family_size: int = 1,
) -> Comparison:
    """Test, effect sizes, intervals and power for group a vs group b (before the family correction).

    ``design`` is the cross-validation design when the runs come from k folds: tests and intervals of means
    then use the Nadeau–Bengio corrected variance (docs/statistics.md, Cross-validation).
    """
    alpha, level = settings.significance_level, settings.confidence_level
    key = f"{family.name}/{a.label}/{b.label}"
    # The test and the effect-size bootstrap draw from streams of their own: an exact test draws nothing and a
    # Monte Carlo one thousands of numbers, which must not shift the bootstrap's draws.
    boot = {"confidence_level": level, "n_resamples": settings.bootstrap_resamples,
            "rng": _rng(settings.seed, f"{key}/effect")}
    pairs = paired_values(a, b)
    tests = {"alpha": alpha, "n_resamples": settings.bootstrap_resamples, "rng": _rng(settings.seed, f"{key}/test"),
             "design": design}
    if pairs is not None:
        x, y = pairs
        result = hypothesis_tests.paired_test(x, y, **tests)
        difference_ci = intervals.mean_t_interval(x - y, design=design, confidence_level=level)
        d, g, r, r_ci = _paired_parts(x - y, boot)
    else:
        x, y = a.values, b.values
        result = hypothesis_tests.independent_test(x, y, labels=(a.label, b.label), **tests)
        difference_ci = intervals.difference_t_interval(x, y, design=design, confidence_level=level)
        d, g, r, r_ci = _independent_parts(x, y, boot)
    paired = pairs is not None
    mean_a = _number(np.mean(x)) if x.size else None
    mean_b = _number(np.mean(y)) if y.size else None
    difference = mean_a - mean_b if mean_a is not None and mean_b is not None else None
    direction = metric_direction(a.metric)
    d_value, g_value = _number(d), _number(g)
    n_b = None if paired else int(y.size)
    like_for_like = not family.across_objectives or is_like_for_like(a.metric) or same_evaluation(
        a.objective, b.objective
    )
    aso = aso_epsilons(a.values, b.values, direction, settings, family_size, key)
    return Comparison(
        family=family, group_a=a.label, group_b=b.label, n_a=int(x.size), n_b=int(y.size), paired=paired,
        direction=direction, mean_a=mean_a, mean_b=mean_b, mean_difference=difference,
        mean_difference_ci=difference_ci,
        test=_test_part(result, settings, aso),
        effect=EffectSizes(
            cohens_d=d_value, hedges_g=g_value, rank_biserial=_number(r), rank_biserial_ci=r_ci,
            effect_size_ci=intervals.standardized_effect_ci(d_value, n_a=int(x.size), n_b=n_b, confidence_level=level),
        ),
        power=_power_part(
            g_value, result, (int(x.size), int(y.size)), paired=paired, design=design, settings=settings,
        ),
        better_group=_better_group(direction, difference, a.label, b.label),
        like_for_like=like_for_like,
        caveat=None if like_for_like else cross_objective_caveat(a.objective, b.objective),
    )


def cross_objective_caveat(first: str, second: str) -> str:
    """Why two objectives' losses do not rank them: MLM vs CLM keeps its long-standing wording; a pair with a
    hybrid names the evaluation task of each side (:attr:`mlmclm.objectives.Objective.evaluation`)."""
    if {first, second} == {"mlm", "clm"} or not {first, second} <= set(OBJECTIVE_DEFINITIONS):
        return CROSS_OBJECTIVE_CAVEAT
    tasks = {name: OBJECTIVE_DEFINITIONS[name].evaluation.replace("_", " ") for name in (first, second)}
    return (
        f"{first} is scored in its {tasks[first]} view and {second} in its {tasks[second]} view "
        "(docs/training.md, Hybrid objectives), different prediction tasks, so this difference is not a "
        "like-for-like ranking of the objectives"
    )


def correct_families(
    comparisons: Sequence[Comparison], settings: StatisticsConfig, *, design: CrossValidationDesign | None
) -> list[Comparison]:
    """Adjust p-values within each family; decisions use the adjusted p-values. Power is added at the family
    level α/m too (m: the family's comparisons with a p-value), the level the correction asks of a comparison;
    ``design`` is the cross-validation design the comparisons were made under (None: none), required so that a
    CV grid's family figures never fall back to the permutation test's power unnoticed.

    A difference of means at the floating-point rounding level is never significant, whatever its p: the
    permutation test of exactly tied runs can still reject on rounding (docs/statistics.md, Floating-point
    noise). It keeps its p-values, so the family correction is the same as without this rule.
    """
    corrected = list(comparisons)
    for family in dict.fromkeys(comparison.family for comparison in comparisons):
        index = [i for i, comparison in enumerate(comparisons) if comparison.family == family]
        pvalues = [comparisons[i].test.p_value for i in index]
        adjusted = adjust_pvalues(pvalues, method=settings.correction, alpha=settings.significance_level)
        level = family_alpha(settings.correction, settings.significance_level, sum(p is not None for p in pvalues))
        for position, i in enumerate(index):
            comparison = comparisons[i]
            test = dataclasses.replace(
                comparison.test,
                p_adjusted=adjusted.p_adjusted[position],
                significant=bool(adjusted.reject[position]) and not comparison.noise_level,
            )
            power_record = _family_power(comparison, level, settings, design)
            corrected[i] = dataclasses.replace(comparison, test=test, power=power_record)
    return corrected


def _ordered(preferred: Sequence[str], present: Sequence[str]) -> tuple[str, ...]:
    """Names in the config's order first, then any others the runs contain, each once."""
    present_set = set(present)
    ordered = [name for name in preferred if name in present_set]
    ordered += [name for name in dict.fromkeys(present) if name not in ordered]
    return tuple(ordered)


def select_metrics(
    runs: Sequence[RunRecord], settings: StatisticsConfig, metrics: Sequence[str] | None
) -> tuple[str, ...]:
    """The metrics to analyse: those asked for, else primary + secondary + the shared probe and length metrics.

    By default only probe metrics that every completed run recorded are taken: views that exist for one
    objective only (the CLM last-token view) cannot be compared across objectives; ask for them by name.
    The probes' validity baselines (random init, control task) are context shown beside the scores, not
    outcomes, so they too are analysed only when asked for by name.
    """
    recorded = recorded_metrics(runs)
    if metrics:
        unknown = [metric for metric in metrics if metric not in recorded]
        if unknown:
            raise UserError(
                f"metric(s) {', '.join(unknown)} not recorded in any completed run; "
                f"recorded metrics: {', '.join(recorded) or 'none'}"
            )
        return tuple(dict.fromkeys(metrics))
    chosen = [settings.primary_metric, *settings.secondary_metrics]
    completed = [run.metrics for run in runs if run.completed]
    chosen += [
        metric
        for metric in recorded
        if (is_probe_metric(metric) or is_length_metric(metric))
        and not is_probe_baseline(metric)
        and all(metric in m for m in completed)
    ]
    return tuple(dict.fromkeys(chosen))


def family_pairs(
    family: Family,
    samples: Mapping[tuple[str, str], ConditionSample],
    objectives: Sequence[str],
    attentions: Sequence[str],
) -> list[tuple[ConditionSample, ConditionSample]]:
    """The (a, b) pairs of a family in report order: objective pairs within each mechanism (objectives in
    config order, so MLM is group a), or mechanism pairs within the family's objective."""
    if family.across_objectives:
        return [
            (samples[(first, attention)], samples[(second, attention)])
            for attention in attentions
            for first, second in itertools.combinations(
                [objective for objective in objectives if (objective, attention) in samples], 2
            )
        ]
    present = [attention for attention in attentions if (family.objective, attention) in samples]
    return [
        (samples[(family.objective, first)], samples[(family.objective, second)])
        for first, second in itertools.combinations(present, 2)
    ]


def metric_comparisons(
    metric: str,
    samples: Mapping[tuple[str, str], ConditionSample],
    objectives: Sequence[str],
    attentions: Sequence[str],
    settings: StatisticsConfig,
    design: CrossValidationDesign | None,
) -> list[Comparison]:
    """Every comparison of one metric, before correction: the cross-objective family, then each objective's
    mechanism family (one loop over the family scopes, so both kinds are built the same way)."""
    comparisons = []
    for family in [Family(metric)] + [Family(metric, objective) for objective in objectives]:
        pairs = family_pairs(family, samples, objectives, attentions)
        comparisons += [
            compare_samples(a, b, family=family, settings=settings, design=design, family_size=len(pairs))
            for a, b in pairs
        ]
    return comparisons


def mechanism_rankings(
    metric: str,
    samples: Mapping[tuple[str, str], ConditionSample],
    objectives: Sequence[str],
    attentions: Sequence[str],
    settings: StatisticsConfig,
    design: CrossValidationDesign | None,
) -> list[MechanismRanking]:
    """Friedman + post-hoc ranking of the mechanisms within each objective (ranking.py), where defined."""
    rankings = []
    for objective in objectives:
        present = [attention for attention in attentions if (objective, attention) in samples]
        ranking = rank_mechanisms(
            {attention: samples[(objective, attention)] for attention in present},
            metric=metric, objective=objective, direction=metric_direction(metric),
            alpha=settings.significance_level, cross_validation=design is not None,
        )
        if ranking is not None:
            rankings.append(ranking)
    return rankings


def checked_runs(raw_results: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The raw results' ``runs``, each with the objective and attention a run record needs (else UserError)."""
    runs = raw_results.get("runs")
    if not isinstance(runs, list) or not all(isinstance(run, Mapping) for run in runs):
        raise UserError(
            "raw results have no 'runs' list; pass the <experiment>_raw_results.json that the grid wrote"
        )
    for run in runs:
        if "objective" not in run or "attention" not in run:
            run_id = run.get("run_id", "?")
            raise UserError(f"run {run_id!r} in the raw results lacks 'objective' or 'attention'")
    return runs


def analyze(
    raw_results: Mapping[str, Any], settings: StatisticsConfig, metrics: Sequence[str] | None = None
) -> Analysis:
    """Summaries and corrected comparisons for every selected metric of a raw-results dict."""
    tasks = endpoint_tasks(raw_results)
    runs = with_primary_endpoint(final_runs(checked_runs(raw_results)), tasks)
    records = [RunRecord.from_json(run) for run in runs]
    design = cross_validation_design(raw_results, records)
    config = raw_results.get("config") or {}
    objectives = _ordered(config.get("objectives") or OBJECTIVES, [run.objective for run in records])
    attentions = _ordered(config.get("attention") or (), [run.attention for run in records])
    primary = resolve_primary(settings.primary_metric, recorded_metrics(records), tasks, objectives)
    chosen = select_metrics(records, dataclasses.replace(settings, primary_metric=primary.metric), metrics)

    summaries: list[ConditionSummary] = []
    comparisons: list[Comparison] = []
    rankings: list[MechanismRanking] = []
    for metric in chosen:
        samples = collect_samples(records, metric)
        summaries += [
            summarize_condition(samples[key], settings, design)
            for key in itertools.product(objectives, attentions)
            if key in samples
        ]
        comparisons += metric_comparisons(metric, samples, objectives, attentions, settings, design)
        rankings += mechanism_rankings(metric, samples, objectives, attentions, settings, design)
    unfinished = tuple(ExcludedRun(run.run_id, run.status, run.error or "") for run in records if not run.completed)
    iqm, improvements = probe_aggregates(records, objectives, attentions, settings, average_folds=design is not None)
    rates, divergence = analyze_divergence(
        records, objectives, attentions, confidence_level=settings.confidence_level,
        correction=settings.correction, alpha=settings.significance_level,
    )
    corrected = tuple(correct_families(comparisons, settings, design=design))
    families = dict.fromkeys(comparison.family for comparison in corrected)
    return Analysis(
        metrics=chosen,
        primary_metric=primary.metric,
        objectives=objectives,
        attentions=attentions,
        summaries=tuple(summaries),
        comparisons=corrected,
        unfinished_runs=unfinished,
        settings=settings,
        divergence_rates=rates,
        divergence_comparisons=divergence,
        cross_validation=design,
        rankings=tuple(rankings),
        probe_iqm=iqm,
        probe_improvement=improvements,
        probe_profiles=probe_profiles(records, objectives, attentions, settings, average_folds=design is not None),
        primary_endpoint=primary,
        family_roles={f: family_role(f, primary.metric, settings.secondary_metrics) for f in families},
        item_level=item_level_comparisons(records, objectives, attentions, settings),
        band_separations=band_separations(
            records, objectives, attentions, settings.confidence_level, average_folds=design is not None
        ),
        attainable_p=(
            *comparison_floors(corrected, settings.correction, settings.significance_level),
            *ranking_floors(rankings, settings.significance_level),
        ),
    )


def _probe_matrices(
    runs: Sequence[RunRecord], objectives: Sequence[str], attentions: Sequence[str], tasks: Sequence[str],
    score: str, average_folds: bool,
) -> dict[tuple[str, str], np.ndarray]:
    """(objective, attention) → runs × tasks probe scores (seeds × tasks, fold-averaged, under cross-validation)."""
    return {
        (objective, attention): probe_score_matrix(
            runs, objective, attention, tasks, score, average_folds=average_folds
        )
        for objective in objectives
        for attention in attentions
    }


def probe_aggregates(
    runs: Sequence[RunRecord],
    objectives: Sequence[str],
    attentions: Sequence[str],
    settings: StatisticsConfig,
    score: str = "accuracy",
    average_folds: bool = False,
) -> tuple[tuple[AggregateScore, ...], tuple[ImprovementProbability, ...]]:
    """IQM per condition and P(MLM > CLM) per mechanism over the probe tasks every run has (≥ 2 tasks); under
    cross-validation (``average_folds``) the rows are seeds averaged over folds (aggregate.probe_score_matrix)."""
    tasks = probe_tasks(runs, score)
    if len(tasks) < 2:
        return (), ()
    boot = {"confidence_level": settings.confidence_level, "n_resamples": settings.bootstrap_resamples}
    matrices = _probe_matrices(runs, objectives, attentions, tasks, score, average_folds)
    iqm = tuple(
        aggregate_iqm(
            condition_label(*key), matrix, tasks, score=score, rng=_rng(settings.seed, f"iqm/{key}"), **boot
        )
        for key, matrix in matrices.items()
        if matrix.shape[0]
    )
    improvements = tuple(
        probability_of_improvement(
            condition_label("mlm", attention), matrices[("mlm", attention)],
            condition_label("clm", attention), matrices[("clm", attention)], tasks, score=score,
            rng=_rng(settings.seed, f"improvement/{attention}"), **boot,
        )
        for attention in attentions
        if ("mlm", attention) in matrices and ("clm", attention) in matrices
        and matrices[("mlm", attention)].shape[0] and matrices[("clm", attention)].shape[0]
    )
    return iqm, improvements


def probe_profiles(
    runs: Sequence[RunRecord],
    objectives: Sequence[str],
    attentions: Sequence[str],
    settings: StatisticsConfig,
    score: str = "accuracy",
    average_folds: bool = False,
) -> tuple[PerformanceProfile, ...]:
    """Performance profile per condition with enough runs, on one threshold grid, over the probe tasks every run
    has (≥ 2 tasks, as for the IQM; seeds averaged over folds under cross-validation)."""
    tasks = probe_tasks(runs, score)
    if len(tasks) < 2:
        return ()
    matrices = _probe_matrices(runs, objectives, attentions, tasks, score, average_folds)
    thresholds = profile_thresholds(list(matrices.values()))
    found = (
        performance_profile(
            *key, condition_label(*key), matrix, tasks, thresholds, score=score,
            confidence_level=settings.confidence_level, n_resamples=settings.bootstrap_resamples,
            rng=_rng(settings.seed, f"profile/{key}"),
        )
        for key, matrix in matrices.items()
    )
    return tuple(profile for profile in found if profile is not None)


def item_level_comparisons(
    runs: Sequence[RunRecord],
    objectives: Sequence[str],
    attentions: Sequence[str],
    settings: StatisticsConfig,
) -> tuple[ItemLevelComparison, ...]:
    """MLM vs CLM per mechanism on each probe task's test items (item_level.py), corrected per task family."""
    if not {"mlm", "clm"} <= set(objectives):
        return ()
    completed = [run for run in runs if run.completed]
    tasks = list(dict.fromkeys(task for run in completed for task in (run.probe_items or {})))
    found: list[ItemLevelComparison] = []
    for task in tasks:
        family = f"item_level_{MLM_VS_CLM}/probe/{task}/accuracy"
        rows = []
        for attention in attentions:
            group = {
                objective: [run for run in completed if (run.objective, run.attention) == (objective, attention)]
                for objective in ("mlm", "clm")
            }
            if not group["mlm"] or not group["clm"]:
                continue
            result = compare_items(
                group["mlm"], group["clm"], task, family=family,
                labels=(condition_label("mlm", attention), condition_label("clm", attention)),
                confidence_level=settings.confidence_level, n_resamples=settings.bootstrap_resamples,
                rng=_rng(settings.seed, f"{family}/{attention}"),
            )
            if result is not None:
                rows.append(result)
        adjusted = adjust_pvalues(
            [row.p_value for row in rows], method=settings.correction, alpha=settings.significance_level
        )
        found += [
            dataclasses.replace(row, p_adjusted=adjusted.p_adjusted[i], significant=adjusted.reject[i])
            for i, row in enumerate(rows)
        ]
    return tuple(found)


def final_runs(runs: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The runs the statistics use: never a learning-rate sweep run (the grid keeps those in ``lr_sweep``;
    this guards hand-assembled files), whose seed and rate were chosen differently from the final seeds'."""
    return [run for run in runs if run.get("phase", "final") != "lr_sweep"]
