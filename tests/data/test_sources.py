"""Every corpus format reads the same documents; cleaning counts; bad inputs end in one-line DataErrors."""

from __future__ import annotations

import csv
import gzip
import json
import sys
import types

import pytest

from mlmclm.config import DataConfig
from mlmclm.data.corpus import clean_documents, load_corpus
from mlmclm.errors import DataError

DOCS = [
    "The first document is here.",
    "A second document, rather longer than the first one.",
    "Third: unicode caf\u00e9 and \u00fcmlaut text.",
]


def corpus_texts(path, **overrides) -> list[str]:
    return load_corpus(DataConfig(path=str(path), **overrides)).texts


def test_txt_one_document_per_line(tmp_path):
    (tmp_path / "c.txt").write_text("\n".join(DOCS) + "\n", encoding="utf-8")
    assert corpus_texts(tmp_path / "c.txt") == DOCS


def test_txt_blank_line_separated_documents_join_their_lines(tmp_path):
    (tmp_path / "c.txt").write_text(
        "The first document\nis here.\n\n\nA second document, rather longer\n"
        "than the first one.\n\nThird: unicode caf\u00e9 and \u00fcmlaut text.",
        encoding="utf-8",
    )
    assert corpus_texts(tmp_path / "c.txt", document_separator="blank_line") == DOCS


def test_txt_with_a_separator_line_reads_the_fortune_format(tmp_path):
    (tmp_path / "c.txt").write_text(
        "The first document\nis here.\n%\nA second document, rather longer\n\nthan the first one.\n%\n%\n"
        "Third: unicode caf\u00e9 and \u00fcmlaut text.\n  %  \n",
        encoding="utf-8",
    )
    assert corpus_texts(tmp_path / "c.txt", document_separator="%") == DOCS
    by_line = corpus_texts(tmp_path / "c.txt")  # the default still reads one document per line
    assert "A second document, rather longer" in by_line and DOCS[1] not in by_line


def test_jsonl_and_json_read_the_text_field(tmp_path):
    (tmp_path / "c.jsonl").write_text("\n".join(json.dumps({"body": d, "id": i}) for i, d in enumerate(DOCS)))
    (tmp_path / "c.json").write_text(json.dumps([{"body": d} for d in DOCS]))
    assert corpus_texts(tmp_path / "c.jsonl", text_field="body") == DOCS
    assert corpus_texts(tmp_path / "c.json", text_field="body") == DOCS


def test_csv_reads_the_text_column_including_embedded_newlines(tmp_path):
    with open(tmp_path / "c.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "text"])
        writer.writerows([[i, d.replace(" ", "\n", 1)] for i, d in enumerate(DOCS)])
    assert corpus_texts(tmp_path / "c.csv") == DOCS


def test_parquet_reads_the_text_column(tmp_path):
    pyarrow = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    pq.write_table(pyarrow.table({"text": DOCS, "n": [1, 2, 3]}), tmp_path / "c.parquet")
    assert corpus_texts(tmp_path / "c.parquet") == DOCS


def test_parquet_without_pyarrow_names_the_extra(tmp_path, monkeypatch):
    (tmp_path / "c.parquet").write_bytes(b"PAR1")
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(DataError, match=r"mlmclm\[parquet\]"):
        corpus_texts(tmp_path / "c.parquet")


def test_directory_of_txt_files_is_read_in_sorted_order(tmp_path):
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "2.txt").write_text(DOCS[2])
    (tmp_path / "a.txt").write_text(DOCS[0] + "\n" + DOCS[1])
    (tmp_path / "ignored.md").write_text("not a corpus file at all")
    assert corpus_texts(tmp_path) == DOCS


@pytest.mark.parametrize("name", ["c.txt.gz", "c.jsonl.gz"])
def test_gzip_variants_read_like_plain_files(tmp_path, name):
    lines = DOCS if name.startswith("c.txt") else [json.dumps({"text": d}) for d in DOCS]
    with gzip.open(tmp_path / name, "wt", encoding="utf-8") as handle:
        handle.write("\n".join(lines))
    assert corpus_texts(tmp_path / name) == DOCS


def test_hf_source_reads_every_split_of_a_dataset(monkeypatch, hub_answers):
    class Split:
        def __init__(self, texts):
            self.column_names, self.texts = ["text"], texts

        def __getitem__(self, column):
            return self.texts

    fake = types.ModuleType("datasets")
    fake.load_dataset = lambda name, config: {"train": Split(DOCS[:2]), "validation": Split(DOCS[2:])}
    monkeypatch.setitem(sys.modules, "datasets", fake)
    assert sorted(corpus_texts("hf:fake:cfg")) == sorted(DOCS)


@pytest.mark.parametrize("name", ["c.txt", "c.jsonl", "c.csv"])
def test_a_utf8_byte_order_mark_is_not_part_of_the_first_document_or_column_name(tmp_path, name):
    """Excel and Notepad save UTF-8 with a leading BOM; it must not reach the text or the CSV header."""
    if name == "c.txt":
        content = "\n".join(DOCS)
    elif name == "c.jsonl":
        content = "\n".join(json.dumps({"text": d}) for d in DOCS)
    else:
        content = "text\n" + "\n".join(f'"{d}"' for d in DOCS)
    (tmp_path / name).write_bytes(b"\xef\xbb\xbf" + content.encode("utf-8"))
    assert corpus_texts(tmp_path / name) == DOCS


