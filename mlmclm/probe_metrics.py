"""The names of probe metrics in a run record: ``probe/<task>/<name>`` (docs/probes.md).

The probes write them (:mod:`mlmclm.probes.run`); the statistics and the report read them. They live in this
module, which imports nothing from the package (as :mod:`mlmclm.objectives`), so both sides share one
definition while ``probes/`` imports nothing from ``analysis/`` and ``analysis/`` loads neither the probes
nor torch.
"""

from __future__ import annotations

PROBE_PREFIX = "probe/"
PROBE_BASELINES = ("random_init_accuracy", "gain_over_random_init", "control_accuracy", "selectivity")
"""Per-task probe-validity baselines (``probe/<task>/<name>``, docs/probes.md): context, not outcomes."""


def is_probe_metric(metric: str) -> bool:
    return metric.startswith(PROBE_PREFIX)


def is_probe_baseline(metric: str) -> bool:
    """True for ``probe/<task>/<baseline>``: shown beside the scores, not tested as outcomes by default."""
    return is_probe_metric(metric) and metric.rsplit("/", 1)[-1] in PROBE_BASELINES
