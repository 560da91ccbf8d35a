"""Atomic writes: ordinary permissions, a full disk reported in one line, the previous file left intact."""

from __future__ import annotations

import errno
import json
import os
import stat

import pytest
import torch

import mlmclm.faults as faults
from mlmclm.atomic import DiskFullError, atomic_write, atomic_write_dir, atomic_write_json


@pytest.fixture
def umask():
    """Set the process umask for one test and restore it afterwards."""
    previous = os.umask(0o022)
    yield lambda mask: os.umask(mask)
    os.umask(previous)


@pytest.mark.parametrize(("mask", "mode"), [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_files_get_the_permissions_an_ordinary_write_would_under_the_umask(tmp_path, umask, mask, mode):
    umask(mask)
    written = atomic_write_json(tmp_path / "results.json", {"a": 1})
    with open(tmp_path / "plain.json", "w") as handle:
        handle.write("{}")
    assert stat.S_IMODE(written.stat().st_mode) == mode == stat.S_IMODE((tmp_path / "plain.json").stat().st_mode)


@pytest.fixture
def fault(monkeypatch):
    """Arm the MLMCLM_FAULT hook for this test only."""
    monkeypatch.setattr(faults, "_reached", {})
    return lambda spec: monkeypatch.setenv(faults.ENV_VAR, spec)


def test_a_full_disk_is_one_clear_error_and_the_previous_file_survives(tmp_path, fault):
    path = tmp_path / "tiny_raw_results.json"
    atomic_write_json(path, {"runs": [1]})
    fault("enospc:write:tiny_raw_results.json:1")
    with pytest.raises(DiskFullError, match=r"no space left on the device while writing .*tiny_raw_results.json"):
        atomic_write_json(path, {"runs": [1, 2]})
    assert json.loads(path.read_text()) == {"runs": [1]}
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left behind


def test_a_full_disk_inside_torch_save_is_recognised_through_the_wrapped_error(tmp_path):
    def write(tmp):
        class Full:
            def write(self, data):
                raise OSError(errno.ENOSPC, "No space left on device")

            def flush(self):
                pass

        torch.save({"w": torch.zeros(10)}, Full())  # torch re-raises it as a RuntimeError

    with pytest.raises(DiskFullError):
        atomic_write(tmp_path / "checkpoint.pt", write)


def test_other_write_errors_are_not_called_a_full_disk(tmp_path):
    def write(tmp):
        raise OSError(errno.EIO, "I/O error")

    with pytest.raises(OSError) as caught:
        atomic_write(tmp_path / "x.json", write)
    assert not isinstance(caught.value, DiskFullError)


def test_a_directory_write_that_fails_leaves_nothing_behind(tmp_path):
    def write(directory):
        (directory / "config.json").write_text("{}")
        raise RuntimeError("the second file could not be made")

    with pytest.raises(RuntimeError):
        atomic_write_dir(tmp_path / "out", write)
    assert list(tmp_path.iterdir()) == []


def test_a_directory_write_appears_whole_with_ordinary_permissions(tmp_path, umask):
    umask(0o022)
    written = atomic_write_dir(tmp_path / "out", lambda directory: (directory / "a.json").write_text("{}"))
    assert written == tmp_path / "out" and [p.name for p in written.iterdir()] == ["a.json"]
    assert stat.S_IMODE(written.stat().st_mode) == 0o755
    assert list(tmp_path.iterdir()) == [written]


def test_files_a_writer_made_owner_only_get_ordinary_permissions(tmp_path, umask):
    """safetensors (under transformers' save_pretrained) writes model.safetensors with mode 0o600."""
    umask(0o022)

    def write(directory):
        (directory / "nested").mkdir()
        for path in (directory / "model.safetensors", directory / "nested" / "b.json"):
            path.write_text("{}")
            os.chmod(path, 0o600)

    written = atomic_write_dir(tmp_path / "out", write)
    assert stat.S_IMODE((written / "model.safetensors").stat().st_mode) == 0o644
    assert stat.S_IMODE((written / "nested" / "b.json").stat().st_mode) == 0o644
