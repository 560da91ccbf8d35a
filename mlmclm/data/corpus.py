"""Load a corpus and clean it: whitespace normalised, short and duplicate documents dropped, all counted.

Cleaning is a pure function of the raw text stream, so every objective and attention mechanism of an
experiment sees exactly the same documents. Duplicates are found through a set of 16-byte digests, not of
the strings themselves, so a large corpus is held in memory once.
"""

from __future__ import annotations

import hashlib
import logging
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

from mlmclm.config import DataConfig
from mlmclm.data.builtin_corpus import BUILTIN_CORPUS_NAME, BUILTIN_CORPUS_SOURCE, default_corpus_file
from mlmclm.data.sources import iter_raw_documents
from mlmclm.errors import DataError

logger = logging.getLogger(__name__)


@dataclass
class Corpus:
    """Cleaned documents (one line each, in source order) plus where they came from and what was dropped."""

    name: str
    source: str
    texts: list[str]
    sha256: str
    counts: dict[str, int] = field(default_factory=dict)


def normalise_whitespace(text: str) -> str:
    """NFC-normalise and collapse every run of whitespace (newlines included) to one space."""
    return " ".join(unicodedata.normalize("NFC", text).split())


def clean_documents(
    raw: Iterable[str], min_chars: int, deduplicate: bool, max_documents: int | None = None
) -> tuple[list[str], dict[str, int], str]:
    """Clean a stream of raw documents; returns (kept texts, counts by reason, sha256 of the kept texts)."""
    counts = {"read": 0, "kept": 0, "dropped_empty": 0, "dropped_short": 0, "dropped_duplicate": 0}
    seen: set[bytes] = set()
    kept: list[str] = []
    digest = hashlib.sha256()
    for document in raw:
        counts["read"] += 1
        text = normalise_whitespace(document)
        if not text:
            counts["dropped_empty"] += 1
            continue
        if len(text) < min_chars:
            counts["dropped_short"] += 1
            continue
        if deduplicate:
            key = hashlib.blake2b(text.encode("utf-8"), digest_size=16).digest()
            if key in seen:
                counts["dropped_duplicate"] += 1
                continue
            seen.add(key)
        kept.append(text)
        digest.update(text.encode("utf-8") + b"\n")  # cleaned texts hold no newline, so this is unambiguous
        if max_documents is not None and len(kept) >= max_documents:
            break
    counts["kept"] = len(kept)
    return kept, counts, digest.hexdigest()


def load_corpus(data_cfg: DataConfig) -> Corpus:
    """Read ``data.path`` (or the built-in corpus when it is None) and clean it."""
    if data_cfg.path is None:
        path = default_corpus_file(Path(data_cfg.cache_dir))
        name, source = BUILTIN_CORPUS_NAME, BUILTIN_CORPUS_SOURCE
        raw = iter_raw_documents(str(path), "txt", data_cfg.text_field, "line")
    else:
        name = _corpus_name(data_cfg.path)
        source = data_cfg.path
        raw = iter_raw_documents(
            data_cfg.path, data_cfg.format, data_cfg.text_field, data_cfg.document_separator
        )
    progress = tqdm(raw, desc=f"reading {name}", unit=" docs", disable=None, leave=False)
    texts, counts, sha = clean_documents(
        progress, data_cfg.min_document_chars, data_cfg.deduplicate, data_cfg.max_documents
    )
    if not texts:
        raise DataError(
            f"corpus {source} has no usable documents (read {counts['read']}, "
            f"{counts['dropped_empty']} empty, {counts['dropped_short']} shorter than "
            f"data.min_document_chars={data_cfg.min_document_chars}, "
            f"{counts['dropped_duplicate']} duplicates)"
        )
    logger.info("corpus %s: %s", name, ", ".join(f"{k} {v}" for k, v in counts.items()))
    return Corpus(name=name, source=source, texts=texts, sha256=sha, counts=counts)


def _corpus_name(path_spec: str) -> str:
    if path_spec.startswith("hf:"):
        return path_spec
    name = Path(path_spec).name
    for suffix in (".gz", ".txt", ".text", ".jsonl", ".json", ".csv", ".parquet"):
        name = name.removesuffix(suffix)
    return name or path_spec
