"""CPU threads that survive a shared machine: how many intra-op threads a run gets, and how they wait.

Importing this module does not import torch, so :func:`yield_while_waiting` can run before torch's OpenMP
runtime (libgomp) loads and reads its environment. docs/performance.md#cpu-threads has the measurements.
"""

from __future__ import annotations

import os

# Up to this width one intra-op thread trains as fast as two on the quick test's shapes (its matmuls are too
# small to split well), and a single thread cannot be oversubscribed by a neighbour.
ONE_THREAD_MAX_HIDDEN = 128


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity where the OS says, else the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # macOS and Windows have no affinity call
        return os.cpu_count() or 1


def check_threads(threads: int | None, source: str) -> None:
    """Refuse more intra-op threads than this process has cores, before anything runs.

    More threads than cores never speeds a run up and is the oversubscription that collapses throughput
    (docs/performance.md#cpu-threads); far more crashed torch outright (``--threads 1000000``: a segmentation
    fault in the first matrix product, torch 2.13).
    """
    from mlmclm.errors import UserError

    cores = available_cores()
    if threads is not None and threads > cores:
        raise UserError(f"{source} {threads} is more than the {cores} CPU cores this process can use")


def default_threads(workers: int, hidden_size: int | None = None, cores: int | None = None) -> int:
    """Intra-op threads per run when ``training.threads`` is unset: one for small models, else the cores
    divided among the runs that train at the same time."""
    if hidden_size is not None and hidden_size <= ONE_THREAD_MAX_HIDDEN:
        return 1
    return max(1, (cores or available_cores()) // max(1, workers))


def yield_while_waiting() -> None:
    """Let waiting OpenMP threads sleep instead of spin (``OMP_WAIT_POLICY=PASSIVE``) unless the user chose.

    libgomp, which torch's Linux wheels use, reads the variable once, when it loads with torch: set before
    the first ``import torch`` it governs this process, and every worker process inherits it. Spinning
    threads take the cores a neighbouring job (or a sibling worker) needs, which is what collapses throughput
    on a busy machine; ``KMP_BLOCKTIME`` is Intel OpenMP's knob and does nothing under libgomp.
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def limit_run_threads(threads: int) -> None:
    """Give every thread pool a run uses its share of the cores, not torch's alone.

    A grid worker limited to one torch thread still ran the probes' logistic regressions on numpy/scipy's
    OpenBLAS pool and tokenized on the ``tokenizers`` Rayon pool, each as wide as the machine, beside its
    sibling's training: measured on 2 cores (docs/performance.md#cpu-threads) that made a 4-run ``cpu_small``
    grid take 340 s instead of 224 s. ``RAYON_NUM_THREADS`` is read when the pool first starts, so this runs
    before the process tokenizes anything; the user's own value wins.
    """
    import torch
    from threadpoolctl import threadpool_limits

    os.environ.setdefault("RAYON_NUM_THREADS", str(threads))
    threadpool_limits(limits=threads, user_api="blas")
    torch.set_num_threads(threads)
