"""Everything a grid needs before its first run: corpus, splits, folds, tokenizer and token cache.

:func:`prepare_data` is a pure function of the config's data section (plus ``cross_validation`` and
``folds``), so every (objective, attention, seed) condition of an experiment gets identical documents,
splits, folds and token arrays. Expensive steps are cached under ``data.cache_dir``.

A trained tokenizer never sees text it is scored on: without folds it learns from the training split;
under cross-validation each fold gets its own, learned from that fold's training part only (the other
folds), and every split is tokenized once per fold with it.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from mlmclm.data.batches import control_notes, masking_regime
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
    """The documents one run trains, validates and tests on, and the tokenizer that encoded them."""

    train: TokenizedDocuments
    validation: TokenizedDocuments
    test: TokenizedDocuments
    tokenizer: TokenizerInfo


@dataclass(frozen=True)
class FoldEncoding:
    """Cross-validation with a trained tokenizer: fold k's tokenizer and every split encoded with it."""

    tokenizer: TokenizerInfo
    documents: dict[str, TokenizedDocuments]


@dataclass
class ExperimentData:
    """Prepared data shared by every run of an experiment.

    ``tokenizer`` and ``documents`` are the shared tokenizer and its encodings; under cross-validation with
    a trained tokenizer they are fold 0's, and ``fold_encodings`` holds every fold's own (use :meth:`fold`).
    """

    tokenizer: TokenizerInfo
    manifest: dict
    corpus: Corpus
    splits: Splits
    documents: dict[str, TokenizedDocuments]
    fold_encodings: dict[int, FoldEncoding] = field(default_factory=dict)

    def fold(self, k: int | None) -> FoldData:
        """``None``: the plain train/validation split; ``k``: fold k validates, the other folds train."""
        if k is None:
            docs = self.documents
            return FoldData(docs["train"], docs["validation"], docs["test"], self.tokenizer)
        if self.splits.folds is None:
            raise DataError(f"fold {k} was requested but the data were prepared without cross-validation")
        if not 0 <= k < len(self.splits.folds):
            raise DataError(f"fold {k} does not exist; there are {len(self.splits.folds)} folds (0-based)")
        encoding = self.fold_encodings.get(k, FoldEncoding(self.tokenizer, self.documents))
        documents = encoding.documents
        pool = TokenizedDocuments.concatenate([documents["train"], documents["validation"]])
        position = np.full(len(self.corpus.texts), -1, dtype=np.int64)
        position[np.concatenate([self.splits.train, self.splits.validation])] = np.arange(len(pool))
        held = self.splits.folds[k]
        rest = np.sort(np.concatenate([f for i, f in enumerate(self.splits.folds) if i != k]))
        return FoldData(
            pool.select(position[rest]), pool.select(position[held]), documents["test"], encoding.tokenizer
        )

    def provenance(self, k: int | None) -> dict[str, str]:
        """The corpus and tokenizer hashes a run of fold ``k`` trains with (stored in its run record)."""
        tokenizer = self.fold_encodings[k].tokenizer if k in self.fold_encodings else self.tokenizer
        return {"data_hash": self.corpus.sha256, "tokenizer_hash": tokenizer.sha256}

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


def _tokenizer_training_texts(corpus: Corpus, splits: Splits, k: int | None = None) -> list[str]:
    """What a trained tokenizer learns from: the training split, or fold k's training part (the other folds).

    Never text its runs are validated or tested on, so no held-out text shapes the vocabulary.
    """
    if k is None:
        indices = splits.train
    else:
        indices = np.sort(np.concatenate([f for i, f in enumerate(splits.folds) if i != k]))
    return [corpus.texts[i] for i in indices]


def _default_tokenizer_dir(config: ExperimentConfig, corpus: Corpus, k: int | None = None) -> Path:
    key = _hash(corpus.sha256, _split_spec(config), config.data.vocab_size, *([] if k is None else [k]))
    return Path(config.data.cache_dir) / "tokenizers" / key


