"""The README a newcomer follows on a fresh machine: the order of its steps and its flags table."""

from __future__ import annotations

import re
from pathlib import Path

from mlmclm.cli import build_parser

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


def _quick_start() -> tuple[str, list[str]]:
    section = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    assert block is not None
    return section[: block.start()], [line for line in block.group(1).splitlines() if line.strip()]


def test_quick_start_is_two_commands_after_the_cpu_torch_instruction():
    before_block, commands = _quick_start()
    assert commands == [
        "pip install -e . && python train.py --quick-test",
        "pip install -e '.[test]' && python -m pytest -q",
    ]
    assert "CPU build of PyTorch first" in before_block
    assert "download.pytorch.org/whl/cpu" in before_block


def test_every_train_flag_is_in_the_flags_table():
    parser = build_parser()
    train = parser._subparsers._group_actions[0].choices["train"]  # argparse keeps sub-parsers here
    table = README.split("### Flags of `train.py`", 1)[1].split("\n## ", 1)[0]
    flags = {opt for action in train._actions for opt in action.option_strings if opt.startswith("--")}
    missing = sorted(flag for flag in flags - {"--help"} if f"`{flag}" not in table)
    assert not missing, missing
