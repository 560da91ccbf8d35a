"""How runs are executed: in this process, in a pool of local processes, or on a Ray cluster.

An executor takes run jobs and yields run records as they finish; the trainer knows nothing about it,
so a new backend is one class here.
"""

from __future__ import annotations

import concurrent.futures
import ctypes
import dataclasses
import logging
import multiprocessing
import os
import signal
import sys
from collections.abc import Iterator
from typing import Protocol

import torch

from mlmclm.data import ExperimentData
from mlmclm.errors import ConfigError
from mlmclm.grid.records import RunRecord
from mlmclm.grid.worker import RunJob, WorkerContext, execute_run, init_worker_process, init_worker_with_data
from mlmclm.train.threads import default_threads, limit_run_threads

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1  # linux/prctl.h


class Executor(Protocol):
    def run(self, jobs: list[RunJob]) -> Iterator[RunRecord]:
        """Execute ``jobs`` and yield one run record per job, in completion order."""
        ...


class LocalExecutor:
    """Runs one after another in this process, reusing the already prepared data."""

    def __init__(self, context: WorkerContext) -> None:
        self.context = context

    def run(self, jobs: list[RunJob]) -> Iterator[RunRecord]:
        for job in jobs:
            yield execute_run(job, self.context)


def threads_per_worker(workers: int, requested: int | None, hidden_size: int | None = None) -> int:
    return requested or default_threads(workers, hidden_size)


class ProcessExecutor:
    """``workers`` runs at a time in separate processes; the CPU threads are divided between them."""

    def __init__(self, config_dict: dict, workers: int, threads: int | None) -> None:
        self.config_dict = config_dict
        self.workers = workers
        self.threads = threads_per_worker(workers, threads, config_dict["model"]["hidden_size"])

    def run(self, jobs: list[RunJob]) -> Iterator[RunRecord]:
        ctx = multiprocessing.get_context("spawn")  # fork after torch threads start is unsafe
        with concurrent.futures.ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=ctx,
            initializer=_init_pool_worker,
            initargs=(os.getpid(), self.config_dict, self.threads),
        ) as pool:
            futures = [pool.submit(execute_run, job) for job in jobs]
            try:
                for future in concurrent.futures.as_completed(futures):
                    yield future.result()
            except BaseException:
                for future in futures:
                    future.cancel()
                raise


def _init_pool_worker(parent_pid: int, config_dict: dict, threads: int) -> None:
    """Die with the grid process, then prepare the data: a worker orphaned by a SIGKILL of its parent would
    otherwise keep training and writing into a run directory that the rerun is using."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        except (OSError, AttributeError):  # no prctl (e.g. another libc): keep the old behaviour
            pass
        if os.getppid() != parent_pid:  # the parent died before prctl took effect
            os._exit(1)
    init_worker_process(config_dict, threads)


class RayExecutor:
    """Runs as Ray tasks on the cluster at ``ray.address`` (or ``RAY_ADDRESS``; else a local instance).

    The driver's prepared data go into Ray's object store once (:func:`ray.put`); every task receives that
    one object, so no worker reads the corpus or the token cache (on the driver's node the object is read
    from shared memory, other nodes fetch it once each). Run directories and checkpoints are files under
    ``output_dir``, which on a multi-node cluster must be storage every node sees (docs/scaling.md).

    A task whose worker process or node dies (killed, out of memory) is retried up to ``ray.max_retries``
    times by this executor, not silently by Ray: each lost attempt is logged and kept in the run record's
    ``failed_attempts``, the new attempt resumes from the run's last checkpoint, and runs already finished
    are never resubmitted. A run that still has no result afterwards is recorded as ``failed`` with the
    reason, like any other failure, and retried by the next invocation.
    """

    def __init__(self, config_dict: dict, data: ExperimentData, threads: int | None) -> None:
        try:
            import ray
        except ImportError as exc:
            raise ConfigError("executor 'ray' needs Ray: pip install 'mlmclm[ray]'") from exc
        self.ray = ray
        self.config_dict = config_dict
        self.data = data
        settings = config_dict.get("ray", {})
        self.max_retries = settings.get("max_retries", 1)
        self.address = settings.get("address") or os.environ.get("RAY_ADDRESS")
        self.cpus = settings.get("cpus_per_run") or threads or 1
        self.threads = max(1, int(threads or self.cpus))
        gpus = settings.get("gpus_per_run")
        if gpus is None:
            gpus = 1 if torch.cuda.is_available() and config_dict.get("device") in ("auto", "cuda") else 0
        self.gpus = gpus

    def run(self, jobs: list[RunJob]) -> Iterator[RunRecord]:
        ray = self.ray
        if not ray.is_initialized():
            ray.init(address=self.address, include_dashboard=False)
        data_ref = ray.put(self.data)
        # Ray must not retry on its own: this loop records every lost attempt and resubmits it itself.
        remote_run = ray.remote(_ray_run).options(num_cpus=self.cpus, num_gpus=self.gpus, max_retries=0)

        def submit(job: RunJob):
            return remote_run.remote(job, self.config_dict, data_ref, self.threads)

        jobs_by_ref = {submit(job): job for job in jobs}
        lost: dict[str, list[str]] = {}
        while jobs_by_ref:
            (done,), _ = ray.wait(list(jobs_by_ref), num_returns=1)
            job = jobs_by_ref.pop(done)
            try:
                record = ray.get(done)
            except ray.exceptions.RayError as exc:  # the worker or its node died: the task left no record
                reasons = lost.setdefault(job.spec.run_id, [])
                reasons.append(_lost_reason(exc))
                if len(reasons) <= self.max_retries:
                    log.warning("%s lost its worker (%s); retrying (%d of %d)", job.spec.run_id, reasons[-1],
                                len(reasons), self.max_retries)
                    jobs_by_ref[submit(job)] = job
                    continue
                record = lost_run_record(job, reasons[-1])
            if job.spec.run_id in lost:
                record = dataclasses.replace(record, failed_attempts=lost[job.spec.run_id])
            yield record


def _ray_run(job: RunJob, config_dict: dict, data: ExperimentData, threads: int) -> RunRecord:
    """One Ray task: one run, with the driver's data from the object store."""
    init_worker_with_data(config_dict, data, threads)
    return execute_run(job)


def _lost_reason(exc: BaseException) -> str:
    """``ExceptionType: first line``: Ray's messages run to many lines of advice."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0] if lines else ''}".strip()


def lost_run_record(job: RunJob, reason: str) -> RunRecord:
    """The record of a run whose last attempt left nothing: ``failed``, so the next invocation retries it."""
    return RunRecord.planned(
        job.spec, model_dir=str(job.run_dir), config_fingerprint=job.config_fingerprint, status="failed", error=reason
    )


def make_executor(config, data, on_step_factory=None) -> Executor:
    """Ray when asked for, a process pool for ``workers > 1``, else this process (with progress bars)."""
    config_dict = config.to_dict()
    if config.executor == "ray":
        return RayExecutor(config_dict, data, config.training.threads)
    if config.workers > 1:
        return ProcessExecutor(config_dict, config.workers, config.training.threads)
    limit_run_threads(threads_per_worker(1, config.training.threads, config.model.hidden_size))
    context = WorkerContext.prepare(config, data)
    context.on_step_factory = on_step_factory
    return LocalExecutor(context)
