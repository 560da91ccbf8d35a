"""prepare_data end to end: manifest, folds, held-out texts, and caches reused by later invocations."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import mlmclm.data.prepare as prepare_module
import mlmclm.data.token_cache as token_cache
from mlmclm.components import resolve_config
from mlmclm.data import prepare_data, setup_tokenizer
from mlmclm.data.builtin_corpus import BUILTIN_CORPUS_NAME, builtin_documents, default_corpus_file, shipped_corpus_bytes
from mlmclm.data.token_cache import tokenize_documents
from mlmclm.data.tokenizer import train_tokenizer
from mlmclm.errors import DataError

from .conftest import synthetic_texts


def experiment(tmp_path, cross_validation=False, **data):
    corpus = tmp_path / "corpus.txt"
    if not corpus.exists():
        corpus.write_text("\n".join(synthetic_texts(200, seed=5)) + "\n")
    settings = {
        "path": str(corpus),
        "vocab_size": 200,
        "max_seq_length": 64,
        "cache_dir": str(tmp_path / "cache"),
        **data,
    }
    return resolve_config(
        overrides={
            "data": settings,
            "cross_validation": cross_validation,
            "folds": 3,
            "attention": ["standard"],
        }
    )


def test_manifest_records_corpus_splits_tokens_and_tokenizer(tmp_path):
    data = prepare_data(experiment(tmp_path))
    manifest = data.manifest
    assert manifest["documents"]["read"] == manifest["documents"]["kept"] == 200
    assert manifest["split_sizes"] == {"train": 160, "validation": 20, "test": 20}
    assert manifest["token_counts"]["train"] == data.fold(None).train.num_tokens > 0
    assert manifest["tokenizer_sha256"] == data.tokenizer.sha256 and len(manifest["corpus_sha256"]) == 64
    assert data.texts("test") == [t for t in synthetic_texts(200, seed=5) if t in set(data.texts("test"))]


def test_fold_k_validates_on_fold_k_and_trains_on_the_others(tmp_path):
    # one given tokenizer for every fold, so token rows can be compared across folds
    shared = train_tokenizer(synthetic_texts(200, seed=5), vocab_size=200, output_dir=tmp_path / "shared")
    data = prepare_data(experiment(tmp_path, cross_validation=True, tokenizer=str(shared)))
    test_tokens = set(map(tuple, split_rows(data.fold(None).test)))
    pool = split_rows(data.fold(None).train) + split_rows(data.fold(None).validation)
    seen_in_validation = []
    for k in range(3):
        fold = data.fold(k)
        train, validation = split_rows(fold.train), split_rows(fold.validation)
        assert len(train) + len(validation) == len(pool)
        assert not set(map(tuple, train)) & set(map(tuple, validation))
        assert not (set(map(tuple, train)) | set(map(tuple, validation))) & test_tokens
        seen_in_validation += validation
    assert sorted(map(tuple, seen_in_validation)) == sorted(map(tuple, pool))
    assert data.manifest["fold_sizes"] == [60, 60, 60]


def split_rows(docs):
    return [tuple(docs.tokens[docs.offsets[d] : docs.offsets[d + 1]].tolist()) for d in range(len(docs))]


def test_second_invocation_reuses_tokenizer_and_token_cache(tmp_path, monkeypatch):
    calls = {"tokenize": 0, "train": 0}
    original_train = prepare_module.train_tokenizer

    def counting_tokenize(*args, **kwargs):
        calls["tokenize"] += 1
        return tokenize_documents(*args, **kwargs)

    def counting_train(*args, **kwargs):
        calls["train"] += 1
        return original_train(*args, **kwargs)

    monkeypatch.setattr(token_cache, "tokenize_documents", counting_tokenize)
    monkeypatch.setattr(prepare_module, "train_tokenizer", counting_train)
    first = prepare_data(experiment(tmp_path))
    assert calls == {"tokenize": 3, "train": 1}
    second = prepare_data(experiment(tmp_path))
    assert calls == {"tokenize": 3, "train": 1}, "the second invocation re-tokenized or re-trained"
    assert isinstance(second.fold(None).train.tokens, np.memmap)
    assert np.array_equal(first.fold(None).train.tokens, second.fold(None).train.tokens)
    prepare_data(experiment(tmp_path, split_seed=99))
    assert calls == {"tokenize": 6, "train": 2}, "a new split spec must not reuse the old cache"


def test_setup_tokenizer_writes_where_prepare_data_looks(tmp_path):
    config = experiment(tmp_path)
    path = setup_tokenizer(config)
    assert path.name == "tokenizer.json"
    assert prepare_data(config).tokenizer.path == str(path.resolve())
    explicit = setup_tokenizer(config, tmp_path / "mine")
    assert explicit == tmp_path / "mine" / "tokenizer.json" and explicit.is_file()


def test_word_starts_come_from_the_tokenizer_word_ids(tiny_tokenizer):
    docs = tokenize_documents(["quilbexthuzan ka, lo"], tiny_tokenizer)
    pieces = tiny_tokenizer.tokenizer.encode("quilbexthuzan ka, lo", add_special_tokens=False).tokens
    expected = [not p.startswith("##") for p in pieces]
    assert docs.word_starts.tolist() == expected and sum(expected) < len(expected)


def test_the_builtin_corpus_is_the_shipped_file_and_large_enough_to_learn_from(tmp_path):
    cached = default_corpus_file(tmp_path).read_text(encoding="utf-8").splitlines()
    assert cached == builtin_documents()
    # issue 11: the old corpus (335k words) was too small for probes to rise above random init
    assert len(cached) > 40_000 and sum(len(doc.split()) for doc in cached) > 1_300_000
    config = resolve_config(
        overrides={"data": {"cache_dir": str(tmp_path), "vocab_size": 500, "max_documents": 600}}
    )
    data = prepare_data(config)  # reads the cached corpus file
    assert data.manifest["corpus_name"] == BUILTIN_CORPUS_NAME
    assert data.manifest["documents"]["kept"] == 600
    assert data.texts("train")[0] in cached


def test_a_damaged_builtin_corpus_is_refused(monkeypatch, tmp_path):
    from importlib import resources

    good = shipped_corpus_bytes()
    real_files = resources.files

    class Damaged:
        def __truediv__(self, name):
            return self

        def read_bytes(self):
            return good[:-1] + bytes([good[-1] ^ 1])

    def files(package):
        return Damaged() if package == "mlmclm.data" else real_files(package)

    monkeypatch.setattr(resources, "files", files)
    with pytest.raises(DataError, match="damaged"):
        default_corpus_file(tmp_path)
    assert not (tmp_path / "corpora").exists() or not list((tmp_path / "corpora").iterdir())


def test_the_default_cache_lives_beside_the_outputs_whatever_the_working_directory(tmp_path, monkeypatch):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(synthetic_texts(200, seed=5)) + "\n")
    overrides = {
        "output_dir": str(tmp_path / "out"),
        "data": {"path": str(corpus), "vocab_size": 200, "max_seq_length": 64},
        "attention": ["standard"],
    }
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
    monkeypatch.chdir(tmp_path / "a")
    config = resolve_config(overrides=overrides)
    assert config.data.cache_dir == str(tmp_path / "out" / "cache")
    first = prepare_data(config)
    trained = []
    monkeypatch.setattr(prepare_module, "train_tokenizer", lambda *args, **kwargs: trained.append(args))
    monkeypatch.chdir(tmp_path / "b")
    second = prepare_data(resolve_config(overrides=overrides))
    assert trained == [], "started elsewhere, the experiment retrained its tokenizer"
    assert second.tokenizer.path == first.tokenizer.path
    assert first.tokenizer.path.startswith(str((tmp_path / "out" / "cache").resolve()))
    assert not any((tmp_path / name / ".cache").exists() for name in ("a", "b"))


def test_under_cross_validation_each_fold_tokenizer_learns_from_its_training_part_only(tmp_path, monkeypatch):
    """No validation text shapes the vocabulary a fold is validated with (issue 10, item 5)."""
    learned: dict[str, list[str]] = {}
    original_train = prepare_module.train_tokenizer

    def recording_train(texts, vocab_size, output_dir):
        learned[str(output_dir)] = list(texts)
        return original_train(texts, vocab_size, output_dir)

    monkeypatch.setattr(prepare_module, "train_tokenizer", recording_train)
    data = prepare_data(experiment(tmp_path, cross_validation=True))
    assert len(learned) == 3, "one tokenizer per fold"
    corpus, folds = data.corpus.texts, data.splits.folds
    hashes = []
    for k in range(3):
        tokenizer = data.fold(k).tokenizer
        texts = learned[str(Path(tokenizer.path).parent)]
        validation = {corpus[i] for i in folds[k]}
        training = {corpus[i] for j, fold in enumerate(folds) if j != k for i in fold}
        assert set(texts) == training and not set(texts) & validation
        assert not set(texts) & set(data.texts("test"))
        assert data.provenance(k)["tokenizer_hash"] == tokenizer.sha256
        # the fold's documents are encoded with the fold's own tokenizer
        first = data.fold(k).validation
        assert first.tokens[: first.offsets[1]].tolist() == tokenizer.tokenizer.encode(
            corpus[folds[k][0]], add_special_tokens=False
        ).ids
        hashes.append(tokenizer.sha256)
    assert len(set(hashes)) == 3 and data.manifest["fold_tokenizer_sha256"] == hashes
    # a second invocation reuses every fold's tokenizer
    learned.clear()
    prepare_data(experiment(tmp_path, cross_validation=True))
    assert learned == {}
