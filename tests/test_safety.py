"""Safety: no code from configs or checkpoints runs, names cannot escape the output directory, no network."""

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path

import pytest
import yaml

from mlmclm.cli import main
from mlmclm.components import resolve_config
from mlmclm.errors import ConfigError


def test_yaml_tags_that_would_run_code_are_refused_without_running_it(tmp_path):
    marker = tmp_path / "code_ran"
    config = tmp_path / "evil.yaml"
    config.write_text(f"experiment_name: !!python/object/apply:os.mkdir ['{marker}']\n")
    with pytest.raises(ConfigError, match="malformed YAML"):
        resolve_config(config)
    assert not marker.exists()


@pytest.mark.parametrize("name", ["../../x", "/tmp/x", "a/../../b", "..", ".", "x" * 101])
def test_an_experiment_name_that_could_leave_the_output_directory_is_refused(tmp_path, capsys, name):
    code = main(["train", "--experiment-name", name, "--output-dir", str(tmp_path / "out"), "--dry-run"])
    assert code == 2
    assert capsys.readouterr().err.startswith("error: experiment_name")
    assert not any(tmp_path.iterdir())  # nothing written anywhere


@pytest.mark.slow
def test_training_offline_writes_every_output_with_ordinary_permissions(tmp_path, monkeypatch):
    """Without a hub resource (hf:...) named by the user, nothing may touch the network; and every file the
    grid, the analysis and the cache write is readable as an ordinary write under the umask would be."""
    previous_umask = os.umask(0o022)
    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise OSError("network access attempted during an offline test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    settings = {
        "experiment_name": "offline", "objectives": ["mlm", "clm"], "attention": ["standard"], "num_runs": 1,
        "device": "cpu",
        "data": {"max_documents": 400, "vocab_size": 300, "max_seq_length": 32, "sliding_window_stride": 16,
                 "cache_dir": str(tmp_path / "cache")},
        "model": {"hidden_size": 16, "num_layers": 1, "num_heads": 2, "intermediate_size": 32},
        "training": {"max_steps": 2, "batch_size": 8, "eval_interval": 2, "eval_max_batches": 1},
        "statistics": {"bootstrap_resamples": 100},
        "probes": {"examples_per_task": 40, "tasks": ["bigram_shift"]},
    }
    config = tmp_path / "offline.yaml"
    config.write_text(yaml.safe_dump(settings))
    try:
        assert main(["train", "--config", str(config), "--output-dir", str(tmp_path / "out"), "--quiet"]) == 0
    finally:
        os.umask(previous_umask)
    assert attempts == []
    assert Path(tmp_path / "out" / "offline_report.md").is_file()
    files = [p for p in (tmp_path / "out").rglob("*") if p.is_file()] + list((tmp_path / "cache").rglob("*.npy"))
    assert len(files) > 20
    assert {p.name: stat.S_IMODE(p.stat().st_mode) for p in files} == {p.name: 0o644 for p in files}
