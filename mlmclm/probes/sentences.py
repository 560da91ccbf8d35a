"""Held-out sentences for the generated probes, split deterministically and kept apart from training text.

The splitter is a plain regex, chosen because it is deterministic and needs no model or download: a
sentence ends at ``.``, ``!`` or ``?`` followed by white space, and every line break also ends one. It
splits after abbreviations such as "e.g." too; such fragments are usually dropped by the word-count and
prose filters below, and the same splitter is applied to the training text, so exclusion stays exact.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

_SENTENCE_BOUNDARY = re.compile(r"(?<=[.!?])\s+|\s*\n\s*")
_WORD = re.compile(r"[a-z]+")
MIN_SENTENCE_WORDS = 4


def split_sentences(text: str) -> list[str]:
    """Sentences of ``text`` with white space collapsed to single spaces, in document order."""
    pieces = (" ".join(piece.split()) for piece in _SENTENCE_BOUNDARY.split(text))
    return [piece for piece in pieces if piece]


def sentence_key(sentence: str) -> str:
    """The form used to decide that two sentences are the same (case and spacing ignored)."""
    return " ".join(sentence.split()).casefold()


def lowercase_words(sentence: str) -> list[str]:
    """Alphabetic words of a sentence in lower case; word_content decides presence on these."""
    return _WORD.findall(sentence.casefold())


def is_prose_word(word: str) -> bool:
    return word.strip(".,;:!?\"'()[]").isalpha()


@dataclass(frozen=True)
class SentencePool:
    """Held-out documents as sentence lists, plus which sentences the probes may use.

    A sentence is usable when it does not occur in the training text, is not a repeat of an earlier
    held-out sentence (so no sentence can reach both probe splits), has between ``MIN_SENTENCE_WORDS`` and
    ``max_words`` white-space words, and at least half of its words are alphabetic (prose, not code).
    ``documents`` keeps every sentence so that adjacency (coherence) refers to the original document.
    """

    documents: list[list[str]]
    usable: frozenset[tuple[int, int]]  # (document index, sentence index)

    def usable_sentences(self) -> list[tuple[int, int]]:
        return sorted(self.usable)

    def sentence(self, position: tuple[int, int]) -> str:
        doc, index = position
        return self.documents[doc][index]


def training_sentence_hashes(training_texts: Iterable[str]) -> set[int]:
    """Hashes of every training sentence key; a hash collision can only exclude more, never leak."""
    return {hash(sentence_key(s)) for text in training_texts for s in split_sentences(text)}


def build_sentence_pool(
    heldout_texts: Iterable[str], training_texts: Iterable[str], max_words: int
) -> SentencePool:
    """Split the held-out documents and mark the sentences the probes may draw from."""
    training = training_sentence_hashes(training_texts)
    documents = [split_sentences(text) for text in heldout_texts]
    seen: set[str] = set()
    usable: set[tuple[int, int]] = set()
    for doc, sentences in enumerate(documents):
        for index, sentence in enumerate(sentences):
            key = sentence_key(sentence)
            if key in seen or hash(key) in training:
                continue
            seen.add(key)
            words = sentence.split()
            prose = sum(is_prose_word(word) for word in words)
            if MIN_SENTENCE_WORDS <= len(words) <= max_words and 2 * prose >= len(words):
                usable.add((doc, index))
    return SentencePool(documents=documents, usable=frozenset(usable))
