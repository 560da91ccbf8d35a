import json
from collections import Counter

import pytest

from mlmclm.config import ProbeConfig
from mlmclm.errors import DataError
from mlmclm.probes import load_user_probe_task, task_name_from_path


def write_rows(path, rows):
    path.write_text("\n".join(json.dumps(row) for row in rows) + "\n", encoding="utf-8")
    return path


def rows(n_per_label=(30, 20), pair=False):
    out = []
    for label, n in zip(("neg", "pos"), n_per_label, strict=True):
        for i in range(n):
            row = {"text": f"{label} text {i}", "label": label}
            if pair:
                row["text_pair"] = f"pair {i}"
            out.append(row)
    return out


def test_loads_labels_pairs_and_a_stratified_split(tmp_path):
    path = write_rows(tmp_path / "My-Task v2.jsonl", rows(pair=True))
    task = load_user_probe_task(path, ProbeConfig(test_fraction=0.2, seed=3))
    assert task.name == "my_task_v2"
    assert task.label_names == ["neg", "pos"]
    assert Counter(e.label for e in task.test) == {0: 6, 1: 4}
    assert Counter(e.label for e in task.train) == {0: 24, 1: 16}
    assert all(e.text_pair == f"pair {e.text.split()[-1]}" for e in task.train + task.test)
    assert all(e.text.startswith(task.label_names[e.label]) for e in task.train + task.test)
    assert load_user_probe_task(path, ProbeConfig(test_fraction=0.2, seed=3)) == task


def test_integer_labels_and_blank_lines_are_accepted(tmp_path):
    path = tmp_path / "ints.jsonl"
    lines = [json.dumps({"text": f"t {i}", "label": i % 2}) for i in range(24)]
    path.write_text("\n\n".join(lines), encoding="utf-8")
    task = load_user_probe_task(path)
    assert task.label_names == ["0", "1"] and len(task.train) + len(task.test) == 24


def test_task_name_is_sanitised_to_a_metric_safe_stem():
    assert task_name_from_path("/x/../Weird Name!.jsonl") == "weird_name"
    assert task_name_from_path("data/!!!.jsonl") == "user_task"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"text": "a", "label": "x"}\n{"text": "b", "label": "y"\n', "line 2: invalid JSON"),
        ('{"text": "a"}\n', "line 1: missing field 'label'"),
        ('{"label": "a"}\n', "line 1: missing field 'text'"),
        ('{"text": "", "label": "a"}\n', "line 1: 'text' must be a non-empty string"),
        ('["text", "label"]\n', "line 1: expected a JSON object"),
        ('{"text": "a", "label": [1]}\n', "line 1: 'label' must be a string or an integer"),
        ('{"text": "a", "label": "x", "group": true}\n', "line 1: 'group' must be a string or an integer"),
        ('{"text": "a", "label": "x", "group": " "}\n', "line 1: 'group' must not be empty"),
        ('{"text": "a", "label": "x", "contrast": ""}\n', "line 1: 'contrast' must be a non-empty string"),
        ('{"text": "a", "label": "x", "contrast": 3}\n', "line 1: 'contrast' must be a non-empty string"),
        ('{"text": "a", "label": "x", "text_pair": "b", "contrast": "c"}\n', "line 1: give 'text_pair' or 'contrast'"),
        ("".join(f'{{"text": "t{i}", "label": "only"}}\n' for i in range(30)), "at least 2 distinct labels"),
        ("".join(f'{{"text": "t{i}", "label": "{i % 3}"}}\n' for i in range(25)), "at least 10 rows"),
    ],
)
def test_bad_files_are_one_line_data_errors(tmp_path, content, message):
    path = tmp_path / "bad.jsonl"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DataError, match=message) as info:
        load_user_probe_task(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_mixed_pair_and_single_rows_are_rejected(tmp_path):
    data = rows()
    data[3]["text_pair"] = "only here"
    with pytest.raises(DataError, match="1 of 50 rows have 'text_pair'"):
        load_user_probe_task(write_rows(tmp_path / "mixed.jsonl", data))


def test_contrast_rows_make_a_contrast_task_and_mixed_rows_are_rejected(tmp_path):
    data = [{**row, "contrast": f"twin of {row['text']}"} for row in rows()]
    task = load_user_probe_task(write_rows(tmp_path / "pairs.jsonl", data))
    assert task.is_contrast
    assert all(e.contrast == f"twin of {e.text}" and e.text_pair is None for e in task.train + task.test)
    del data[7]["contrast"]
    with pytest.raises(DataError, match="49 of 50 rows have 'contrast'"):
        load_user_probe_task(write_rows(tmp_path / "mixed.jsonl", data))


def test_non_utf8_file_names_the_line(tmp_path):
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(b'{"text": "ok", "label": "a"}\n{"text": "caf\xe9", "label": "b"}\n')
    with pytest.raises(DataError, match="is not UTF-8 \\(line 2"):
        load_user_probe_task(path)


def test_missing_file_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="not found"):
        load_user_probe_task(tmp_path / "absent.jsonl")


