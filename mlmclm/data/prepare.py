"""Everything a grid needs before its first run: corpus, splits, folds, tokenizer and token cache.

:func:`prepare_data` is a pure function of the config's data section (plus ``cross_validation`` and
``folds``), so every (objective, attention, seed) condition of an experiment gets identical documents,
splits, folds and token arrays. Expensive steps are cached under ``data.cache_dir``.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from mlmclm.data.batches import control_notes
from mlmclm.data.corpus import Corpus, load_corpus
from mlmclm.data.splits import Splits, split_documents
from mlmclm.data.token_cache import TokenizedDocuments, cached_tokenization
from mlmclm.data.tokenizer import HUB_PREFIX, TokenizerInfo, fetch_hub_tokenizer, load_tokenizer, train_tokenizer
from mlmclm.errors import DataError

if TYPE_CHECKING:
    from mlmclm.config import ExperimentConfig

logger = logging.getLogger(__name__)
SPLIT_NAMES = ("train", "validation", "test")


@dataclass(frozen=True)
class FoldData:
    """The documents one run trains, validates and tests on."""

    train: TokenizedDocuments
    validation: TokenizedDocuments
    test: TokenizedDocuments


@dataclass
class ExperimentData:
    """Prepared data shared by every run of an experiment."""

    tokenizer: TokenizerInfo
    manifest: dict
    corpus: Corpus
    splits: Splits
    documents: dict[str, TokenizedDocuments]

    def fold(self, k: int | None) -> FoldData:
        """``None``: the plain train/validation split; ``k``: fold k validates, the other folds train."""
        test = self.documents["test"]
        if k is None:
            return FoldData(self.documents["train"], self.documents["validation"], test)
        if self.splits.folds is None:
            raise DataError(f"fold {k} was requested but the data were prepared without cross-validation")
        if not 0 <= k < len(self.splits.folds):
            raise DataError(f"fold {k} does not exist; there are {len(self.splits.folds)} folds (0-based)")
        pool = TokenizedDocuments.concatenate([self.documents["train"], self.documents["validation"]])
        position = np.full(len(self.corpus.texts), -1, dtype=np.int64)
        position[np.concatenate([self.splits.train, self.splits.validation])] = np.arange(len(pool))
        held = self.splits.folds[k]
        rest = np.sort(np.concatenate([f for i, f in enumerate(self.splits.folds) if i != k]))
        return FoldData(pool.select(position[rest]), pool.select(position[held]), test)

    def provenance(self, k: int | None) -> dict[str, str]:
        """The corpus and tokenizer hashes a run of fold ``k`` trains with (stored in its run record)."""
        return {"data_hash": self.corpus.sha256, "tokenizer_hash": self.tokenizer.sha256}

    def texts(self, split_name: str) -> list[str]:
        """Cleaned raw texts of "train", "validation" or "test" (probes must use held-out text)."""
        if split_name not in SPLIT_NAMES:
            raise DataError(f"unknown split {split_name!r} (valid: {', '.join(SPLIT_NAMES)})")
        return [self.corpus.texts[i] for i in getattr(self.splits, split_name)]


def _split_spec(config: ExperimentConfig) -> dict:
    data = config.data
    return {
        "split_seed": data.split_seed,
        "split_ratios": list(data.split_ratios),
        "length_bins": data.length_bins,
        "folds": config.folds if config.cross_validation else None,
    }


def _hash(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:20]


def _split_corpus(config: ExperimentConfig) -> tuple[Corpus, Splits]:
    corpus = load_corpus(config.data)
    lengths = np.fromiter((len(t) for t in corpus.texts), dtype=np.int64, count=len(corpus.texts))
    spec = _split_spec(config)
    splits = split_documents(
        lengths, spec["split_ratios"], spec["length_bins"], spec["split_seed"], spec["folds"]
    )
    return corpus, splits


def _tokenizer_training_texts(corpus: Corpus, splits: Splits) -> list[str]:
    """The training split; with folds, train + validation (every fold trains on part of it). Never test."""
    indices = (
        splits.train if splits.folds is None else np.sort(np.concatenate([splits.train, splits.validation]))
    )
    return [corpus.texts[i] for i in indices]


def _default_tokenizer_dir(config: ExperimentConfig, corpus: Corpus) -> Path:
    key = _hash(corpus.sha256, _split_spec(config), config.data.vocab_size)
    return Path(config.data.cache_dir) / "tokenizers" / key


def setup_tokenizer(config: ExperimentConfig, output_dir: str | Path | None = None) -> Path:
    """Train the WordPiece tokenizer on the training text and return the path of its ``tokenizer.json``.

    Without ``output_dir`` it goes to the cache directory that :func:`prepare_data` looks in, keyed by the
    corpus hash, split specification and vocabulary size.
    """
    corpus, splits = _split_corpus(config)
    target = Path(output_dir) if output_dir is not None else _default_tokenizer_dir(config, corpus)
    texts = _tokenizer_training_texts(corpus, splits)
    logger.info("training a %d-token WordPiece tokenizer on %d documents", config.data.vocab_size, len(texts))
    return train_tokenizer(texts, config.data.vocab_size, target)


def _resolve_tokenizer(config: ExperimentConfig, corpus: Corpus, splits: Splits) -> TokenizerInfo:
    if config.data.tokenizer is not None:
        name = config.data.tokenizer
        if name.startswith(HUB_PREFIX):
            return load_tokenizer(fetch_hub_tokenizer(name[len(HUB_PREFIX) :], config.data.cache_dir))
        return load_tokenizer(name)
    directory = _default_tokenizer_dir(config, corpus)
    if not (directory / "tokenizer.json").is_file():
        logger.info("no tokenizer for this corpus yet; training one in %s", directory)
        train_tokenizer(_tokenizer_training_texts(corpus, splits), config.data.vocab_size, directory)
    return load_tokenizer(directory)


def prepare_data(config: ExperimentConfig) -> ExperimentData:
    """Load and clean the corpus, split it, get the tokenizer and tokenize every split once (cached)."""
    data = config.data
    corpus, splits = _split_corpus(config)
    info = _resolve_tokenizer(config, corpus, splits)
    spec = _split_spec(config)
    key = _hash(corpus.sha256, info.sha256, spec)
    texts = {name: [corpus.texts[i] for i in getattr(splits, name)] for name in SPLIT_NAMES}
    documents = cached_tokenization(
        Path(data.cache_dir) / "tokens",
        key,
        texts,
        info,
        {"corpus_sha256": corpus.sha256, "tokenizer_sha256": info.sha256, **spec},
    )
    manifest = {
        "corpus_name": corpus.name,
        "corpus_source": corpus.source,
        "corpus_sha256": corpus.sha256,
        "documents": dict(corpus.counts),
        "split_sizes": {name: len(documents[name]) for name in SPLIT_NAMES},
        "token_counts": {name: documents[name].num_tokens for name in SPLIT_NAMES},
        "mean_document_chars": {name: float(np.mean([len(t) for t in texts[name]])) for name in SPLIT_NAMES},
        "tokenizer_sha256": info.sha256,
        "tokenizer_path": info.path,
        "vocab_size": info.vocab_size,
        **spec,
        "token_cache_key": key,
        "notes": control_notes(data, list(config.objectives)),
    }
    if splits.folds is not None:
        manifest["fold_sizes"] = [len(f) for f in splits.folds]
    return ExperimentData(
        tokenizer=info, manifest=manifest, corpus=corpus, splits=splits, documents=documents
    )
