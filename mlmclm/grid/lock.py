"""One writer per experiment: a lock file beside the raw results, so two invocations never interleave writes.

``<output_dir>/<experiment>.lock`` is held with an exclusive ``fcntl.flock`` for as long as the grid runs. A
second invocation on the same output directory and experiment does not wait: it refuses at once with one
line naming the process that holds the lock (waiting could run the same runs twice). The kernel drops a
``flock`` when its process dies, however it dies, so a lock file left by a killed process is stale by
construction: the next invocation takes it over and says so. Temporary files of the experiment's interrupted
atomic writes are removed then, since no other writer can own them.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import socket
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import IO

from mlmclm.errors import UserError

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; the guard is skipped with a warning
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)
_held: dict[Path, int] = {}  # lock path -> nesting depth in this process (run_grid inside cmd_train)


class ExperimentLockedError(UserError):
    """Another live process is running the same experiment in the same output directory."""


@contextlib.contextmanager
def removed_if_refused(output_dir: Path) -> Iterator[None]:
    """Remove again an output directory this invocation created, when it is refused (a :class:`UserError`)
    before any run started: a bad corpus, tokenizer or probe file then leaves no lock file and no half-built
    cache behind. Never for :class:`ExperimentLockedError` (the directory is another process's)."""
    created = not output_dir.exists()
    try:
        yield
    except ExperimentLockedError:
        raise
    except UserError:
        if created and not (output_dir / "experiments").exists():
            shutil.rmtree(output_dir, ignore_errors=True)
        raise


def lock_path(output_dir: Path, experiment_name: str) -> Path:
    return Path(output_dir) / f"{experiment_name}.lock"


@contextlib.contextmanager
def experiment_lock(output_dir: Path, experiment_name: str, command: str = "") -> Iterator[Path]:
    """Hold the experiment's lock for the ``with`` block; refuse with :class:`ExperimentLockedError` if taken."""
    path = lock_path(output_dir, experiment_name).resolve()
    if path in _held:
        _held[path] += 1
        try:
            yield path
        finally:
            _held[path] -= 1
        return
    if fcntl is None:
        log.warning("no file locking on this platform: do not start two runs of %s at once", experiment_name)
        yield path
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(path, "a+", encoding="utf-8")  # noqa: SIM115 (closed in the finally below)
    except OSError as exc:  # a read-only or missing output location: say where, in one line
        raise UserError(f"cannot create the lock file {path}: {exc.strerror or exc}") from exc
    try:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ExperimentLockedError(_held_by_message(path, handle, experiment_name)) from None
        previous = _read_holder(handle)
        if previous:
            log.warning(
                "found a stale lock %s from pid %s (%s), which is no longer running; taking it over",
                path, previous.get("pid"), previous.get("started"),
            )
        _write_holder(handle, command)
        _remove_interrupted_temp_files(path.parent, experiment_name)
        _held[path] = 1
        try:
            yield path
        finally:
            del _held[path]
            handle.truncate(0)  # an empty lock file is a released one
            handle.flush()
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
    finally:
        handle.close()


def _read_holder(handle: IO[str]) -> dict:
    handle.seek(0)
    try:
        holder = json.loads(handle.read() or "{}")
    except json.JSONDecodeError:
        return {"pid": "unknown", "started": "unknown"}
    return holder if isinstance(holder, dict) else {}


def _write_holder(handle: IO[str], command: str) -> None:
    handle.seek(0)
    handle.truncate(0)
    holder = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": command,
    }
    handle.write(json.dumps(holder) + "\n")
    handle.flush()


def _held_by_message(path: Path, handle: IO[str], experiment_name: str) -> str:
    holder = _read_holder(handle)
    who = f"pid {holder.get('pid', '?')} on {holder.get('host', '?')}, started {holder.get('started', '?')}"
    return (
        f"experiment {experiment_name!r} in {path.parent} is already being run ({who}; lock {path}); "
        "wait for it to finish, or use another --output-dir or --experiment-name"
    )


def _remove_interrupted_temp_files(output_dir: Path, experiment_name: str) -> None:
    """Leftovers of raw-results writes cut short by a kill (``.<name>_raw_results.json.<random>.tmp``).

    Only this experiment's: another experiment may be writing in the same directory right now. Run
    directories are cleaned by their own run (:func:`mlmclm.grid.worker.execute_run`).
    """
    for leftover in output_dir.glob(f".{experiment_name}_raw_results.json.*.tmp"):
        leftover.unlink(missing_ok=True)