def test_parquet_column_that_is_not_text_is_a_one_line_data_error(tmp_path):
    pyarrow = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    pq.write_table(pyarrow.table({"text": [1, 2, 3]}), tmp_path / "c.parquet")
    with pytest.raises(DataError, match=r"row 0: column 'text' must hold strings, got int") as caught:
        corpus_texts(tmp_path / "c.parquet")
    assert "\n" not in str(caught.value)


def test_parquet_nulls_count_as_empty_documents(tmp_path):
    pyarrow = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    pq.write_table(pyarrow.table({"text": [DOCS[0], None, DOCS[1]]}), tmp_path / "c.parquet")
    corpus = load_corpus(DataConfig(path=str(tmp_path / "c.parquet")))
    assert corpus.texts == DOCS[:2] and corpus.counts["dropped_empty"] == 1


def test_hf_column_that_is_not_text_is_a_one_line_data_error(monkeypatch, hub_answers):
    class Split:
        column_names = ["text"]

        def __getitem__(self, column):
            return [DOCS[0], ["a", "list"]]

    fake = types.ModuleType("datasets")
    fake.load_dataset = lambda name, config: {"train": Split()}
    monkeypatch.setitem(sys.modules, "datasets", fake)
    with pytest.raises(DataError, match=r"split 'train' row 1: column 'text' must hold strings, got list"):
        corpus_texts("hf:fake")


def test_an_unreachable_hub_reads_the_datasets_cache_only_and_fails_in_one_line(monkeypatch):
    """Offline, datasets retried the dataset card with backoff (about 25 s); it now goes straight to its cache."""
    from mlmclm.data import sources

    hub_constants = pytest.importorskip("huggingface_hub.constants")
    offline_during_load = []

    def load_dataset(name, config):
        offline_during_load.append((fake.config.HF_HUB_OFFLINE, hub_constants.HF_HUB_OFFLINE))
        raise ConnectionError(f"Couldn't reach '{name}' on the Hub (OfflineModeIsEnabled)")

    fake = types.ModuleType("datasets")
    fake.config = types.SimpleNamespace(HF_HUB_OFFLINE=False)
    fake.load_dataset = load_dataset
    monkeypatch.setitem(sys.modules, "datasets", fake)
    monkeypatch.setattr(sources, "hub_unreachable_reason", lambda repo_id, repo_type: "Connection refused")
    hub_offline = hub_constants.HF_HUB_OFFLINE
    with pytest.raises(DataError) as caught:
        corpus_texts("hf:some-org/docs")
    assert offline_during_load == [(True, True)]  # the cache only, no request
    assert (fake.config.HF_HUB_OFFLINE, hub_constants.HF_HUB_OFFLINE) == (False, hub_offline)  # restored
    message = str(caught.value)
    assert "\n" not in message and message.startswith("cannot load Hugging Face dataset 'some-org/docs'")
    assert "could not be reached (Connection refused)" in message and "HF_HUB_OFFLINE=1" in message


def test_hf_source_without_datasets_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "datasets", None)
    with pytest.raises(DataError, match=r"mlmclm\[hf\]"):
        corpus_texts("hf:wikitext")


def test_cleaning_normalises_whitespace_and_counts_every_drop_reason():
    raw = [
        "  spaced \t out\n text here  ",
        "",
        "   ",
        "short",
        "spaced out text here",
        "another fine document",
    ]
    kept, counts, _ = clean_documents(raw, min_chars=10, deduplicate=True)
    assert kept == ["spaced out text here", "another fine document"]
    assert counts == {"read": 6, "kept": 2, "dropped_empty": 2, "dropped_short": 1, "dropped_duplicate": 1}


def test_cleaning_keeps_duplicates_when_deduplication_is_off_and_hash_reflects_content():
    kept, counts, sha = clean_documents(
        ["same text again", "same text again"], min_chars=1, deduplicate=False
    )
    assert len(kept) == 2 and counts["dropped_duplicate"] == 0
    assert sha != clean_documents(["same text again"], min_chars=1, deduplicate=False)[2]


def test_max_documents_stops_after_n_kept_documents(tmp_path):
    (tmp_path / "c.txt").write_text("\n".join(DOCS))
    assert corpus_texts(tmp_path / "c.txt", max_documents=2) == DOCS[:2]


def write_bytes(tmp_path, name, data: bytes):
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    ("name", "data", "pattern"),
    [
        ("empty.txt", b"", "no usable documents"),
        ("binary.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe", "not valid UTF-8"),
        ("nul.txt", b"looks like text\x00\x00 but has nul bytes and more", "binary"),
        ("latin1.txt", "caf\u00e9 au lait is a fine drink".encode("latin-1"), "not valid UTF-8"),
        ("c.jsonl", b'{"body": "a document long enough"}\n', "no field 'text'"),
        ("bad.jsonl", b'{"text": "ok document here"}\n{not json\n', "line 2: invalid JSON"),
        ("c.csv", b"id,body\n1,a document long enough\n", "no column 'text'"),
        ("c.json", b'{"text": "not a list"}', "expected a JSON array"),
        ("c.docx", b"whatever", "cannot tell the format"),
    ],
)
def test_bad_inputs_end_in_a_one_line_data_error(tmp_path, name, data, pattern):
    with pytest.raises(DataError, match=pattern) as caught:
        corpus_texts(write_bytes(tmp_path, name, data))
    assert "\n" not in str(caught.value)


def test_missing_path_is_a_one_line_data_error(tmp_path):
    with pytest.raises(DataError, match="does not exist") as caught:
        corpus_texts(tmp_path / "nowhere.txt")
    assert "\n" not in str(caught.value)
