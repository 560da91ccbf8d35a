import dataclasses
import logging
from collections import Counter

import pytest

from mlmclm.errors import DataError
from mlmclm.probes import PROBE_TASKS, build_probe_tasks
from mlmclm.probes.examples import MIN_EXAMPLES_PER_LABEL
from mlmclm.probes.sentences import lowercase_words, sentence_key, split_sentences
from mlmclm.probes.tasks import FUNCTION_WORD_RANKS


@pytest.fixture
def tasks(corpus, probe_cfg):
    return {task.name: task for task in build_probe_tasks(corpus["heldout"], corpus["training"], probe_cfg)}


def examples_of(task):
    return task.train + task.test


def test_every_registered_task_is_built_by_default(tasks):
    expected = ["bigram_shift", "word_order", "sentence_length", "word_content", "coherence"]
    assert list(tasks) == PROBE_TASKS.names() == expected


def test_tasks_are_balanced_sized_and_split_by_the_config(tasks, probe_cfg):
    for task in tasks.values():
        per_label = probe_cfg.examples_per_task // task.num_labels
        counts = Counter(example.label for example in examples_of(task))
        assert counts == {label: per_label for label in range(task.num_labels)}, task.name
        test_counts = Counter(example.label for example in task.test)
        expected_test = round(probe_cfg.test_fraction * per_label)
        assert test_counts == {label: expected_test for label in range(task.num_labels)}, task.name


def test_no_sentence_reaches_both_probe_splits(tasks):
    for task in tasks.values():
        train = {sentence_key(e.text) for e in task.train} | {
            sentence_key(e.text_pair or e.contrast or "") for e in task.train
        }
        test = {sentence_key(e.text) for e in task.test} | {
            sentence_key(e.text_pair or e.contrast or "") for e in task.test
        }
        assert train & test <= {""}, task.name


def test_bigram_shift_swaps_exactly_one_adjacent_inner_pair(tasks, corpus):
    heldout = {s for document in corpus["heldout"] for s in split_sentences(document)}
    by_bag = {tuple(sorted(s.split())): s for s in heldout}
    task = tasks["bigram_shift"]
    assert task.label_names == ["original", "swapped"]
    for example in examples_of(task):
        if example.label == 0:
            assert example.text in heldout
            continue
        assert example.text not in heldout
        assert_one_interior_bigram_swapped(by_bag[tuple(sorted(example.text.split()))], example.text)


def assert_one_interior_bigram_swapped(original: str, shifted: str) -> None:
    """``shifted`` is ``original`` with exactly two adjacent words swapped, neither the first nor the last."""
    original_words, shifted_words = original.split(), shifted.split()
    differing = [i for i, (a, b) in enumerate(zip(original_words, shifted_words, strict=True)) if a != b]
    assert len(differing) == 2 and differing[1] == differing[0] + 1
    i = differing[0]
    assert (shifted_words[i], shifted_words[i + 1]) == (original_words[i + 1], original_words[i])
    assert 0 < i and i + 1 < len(original_words) - 1  # first and last word never move


def test_word_order_pairs_a_sentence_with_its_bigram_swap_and_labels_which_is_the_original(tasks, corpus):
    heldout = {s for document in corpus["heldout"] for s in split_sentences(document)}
    task = tasks["word_order"]
    assert task.label_names == ["original_first", "original_second"] and task.is_contrast
    for example in examples_of(task):
        original, twin = (example.text, example.contrast) if example.label == 0 else (example.contrast, example.text)
        assert original in heldout and twin not in heldout
        assert_one_interior_bigram_swapped(original, twin)


def test_word_order_uses_each_source_sentence_once_and_splits_by_document(tasks, corpus):
    task = tasks["word_order"]
    originals = [e.text if e.label == 0 else e.contrast for e in examples_of(task)]
    assert len(set(originals)) == len(originals)
    assert {e.group for e in task.train}.isdisjoint({e.group for e in task.test})
    documents = {s: str(d) for d, document in enumerate(corpus["heldout"]) for s in split_sentences(document)}
    assert all(documents[original] == e.group for original, e in zip(originals, examples_of(task), strict=True))


def test_sentence_length_label_matches_the_word_count(tasks):
    task = tasks["sentence_length"]
    assert len(task.label_names) >= 4
    for example in examples_of(task):
        low, high = (int(x) for x in task.label_names[example.label].removesuffix(" words").split("-"))
        assert low <= len(example.text.split()) <= high


def test_word_content_sentence_holds_exactly_its_target_word(tasks, probe_cfg):
    task = tasks["word_content"]
    targets = set(task.label_names)
    assert len(targets) == probe_cfg.settings("word_content").words
    for example in examples_of(task):
        present = set(lowercase_words(example.text)) & targets
        assert present == {task.label_names[example.label]}


