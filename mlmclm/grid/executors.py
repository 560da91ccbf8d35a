"""How runs are executed: in this process, in a pool of local processes, or on a Ray cluster.

An executor takes run jobs and yields run records as they finish; the trainer knows nothing about it,
so a new backend is one class here.
"""

from __future__ import annotations

import concurrent.futures
import ctypes
import multiprocessing
import os
import signal
import sys
from collections.abc import Iterator
from typing import Protocol

import torch

from mlmclm.errors import ConfigError
from mlmclm.grid.worker import RunJob, WorkerContext, execute_run, init_worker_process

_PR_SET_PDEATHSIG = 1  # linux/prctl.h


class Executor(Protocol):
    def run(self, jobs: list[RunJob]) -> Iterator[dict]:
        """Execute ``jobs`` and yield one run record per job, in completion order."""
        ...


class LocalExecutor:
    """Runs one after another in this process, reusing the already prepared data."""

    def __init__(self, context: WorkerContext) -> None:
        self.context = context

    def run(self, jobs: list[RunJob]) -> Iterator[dict]:
        for job in jobs:
            yield execute_run(job, self.context)


def threads_per_worker(workers: int, requested: int | None) -> int:
    return requested or max(1, (os.cpu_count() or 1) // workers)


class ProcessExecutor:
    """``workers`` runs at a time in separate processes; the CPU threads are divided between them."""

    def __init__(self, config_dict: dict, workers: int, threads: int | None) -> None:
        self.config_dict = config_dict
        self.workers = workers
        self.threads = threads_per_worker(workers, threads)

    def run(self, jobs: list[RunJob]) -> Iterator[dict]:
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
    """Runs as Ray tasks (one CPU or GPU each) on the cluster that ``ray.init()`` connects to."""

    def __init__(self, config_dict: dict, threads: int | None) -> None:
        try:
            import ray
        except ImportError as exc:
            raise ConfigError("executor 'ray' needs Ray: pip install 'mlmclm[ray]'") from exc
        self.ray = ray
        self.config_dict = config_dict
        self.threads = threads or 1

    def run(self, jobs: list[RunJob]) -> Iterator[dict]:
        ray = self.ray
        if not ray.is_initialized():
            ray.init(address=os.environ.get("RAY_ADDRESS"), include_dashboard=False)
        gpus = 1 if torch.cuda.is_available() and self.config_dict.get("device") in ("auto", "cuda") else 0

        @ray.remote(num_cpus=self.threads, num_gpus=gpus)
        def remote_run(job: RunJob, config_dict: dict, threads: int) -> dict:
            init_worker_process(config_dict, threads)
            return execute_run(job)

        pending = [remote_run.remote(job, self.config_dict, self.threads) for job in jobs]
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            yield ray.get(done[0])


def make_executor(config, data, on_step_factory=None) -> Executor:
    """Ray when asked for, a process pool for ``workers > 1``, else this process (with progress bars)."""
    config_dict = config.to_dict()
    if config.executor == "ray":
        return RayExecutor(config_dict, config.training.threads)
    if config.workers > 1:
        return ProcessExecutor(config_dict, config.workers, config.training.threads)
    context = WorkerContext.prepare(config, data)
    context.on_step_factory = on_step_factory
    return LocalExecutor(context)
