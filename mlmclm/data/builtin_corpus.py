"""The built-in corpus: prose of the CPython 3.11 documentation, shipped with the package (docs/data.md).

It needs no download and is byte-identical on every machine and Python version, so the default experiment
gives the same numbers everywhere. The compressed file holds one document per line: the reST docs' prose
paragraphs, then the standard library's docstrings and help topics (how it was built:
benchmarks/corpus/build_python_docs_corpus.py; licence: corpora/LICENSE-python-docs.txt). It is
decompressed once into <cache_dir>/corpora/ and then read like any other text corpus.
"""

from __future__ import annotations

import hashlib
import lzma
from importlib import resources
from pathlib import Path

from mlmclm.atomic import atomic_write
from mlmclm.errors import DataError

BUILTIN_CORPUS_NAME = "python-docs-3.11"
BUILTIN_CORPUS_SOURCE = "builtin:python-docs-3.11"
# The shipped file's digest: a damaged or swapped install fails loudly instead of training on other text.
BUILTIN_CORPUS_XZ_SHA256 = "b58e0da0444151d6c40d5823364a84527b3837cbd8d2d98ad3897c93bc5e705e"


def shipped_corpus_bytes() -> bytes:
    """The compressed corpus as installed with the package, checked against its recorded digest."""
    data = (resources.files("mlmclm.data") / "corpora" / f"{BUILTIN_CORPUS_NAME}.txt.xz").read_bytes()
    if hashlib.sha256(data).hexdigest() != BUILTIN_CORPUS_XZ_SHA256:
        raise DataError(f"the built-in corpus file {BUILTIN_CORPUS_NAME}.txt.xz is damaged; reinstall mlmclm")
    return data


def default_corpus_file(cache_dir: Path) -> Path:
    """The decompressed corpus, written on first use (atomically, so a crash leaves no partial file)."""
    path = Path(cache_dir) / "corpora" / f"{BUILTIN_CORPUS_NAME}.txt"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        text = lzma.decompress(shipped_corpus_bytes())
        atomic_write(path, lambda tmp: tmp.write_bytes(text))
    return path


def builtin_documents() -> list[str]:
    """Every document of the built-in corpus, uncleaned, in file order (for benchmarks and tests)."""
    return lzma.decompress(shipped_corpus_bytes()).decode("utf-8").splitlines()