def test_word_content_targets_are_mid_frequency(tasks, corpus):
    counts = Counter(
        w
        for document in corpus["heldout"]
        for s in split_sentences(document)
        for w in set(lowercase_words(s))
    )
    ranked = [word for word, _ in counts.most_common()]
    top = set(ranked[: FUNCTION_WORD_RANKS // 2])
    assert not top & set(tasks["word_content"].label_names)


def test_coherence_positive_is_the_next_sentence_and_negative_comes_from_another_document(tasks, corpus):
    documents = [split_sentences(document) for document in corpus["heldout"]]
    where = {s: (d, i) for d, sentences in enumerate(documents) for i, s in enumerate(sentences)}
    task = tasks["coherence"]
    assert task.label_names == ["continuation", "other_document"]
    for example in examples_of(task):
        (doc, i), (pair_doc, j) = where[example.text], where[example.text_pair]
        if example.label == 0:
            assert (pair_doc, j) == (doc, i + 1)
        else:
            assert pair_doc != doc


def test_no_probe_example_overlaps_the_training_text(tasks, corpus):
    training = {sentence_key(s) for document in corpus["training"] for s in split_sentences(document)}
    heldout = {sentence_key(s) for document in corpus["heldout"] for s in split_sentences(document)}
    leaked = {sentence_key(s) for s in corpus["leaked"]}
    assert leaked <= heldout & training  # the fixture really plants training sentences in held-out text
    for task in tasks.values():
        for example in examples_of(task):
            for text in (example.text, example.text_pair):
                if text is not None:
                    assert sentence_key(text) not in training, (task.name, text)
                    bag = sorted(sentence_key(text).split())  # a swapped sentence must not come from training
                    assert all(sorted(t.split()) != bag for t in leaked)


def test_tasks_are_deterministic_in_the_seed(corpus, probe_cfg):
    first = build_probe_tasks(corpus["heldout"], corpus["training"], probe_cfg)
    again = build_probe_tasks(corpus["heldout"], corpus["training"], probe_cfg)
    other = build_probe_tasks(corpus["heldout"], corpus["training"], dataclasses.replace(probe_cfg, seed=1))
    assert first == again
    assert all(a.test != b.test for a, b in zip(first, other, strict=True))


def test_a_task_does_not_change_when_another_is_removed(corpus, probe_cfg):
    alone = build_probe_tasks(
        corpus["heldout"], corpus["training"], dataclasses.replace(probe_cfg, tasks=["coherence"])
    )
    together = build_probe_tasks(corpus["heldout"], corpus["training"], probe_cfg)
    assert alone[0] == together[-1]


def test_small_held_out_text_scales_down_with_a_warning(corpus, probe_cfg, caplog):
    cfg = dataclasses.replace(probe_cfg, tasks=["bigram_shift"], examples_per_task=2000)
    with caplog.at_level(logging.WARNING):
        (task,) = build_probe_tasks(corpus["heldout"][:40], corpus["training"], cfg)
    counts = Counter(example.label for example in examples_of(task))
    assert counts[0] == counts[1] >= MIN_EXAMPLES_PER_LABEL
    assert counts[0] < 1000
    assert "bigram_shift" in caplog.text and "instead of 1000" in caplog.text


@pytest.mark.parametrize("name", ["bigram_shift", "word_order", "sentence_length", "word_content", "coherence"])
def test_too_little_held_out_text_is_a_one_line_data_error(corpus, probe_cfg, name):
    cfg = dataclasses.replace(probe_cfg, tasks=[name])
    with pytest.raises(
        DataError, match=f"probe task '{name}' needs at least {MIN_EXAMPLES_PER_LABEL}"
    ) as info:
        build_probe_tasks(corpus["heldout"][:1], corpus["training"], cfg)
    assert "\n" not in str(info.value) and "--no-probes" in str(info.value)


def test_disabled_probes_build_nothing(corpus, probe_cfg):
    cfg = dataclasses.replace(probe_cfg, enabled=False)
    assert build_probe_tasks(corpus["heldout"], corpus["training"], cfg) == []


def test_user_files_join_the_generated_tasks_and_names_must_be_unique(corpus, probe_cfg, tmp_path):
    lines = [f'{{"text": "sentence number {i}", "label": "{"ab"[i % 2]}"}}' for i in range(40)]
    (tmp_path / "Sentiment Task.jsonl").write_text("\n".join(lines), encoding="utf-8")
    (tmp_path / "coherence.jsonl").write_text("\n".join(lines), encoding="utf-8")
    cfg = dataclasses.replace(
        probe_cfg, tasks=["coherence"], data_files=[str(tmp_path / "Sentiment Task.jsonl")]
    )
    names = [task.name for task in build_probe_tasks(corpus["heldout"], corpus["training"], cfg)]
    assert names == ["coherence", "sentiment_task"]
    cfg = dataclasses.replace(cfg, data_files=[str(tmp_path / "coherence.jsonl")])
    with pytest.raises(DataError, match="unique"):
        build_probe_tasks(corpus["heldout"], corpus["training"], cfg)


@pytest.mark.parametrize("name", PROBE_TASKS.names())
def test_no_held_out_document_feeds_both_probe_splits(tasks, corpus, name):
    """Issue 10.5: sentences of one document are near-duplicates in topic and names, so the split is by document.

    Documents are found from the text alone (a bag of words survives bigram_shift's swap), not from the
    examples' group tags, and a coherence example belongs to both documents it draws from.
    """
    document_of = {
        tuple(sorted(sentence_key(s).split())): d
        for d, document in enumerate(corpus["heldout"])
        for s in split_sentences(document)
    }

    def documents(examples):
        texts = [t for e in examples for t in (e.text, e.text_pair) if t is not None]
        return {document_of[tuple(sorted(sentence_key(t).split()))] for t in texts}

    task = tasks[name]
    assert task.train and task.test
    assert not documents(task.train) & documents(task.test)


def test_chance_accuracy_is_the_majority_training_label_scored_on_the_test_split(tasks):
    from mlmclm.probes.examples import ProbeExample, ProbeTask

    def labelled(labels):
        return [ProbeExample(f"text {i}", label) for i, label in enumerate(labels)]

    imbalanced = ProbeTask("skewed", ["a", "b"], train=labelled([0, 0, 0, 1]), test=labelled([0, 1, 1, 1]))
    assert imbalanced.chance_accuracy() == 0.25  # predicts "a" (the training majority); a is 1 of 4 test rows
    assert imbalanced.describe() == {"labels": 2, "train_examples": 4, "test_examples": 4, "chance_accuracy": 0.25}
    for task in tasks.values():  # the generated tasks are balanced: chance is 1 / num_labels
        assert task.chance_accuracy() == pytest.approx(1 / task.num_labels)
