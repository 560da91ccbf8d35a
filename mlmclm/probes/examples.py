"""A probe task: labelled texts with a fixed, stratified train/test split that never divides a source document."""

from __future__ import annotations

import zlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mlmclm.errors import DataError

MIN_EXAMPLES_PER_LABEL = 10
"""Below this a label cannot fill both probe splits and the cross-validation folds inside the train split."""
MIN_TRAIN_PER_LABEL = 2
"""Stratified k-fold selection of the probe's regularisation needs k >= 2 train examples of every label."""


@dataclass(frozen=True)
class ProbeExample:
    """One labelled input; ``text_pair`` makes it a pair, encoded as ``[CLS] text [SEP] text_pair [SEP]``.

    ``contrast`` makes it a contrast pair instead: ``[CLS] contrast [SEP]`` is encoded separately and the
    probe reads pooled(text) - pooled(contrast). Why: for a minimal pair the difference cancels the content
    both sentences share, leaving only what tells them apart, and it is antisymmetric, so an encoder blind
    to that difference (a position-free bidirectional encoder on a word swap) gives exactly zero features.
    """

    text: str
    label: int  # index into ProbeTask.label_names
    text_pair: str | None = None
    group: str | None = None  # source document (or user group): all of a group's examples share one split
    contrast: str | None = None

    def __post_init__(self) -> None:
        if self.contrast is not None and self.text_pair is not None:
            raise DataError("a probe example is either a pair (text_pair) or a contrast pair (contrast), not both")


@dataclass(frozen=True)
class ProbeTask:
    """A downstream task shared by every run, so MLM and CLM encoders are scored on the same yardstick."""

    name: str
    label_names: list[str]
    train: list[ProbeExample]
    test: list[ProbeExample]

    def __post_init__(self) -> None:
        """Fail at construction, not in the middle of a run, on a task that mixes the two kinds."""
        _ = self.is_contrast

    @property
    def num_labels(self) -> int:
        return len(self.label_names)

    @property
    def is_contrast(self) -> bool:
        """Whether the probe reads difference features (every example has ``contrast``); a mix is a DataError,
        since difference features and plain features do not share one feature space."""
        has = {example.contrast is not None for example in (*self.train, *self.test)}
        if len(has) > 1:
            raise DataError(f"probe task {self.name!r} mixes contrast pairs and plain examples; use one kind")
        return has == {True}

    def chance_accuracy(self) -> float:
        """Test accuracy of always predicting the most frequent training label: the floor a probe must beat
        (1 / num_labels for the balanced generated tasks)."""
        train_counts = np.bincount([example.label for example in self.train], minlength=self.num_labels)
        majority = int(np.argmax(train_counts))
        return float(np.mean([example.label == majority for example in self.test]))

    def describe(self) -> dict[str, float | int]:
        """What the report needs to read this task's scores: labels, split sizes and chance accuracy."""
        return {
            "labels": self.num_labels,
            "train_examples": len(self.train),
            "test_examples": len(self.test),
            "chance_accuracy": self.chance_accuracy(),
        }


def stratified_split(
    examples: Sequence[ProbeExample], test_fraction: float, rng: np.random.Generator
) -> tuple[list[ProbeExample], list[ProbeExample]]:
    """Split each label separately so both splits keep the label proportions of ``examples``.

    Every label with at least three examples lands in both splits, with at least two in the train split
    (the probe's cross-validation over C needs two folds); the order inside each split is shuffled so that
    nothing downstream can learn from position.
    """
    labels = np.array([example.label for example in examples])
    train_idx: list[int] = []
    test_idx: list[int] = []
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        n_test = int(round(test_fraction * len(members)))
        n_test = min(max(n_test, 1), len(members) - MIN_TRAIN_PER_LABEL)
        test_idx.extend(members[:n_test].tolist())
        train_idx.extend(members[n_test:].tolist())
    train = [examples[i] for i in rng.permutation(train_idx)]
    test = [examples[i] for i in rng.permutation(test_idx)]
    return train, test


def stratified_group_split(
    examples: Sequence[ProbeExample],
    test_fraction: float,
    rng: np.random.Generator,
    task_name: str,
    label_names: Sequence[str],
) -> tuple[list[ProbeExample], list[ProbeExample]]:
    """Like :func:`stratified_split`, but every group (source document) lies wholly in one split.

    Why: sentences of one document share topic, names and phrasing, so a probe tested on sentences whose
    document it also saw in training measures partly memorised near-duplicates; grouped splits are the
    standard remedy (scikit-learn's ``GroupKFold``). Per label the test split aims at the same count as
    :func:`stratified_split`; groups are visited in random order and one joins the test split when that
    keeps every label at or below its target, otherwise the train split. With many small groups the counts
    match the ungrouped split exactly; large groups can leave the test split a little smaller. A label that
    cannot have at least one test and ``MIN_TRAIN_PER_LABEL`` train examples is a DataError.
    """
    labels = np.array([example.label for example in examples])
    groups: dict[str | None, list[int]] = {}
    for index, example in enumerate(examples):
        groups.setdefault(example.group, []).append(index)
    target: dict[int, int] = {}
    for label in np.unique(labels).tolist():
        n = int((labels == label).sum())
        target[label] = min(max(int(round(test_fraction * n)), 1), n - MIN_TRAIN_PER_LABEL)
    in_test = dict.fromkeys(target, 0)
    train_idx: list[int] = []
    test_idx: list[int] = []
    keys = list(groups)
    for g in rng.permutation(len(keys)):
        members = groups[keys[g]]
        counts = Counter(int(labels[i]) for i in members)
        if all(in_test[label] + count <= target[label] for label, count in counts.items()):
            test_idx.extend(members)
            for label, count in counts.items():
                in_test[label] += count
        else:
            train_idx.extend(members)
    in_train = Counter(int(labels[i]) for i in train_idx)
    short = [label_names[k] for k in target if in_test[k] < 1 or in_train[k] < MIN_TRAIN_PER_LABEL]
    if short:
        raise DataError(
            f"probe task {task_name!r}: label(s) {short} cannot be split by group (source document) "
            f"into at least 1 test and {MIN_TRAIN_PER_LABEL} train examples; spread them over more groups"
        )
    train = [examples[i] for i in rng.permutation(train_idx)]
    test = [examples[i] for i in rng.permutation(test_idx)]
    return train, test


def task_rng(seed: int, name: str) -> np.random.Generator:
    """One random stream per task, so adding or removing a task never changes the examples of another."""
    return np.random.default_rng([seed, zlib.crc32(name.encode("utf-8"))])