def _trained_tokenizer(config: ExperimentConfig, corpus: Corpus, splits: Splits, k: int | None) -> TokenizerInfo:
    directory = _default_tokenizer_dir(config, corpus, k)
    if not (directory / "tokenizer.json").is_file():
        which = "" if k is None else f" (fold {k})"
        logger.info("no tokenizer for this corpus%s yet; training one in %s", which, directory)
        train_tokenizer(_tokenizer_training_texts(corpus, splits, k), config.data.vocab_size, directory)
    return load_tokenizer(directory)


def _tokenizer_folds(config: ExperimentConfig, splits: Splits) -> list[int | None]:
    """``[None]``: one tokenizer for every run; ``[0, ..., K-1]``: one trained per cross-validation fold."""
    if config.data.tokenizer is None and splits.folds is not None:
        return list(range(len(splits.folds)))
    return [None]


def setup_tokenizer(config: ExperimentConfig, output_dir: str | Path | None = None) -> Path:
    """Train the WordPiece tokenizer on the training text and return the path of its ``tokenizer.json``.

    Without ``output_dir`` it goes to the cache directory that :func:`prepare_data` looks in, keyed by the
    corpus hash, split specification and vocabulary size. Under cross-validation every fold's tokenizer is
    trained into the cache (each on its fold's training part) and fold 0's path is returned.
    """
    corpus, splits = _split_corpus(config)
    folds = _tokenizer_folds(config, splits)
    if folds != [None]:
        if output_dir is not None:
            raise DataError("under cross-validation each fold trains its own tokenizer into the cache; drop --output")
        paths = [_trained_tokenizer(config, corpus, splits, k).path for k in folds]
        return Path(paths[0])
    target = Path(output_dir) if output_dir is not None else _default_tokenizer_dir(config, corpus)
    texts = _tokenizer_training_texts(corpus, splits)
    logger.info("training a %d-token WordPiece tokenizer on %d documents", config.data.vocab_size, len(texts))
    return train_tokenizer(texts, config.data.vocab_size, target)


def _resolve_tokenizer(config: ExperimentConfig, corpus: Corpus, splits: Splits, k: int | None) -> TokenizerInfo:
    if config.data.tokenizer is not None:
        name = config.data.tokenizer
        if name.startswith(HUB_PREFIX):
            return load_tokenizer(fetch_hub_tokenizer(name[len(HUB_PREFIX) :], config.data.cache_dir))
        return load_tokenizer(name)
    return _trained_tokenizer(config, corpus, splits, k)


def prepare_data(config: ExperimentConfig) -> ExperimentData:
    """Load and clean the corpus, split it, get the tokenizer and tokenize every split once (cached)."""
    data = config.data
    corpus, splits = _split_corpus(config)
    spec = _split_spec(config)
    texts = {name: [corpus.texts[i] for i in getattr(splits, name)] for name in SPLIT_NAMES}
    encodings: dict[int | None, FoldEncoding] = {}
    for k in _tokenizer_folds(config, splits):
        tokenizer = _resolve_tokenizer(config, corpus, splits, k)
        metadata = {"corpus_sha256": corpus.sha256, "tokenizer_sha256": tokenizer.sha256, **spec}
        key = _hash(corpus.sha256, tokenizer.sha256, spec)
        encodings[k] = FoldEncoding(
            tokenizer, cached_tokenization(Path(data.cache_dir) / "tokens", key, texts, tokenizer, metadata)
        )
    first = next(iter(encodings))  # None, or fold 0 under cross-validation with trained tokenizers
    info, documents = encodings[first].tokenizer, encodings[first].documents
    key = _hash(corpus.sha256, info.sha256, spec)
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
        "mlm_masking": masking_regime(data),
    }
    if splits.folds is not None:
        manifest["fold_sizes"] = [len(f) for f in splits.folds]
    fold_encodings = {k: encoding for k, encoding in encodings.items() if k is not None}
    if fold_encodings:
        manifest["fold_tokenizer_sha256"] = [fold_encodings[k].tokenizer.sha256 for k in sorted(fold_encodings)]
    return ExperimentData(
        tokenizer=info, manifest=manifest, corpus=corpus, splits=splits, documents=documents,
        fold_encodings=fold_encodings,
    )
