"""Objective-neutral downstream probes: the common yardstick for MLM- and CLM-trained encoders.

``build_probe_tasks`` makes fixed probe splits from held-out text (plus ``--probe-data`` files) once per
experiment; ``run_probes`` scores each trained encoder on them. See docs/probes.md.
"""

from mlmclm.probes.examples import ProbeExample, ProbeTask
from mlmclm.probes.run import ProbeResults, probe_metric_names, run_probes, run_probes_detailed
from mlmclm.probes.tasks import PROBE_TASKS, build_probe_tasks
from mlmclm.probes.user_tasks import load_user_probe_task, task_name_from_path

__all__ = [
    "PROBE_TASKS",
    "ProbeResults",
    "ProbeExample",
    "ProbeTask",
    "build_probe_tasks",
    "load_user_probe_task",
    "probe_metric_names",
    "run_probes",
    "run_probes_detailed",
    "task_name_from_path",
]
