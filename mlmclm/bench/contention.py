"""A competing CPU job: another process doing large matmuls on every core, as a second experiment would.

Its environment drops OMP_NUM_THREADS and the waiting-policy variables, so it behaves like a default torch
job started by someone else (one intra-op thread per core, spinning while it waits).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator

_BUSY = (
    "import sys, torch\n"
    "a = torch.randn(512, 512)\n"
    "torch.mm(a, a)\n"
    "print('ready', flush=True)\n"
    "while True:\n"
    "    torch.mm(a, a)\n"
)
_DROPPED = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OMP_WAIT_POLICY", "KMP_BLOCKTIME", "GOMP_SPINCOUNT")


@contextlib.contextmanager
def competing_cpu_job() -> Iterator[subprocess.Popen]:
    """Start the busy process, wait until it computes, and always stop it afterwards."""
    env = {k: v for k, v in os.environ.items() if k not in _DROPPED}
    process = subprocess.Popen([sys.executable, "-c", _BUSY], env=env, stdout=subprocess.PIPE, text=True)
    try:
        process.stdout.readline()  # "ready": its thread pool is up and spinning
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
