"""Tiny corpora and a tiny (~200-token) WordPiece tokenizer, built once per test session."""

from __future__ import annotations

import errno
import socket
import time

import numpy as np
import pytest

from mlmclm.config import DataConfig
from mlmclm.data.token_cache import TokenizedDocuments, tokenize_documents
from mlmclm.data.tokenizer import TokenizerInfo, load_tokenizer, train_tokenizer

SYLLABLES = ["ka", "lo", "mi", "ne", "su", "ta", "ri", "po", "ve", "dor", "zan", "quil", "bex", "thu"]


def synthetic_texts(count: int, seed: int = 0, min_words: int = 4, max_words: int = 120) -> list[str]:
    """Distinct documents of varied length built from 1-4 syllable words, so WordPiece splits many words."""
    rng = np.random.default_rng(seed)
    lexicon = ["".join(rng.choice(SYLLABLES, size=rng.integers(1, 5))) for _ in range(300)]
    texts = []
    for index in range(count):
        words = rng.choice(lexicon, size=int(rng.integers(min_words, max_words)))
        texts.append(f"doc{index} " + " ".join(words) + ".")
    return texts


def tie_heavy_texts(count: int = 190) -> list[str]:
    """Regular text where many candidate merges are equally frequent, so the trainer's tie-breaking decides."""
    words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "theta", "kappa", "lambda", "sigma"]
    return [
        " ".join(words[(i * 7 + j * 3) % len(words)] + str(j % 5) for j in range(12 + i % 9)) for i in range(count)
    ]


def fake_tokenizer_info(vocab_size: int = 1000) -> TokenizerInfo:
    """Ids 0-4 are [PAD] [UNK] [CLS] [SEP] [MASK]; for hand-built token arrays."""
    return TokenizerInfo(
        tokenizer=None,
        vocab_size=vocab_size,
        pad_id=0,
        unk_id=1,
        cls_id=2,
        sep_id=3,
        mask_id=4,
        special_ids=(0, 1, 2, 3, 4),
        sha256="fake",
        path="fake",
    )


def documents_from_lists(
    token_lists: list[list[int]], word_starts: list[list[bool]] | None = None
) -> TokenizedDocuments:
    offsets = np.zeros(len(token_lists) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(t) for t in token_lists])
    tokens = np.concatenate([np.asarray(t, dtype=np.int32) for t in token_lists])
    starts = (
        np.concatenate([np.asarray(w, dtype=bool) for w in word_starts])
        if word_starts is not None
        else np.ones(len(tokens), dtype=bool)
    )
    return TokenizedDocuments(tokens, offsets, starts)


@pytest.fixture(scope="session")
def tiny_tokenizer(tmp_path_factory) -> TokenizerInfo:
    directory = tmp_path_factory.mktemp("tokenizer")
    train_tokenizer(synthetic_texts(400, seed=99), vocab_size=200, output_dir=directory)
    return load_tokenizer(directory)


@pytest.fixture(scope="session")
def tiny_documents(tiny_tokenizer) -> TokenizedDocuments:
    return tokenize_documents(synthetic_texts(300, seed=1), tiny_tokenizer)


@pytest.fixture
def data_cfg() -> DataConfig:
    return DataConfig().replace(max_seq_length=64, sliding_window_stride=24, vocab_size=200, min_document_chars=5)


@pytest.fixture
def hub_answers(monkeypatch):
    """The Hugging Face Hub answers (the tests stand in for its downloads; no network in tests)."""
    from mlmclm.data import sources, tokenizer

    for module in (sources, tokenizer):
        monkeypatch.setattr(module, "hub_unreachable_reason", lambda repo_id, repo_type="model": None)


@pytest.fixture
def unreachable_hub(monkeypatch) -> list:
    """No host resolves and no connection opens, as on a machine without network; returns the attempts made.

    The Hub client's backoff sleeps are skipped, so that a retry loop shows up in the count, not as minutes.
    """
    attempts = []

    def no_name(host, *args, **kwargs):
        attempts.append(host)
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    def refused(self, address):
        attempts.append(address)
        raise ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused")

    monkeypatch.setattr(socket, "getaddrinfo", no_name)
    monkeypatch.setattr(socket.socket, "connect", refused)
    monkeypatch.setattr(time, "sleep", lambda seconds: None)
    return attempts
