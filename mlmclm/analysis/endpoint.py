"""The one declared primary endpoint for MLM vs CLM, and the role (primary/secondary/exploratory) of every family.

Why: with one comparison family per probe metric a reader can pick the probe that agrees with them, and the
old default primary metric (validation loss) scores different tasks under the two objectives. The primary
endpoint is therefore one like-for-like number per run, declared before the run
(``statistics.primary_metric``; docs/statistics.md):

    probe_accuracy_gain = (1 / K) Σ_k [ accuracy_k − random_init_accuracy_k ]

over the K generated probe tasks of ``probes.tasks`` (user ``--probe-data`` tasks are not part of it), where
``random_init_accuracy_k`` is the same linear probe on the run's untrained encoder (docs/probes.md). It is
the accuracy that training added, which neither objective's loss defines. Its MLM-vs-CLM comparisons form
the single *primary* family; ``statistics.secondary_metrics`` families are *secondary*; every other family
is *exploratory* (hypothesis-generating, never a headline; cf. the confirmatory/exploratory split of
Wagenmakers et al., 2012, "An agenda for purely confirmatory research", Perspect. Psychol. Sci.).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mlmclm.analysis.conditions import is_like_for_like
from mlmclm.analysis.families import Family

PRIMARY_ENDPOINT = "probe_accuracy_gain"
FALLBACK_PRIMARY = "val_loss"
DEFAULT_PROBE_TASKS = ("bigram_shift", "word_order", "sentence_length", "word_content", "coherence")
ROLES = ("primary", "secondary", "exploratory")


@dataclass(frozen=True)
class PrimaryEndpoint:
    """What the analysis treats as primary, and why when it is not what was declared."""

    declared: str  # statistics.primary_metric as configured
    metric: str  # the metric actually analysed as primary
    tasks: tuple[str, ...]  # the probe tasks averaged (the default endpoint only)
    like_for_like: bool  # False: an MLM-vs-CLM difference in it does not rank the objectives
    fallback_reason: str | None  # set when ``metric`` differs from ``declared``
    warning: str | None  # set when the primary metric is not like for like across objectives


def endpoint_tasks(raw_results: Mapping[str, Any]) -> tuple[str, ...]:
    """The generated probe tasks the experiment declared (``config.probes.tasks``), in config order."""
    probes = (raw_results.get("config") or {}).get("probes") or {}
    tasks = probes.get("tasks")
    return tuple(tasks) if isinstance(tasks, list) else DEFAULT_PROBE_TASKS


def primary_endpoint_value(metrics: Mapping[str, Any], tasks: Sequence[str]) -> float | None:
    """The mean over ``tasks`` of probe accuracy minus random-init accuracy; None when any part is missing."""
    gains = []
    for task in tasks:
        accuracy = metrics.get(f"probe/{task}/accuracy")
        baseline = metrics.get(f"probe/{task}/random_init_accuracy")
        if not all(isinstance(value, (int, float)) and not isinstance(value, bool) for value in (accuracy, baseline)):
            return None
        gains.append(float(accuracy) - float(baseline))
    return sum(gains) / len(gains) if gains else None


def with_primary_endpoint(runs: Iterable[Mapping[str, Any]], tasks: Sequence[str]) -> list[dict[str, Any]]:
    """Copies of ``runs`` whose completed runs carry ``PRIMARY_ENDPOINT`` among their metrics when computable."""
    out = []
    for run in runs:
        copy = dict(run)
        metrics = run.get("metrics")
        if run.get("status") == "completed" and isinstance(metrics, Mapping):
            value = primary_endpoint_value(metrics, tasks)
            if value is not None:
                copy["metrics"] = {**metrics, PRIMARY_ENDPOINT: value}
        out.append(copy)
    return out


def resolve_primary(
    declared: str, recorded: Sequence[str], tasks: Sequence[str], objectives: Sequence[str]
) -> PrimaryEndpoint:
    """The primary metric to analyse: the declared one, or an explicit fallback when it was not recorded.

    The default endpoint needs the probes' random-init baselines; with ``--no-probes`` (or finetune-mode
    probes, or older runs) it is unavailable and the analysis falls back to ``val_loss``, saying so.
    """
    metric, reason = declared, None
    if declared not in recorded:
        metric = FALLBACK_PRIMARY
        why = (
            "the runs have no probe random-init baselines (probes disabled with --no-probes, finetune-mode "
            "probes, or runs recorded before the baselines existed)"
            if declared == PRIMARY_ENDPOINT
            else "no completed run recorded it"
        )
        reason = f"the declared primary metric `{declared}` is unavailable: {why}; falling back to `{metric}`"
    like = is_like_for_like(metric)
    warning = None
    if not like and {"mlm", "clm"} <= set(objectives):
        warning = (
            f"the primary metric `{metric}` is not like for like across objectives (MLM and CLM score "
            "different prediction tasks), so its MLM-vs-CLM family cannot answer which objective is better"
        )
    return PrimaryEndpoint(declared, metric, tuple(tasks) if metric == PRIMARY_ENDPOINT else (), like, reason, warning)


def family_role(family: Family, primary_metric: str, secondary_metrics: Sequence[str]) -> str:
    """``primary`` for the MLM-vs-CLM family of the primary metric, ``secondary`` for any family of a
    secondary metric (and for the primary metric's within-objective families), else ``exploratory``."""
    if family.metric == primary_metric:
        return "primary" if family.across_objectives else "secondary"
    if family.metric in secondary_metrics:
        return "secondary"
    return "exploratory"
