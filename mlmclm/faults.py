"""Fault injection for the reliability tests: kill the process or fill the disk at a named point.

``MLMCLM_FAULT=<action>:<point>:<n>`` fires on the ``n``-th time this process reaches ``<point>``:

* ``kill`` sends SIGKILL to the process itself (a power cut: no cleanup, no ``finally``);
* ``enospc`` raises ``OSError(ENOSPC)`` as a full disk would.

Points are ``step`` (after an optimizer step, before it is recorded) and ``write:<file name>`` (inside an
atomic write, after the temporary file is half written and before it replaces ``<file name>``). Unset, the
hook costs one dictionary lookup. docs/reliability.md lists the tests that use it.
"""

from __future__ import annotations

import errno
import os
import signal
from pathlib import Path

ENV_VAR = "MLMCLM_FAULT"
_reached: dict[str, int] = {}


def fault_point(point: str, partial_file: Path | None = None) -> None:
    """Fire the configured fault if this is its point and occurrence; ``partial_file`` is cut in half first."""
    spec = os.environ.get(ENV_VAR)
    if not spec:
        return
    action, _, rest = spec.partition(":")
    target, _, count = rest.rpartition(":")
    if target != point:
        return
    _reached[point] = _reached.get(point, 0) + 1
    if str(_reached[point]) != count:
        return
    if action == "enospc":
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(partial_file or point))
    if action == "kill":
        if partial_file is not None and partial_file.exists():
            with open(partial_file, "r+b") as handle:
                handle.truncate(partial_file.stat().st_size // 2)
        os.kill(os.getpid(), signal.SIGKILL)
    raise ValueError(f"{ENV_VAR}: unknown action {action!r} (kill | enospc)")
