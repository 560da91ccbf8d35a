"""Atomic file writes (temp file in the same directory + os.replace): a crash never leaves half a file.

The finished file gets the permissions an ordinary ``open(path, "w")`` would give (``0o666`` less the
umask), not the owner-only ``0o600`` of :func:`tempfile.mkstemp`, so collaborators can read results. A full
disk (ENOSPC, or a quota: EDQUOT) becomes one :class:`DiskFullError` naming the file; the previous version
of the file stays in place. :func:`check_output_location` refuses, before any work, an output path that no
write could use (an existing file where a directory should be, or the other way round).
"""

from __future__ import annotations

import errno
import json
import math
import os
import shutil
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlmclm.errors import UserError
from mlmclm.faults import fault_point

_DISK_FULL = (errno.ENOSPC, errno.EDQUOT)
_umask_lock = threading.Lock()


class DiskFullError(UserError):
    """No space left (or quota exceeded) while writing a file; everything finished before is intact."""


def current_umask() -> int:
    """The process umask (reading it means setting it, so briefly and under a lock)."""
    with _umask_lock:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def check_output_location(path: str | Path, flag: str, *, is_file: bool = False) -> Path:
    """Refuse an output directory (or, with ``is_file``, an output file) that cannot be written, naming ``flag``.

    Called by each command before it does any work, so a mistyped path is one line and exit code 2, not a
    traceback after the work. Creates nothing: a path that does not exist yet is fine as long as the nearest
    existing ancestor is a directory.
    """
    path = Path(path)
    want, other = ("file", "directory") if is_file else ("directory", "file")
    if path.exists() and path.is_dir() == is_file:
        raise UserError(f"{flag} {path} is a {other}, not a {want}")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise UserError(f"{flag} {path} cannot be created: {parent} is a file, not a directory")
            break
    return path


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp_path)`` and move the finished file into place in one rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, 0o666 & ~current_umask())  # after write: some writers (safetensors) recreate the file
        fault_point(f"write:{path.name}", Path(tmp))
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if _is_disk_full(exc, path.parent):
            raise DiskFullError(
                f"no space left on the device while writing {path}; free some space and rerun the same command "
                "(finished runs are kept)"
            ) from exc
        raise
    return path


def atomic_write_dir(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp_dir)`` on a temporary sibling directory, then move its files into ``path``.

    A new ``path`` is the renamed temporary directory; into an existing one each file moves by itself (files
    already there that ``write`` does not produce are kept). If ``write`` fails, nothing appears at ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        os.chmod(tmp, 0o777 & ~current_umask())  # mkdtemp's 0o700 would hide the result from collaborators
        write(tmp)
        _ordinary_file_modes(tmp)
        fault_point(f"write:{path.name}", tmp)
        if not path.exists():
            os.rename(tmp, path)
        else:
            for item in sorted(tmp.iterdir()):
                os.replace(item, path / item.name)
    except BaseException as exc:
        if _is_disk_full(exc, path.parent):
            raise DiskFullError(
                f"no space left on the device while writing {path}; free some space and rerun the same command"
            ) from exc
        raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return path


def _ordinary_file_modes(directory: Path) -> None:
    """Give every file a writer left the mode an ordinary write would: safetensors, under transformers'
    ``save_pretrained``, writes ``model.safetensors`` owner-only (0o600)."""
    mode = 0o666 & ~current_umask()
    for item in directory.rglob("*"):
        if item.is_file() and not item.is_symlink():
            os.chmod(item, mode)


def _is_disk_full(exc: BaseException | None, directory: Path) -> bool:
    """ENOSPC/EDQUOT anywhere in the exception chain (torch.save wraps the OSError in a RuntimeError), or a
    failed write on a device with no free byte left (C++ writers report no errno)."""
    if exc is not None and not isinstance(exc, (KeyboardInterrupt, SystemExit)):
        try:
            if shutil.disk_usage(directory).free == 0:
                return True
        except OSError:
            pass
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, OSError) and exc.errno in _DISK_FULL:
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def json_safe(value: Any) -> Any:
    """Replace NaN/inf by None so the file is strict JSON that every reader accepts."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    return value


def atomic_write_json(path: str | Path, data: Any) -> Path:
    return atomic_write_text(path, json.dumps(json_safe(data), indent=2, allow_nan=False) + "\n")
