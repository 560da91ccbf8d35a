"""``mlmclm validate`` rejects a bad check or preset name with one line and exit code 2, before any work."""

from __future__ import annotations

import pytest

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
