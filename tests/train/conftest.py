"""Fixtures shared by the training tests."""

from __future__ import annotations

import pytest

import mlmclm.train.trainer as trainer_module
from mlmclm.train.trainer import train_run


@pytest.fixture
def interrupt_after_checkpoint(monkeypatch):
    """Train as a kill would leave a run: stopped right after its first checkpoint is written."""

    def interrupt(spec, config, data, run_dir, total_steps: int) -> None:
        real_save = trainer_module.save_checkpoint

        def save_then_die(*args, **kwargs):
            real_save(*args, **kwargs)
            raise KeyboardInterrupt

        monkeypatch.setattr(trainer_module, "save_checkpoint", save_then_die)
        with pytest.raises(KeyboardInterrupt):
            train_run(spec, config, data, run_dir, total_steps=total_steps)
        monkeypatch.setattr(trainer_module, "save_checkpoint", real_save)

    return interrupt
