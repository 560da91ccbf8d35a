"""Tokenized documents as contiguous arrays, cached on disk and memory-mapped on reuse.

Each split is tokenized once (``encode_batch``, no special tokens) into ``tokens`` (int32), ``offsets``
(document d is ``tokens[offsets[d]:offsets[d + 1]]``) and ``word_starts`` (True where a token begins a
pre-tokenizer word, taken from the fast tokenizer's ``word_ids`` so whole-word and span masking work for
any tokenizer, not only ``##`` WordPiece). The cache directory name is a hash of the corpus, tokenizer and
split specification; every run of a grid and every later invocation reuses it.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from mlmclm.atomic import current_umask
from mlmclm.data.tokenizer import TokenizerInfo

logger = logging.getLogger(__name__)
ENCODE_CHUNK = 2048
ARRAYS = ("tokens", "offsets", "word_starts")


@dataclass(frozen=True)
class TokenizedDocuments:
    """Documents of one split: ``tokens[offsets[d]:offsets[d+1]]`` is document d."""

    tokens: np.ndarray
    offsets: np.ndarray
    word_starts: np.ndarray

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def num_tokens(self) -> int:
        return int(self.offsets[-1])

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def select(self, indices: np.ndarray) -> TokenizedDocuments:
        """The documents at ``indices`` (in that order), copied into new contiguous arrays."""
        indices = np.asarray(indices, dtype=np.int64)
        lengths = self.lengths[indices]
        offsets = np.zeros(len(indices) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        positions = np.repeat(self.offsets[indices] - offsets[:-1], lengths) + np.arange(offsets[-1])
        return TokenizedDocuments(
            np.asarray(self.tokens[positions]), offsets, np.asarray(self.word_starts[positions])
        )

    @staticmethod
    def concatenate(parts: list[TokenizedDocuments]) -> TokenizedDocuments:
        shifts = np.cumsum([0] + [p.num_tokens for p in parts[:-1]])
        shifted = [p.offsets[1:] + s for p, s in zip(parts, shifts, strict=True)]
        offsets = np.concatenate([np.zeros(1, dtype=np.int64), *shifted]).astype(np.int64)
        return TokenizedDocuments(
            np.concatenate([np.asarray(p.tokens) for p in parts]),
            offsets,
            np.concatenate([np.asarray(p.word_starts) for p in parts]),
        )


def tokenize_documents(texts: list[str], info: TokenizerInfo, desc: str = "tokenizing") -> TokenizedDocuments:
    """Encode ``texts`` in batches into contiguous arrays (no [CLS]/[SEP]; those are added per sequence)."""
    token_parts: list[np.ndarray] = []
    start_parts: list[np.ndarray] = []
    lengths = np.zeros(len(texts), dtype=np.int64)
    chunks = range(0, len(texts), ENCODE_CHUNK)
    for begin in tqdm(chunks, desc=desc, unit=" chunks", disable=None, leave=False):
        encodings = info.tokenizer.encode_batch(texts[begin : begin + ENCODE_CHUNK], add_special_tokens=False)
        for i, encoding in enumerate(encodings):
            ids = np.asarray(encoding.ids, dtype=np.int32)
            words = np.asarray(encoding.word_ids, dtype=np.float64)  # None (added tokens) becomes NaN
            starts = np.ones(len(ids), dtype=bool)
            starts[1:] = words[1:] != words[:-1]  # NaN != NaN, so every added token starts a word
            token_parts.append(ids)
            start_parts.append(starts)
            lengths[begin + i] = len(ids)
    offsets = np.zeros(len(texts) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    tokens = np.concatenate(token_parts) if token_parts else np.zeros(0, dtype=np.int32)
    word_starts = np.concatenate(start_parts) if start_parts else np.zeros(0, dtype=bool)
    return TokenizedDocuments(tokens, offsets, word_starts)


def cached_tokenization(
    cache_dir: Path, key: str, splits: dict[str, list[str]], info: TokenizerInfo, metadata: dict
) -> dict[str, TokenizedDocuments]:
    """Tokenize each split once into ``cache_dir/<key>/`` and memory-map it on every later call."""
    directory = cache_dir / key
    if not (directory / "meta.json").is_file():
        cache_dir.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=cache_dir, prefix=f".{key}."))
        os.chmod(staging, 0o777 & ~current_umask())  # mkdtemp's 0o700 would hide a shared cache from others
        try:
            for name, texts in splits.items():
                docs = tokenize_documents(texts, info, desc=f"tokenizing {name}")
                for array in ARRAYS:
                    np.save(staging / f"{name}.{array}.npy", getattr(docs, array))
            # meta.json is written last: its presence marks a complete cache entry
            (staging / "meta.json").write_text(json.dumps(metadata, indent=2, sort_keys=True))
            try:
                os.rename(staging, directory)  # atomic; fails if another process finished first
            except OSError:
                if not (directory / "meta.json").is_file():
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    else:
        logger.info("reusing token cache %s", directory)
    return {
        name: TokenizedDocuments(
            *(np.load(directory / f"{name}.{array}.npy", mmap_mode="r") for array in ARRAYS)
        )
        for name in splits
    }
