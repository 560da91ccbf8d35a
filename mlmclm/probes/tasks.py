"""Registry of the probe tasks built from held-out text, and the builder that turns them into fixed splits.

Every generated task follows the SentEval probing recipe of Conneau et al. (2018), "What you can cram into
a single vector: Probing sentence embeddings for linguistic properties" (ACL), adapted to labels that can
be computed from raw held-out text alone: no external annotation and no network. A generator receives the
usable held-out sentences and returns candidate examples per label, each tagged with its source document
(``ProbeExample.group``); the builder balances the labels, checks there are enough, and draws the stratified
train/test probe split by document (no document feeds both splits), all from ``probes.seed``.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from mlmclm.config import require_at_least
from mlmclm.errors import DataError
from mlmclm.probes.examples import (
    MIN_EXAMPLES_PER_LABEL,
    ProbeExample,
    ProbeTask,
    stratified_group_split,
    task_rng,
)
from mlmclm.probes.sentences import SentencePool, build_sentence_pool, lowercase_words
from mlmclm.probes.user_tasks import load_user_probe_task
from mlmclm.registry import Registry

if TYPE_CHECKING:
    from mlmclm.config import ExperimentConfig, ProbeConfig

logger = logging.getLogger(__name__)

LabelledCandidates = tuple[list[str], list[list[ProbeExample]]]
"""(label names, candidate examples per label in random order) as returned by a task generator."""
TaskGenerator = Callable[[SentencePool, "ProbeConfig", np.random.Generator], LabelledCandidates]

PROBE_TASKS: Registry = Registry("probe task", settings_section="probes")

FUNCTION_WORD_RANKS = 100
"""word_content skips this many most frequent word types (function words) before choosing its targets."""


def _document(position: tuple[int, int]) -> str:
    """The split group of a sentence: its held-out document."""
    return str(position[0])


def _per_label(probe_cfg: ProbeConfig, num_labels: int) -> int:
    return probe_cfg.examples_per_task // num_labels


def _swappable_positions(words: list[str]) -> list[int]:
    """Positions ``j`` where swapping words ``j`` and ``j + 1`` changes the sentence without a surface cue.

    The first and the last word stay in place (capitalisation and the final punctuation would otherwise
    give the swap away), and both swapped words must be purely alphabetic and different.
    """
    return [
        j
        for j in range(1, len(words) - 2)
        if words[j].isalpha() and words[j + 1].isalpha() and words[j].casefold() != words[j + 1].casefold()
    ]


@PROBE_TASKS.register("bigram_shift")
def bigram_shift(pool: SentencePool, probe_cfg: ProbeConfig, rng: np.random.Generator) -> LabelledCandidates:
    """Were two adjacent words swapped? Word-order sensitivity (Conneau et al., 2018, BShift).

    Each source sentence is used once, either intact or swapped, so a pair (original, swapped) can never be
    split across train and test.
    """
    candidates = [p for p in pool.usable_sentences() if _swappable_positions(pool.sentence(p).split())]
    order = rng.permutation(len(candidates))
    n = min(_per_label(probe_cfg, 2), len(candidates) // 2)
    originals = [ProbeExample(pool.sentence(candidates[i]), 0, group=_document(candidates[i])) for i in order[:n]]
    swapped = []
    for i in order[n : 2 * n]:
        twin = _bigram_swapped(pool.sentence(candidates[i]).split(), rng)
        swapped.append(ProbeExample(twin, 1, group=_document(candidates[i])))
    return ["original", "swapped"], [originals, swapped]


def _bigram_swapped(words: list[str], rng: np.random.Generator) -> str:
    """The sentence with one random swappable adjacent pair (see :func:`_swappable_positions`) swapped."""
    positions = _swappable_positions(words)
    j = positions[rng.integers(len(positions))]
    swapped = list(words)
    swapped[j], swapped[j + 1] = swapped[j + 1], swapped[j]
    return " ".join(swapped)


@PROBE_TASKS.register("word_order")
def word_order(pool: SentencePool, probe_cfg: ProbeConfig, rng: np.random.Generator) -> LabelledCandidates:
    """Which of two sentences is the original, the other being its bigram-swapped twin? Paired word order.

    A minimal-pair version of ``bigram_shift`` (same sentences, same swap rule), in the spirit of BLiMP
    (Warstadt et al., 2020) but read from frozen features: the probe sees pooled(first) - pooled(second)
    (``ProbeExample.contrast``), which cancels the content both share. A single-sentence probe has to find
    the small order signal under the between-sentence content variance, and at small scale it does not.
    Each source sentence gives one example; which one comes first is drawn from ``rng`` per sentence.
    """
    candidates = [p for p in pool.usable_sentences() if _swappable_positions(pool.sentence(p).split())]
    n = min(_per_label(probe_cfg, 2), len(candidates) // 2)
    by_label: list[list[ProbeExample]] = [[], []]
    for i in rng.permutation(len(candidates)):
        if min(len(examples) for examples in by_label) >= n:
            break
        original = pool.sentence(candidates[i])
        twin = _bigram_swapped(original.split(), rng)
        label = int(rng.integers(2))  # 0: the original comes first, 1: the twin does
        if len(by_label[label]) >= n:
            label = 1 - label
        first, second = (original, twin) if label == 0 else (twin, original)
        by_label[label].append(ProbeExample(first, label, group=_document(candidates[i]), contrast=second))
    return ["original_first", "original_second"], by_label


@dataclass(frozen=True)
class SentenceLengthConfig:
    """``probes.length_buckets``: the number of word-count buckets (equal-frequency edges)."""

    buckets: int = field(default=5, metadata={"key": "length_buckets"})

    def check(self, config: ExperimentConfig) -> None:
        require_at_least("probes.length_buckets", self.buckets, 2, "a probe needs two labels")


@PROBE_TASKS.register("sentence_length", settings=SentenceLengthConfig)
def sentence_length(
    pool: SentencePool, probe_cfg: ProbeConfig, rng: np.random.Generator
) -> LabelledCandidates:
    """Which word-count bucket? Surface information (Conneau et al., 2018, SentLen).

    Bucket edges are equal-frequency quantiles of the usable sentences' white-space word counts, so every
    bucket has data; ties in the integer counts can merge buckets, which the label names then show.
    """
    positions = pool.usable_sentences()
    lengths = np.array([len(pool.sentence(p).split()) for p in positions])
    if len(lengths) == 0:
        return [], []
    quantiles = np.linspace(0, 1, probe_cfg.settings("sentence_length").buckets + 1)[1:-1]
    edges = np.unique(np.quantile(lengths, quantiles, method="lower").astype(int))
    edges = edges[edges < lengths.max()]  # an edge at the maximum would leave the last bucket empty
    buckets = np.digitize(lengths, edges, right=True)  # bucket b holds lengths in (edges[b-1], edges[b]]
    lows = [int(lengths.min()), *(edges + 1).tolist()]
    highs = [*edges.tolist(), int(lengths.max())]
    label_names = [f"{low}-{high} words" for low, high in zip(lows, highs, strict=True)]
    per_label = _per_label(probe_cfg, len(label_names))
    candidates = []
    for bucket in range(len(label_names)):
        members = rng.permutation(np.flatnonzero(buckets == bucket))[:per_label]
        candidates.append(
            [ProbeExample(pool.sentence(positions[i]), bucket, group=_document(positions[i])) for i in members]
        )
    return label_names, candidates


@dataclass(frozen=True)
class WordContentConfig:
    """``probes.word_content_words``: the number K of mid-frequency target words (= labels)."""

    words: int = 10

    def check(self, config: ExperimentConfig) -> None:
        require_at_least("probes.word_content_words", self.words, 2, "a probe needs two labels")


@PROBE_TASKS.register("word_content", settings=WordContentConfig)
def word_content(pool: SentencePool, probe_cfg: ProbeConfig, rng: np.random.Generator) -> LabelledCandidates:
    """Which of K mid-frequency words does the sentence contain? Lexical content (Conneau et al., 2018, WC).

    Word types are ranked by the number of usable sentences containing them; the ``FUNCTION_WORD_RANKS``
    most frequent are skipped (fewer when the held-out text has few types) and the next K are the targets.
    Only sentences containing exactly one target word are used, so the label is unambiguous.
    """
    positions = pool.usable_sentences()
    word_sets = [set(lowercase_words(pool.sentence(p))) for p in positions]
    frequency = Counter(word for words in word_sets for word in words)
    ranked = sorted(frequency, key=lambda word: (-frequency[word], word))
    k = probe_cfg.settings("word_content").words
    skip = max(0, min(FUNCTION_WORD_RANKS, len(ranked) - k))
    targets = ranked[skip : skip + k]
    index = {word: label for label, word in enumerate(targets)}
    by_label: list[list[int]] = [[] for _ in targets]
    for i, words in enumerate(word_sets):
        present = words & index.keys()
        if len(present) == 1:
            by_label[index[present.pop()]].append(i)
    per_label = _per_label(probe_cfg, k)
    candidates = [
        [
            ProbeExample(pool.sentence(positions[i]), label, group=_document(positions[i]))
            for i in rng.permutation(members)[:per_label]
        ]
        for label, members in enumerate(by_label)
    ]
    return targets, candidates


@PROBE_TASKS.register("coherence")
def coherence(pool: SentencePool, probe_cfg: ProbeConfig, rng: np.random.Generator) -> LabelledCandidates:
    """Is the second sentence the true continuation of the first, or one from another document? Discourse.

    Candidates are non-overlapping pairs of adjacent usable sentences. A negative keeps its first sentence
    and takes the second sentence of another negative pair from a *different document*, so second sentences
    are drawn from the same distribution under both labels and only their fit to the first one differs.
    Negatives swap second sentences only inside small clusters of documents, and a cluster is one split
    group, so neither document of a negative can also feed the other probe split.
    """
    pairs: list[tuple[int, int]] = []
    for doc, sentences in enumerate(pool.documents):
        i = 0
        while i + 1 < len(sentences):
            if (doc, i) in pool.usable and (doc, i + 1) in pool.usable:
                pairs.append((doc, i))
                i += 2
            else:
                i += 1
    order = rng.permutation(len(pairs))
    n = min(_per_label(probe_cfg, 2), len(pairs) // 2)
    positives = [pairs[i] for i in order[:n]]
    clusters = _document_clusters([pairs[i] for i in order[n : 2 * n]])
    group_of = {doc: str(cluster[0][0]) for cluster in clusters for doc, _ in cluster}

    def sentences_of(first: tuple[int, int], second: tuple[int, int], label: int) -> ProbeExample:
        doc, i = first
        other_doc, j = second
        return ProbeExample(
            pool.documents[doc][i],
            label,
            text_pair=pool.documents[other_doc][j + 1],
            group=group_of.get(doc, str(doc)),
        )

    continuation = [sentences_of(pair, pair, 0) for pair in positives]
    other = []
    for cluster in clusters:
        shift = max(Counter(doc for doc, _ in cluster).values())
        other += [sentences_of(pair, cluster[(k + shift) % len(cluster)], 1) for k, pair in enumerate(cluster)]
    return ["continuation", "other_document"], [continuation, other]


def _document_clusters(pairs: list[tuple[int, int]]) -> list[list[tuple[int, int]]]:
    """Partition pairs into clusters of whole documents, each ready for :func:`_cross_document_pairs`' shift.

    Documents join the current cluster in ascending order; it closes as soon as it spans two documents and
    none holds more than half of its pairs. A last, unfinished cluster is merged into the previous one and
    trimmed by :func:`_cross_document_pairs` when needed.
    """
    by_document: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for pair in pairs:
        by_document[pair[0]].append(pair)
    clusters: list[list[tuple[int, int]]] = []
    current: list[list[tuple[int, int]]] = []
    for doc in sorted(by_document):
        current.append(by_document[doc])
        sizes = [len(group) for group in current]
        if len(current) >= 2 and 2 * max(sizes) <= sum(sizes):
            clusters.append([pair for group in current for pair in group])
            current = []
    if current:
        tail = [pair for group in current for pair in group]
        merged = _cross_document_pairs((clusters.pop() if clusters else []) + tail)
        if merged:
            clusters.append(merged)
    return clusters


def _cross_document_pairs(pairs: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Order pairs so that shifting by the largest document's count always lands in another document.

    With the pairs grouped by document and no group larger than half of them, position ``k`` and position
    ``(k + m) mod n`` (``m`` = largest group) never share a document; pairs are dropped from the largest
    group until that holds.
    """
    groups: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for pair in pairs:
        groups[pair[0]].append(pair)
    while groups:
        largest = max(groups, key=lambda doc: (len(groups[doc]), doc))
        if 2 * len(groups[largest]) <= sum(len(group) for group in groups.values()):
            break
        groups[largest].pop()
        if not groups[largest]:
            del groups[largest]
    return [pair for doc in sorted(groups) for pair in groups[doc]]


