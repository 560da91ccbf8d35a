"""What each metric means: the one table that the statistics, the report and the plots all read.

Metric names are open-ended (``probe/<task>/<score>``, ``eval_len<k>/loss``), so the table is a list of rules
matched against the name; the first rule whose fragment occurs in the name sets the direction, and the
first whose fragment matches sets the unit. Whether a metric is *like for like* across objectives (MLM and
CLM scored on the same task, so a difference can rank them) is a property of the metric, here, and nowhere
else: probes and cost metrics are; losses and token accuracies score each objective's own prediction task.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mlmclm.probe_metrics import PROBE_BASELINES, PROBE_PREFIX  # written by the probes, read here

# Fragments of a metric name that fix which way is better; the first matching rule wins.
_HIGHER_IS_BETTER = ("accuracy", "f1", "tokens_per_s")
_LOWER_IS_BETTER = ("loss", "perplexity", "convergence_step", "time", "memory")
# Metrics that mean the same thing under both objectives (everything else scores the objective's own task).
_OBJECTIVE_NEUTRAL = ("train_time_s", "tokens_per_s", "peak_memory_mb", "num_params", "probe_accuracy_gain")
# Units by name fragment, first match wins (``tokens_per_s`` before ``time_s`` would not matter: no overlap).
_UNITS = (
    ("loss", "nats per predicted token"),
    ("perplexity", "per token"),
    ("accuracy", "fraction correct"),
    ("f1", "macro F1"),
    ("convergence_step", "optimizer steps"),
    ("time_s", "seconds"),
    ("tokens_per_s", "tokens / second"),
    ("memory_mb", "MB"),
    ("num_params", "parameters"),
)
_LENGTH = re.compile(r"eval_len(\d+)/(\w+)")
_DIRECTION_WORDS = {"lower": "lower is better", "higher": "higher is better", None: "no preferred direction"}


@dataclass(frozen=True)
class MetricInfo:
    """Everything the analysis and the report need to know about one metric name."""

    name: str
    direction: str | None  # "higher" | "lower" | None (no preferred direction)
    unit: str | None
    like_for_like: bool  # same task under every objective, so a cross-objective difference ranks them
    probe: bool  # a downstream probe score, ``probe/<task>/<score>``
    probe_baseline: bool  # a probe-validity baseline: shown beside the scores, not an outcome by default
    length: bool  # ``eval_len<k>/<score>``: scored at k x the training length (docs/training.md)
    display_name: str  # ``val_loss`` -> ``validation loss (nats per predicted token)``

    @property
    def direction_words(self) -> str:
        return _DIRECTION_WORDS[self.direction]


def _direction(name: str) -> str | None:
    lowered = name.lower()
    if any(token in lowered for token in _HIGHER_IS_BETTER):
        return "higher"
    if any(token in lowered for token in _LOWER_IS_BETTER):
        return "lower"
    return None


def _display_name(name: str, unit: str | None) -> str:
    length = _LENGTH.fullmatch(name)
    if length:
        words = f"{length.group(2)} at {length.group(1)}x the training length"
    elif name.startswith(PROBE_PREFIX):
        _, task, score = name.split("/", 2)
        words = f"probe {task.replace('_', ' ')} {score}"
    else:
        words = name.replace("val_", "validation ").replace("test_", "test ").replace("_", " ")
    return f"{words} ({unit})" if unit else words


def metric_info(name: str) -> MetricInfo:
    """The table's entry for ``name``."""
    probe = name.startswith(PROBE_PREFIX)
    unit = next((unit for fragment, unit in _UNITS if fragment in name), None)
    return MetricInfo(
        name=name,
        direction=_direction(name),
        unit=unit,
        like_for_like=probe or name in _OBJECTIVE_NEUTRAL,
        probe=probe,
        probe_baseline=probe and name.rsplit("/", 1)[-1] in PROBE_BASELINES,
        length=_LENGTH.fullmatch(name) is not None,
        display_name=_display_name(name, unit),
    )
