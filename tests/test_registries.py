"""Choices users see are derived from the registries: CLI help and the docs tables list every registered name."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mlmclm.cli import build_parser
from mlmclm.components import REGISTRIES
from mlmclm.config import CORRECTIONS

DOCS = Path(__file__).resolve().parents[1] / "docs"
# Config key -> (docs page, header of the table that describes each registered choice).
DOC_TABLES = {
    "attention": ("model.md", "| name | position information |"),
    "data.mlm_strategy": ("data.md", "| strategy     | what is selected"),
    "data.clm_strategy": ("data.md", "| strategy         | sequences"),
    "probes.tasks": ("probes.md", "| Task | Question |"),
}


def train_help() -> str:
    parser = build_parser()
    subparsers = next(action for action in parser._actions if action.choices and "train" in action.choices)
    return " ".join(subparsers.choices["train"].format_help().split())  # one line: help wraps anywhere


def table_names(page: str, header: str) -> list[str]:
    """The backticked name opening each row of the table whose header line starts with ``header``."""
    lines = (DOCS / page).read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    names = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        names.append(re.match(r"\|\s*`([^`]+)`", line).group(1))
    return names


@pytest.mark.parametrize("key", sorted(REGISTRIES))
def test_train_help_lists_every_registered_choice(key):
    names = REGISTRIES[key].names()
    assert " | ".join(names) in train_help(), key


def test_train_help_lists_the_corrections():
    assert " | ".join(CORRECTIONS) in train_help()


@pytest.mark.parametrize("key", sorted(REGISTRIES))
def test_the_docs_table_describes_exactly_the_registered_choices(key):
    page, header = DOC_TABLES[key]
    assert sorted(table_names(page, header)) == sorted(REGISTRIES[key].names()), f"docs/{page}"


@pytest.mark.parametrize("key", sorted(REGISTRIES))
def test_the_configuration_reference_row_names_every_registered_choice(key):
    reference = (DOCS / "configuration.md").read_text(encoding="utf-8").splitlines()
    row = next(line for line in reference if line.startswith(f"| `{key.split('.')[-1]}` |"))
    missing = [name for name in REGISTRIES[key].names() if not re.search(rf"\b{re.escape(name)}\b", row)]
    assert not missing, f"docs/configuration.md, row {key}: {missing}"
