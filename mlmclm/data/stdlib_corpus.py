"""The built-in corpus: the installed Python standard library's own documentation text.

It needs no download and is the same on every machine with the same Python version. Documents are
(1) every paragraph block (text between blank lines) of the ``pydoc_data.topics`` help pages, and
(2) every module, class and function docstring of the standard library's ``.py`` files, read with
:mod:`ast` (nothing is imported or executed), files in sorted path order, definitions in source order.
Test suites, ``site-packages`` and byte-code folders are skipped. The extracted text is cached as one
whitespace-normalised document per line under ``<cache_dir>/corpora/``.
"""

from __future__ import annotations

import ast
import os
import sys
import sysconfig
from collections.abc import Iterator
from pathlib import Path

from mlmclm.atomic import atomic_write_text

SKIPPED_DIRS = frozenset({"test", "tests", "idle_test", "site-packages", "dist-packages", "__pycache__"})


def default_corpus_name() -> str:
    return f"python-stdlib-docs-{sys.version_info.major}.{sys.version_info.minor}.{sys.version_info.micro}"


def default_corpus_file(cache_dir: Path) -> Path:
    """The cached corpus file, extracting it on first use (atomically, so a crash leaves no partial file)."""
    path = cache_dir / "corpora" / f"{default_corpus_name()}.txt"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        text = "".join(" ".join(doc.split()) + "\n" for doc in extract_stdlib_documents() if doc.strip())
        atomic_write_text(path, text)
    return path


def extract_stdlib_documents(stdlib_dir: Path | None = None) -> Iterator[str]:
    """Topic-page paragraph blocks, then docstrings, in a deterministic order."""
    stdlib_dir = Path(stdlib_dir or sysconfig.get_paths()["stdlib"])
    topics_file = stdlib_dir / "pydoc_data" / "topics.py"
    if topics_file.is_file():
        yield from _topic_paragraphs(topics_file)
    for path in _stdlib_sources(stdlib_dir):
        yield from _docstrings(path)


def _topic_paragraphs(topics_file: Path) -> Iterator[str]:
    tree = ast.parse(topics_file.read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "topics" for t in node.targets):
            topics = ast.literal_eval(node.value)
            for name in sorted(topics):
                yield from (block for block in topics[name].split("\n\n") if block.strip())


def _stdlib_sources(stdlib_dir: Path) -> list[Path]:
    found = []
    for root, dirs, files in os.walk(stdlib_dir):
        dirs[:] = sorted(d for d in dirs if d not in SKIPPED_DIRS and not d.startswith("test_"))
        found.extend(Path(root) / f for f in files if f.endswith(".py") and not f.startswith("test_"))
    return sorted(found, key=lambda p: p.relative_to(stdlib_dir).as_posix())


def _docstrings(path: Path) -> Iterator[str]:
    try:
        tree = ast.parse(path.read_bytes(), filename=str(path))
    except (SyntaxError, ValueError, UnicodeDecodeError):  # a few stdlib files are deliberately invalid
        return
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        docstring = ast.get_docstring(node, clean=True)  # type: ignore[arg-type]
        if docstring:
            yield docstring
        children = [
            c
            for c in ast.iter_child_nodes(node)
            if isinstance(c, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
        ]
        stack.extend(reversed(children))  # depth-first in source order