def build_generated_task(name: str, pool: SentencePool, probe_cfg: ProbeConfig) -> ProbeTask:
    """Run one registered generator, balance its labels and split; too little held-out text is a DataError."""
    generator: TaskGenerator = PROBE_TASKS.get(name)
    rng = task_rng(probe_cfg.seed, name)
    label_names, candidates = generator(pool, probe_cfg, rng)
    per_label = min((len(examples) for examples in candidates), default=0)
    if len(label_names) < 2 or per_label < MIN_EXAMPLES_PER_LABEL:
        raise DataError(
            f"probe task {name!r} needs at least {MIN_EXAMPLES_PER_LABEL} examples for each of at least 2 "
            f"labels, but the held-out text gives {per_label} for {len(label_names)} label(s) "
            f"({len(pool.usable)} usable sentences in {len(pool.documents)} held-out documents); "
            "add held-out text, remove the task from probes.tasks, or run with --no-probes"
        )
    requested = _per_label(probe_cfg, len(label_names))
    if per_label < requested:
        logger.warning(
            "probe task %s: %d examples per label instead of %d (held-out text too small)",
            name,
            per_label,
            requested,
        )
    examples = [example for label_examples in candidates for example in label_examples[:per_label]]
    train, test = stratified_group_split(examples, probe_cfg.test_fraction, rng, name, label_names)
    return ProbeTask(name=name, label_names=list(label_names), train=train, test=test)


def build_probe_tasks(
    heldout_texts: list[str], training_texts: list[str], probe_cfg: ProbeConfig
) -> list[ProbeTask]:
    """The probe tasks of an experiment: the generated ``probes.tasks`` then the ``probes.data_files``.

    ``heldout_texts`` are documents no run trains on (the test split, plus validation when there is no
    cross-validation); any held-out sentence that also occurs in ``training_texts`` is left out. Returns
    an empty list when probes are disabled.
    """
    if not probe_cfg.enabled:
        return []
    tasks = []
    if probe_cfg.tasks:
        pool = build_sentence_pool(heldout_texts, training_texts, probe_cfg.max_sentence_words)
        tasks = [build_generated_task(name, pool, probe_cfg) for name in probe_cfg.tasks]
    tasks += [load_user_probe_task(path, probe_cfg) for path in probe_cfg.data_files]
    names = [task.name for task in tasks]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise DataError(
            f"probe task names must be unique, but {duplicates} occur twice; rename the --probe-data file(s)"
        )
    return tasks
