"""``mlmclm validate`` rejects a bad check or preset name with one line and exit code 2, before any work."""

from __future__ import annotations

import pytest
import torch

from mlmclm.cli import main


@pytest.mark.parametrize(("argv", "message"), [
    (["validate", "--only", "nope_strucure"], "did you mean 'nope_structure'?"),
    (["validate", "--preset", "gpux"], "did you mean 'gpu'?"),
    (["validate", "--workers", "0"], "--workers must be at least 1"),
])
def test_bad_names_are_one_line_errors(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1


@pytest.mark.skipif(torch.cuda.is_available(), reason="the refusal is for machines without CUDA")
def test_the_gpu_preset_is_refused_up_front_without_cuda(tmp_path, capsys):
    """Its A/A grid (cpu_small) could run on the CPU: without the check it trained for hours before the
    first gpu_base grid stopped it."""
    output_dir = tmp_path / "validation"
    assert main(["validate", "--preset", "gpu", "--output-dir", str(output_dir)]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("error: validate --preset gpu: grid ") and "needs device 'cuda'" in error
    assert "\n" not in error and not output_dir.exists()
