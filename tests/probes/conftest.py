"""Shared fixtures: a synthetic held-out/training corpus, a tiny WordPiece tokenizer and stand-in encoders."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

from mlmclm.config import ProbeConfig

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def synthetic_documents(rng: np.random.Generator, num_documents: int, vocabulary: list[str]) -> list[str]:
    """Documents of 6-10 random sentences of 4-25 words, with mildly Zipfian word frequencies."""
    weights = 1.0 / (np.arange(len(vocabulary)) + 20.0)
    weights /= weights.sum()
    documents = []
    for _ in range(num_documents):
        sentences = []
        for _ in range(rng.integers(6, 11)):
            words = list(rng.choice(vocabulary, size=rng.integers(4, 26), p=weights))
            sentences.append(" ".join(words).capitalize() + ".")
        documents.append(" ".join(sentences))
    return documents


def vocabulary(size: int = 400) -> list[str]:
    consonants, vowels = "bdfgklmnprstvz", "aeiou"
    syllables = [c + v for c in consonants for v in vowels]
    rng = np.random.default_rng(7)
    words: set[str] = set()
    while len(words) < size:
        words.add("".join(rng.choice(syllables, size=rng.integers(2, 4))))
    return sorted(words)


@pytest.fixture(scope="session")
def corpus() -> dict[str, list[str]]:
    """Held-out and training documents; three held-out documents repeat a training sentence (a leak)."""
    rng = np.random.default_rng(0)
    words = vocabulary()
    training = synthetic_documents(rng, 150, words)
    heldout = synthetic_documents(rng, 300, words)
    leaked = [
        training[0].split(". ")[1] + ".",
        training[1].split(". ")[2] + ".",
        training[2].split(". ")[0] + ".",
    ]
    for i, sentence in enumerate(leaked):
        heldout[i] = f"{sentence} {heldout[i]}"
    return {"heldout": heldout, "training": training, "leaked": leaked}


@pytest.fixture(scope="session")
def tokenizer(corpus: dict[str, list[str]]) -> Tokenizer:
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    trainer = trainers.WordPieceTrainer(vocab_size=600, special_tokens=SPECIAL_TOKENS, show_progress=False)
    tok.train_from_iterator(corpus["training"] + corpus["heldout"], trainer=trainer)
    return tok


@pytest.fixture
def probe_cfg() -> ProbeConfig:
    return ProbeConfig(examples_per_task=200, test_fraction=0.3, seed=0)


class BagOfEmbeddingsEncoder(torch.nn.Module):
    """Stand-in for the model contract: token embeddings (causally averaged for "clm"), then dropout.

    Mean pooling of the "mlm" variant is exactly invariant to word order, which makes it a known-answer
    encoder: it carries lexical content but no word-order information.
    """

    def __init__(
        self, vocab_size: int, objective: str, hidden_size: int = 48, max_seq_length: int = 64
    ) -> None:
        super().__init__()
        self.embedding = torch.nn.Embedding(vocab_size, hidden_size)
        with torch.no_grad():
            self.embedding.weight.normal_(generator=torch.Generator().manual_seed(0))
        self.dropout = torch.nn.Dropout(0.5)
        self.config = {"objective": objective, "max_seq_length": max_seq_length, "hidden_size": hidden_size}

    def encode(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        hidden = self.embedding(input_ids)
        if self.config["objective"] == "clm":
            positions = torch.arange(1, input_ids.shape[1] + 1, dtype=hidden.dtype).view(1, -1, 1)
            hidden = hidden.cumsum(dim=1) / positions
        return self.dropout(hidden)


@pytest.fixture
def make_encoder(tokenizer: Tokenizer):
    def make(objective: str, **kwargs) -> BagOfEmbeddingsEncoder:
        return BagOfEmbeddingsEncoder(tokenizer.get_vocab_size(), objective, **kwargs)

    return make
