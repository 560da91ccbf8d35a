"""Run a whole experiment grid: plan, prepare the data once, execute, record every run as it finishes."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from mlmclm.components import check_plan
from mlmclm.config import ExperimentConfig
from mlmclm.data import prepare_data
from mlmclm.environment import collect_environment
from mlmclm.errors import UserError
from mlmclm.grid.executors import make_executor
from mlmclm.grid.invocations import start_invocation
from mlmclm.grid.lock import experiment_lock
from mlmclm.grid.lr_sweep import choose_learning_rates
from mlmclm.grid.plan import RunSpec, plan_runs, plan_sweep_runs
from mlmclm.grid.results import ResultsStore, check_run_directories, load_raw_results, raw_results_path, run_directory
from mlmclm.grid.worker import RunJob, build_probe_tasks
from mlmclm.progress import GridProgress
from mlmclm.train import distributed
from mlmclm.train.budget import compute_budget
from mlmclm.train.device import describe_device, resolve_device

log = logging.getLogger(__name__)


def run_grid(config: ExperimentConfig, command: str, quiet: bool = False) -> Path:
    """Train every planned run not yet finished and return the path of the raw-results file.

    With ``training.lr_sweep`` the sweep runs train first; each condition's final runs then use its chosen
    rate (:mod:`mlmclm.grid.lr_sweep`), and a condition whose sweep is undecided waits for a rerun.

    Under torchrun every rank calls this; rank 0 alone prepares the caches first, owns the results store
    and decides which runs are pending, and the other ranks receive its job lists (docs/scaling.md).

    Rank 0 holds the experiment's lock throughout, so a second invocation on the same output directory and
    experiment refuses instead of interleaving writes (:mod:`mlmclm.grid.lock`).
    """
    check_plan(config)  # a config built by hand (the API) gets the same name checks as the CLI's
    ctx = distributed.current()
    output_dir = Path(config.output_dir)
    if config.resume:  # on every rank, so a refused resume stops all of them before any collective
        _check_world_size(raw_results_path(output_dir, config.experiment_name), ctx.world_size)
    if not ctx.is_main:
        return _follow_main(config)
    with experiment_lock(output_dir, config.experiment_name, command):
        return _run_grid_locked(config, command, quiet)


def _run_grid_locked(config: ExperimentConfig, command: str, quiet: bool) -> Path:
    ctx = distributed.current()
    output_dir = Path(config.output_dir)
    sweep_specs = plan_sweep_runs(config)
    specs = plan_runs(config)
    data = prepare_data(config)
    distributed.barrier()  # the caches exist now; the other ranks read them instead of rebuilding them
    budget = compute_budget(config, data, ctx.world_size)
    device = resolve_device(config.device)
    header = {
        "command": command,
        "config": config.to_dict(),
        "environment": collect_environment(describe_device(device)),
        "data": data.manifest,
        "budget": budget.to_dict(),
        # chance levels for the report's probe plots (the tasks are rebuilt identically in every worker)
        "probe_tasks": {task.name: task.describe() for task in build_probe_tasks(config, data)},
    }
    check_run_directories(output_dir, sweep_specs + specs, config.experiment_name)
    store = ResultsStore.open(output_dir, config.experiment_name, header, config.resume, data.provenance)
    if not config.resume:
        for spec in sweep_specs + specs:
            shutil.rmtree(run_directory(output_dir, spec), ignore_errors=True)
    store.order = {spec.run_id: index for index, spec in enumerate(sweep_specs + specs)}
    invocation = start_invocation(store.document, command)
    store.save()

    recorded = {run["run_id"] for run in store.document["runs"]}
    pending_sweep = [spec for spec in sweep_specs if store.finished(spec) is None]
    specs = _final_specs(config, store, warn=False)  # conditions whose sweep finished earlier are decided
    pending = [spec for spec in specs if spec.learning_rate is None or store.finished(spec) is None]
    # runs a killed invocation finished on disk but never put in the aggregate count for this one
    recovered = [run["run_id"] for run in store.document["runs"] if run["run_id"] not in recorded]
    if recovered:
        invocation["runs_added"] += recovered
        store.save()
    planned = len(sweep_specs) + len(specs)
    log.info(
        "%d runs planned (%d of them learning-rate sweep runs), %d already finished, %d to run; budget %d "
        "optimizer steps per run (%.2f epochs)",
        planned, len(sweep_specs), planned - len(pending_sweep) - len(pending), len(pending_sweep) + len(pending),
        budget.optimizer_steps, budget.epochs,
    )
    progress = GridProgress(planned, planned - len(pending_sweep) - len(pending), quiet)
    executor = make_executor(config, data, progress.run_callback)
    try:
        jobs = distributed.broadcast_from_main(_jobs(pending_sweep, output_dir, budget.optimizer_steps, store, config))
        _execute(executor, jobs, store, progress, invocation)
        if sweep_specs:
            specs = _final_specs(config, store)
            pending = [spec for spec in specs if spec.learning_rate is not None and store.finished(spec) is None]
        jobs = distributed.broadcast_from_main(_jobs(pending, output_dir, budget.optimizer_steps, store, config))
        _execute(executor, jobs, store, progress, invocation)
    finally:
        progress.close()
    return store.path


def _follow_main(config: ExperimentConfig) -> Path:
    """A rank other than 0: train the jobs rank 0 broadcasts, in the same order, and write nothing."""
    distributed.barrier()  # rank 0 has prepared the token cache and tokenizer
    data = prepare_data(config)
    executor = make_executor(config, data)
    for _ in range(2):  # the sweep runs, then the final runs (either list may be empty)
        jobs = distributed.broadcast_from_main(None)
        for _record in executor.run(jobs):
            pass
    return raw_results_path(Path(config.output_dir), config.experiment_name)


def _check_world_size(path: Path, world_size: int) -> None:
    """Finished runs and new ones must share the global batch, so a resume keeps the world size."""
    if not path.is_file():
        return
    previous = load_raw_results(path).get("budget", {}).get("world_size", 1)
    if previous != world_size:
        raise UserError(
            f"{path} was trained on {previous} data-parallel process(es) and this job has {world_size}: "
            "resume with the same torchrun world size (the global batch must stay equal), or use --overwrite"
        )


def _final_specs(config: ExperimentConfig, store: ResultsStore, warn: bool = True) -> list[RunSpec]:
    """The final runs, each with its rate: the configured one, or its condition's sweep choice (recorded)."""
    if not config.training.lr_sweep:
        return plan_runs(config)
    sweep = choose_learning_rates(config, store.sweep_records())
    store.set_lr_sweep(sweep.to_json())
    for choice in sweep.choices:
        if warn and choice.chosen_learning_rate is None:
            log.warning("%s: no learning rate yet (%s); its final runs wait", choice.condition, choice.reason)
    return plan_runs(config, sweep.chosen_rates())


def _jobs(specs: list[RunSpec], output_dir: Path, steps: int, store: ResultsStore, config) -> list[RunJob]:
    return [
        RunJob(spec, run_directory(output_dir, spec), steps, store.fingerprint, config.experiment_name)
        for spec in specs
    ]


def _execute(
    executor, jobs: list[RunJob], store: ResultsStore, progress: GridProgress, invocation: dict
) -> None:
    if not jobs:
        return
    for record in executor.run(jobs):
        invocation["runs_added"].append(record.run_id)
        store.record(record.to_json())
        progress.run_finished(record)
