"""Run a whole experiment grid: plan, prepare the data once, execute, record every run as it finishes."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from mlmclm.config import ExperimentConfig
from mlmclm.data import prepare_data
from mlmclm.environment import collect_environment
from mlmclm.grid.executors import make_executor
from mlmclm.grid.invocations import start_invocation
from mlmclm.grid.lock import experiment_lock
from mlmclm.grid.plan import plan_runs
from mlmclm.grid.results import ResultsStore, check_run_directories, run_directory
from mlmclm.grid.worker import RunJob
from mlmclm.progress import GridProgress
from mlmclm.train.budget import compute_budget
from mlmclm.train.device import describe_device, resolve_device

log = logging.getLogger(__name__)


def run_grid(config: ExperimentConfig, command: str, quiet: bool = False) -> Path:
    """Train every planned run not yet finished and return the path of the raw-results file.

    The experiment's lock is held throughout, so a second invocation on the same output directory and
    experiment refuses instead of interleaving writes (:mod:`mlmclm.grid.lock`).
    """
    with experiment_lock(Path(config.output_dir), config.experiment_name, command):
        return _run_grid_locked(config, command, quiet)


def _run_grid_locked(config: ExperimentConfig, command: str, quiet: bool) -> Path:
    output_dir = Path(config.output_dir)
    specs = plan_runs(config)
    data = prepare_data(config)
    budget = compute_budget(config, data)
    device = resolve_device(config.device)
    header = {
        "command": command,
        "config": config.to_dict(),
        "environment": collect_environment(describe_device(device)),
        "data": data.manifest,
        "budget": budget.to_dict(),
    }
    check_run_directories(output_dir, specs, config.experiment_name)
    store = ResultsStore.open(output_dir, config.experiment_name, header, config.resume)
    if not config.resume:
        for spec in specs:
            shutil.rmtree(run_directory(output_dir, spec), ignore_errors=True)
    store.order = {spec.run_id: index for index, spec in enumerate(specs)}
    invocation = start_invocation(store.document, command)
    store.save()

    recorded = {run["run_id"] for run in store.document["runs"]}
    pending = [spec for spec in specs if store.finished(spec) is None]
    # runs a killed invocation finished on disk but never put in the aggregate count for this one
    recovered = [run["run_id"] for run in store.document["runs"] if run["run_id"] not in recorded]
    if recovered:
        invocation["runs_added"] += recovered
        store.save()
    log.info(
        "%d runs planned, %d already finished, %d to run; budget %d optimizer steps per run (%.2f epochs)",
        len(specs), len(specs) - len(pending), len(pending), budget.optimizer_steps, budget.epochs,
    )
    jobs = [
        RunJob(spec, run_directory(output_dir, spec), budget.optimizer_steps, store.fingerprint, config.experiment_name)
        for spec in pending
    ]
    progress = GridProgress(len(specs), len(specs) - len(pending), quiet)
    executor = make_executor(config, data, progress.run_callback)
    try:
        for record in executor.run(jobs):
            invocation["runs_added"].append(record["run_id"])
            store.record(record)
            progress.run_finished(record)
    finally:
        progress.close()
    return store.path
