"""Build mlmclm's shipped default corpus from the CPython 3.11 documentation.

Not run at install or test time: the result is committed as ``mlmclm/data/corpora/python-docs-3.11.txt.xz``
and this script records exactly how it was made (docs/data.md, "The built-in corpus"). Two parts, both
under the PSF licence (mlmclm/data/corpora/LICENSE-python-docs.txt):

1. the prose of the docs' reStructuredText sources, the ``_sources/**/*.rst.txt`` files of Debian's
   ``python3.11-doc`` package, files in sorted path order, paragraphs in source order; code (literal blocks
   after ``::``, code directives, doctest lines), tables, headings, targets and comments are dropped and
   inline markup is reduced to its text (``:func:`~os.path.join``` -> ``join``);
2. the paragraph blocks of the ``pydoc_data.topics`` help pages and every module, class and function
   docstring of a Python 3.11 standard library (read with :mod:`ast`; nothing is imported or executed).

One document per line (whitespace collapsed); the loader then cleans it like any corpus::

    apt-get download python3.11-doc && dpkg-deb -x python3.11-doc_*.deb x
    python3.11 benchmarks/corpus/build_python_docs_corpus.py x/usr/share/doc/python3.11/html/_sources \
        mlmclm/data/corpora/python-docs-3.11.txt.xz
"""

from __future__ import annotations

import ast
import lzma
import os
import re
import sys
import sysconfig
from collections.abc import Iterator
from pathlib import Path

# Directives whose body is code, data or navigation, never prose.
SKIPPED_DIRECTIVES = {
    "code-block", "sourcecode", "code", "doctest", "testcode", "testoutput", "testsetup", "testcleanup",
    "productionlist", "literalinclude", "toctree", "csv-table", "table", "list-table", "raw", "highlight",
    "index", "include", "image", "figure", "moduleauthor", "sectionauthor", "only", "audit-event-table",
    "limited-api-list", "c:macro", "opcode", "grammar-snippet", "program", "cmdoption", "option", "envvar",
    "availability", "contents", "rst-class", "tabularcolumns", "math",
}
_UNDERLINE = re.compile(r"^([=\-`:'\"~^_*+#<>.])\1{2,}\s*$")
_ROLE = re.compile(r":[\w:.+-]+:`([^`]*)`")
_LINK = re.compile(r"`([^`<]*?)\s*<[^`>]*>`_{1,2}")
_REF = re.compile(r"`([^`]+)`_{1,2}")
_LITERAL = re.compile(r"``(.+?)``")
_EMPHASIS = re.compile(r"\*{1,2}([^*\s][^*]*?)\*{1,2}")
_FOOTNOTE = re.compile(r"\s*\[(#\w*|\d+|\*)\]_")
_BULLET = re.compile(r"^(?:[*+\-•]|#\.|\d+\.|\(\w\))\s+")


def role_text(match: re.Match) -> str:
    """`:func:`~a.b`` -> b, `:ref:`title <label>`` -> title, `:meth:`!x`` -> x."""
    text = match.group(1)
    if "<" in text and text.endswith(">"):
        return text[: text.index("<")].strip()
    text = text.lstrip("!")
    return text.rsplit(".", 1)[-1] if text.startswith("~") else text


def plain(text: str) -> str:
    """Inline reST markup reduced to the words a reader sees."""
    text = _FOOTNOTE.sub("", text)
    text = _ROLE.sub(role_text, text)
    text = _LINK.sub(r"\1", text)
    text = _LITERAL.sub(r"\1", text)
    text = _REF.sub(r"\1", text)
    text = _EMPHASIS.sub(r"\1", text)
    text = text.replace("\\", "")
    return " ".join(text.split())


def blocks(lines: list[str]) -> Iterator[tuple[int, list[str]]]:
    """(indent of the first line, lines) for every run of non-blank lines."""
    current: list[str] = []
    for line in [*lines, ""]:
        if line.strip():
            current.append(line.rstrip())
        elif current:
            yield len(current[0]) - len(current[0].lstrip()), current
            current = []


def paragraphs(source: str) -> Iterator[str]:
    """Prose paragraphs of one reST file, in order (see the module docstring for what is dropped)."""
    skip_deeper_than: int | None = None  # inside code: skip blocks indented more than this
    for indent, lines in blocks(source.expandtabs(8).splitlines()):
        if skip_deeper_than is not None:
            if indent > skip_deeper_than:
                continue
            skip_deeper_than = None
        first = lines[0].strip()
        if first.startswith(".."):
            name = first[2:].strip().split("::")[0].strip()
            if name in SKIPPED_DIRECTIVES or "::" not in first:  # code/data directives, comments, targets
                skip_deeper_than = indent
            continue  # the directive line itself (a signature, a label) is never prose
        if _UNDERLINE.match(lines[-1].strip()) or first.startswith((">>>", "+-", "|", "$ ", "%")):
            continue  # headings (and overlined ones), doctests, tables, line blocks, shell sessions
        if any(_UNDERLINE.match(line.strip()) for line in lines):
            continue  # simple tables
        text = " ".join(line.strip() for line in lines)
        if text.endswith("::"):
            skip_deeper_than = indent  # a literal (code) block follows
            text = text[:-2].rstrip() + ("" if text[:-2].endswith(" ") else ":")
        text = plain(_BULLET.sub("", text))
        if sum(c.isalpha() for c in text) >= 0.6 * len(text) and len(text.split()) >= 4:
            yield text


SKIPPED_DIRS = frozenset({"test", "tests", "idle_test", "site-packages", "dist-packages", "__pycache__"})


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


def main(sources_dir: str, output: str) -> None:
    root = Path(sources_dir)
    files = sorted(root.rglob("*.rst.txt"), key=lambda p: p.relative_to(root).as_posix())
    prose = [p for f in files for p in paragraphs(f.read_text(encoding="utf-8"))]
    stdlib = [" ".join(doc.split()) for doc in extract_stdlib_documents() if doc.strip()]
    text = "\n".join(prose + stdlib) + "\n"
    Path(output).write_bytes(lzma.compress(text.encode("utf-8"), preset=9 | lzma.PRESET_EXTREME))
    words = sum(len(line.split()) for line in prose + stdlib)
    print(f"{len(files)} reST files -> {len(prose)} paragraphs; stdlib {sys.version.split()[0]} -> "
          f"{len(stdlib)} documents; {words} words -> {output}")


if __name__ == "__main__":
    main(*sys.argv[1:3])