def test_a_large_test_fraction_still_leaves_two_train_rows_per_label_for_cross_validation(tmp_path):
    """probes.test_fraction may be close to 1; the probe's C search needs two train rows of every label."""
    import numpy as np

    from mlmclm.probes.classifiers import fit_logistic_probe

    path = write_rows(tmp_path / "t.jsonl", rows((10, 10)))
    task = load_user_probe_task(path, ProbeConfig(test_fraction=0.95))
    assert Counter(e.label for e in task.train) == {0: 2, 1: 2}
    assert Counter(e.label for e in task.test) == {0: 8, 1: 8}
    train_y, test_y = np.array([e.label for e in task.train]), np.array([e.label for e in task.test])
    score = fit_logistic_probe(train_y[:, None] * 1.0, train_y, test_y[:, None] * 1.0, test_y, 0)
    assert score.accuracy == 1.0


def test_repeated_inputs_are_kept_once_so_they_never_sit_in_both_splits(tmp_path):
    path = write_rows(tmp_path / "dup.jsonl", rows() + rows())  # every row twice
    task = load_user_probe_task(path, ProbeConfig(test_fraction=0.3, seed=1))
    texts = [e.text for e in task.train + task.test]
    assert len(texts) == 50 and len(set(texts)) == 50
    assert not {e.text for e in task.train} & {e.text for e in task.test}


def test_the_same_input_with_two_labels_is_a_data_error(tmp_path):
    conflicting = rows() + [{"text": "neg text 0", "label": "pos"}]
    path = write_rows(tmp_path / "conflict.jsonl", conflicting)
    with pytest.raises(DataError, match=r"labels 'neg' and 'pos' \(lines 1 and 51\)"):
        load_user_probe_task(path)


def grouped_rows(num_groups=20, per_group=4):
    """Every group holds rows of both labels, as sentences of one document would."""
    return [
        {"text": f"doc {g} sentence {i}", "label": "ab"[i % 2], "group": f"doc-{g}" if g % 2 else g}
        for g in range(num_groups)
        for i in range(per_group)
    ]


def test_rows_of_one_group_never_sit_in_both_splits(tmp_path):
    """Issue 10.5: with a ``group`` column (e.g. the source document) the probe split is made by group."""
    path = write_rows(tmp_path / "grouped.jsonl", grouped_rows())
    task = load_user_probe_task(path, ProbeConfig(test_fraction=0.25, seed=2))
    group_of = lambda example: example.text.split()[1]  # noqa: E731 (read from the text, not from .group)
    train_groups = {group_of(e) for e in task.train}
    test_groups = {group_of(e) for e in task.test}
    assert not train_groups & test_groups
    assert len(train_groups | test_groups) == 20
    assert Counter(e.label for e in task.test) == {0: 10, 1: 10}  # 25% of 40 per label: five whole groups
    assert load_user_probe_task(path, ProbeConfig(test_fraction=0.25, seed=2)) == task
    assert {e.group for e in task.train + task.test} >= {"0", "doc-1"}, "integer groups compare as text"


def test_group_given_in_some_rows_only_is_a_data_error(tmp_path):
    rows_ = grouped_rows()
    del rows_[5]["group"]
    path = write_rows(tmp_path / "partial.jsonl", rows_)
    with pytest.raises(DataError, match="79 of 80 rows have 'group'; give it in all rows or in none"):
        load_user_probe_task(path)


def test_a_label_confined_to_one_group_cannot_be_split_by_group(tmp_path):
    rows_ = [{"text": f"t{i}", "label": "a", "group": "one"} for i in range(12)]
    rows_ += [{"text": f"u{i}", "label": "b", "group": f"g{i}"} for i in range(12)]
    path = write_rows(tmp_path / "lumped.jsonl", rows_)
    with pytest.raises(DataError, match=r"probe task 'lumped': label\(s\) \['a'\] cannot be split by group") as info:
        load_user_probe_task(path)
    assert "\n" not in str(info.value)


def test_a_contrast_pair_and_its_reversed_twin_never_sit_in_both_splits(tmp_path):
    """Without a group, (a, b, original) and (b, a, swapped) are one group: the reversed row's features are
    the negated ones, so a test row whose twin was trained on would be answered by memory."""
    data = []
    for i in range(40):
        text, twin = f"sentence number {i} reads well", f"sentence {i} number reads well"
        data += [{"text": text, "contrast": twin, "label": "original"},
                 {"text": twin, "contrast": text, "label": "swapped"}]
    path = tmp_path / "order.jsonl"
    write_rows(path, data)
    task = load_user_probe_task(path, ProbeConfig())
    pair = lambda e: frozenset((e.text, e.contrast))  # noqa: E731
    assert {pair(e) for e in task.train}.isdisjoint({pair(e) for e in task.test})
    assert task.test and len(task.train) + len(task.test) == 80
