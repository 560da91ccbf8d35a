"""Execute one planned run and turn its outcome into a run record (in-process or in a worker process).

Exceptions inside a run become a ``failed`` record so one crash never stops the grid; Ctrl-C and a full disk
are not caught, so the grid stops cleanly and the rerun continues from the last checkpoint.
"""

from __future__ import annotations

import logging
import traceback
from dataclasses import dataclass
from pathlib import Path

import torch

from mlmclm.atomic import DiskFullError, atomic_write_json
from mlmclm.components import config_from_dict
from mlmclm.config import ExperimentConfig
from mlmclm.data import ExperimentData, prepare_data
from mlmclm.data.tokenizer import TokenizerInfo
from mlmclm.grid.plan import LR_SWEEP, RunSpec
from mlmclm.grid.records import RunRecord
from mlmclm.grid.results import RUN_RECORD_NAME, claim_run_directory
from mlmclm.probe_metrics import is_probe_baseline
from mlmclm.probes import ProbeResults, ProbeTask, run_probes, run_probes_detailed
from mlmclm.probes import build_probe_tasks as build_tasks
from mlmclm.probes.curves import ProbeSchedule, isolated_rng, point_at, record_point
from mlmclm.train import distributed
from mlmclm.train.checkpoint import TrainState
from mlmclm.train.threads import limit_run_threads
from mlmclm.train.trainer import StepCallback, random_init_encoder, train_run

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunJob:
    spec: RunSpec
    run_dir: Path
    total_steps: int
    config_fingerprint: str
    experiment_name: str


@dataclass
class WorkerContext:
    """What every run of an experiment shares: the config, the prepared data and the probe tasks."""

    config: ExperimentConfig
    data: ExperimentData
    probe_tasks: list
    on_step_factory: object = None  # callable(spec, total_steps) -> StepCallback, for progress bars

    @classmethod
    def prepare(cls, config: ExperimentConfig, data: ExperimentData | None = None) -> WorkerContext:
        data = data or prepare_data(config)
        return cls(config, data, build_probe_tasks(config, data))


def build_probe_tasks(config: ExperimentConfig, data: ExperimentData) -> list:
    """Probe tasks from held-out text only: the test split, plus validation when it is never trained on."""
    if not config.probes.enabled:
        return []
    heldout = data.texts("test") + ([] if config.cross_validation else data.texts("validation"))
    training = data.texts("train") + (data.texts("validation") if config.cross_validation else [])
    return build_tasks(heldout, training, config.probes)


@dataclass(frozen=True)
class RunProbes:
    """One run's probes, which the trainer calls at ``probes.eval_every`` checkpoints (the probe curves,
    docs/probes.md) and once training ends (the metrics, with their validity baselines and per-item
    correctness); :class:`mlmclm.train.protocols.TrainingProbes` is what the trainer expects of them."""

    tasks: list[ProbeTask]
    config: ExperimentConfig
    spec: RunSpec
    tokenizer: TokenizerInfo  # the run's fold's
    schedule: ProbeSchedule | None  # None: only the end is probed

    @classmethod
    def for_run(
        cls, config: ExperimentConfig, data: ExperimentData, spec: RunSpec, tasks: list[ProbeTask]
    ) -> RunProbes | None:
        """None when there is nothing to probe (probes disabled, or a learning-rate sweep run)."""
        if not tasks:
            return None
        every = config.probes.eval_every
        schedule = None if every is None else ProbeSchedule(every, config.probes.eval_every_unit)
        return cls(tasks, config, spec, data.fold(spec.fold).tokenizer, schedule)

    def due(self, step: int, total_steps: int, tokens_before: int, tokens_after: int) -> bool:
        return self.schedule is not None and self.schedule.due(step, total_steps, tokens_before, tokens_after)

    def at_checkpoint(self, model: torch.nn.Module, state: TrainState, device: torch.device) -> None:
        with isolated_rng(device):  # the run's dropout draws stay those of a run without probe curves
            scores = run_probes(model, self.tokenizer.tokenizer, self.tasks, self.config.probes, device)
        record_point(state.curves, state.step, state.tokens_seen, scores)

    def at_end(self, model: torch.nn.Module, state: TrainState, device: torch.device) -> ProbeResults:
        """The final probes, beside a random-init encoder in linear mode; the final point joins the curve when
        the schedule did not already probe the last step (the probes are deterministic: the values agree)."""
        linear = self.config.probes.mode == "linear"
        random_init = random_init_encoder(self.config, self.spec, self.tokenizer, device) if linear else None
        probes = run_probes_detailed(
            model, self.tokenizer.tokenizer, self.tasks, self.config.probes, device, random_init=random_init
        )
        if self.schedule is not None and point_at(state.curves, state.step) is None:
            trained = {name: value for name, value in probes.metrics.items() if not is_probe_baseline(name)}
            record_point(state.curves, state.step, state.tokens_seen, trained)
        return probes


