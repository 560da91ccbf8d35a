"""What a report must say before any number: whether the experiment can support conclusions at all.

Three checks, each a pure function of the raw results or the :class:`~mlmclm.analysis.Analysis`:

- **Smoke test.** A run of the ``--quick-test`` preset (config ``smoke_test: true``), or any experiment whose
  model or budget is below :data:`MIN_HIDDEN_SIZE` / :data:`MIN_OPTIMIZER_STEPS`, checks the pipeline, not
  the science. The thresholds are deliberately low: BERT-Tiny (2 layers, hidden size 128; Turc et al., 2019,
  "Well-Read Students Learn Better", arXiv:1908.08962) is the smallest published BERT, and under 1,000
  optimizer steps a BERT-style model is still in the warm-up regime of its schedule.
- **Nothing learned.** When every completed run of an objective (all mechanisms, all seeds) has the same value
  of a metric up to :data:`NOISE_RTOL`, the models make the same predictions whatever they are: for a token
  accuracy this is what a model that predicts the most frequent tokens (the unigram distribution) scores.
- **No better than one token.** When every completed run of an objective has a validation accuracy no higher
  than ``val_majority_token_accuracy`` (predicting the most frequent target token everywhere, scored on the
  same positions; :func:`mlmclm.train.evaluate.majority_token_accuracy`), no run learned more than token
  frequencies, however much the values differ.
- **Floating-point noise.** A difference of means at the rounding level of the means (``t = 1.2e-15``) is no
  difference; its test statistic and p-value describe rounding, not the runs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mlmclm.analysis import Analysis, Comparison
from mlmclm.analysis.comparison import NOISE_RTOL
from mlmclm.analysis.conditions import is_like_for_like, is_probe_metric
from mlmclm.objectives import OBJECTIVES
from mlmclm.report.labels import fmt
from mlmclm.report.procedures import attainable_lines

MIN_HIDDEN_SIZE = 128
MIN_OPTIMIZER_STEPS = 1000
# A statistic or standardised effect below these is zero: a real one rounds to 0 at any printed precision.
STATISTIC_NOISE = 1e-9
EFFECT_NOISE = 1e-6


def smoke_test_reasons(raw: Mapping[str, Any]) -> tuple[str, ...]:
    """Why the raw results cannot support conclusions about the objectives; empty when nothing says so."""
    config = raw.get("config") or {}
    model = config.get("model") or {}
    budget = raw.get("budget") or {}
    reasons = []
    if config.get("smoke_test"):
        reasons.append("it was run as a smoke test (the `--quick-test` preset, `smoke_test: true`)")
    hidden, layers = model.get("hidden_size"), model.get("num_layers")
    if isinstance(hidden, int) and hidden < MIN_HIDDEN_SIZE:
        reasons.append(
            f"the model is tiny ({layers} layers, hidden size {hidden}; below BERT-Tiny's {MIN_HIDDEN_SIZE})"
        )
    steps = budget.get("optimizer_steps")
    if isinstance(steps, int) and steps < MIN_OPTIMIZER_STEPS:
        reasons.append(f"training is short ({steps} optimizer steps per run, fewer than {MIN_OPTIMIZER_STEPS:,})")
    return tuple(reasons)


@dataclass(frozen=True)
class ConstantMetric:
    """A metric whose value is the same in every completed run of one objective (up to :data:`NOISE_RTOL`)."""

    metric: str
    objective: str
    value: float
    spread: float  # max - min over the runs
    n_runs: int
    n_conditions: int


BASELINE_METRIC = "val_majority_token_accuracy"


@dataclass(frozen=True)
class UnigramLevelAccuracy:
    """An objective whose every completed run scores no better than predicting its most frequent token."""

    objective: str
    n_runs: int
    best_accuracy: float  # the highest val_accuracy of any run
    baseline: float  # the highest majority-token accuracy of those runs' validation batches


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def unigram_level_objectives(raw: Mapping[str, Any]) -> list[UnigramLevelAccuracy]:
    """Objectives whose runs all have ``val_accuracy <= val_majority_token_accuracy`` (up to rounding)."""
    found = []
    for objective in OBJECTIVES:
        pairs = [
            (run["metrics"]["val_accuracy"], run["metrics"][BASELINE_METRIC])
            for run in raw.get("runs") or []
            if run.get("objective") == objective
            and run.get("status") == "completed"
            and all(_is_number((run.get("metrics") or {}).get(key)) for key in ("val_accuracy", BASELINE_METRIC))
        ]
        if pairs and all(accuracy <= baseline * (1 + NOISE_RTOL) for accuracy, baseline in pairs):
            best, baseline = max(a for a, _ in pairs), max(b for _, b in pairs)
            found.append(UnigramLevelAccuracy(objective, len(pairs), best, baseline))
    return found


def _is_token_accuracy(metric: str) -> bool:
    return "accuracy" in metric and not is_probe_metric(metric)


def constant_metrics(analysis: Analysis) -> list[ConstantMetric]:
    """Metrics identical across all runs of an objective: the models did not differ, so nothing was learned
    that could tell mechanisms or seeds apart. Cost metrics (time, memory, parameter counts) are skipped:
    they may legitimately be equal."""
    found = []
    for metric in analysis.metrics:
        if is_like_for_like(metric) and not is_probe_metric(metric):
            continue
        for objective in analysis.objectives:
            summaries = [s for s in analysis.summaries_for(metric) if s.objective == objective]
            values = [obs.value for s in summaries for obs in s.observations]
            if len(values) < 2:
                continue
            spread = max(values) - min(values)
            if spread <= NOISE_RTOL * max(1.0, max(abs(v) for v in values)):
                found.append(ConstantMetric(metric, objective, values[0], spread, len(values), len(summaries)))
    return found


def is_noise_level(comparison: Comparison) -> bool:
    """True when a − b is at the floating-point rounding level of the means: no difference at all."""
    return comparison.noise_level


def is_void_comparison(comparison: Comparison) -> bool:
    """A noise-level difference between runs that are themselves equal up to rounding: the test statistic, p and
    the effect sizes are then rounding divided by rounding and say nothing. Told apart from a genuine tie of
    means (runs that vary but average the same, e.g. 14/36 on both sides) by Cohen's d, which is ~0 for a tie
    and arbitrary (or undefined) for rounding over rounding."""
    d = comparison.effect.cohens_d
    return is_noise_level(comparison) and (d is None or abs(d) >= EFFECT_NOISE)


def fmt_statistic(value: float | None, digits: int = 4) -> str:
    """A test statistic or effect size, ``0`` at floating-point noise (``t = 1.2e-15`` is t = 0)."""
    return "0" if value is not None and abs(value) < STATISTIC_NOISE else fmt(value, digits)


def fmt_spread(value: float | None, scale: float | None, digits: int = 3) -> str:
    """An SD or variance as text, ``0`` when it is rounding noise next to ``scale`` (the mean, or the mean
    squared for a variance): an SD of 1e-17 around 0.3 is no spread, not a tiny one."""
    if value is not None and scale is not None and abs(value) <= NOISE_RTOL * abs(scale):
        return "0"
    return fmt(value, digits)


def banner_lines(analysis: Analysis, raw: Mapping[str, Any]) -> list[str]:
    """The warnings that open the report (empty when there are none)."""
    lines: list[str] = []
    reasons = smoke_test_reasons(raw)
    if reasons:
        lines += [
            "> ⚠ **Smoke test: these numbers support no conclusion about MLM, CLM or the mechanisms.** "
            f"This experiment checks that the pipeline runs end to end: {'; '.join(reasons)}. Its models are "
            "too small and too briefly trained for their differences to mean anything; run the default "
            "experiment (`python train.py`) or your own full-size config for results.",
            "",
        ]
    unigram_level = unigram_level_objectives(raw)
    for level in unigram_level:
        lines += [
            f"> ⚠ **No {level.objective.upper()} run beats predicting its most frequent token:** in all "
            f"{level.n_runs} completed runs `val_accuracy` (at best {level.best_accuracy:.4g}) does not exceed "
            f"`{BASELINE_METRIC}` ({level.baseline:.4g}), the accuracy of predicting one token everywhere. "
            "These models have learned nothing beyond token frequencies.",
            "",
        ]
    said = {(level.objective, "val_accuracy") for level in unigram_level}  # the stronger statement is made
    for constant in [c for c in constant_metrics(analysis) if (c.objective, c.metric) not in said]:
        what = (
            "the models score exactly alike whatever their mechanism or seed, the signature of models that all "
            "predict the same most frequent tokens: they have learned nothing beyond token frequencies"
            if _is_token_accuracy(constant.metric)
            else "the runs do not differ on it at all"
        )
        lines += [
            f"> ⚠ **{constant.objective.upper()} `{constant.metric}` is identical in all {constant.n_runs} "
            f"completed runs** ({constant.n_conditions} conditions; value {constant.value:.6g}, spread "
            f"{constant.spread:.1g} ≤ {NOISE_RTOL:g} relative): {what}. Comparisons on this metric say "
            "nothing.",
            "",
        ]
    return lines + attainable_lines(analysis)
