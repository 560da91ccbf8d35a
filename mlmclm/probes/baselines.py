"""Probe-validity baselines: what a probe scores without training, and what it scores on a control task.

A probe accuracy alone does not say whether the *trained* representation holds the property: a linear
classifier on a random-init encoder's features already scores well above chance on surface tasks (Conneau et
al., 2018; Zhang & Bowman, 2018, "Language Modeling Teaches You More than Translation Does"), and a probe
can learn a task by memorising input types (Hewitt & Liang, 2019, "Designing and Interpreting Probes with
Control Tasks", EMNLP). Two baselines therefore accompany every probe score (docs/probes.md):

- **random init**: the same probe on an untrained encoder of the same shape (architecture, mechanism,
  objective mask), initialised from the run's own seed, i.e. the run's own starting weights;
- **control task**: the same inputs and probe, labels assigned by a fixed random function of the input
  *type*. Hewitt & Liang's type is the word; for sentence-level probes we use the first word of ``text``
  (lowercased), so a probe can still reach above chance by memorising types, exactly what the control
  measures. Selectivity = task accuracy − control accuracy.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mlmclm.probes.examples import ProbeExample, task_rng
from mlmclm.probes.sentences import lowercase_words

MIN_CONTROL_TRAIN_PER_LABEL = 2
"""A control label with fewer train examples cannot fill two cross-validation folds; it is merged away."""


def input_type(example: ProbeExample) -> str:
    """The control task's input type: the first word of ``text``, lowercased ('' for a text without words)."""
    words = lowercase_words(example.text)
    return words[0] if words else ""


def control_labels(
    train: Sequence[ProbeExample], test: Sequence[ProbeExample], num_labels: int, seed: int, task_name: str
) -> tuple[np.ndarray, np.ndarray]:
    """Control labels of the train and test examples (Hewitt & Liang, 2019, section 2).

    Every input type (sorted, so the mapping is a fixed function of the input) draws one label from the
    train split's label distribution, from the task's own random stream (``probes.seed``). Labels with fewer
    than ``MIN_CONTROL_TRAIN_PER_LABEL`` train examples are merged into the most frequent one, so the
    probe's cross-validation can run; the labels are then renumbered 0..k-1 (k may be 1: see
    :func:`control_is_learnable`).
    """
    rng = task_rng(seed, f"{task_name}/control")
    frequencies = np.bincount([example.label for example in train], minlength=num_labels).astype(float)
    types = sorted({input_type(example) for example in [*train, *test]})
    drawn = rng.choice(num_labels, size=len(types), p=frequencies / frequencies.sum())
    label_of = dict(zip(types, drawn.tolist(), strict=True))
    train_labels = np.array([label_of[input_type(example)] for example in train])
    test_labels = np.array([label_of[input_type(example)] for example in test])
    counts = np.bincount(train_labels, minlength=num_labels)
    rare = [label for label in range(num_labels) if counts[label] < MIN_CONTROL_TRAIN_PER_LABEL]
    majority = int(np.argmax(counts))
    for label in rare:
        train_labels[train_labels == label] = majority
        test_labels[test_labels == label] = majority
    kept = np.unique(train_labels)
    renumber = {int(label): index for index, label in enumerate(kept)}
    return (
        np.array([renumber[int(label)] for label in train_labels]),
        np.array([renumber[int(label)] for label in test_labels]),
    )


def control_is_learnable(train_labels: np.ndarray) -> bool:
    """A control task with a single label after merging has nothing to learn (its accuracy is 1 trivially)."""
    return len(np.unique(train_labels)) >= 2