_PROCESS_CONTEXT: WorkerContext | None = None


def init_worker_process(config_dict: dict, threads: int) -> None:
    """Pool initializer: limit threads and prepare the data once per worker (the token cache is reused)."""
    global _PROCESS_CONTEXT
    limit_run_threads(threads)
    config = config_from_dict(config_dict)
    if _PROCESS_CONTEXT is None or _PROCESS_CONTEXT.config != config:  # Ray reuses worker processes
        _PROCESS_CONTEXT = WorkerContext.prepare(config)


def init_worker_with_data(config_dict: dict, data: ExperimentData, threads: int) -> None:
    """Like :func:`init_worker_process`, but with data the driver prepared (Ray's object store): no worker
    reads the corpus or the token cache itself."""
    global _PROCESS_CONTEXT
    limit_run_threads(threads)
    config = config_from_dict(config_dict)
    if _PROCESS_CONTEXT is None or _PROCESS_CONTEXT.config != config:  # Ray reuses worker processes
        _PROCESS_CONTEXT = WorkerContext.prepare(config, data)


def execute_run(job: RunJob, context: WorkerContext | None = None) -> RunRecord:
    """Train ``job`` and write its record atomically to ``<run_dir>/metrics.json``; return the record."""
    context = context or _PROCESS_CONTEXT
    if context is None:
        raise RuntimeError("execute_run needs a WorkerContext (call init_worker_process first)")
    spec, run_dir = job.spec, job.run_dir
    if not distributed.current().is_main:
        return _execute_on_other_rank(job, context)
    provenance = context.data.provenance(spec.fold)  # data_hash, tokenizer_hash: what this run trains on
    claim_run_directory(run_dir, job.experiment_name, job.config_fingerprint, provenance)
    distributed.barrier()  # the directory is claimed (and cleaned) before any rank looks for a checkpoint
    for leftover in run_dir.glob(".*.tmp"):  # atomic writes of a killed earlier attempt at this run
        leftover.unlink(missing_ok=True)
    handler = logging.FileHandler(run_dir / "run.log", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger().addHandler(handler)
    planned = {"model_dir": str(run_dir), "config_fingerprint": job.config_fingerprint, **provenance}
    try:
        on_step: StepCallback | None = (
            context.on_step_factory(spec, job.total_steps) if context.on_step_factory else None
        )
        # A sweep run only chooses the learning rate (by validation loss), so it skips the probes.
        probe_tasks = [] if spec.phase == LR_SWEEP else context.probe_tasks
        probes = RunProbes.for_run(context.config, context.data, spec, probe_tasks)
        outcome = train_run(spec, context.config, context.data, run_dir, job.total_steps, probes, on_step)
        record = RunRecord.planned(
            spec, **planned, status=outcome.status, metrics=outcome.metrics, curves=outcome.curves,
            error=outcome.error, **outcome.extra,
        )
    except DiskFullError:
        raise  # not the run's fault: stop the grid with one clear line; a rerun continues from here
    except Exception as exc:  # one crashed run (e.g. out of memory) is recorded and the grid goes on
        log.error("%s failed: %s\n%s", spec.run_id, exc, traceback.format_exc())
        record = RunRecord.planned(spec, **planned, status="failed", error=f"{type(exc).__name__}: {exc}")
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()
    atomic_write_json(run_dir / RUN_RECORD_NAME, record.to_json())
    return record


def _execute_on_other_rank(job: RunJob, context: WorkerContext) -> RunRecord:
    """A data-parallel rank other than 0: train alongside rank 0 and write nothing; rank 0 records the run.

    An exception is not caught here: one rank failing alone would leave the others waiting in a collective,
    so the job stops and the rerun resumes from the last checkpoint.
    """
    distributed.barrier()  # rank 0 has claimed the run directory
    outcome = train_run(job.spec, context.config, context.data, job.run_dir, job.total_steps, None, None)
    return RunRecord.planned(job.spec, status=outcome.status)
