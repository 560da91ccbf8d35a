"""The WordPiece tokenizer trains offline, loads from a file or transformers directory, checks specials."""

from __future__ import annotations

import json
import shutil

import pytest
from tokenizers import Tokenizer, models

from mlmclm.cli import main
from mlmclm.data.tokenizer import SPECIAL_TOKENS, fetch_hub_tokenizer, load_tokenizer
from mlmclm.errors import DataError


def test_trained_tokenizer_is_uncased_wordpiece_with_bert_special_tokens(tiny_tokenizer):
    tokenizer = tiny_tokenizer.tokenizer
    assert [tokenizer.id_to_token(i) for i in range(5)] == list(SPECIAL_TOKENS)
    assert set(tiny_tokenizer.special_ids) == {0, 1, 2, 3, 4}
    assert (
        tiny_tokenizer.pad_id,
        tiny_tokenizer.unk_id,
        tiny_tokenizer.cls_id,
        tiny_tokenizer.sep_id,
        tiny_tokenizer.mask_id,
    ) == (0, 1, 2, 3, 4)
    assert tiny_tokenizer.vocab_size <= 200
    lower, upper = tokenizer.encode("Kalo Dor"), tokenizer.encode("kalo dor")
    assert lower.ids == upper.ids
    assert any(token.startswith("##") for token in tokenizer.encode("quilbexthuzan").tokens)


def test_transformers_directory_loads_and_hash_is_of_the_file(tiny_tokenizer, tmp_path):
    transformers = pytest.importorskip("transformers")
    fast = transformers.PreTrainedTokenizerFast(tokenizer_file=tiny_tokenizer.path, pad_token="[PAD]")
    fast.save_pretrained(tmp_path)
    info = load_tokenizer(tmp_path)
    assert info.mask_id == tiny_tokenizer.mask_id and info.vocab_size == tiny_tokenizer.vocab_size
    import hashlib

    assert info.sha256 == hashlib.sha256((tmp_path / "tokenizer.json").read_bytes()).hexdigest()


def test_roberta_style_special_token_names_map_onto_bert_roles(tmp_path):
    vocab = {name: i for i, name in enumerate(["<pad>", "<unk>", "<s>", "</s>", "<mask>", "hello", "world"])}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tokenizer.save(str(tmp_path / "tokenizer.json"))
    info = load_tokenizer(tmp_path / "tokenizer.json")
    assert (info.pad_id, info.cls_id, info.sep_id, info.mask_id) == (0, 2, 3, 4)


def test_tokenizer_without_mask_token_is_a_clear_error(tmp_path):
    vocab = {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "hello": 4}
    Tokenizer(models.WordLevel(vocab, unk_token="[UNK]")).save(str(tmp_path / "tokenizer.json"))
    with pytest.raises(DataError, match=r"lacks the special token\(s\) \[MASK\]") as caught:
        load_tokenizer(tmp_path)
    assert "\n" not in str(caught.value)


def test_missing_or_corrupt_tokenizer_file_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="tokenizer not found"):
        load_tokenizer(tmp_path / "absent")
    (tmp_path / "tokenizer.json").write_text(json.dumps({"model": "nonsense"}))
    with pytest.raises(DataError, match="not a valid tokenizer.json"):
        load_tokenizer(tmp_path)


def test_trained_tokenizer_decodes_word_pieces_back_into_words(tiny_tokenizer):
    """The saved tokenizer.json travels with every model; decoding must join ## pieces like BERT's does."""
    tokenizer = tiny_tokenizer.tokenizer
    ids = tokenizer.encode("Quilbexthuzan ka lo", add_special_tokens=False).ids
    assert len(ids) > 3
    assert tokenizer.decode(ids) == "quilbexthuzan ka lo"


def _hf_cache_with(hub_cache, repo, tokenizer_file):
    """A Hub model as huggingface_hub caches it: refs/main names a snapshot holding the model's files."""
    commit = "0" * 40
    snapshot = hub_cache / f"models--{repo.replace('/', '--')}" / "snapshots" / commit
    snapshot.mkdir(parents=True)
    shutil.copy(tokenizer_file, snapshot / "tokenizer.json")
    (snapshot / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "PreTrainedTokenizerFast"}))
    (snapshot / "config.json").write_text(json.dumps({"model_type": "bert"}))
    (snapshot.parent.parent / "refs").mkdir()
    (snapshot.parent.parent / "refs" / "main").write_text(commit)


def test_a_named_hub_tokenizer_is_fetched_once_then_read_from_the_cache(
    tiny_tokenizer, tmp_path, monkeypatch, hub_answers
):
    transformers = pytest.importorskip("transformers")
    calls = []

    def from_pretrained(name, **kwargs):  # stands in for the Hub download (no network in tests)
        calls.append(name)
        return transformers.PreTrainedTokenizerFast(tokenizer_file=tiny_tokenizer.path)

    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", from_pretrained)
    first = fetch_hub_tokenizer("some-org/some-bert", tmp_path)
    second = fetch_hub_tokenizer("some-org/some-bert", tmp_path)
    assert calls == ["some-org/some-bert"] and first == second
    assert first == tmp_path / "tokenizers" / "hub" / "some-org--some-bert" / "tokenizer.json"
    assert load_tokenizer(first).mask_id == tiny_tokenizer.mask_id


@pytest.mark.parametrize("name", ["../../etc", "a/b/c", "/abs", ""])
def test_hub_names_that_are_not_plain_model_ids_are_refused(name, tmp_path):
    with pytest.raises(DataError, match="not a Hugging Face Hub model name"):
        fetch_hub_tokenizer(name, tmp_path)


def test_a_failed_hub_download_is_one_line(tmp_path, monkeypatch, hub_answers):
    transformers = pytest.importorskip("transformers")

    def offline(name, **kwargs):
        raise OSError("We couldn't connect to the Hub.\nCheck your connection.")

    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", offline)
    with pytest.raises(DataError) as info:
        fetch_hub_tokenizer("bert-base-uncased", tmp_path)
    assert "\n" not in str(info.value) and "couldn't connect" in str(info.value)


def test_the_hub_clients_retry_warnings_do_not_reach_the_user(tmp_path, monkeypatch, caplog, hub_answers):
    """Offline, huggingface_hub logged 46 lines of retries before the one error line; they are held back."""
    transformers = pytest.importorskip("transformers")
    import logging

    def retrying(name, **kwargs):
        for attempt in range(1, 6):
            logging.getLogger("huggingface_hub.utils._http").warning("Retrying in 1s [Retry %d/5].", attempt)
        raise OSError("We couldn't connect to the Hub.")

    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", retrying)
    before = logging.getLogger("huggingface_hub").level
    with caplog.at_level(logging.INFO), pytest.raises(DataError):
        fetch_hub_tokenizer("bert-base-uncased", tmp_path)
    assert not [record for record in caplog.records if "Retry" in record.getMessage()]
    assert logging.getLogger("huggingface_hub").level == before  # restored afterwards


def test_an_unreachable_hub_ends_train_at_once_with_one_error_line(tmp_path, monkeypatch, capsys, unreachable_hub):
    """Offline, the Hub client retried each file with backoff (about 50 s) before the error; one request now."""
    pytest.importorskip("transformers")
    hub_constants = pytest.importorskip("huggingface_hub.constants")
    monkeypatch.setattr(hub_constants, "HF_HUB_CACHE", str(tmp_path / "hf"))  # an empty HF cache
    output = tmp_path / "out"
    code = main(["train", "--quick-test", "--tokenizer", "hf:some-org/some-bert", "--output-dir", str(output)])
    assert code == 2
    assert 0 < len(unreachable_hub) <= 2  # no retry loop (there were 19); see test_hub.py
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith("error: cannot load tokenizer 'some-org/some-bert'")
    assert "could not be reached" in errors[0] and "HF_HUB_OFFLINE=1" in errors[0]
    assert not output.exists()


@pytest.mark.parametrize("offline", [False, True], ids=["hub-unreachable", "HF_HUB_OFFLINE"])
def test_a_tokenizer_in_the_hf_cache_loads_without_the_hub(
    tiny_tokenizer, tmp_path, monkeypatch, unreachable_hub, offline
):
    pytest.importorskip("transformers")
    hub_constants = pytest.importorskip("huggingface_hub.constants")
    _hf_cache_with(tmp_path / "hf", "some-org/some-bert", tiny_tokenizer.path)
    monkeypatch.setattr(hub_constants, "HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", offline)
    path = fetch_hub_tokenizer("some-org/some-bert", tmp_path / "cache")
    assert load_tokenizer(path).tokenizer.get_vocab() == tiny_tokenizer.tokenizer.get_vocab()
    assert len(unreachable_hub) <= (0 if offline else 2)  # offline: not even the one request


_TRAIN_IN_A_FRESH_PROCESS = """
import sys
sys.path.insert(0, sys.argv[2])
from data.conftest import synthetic_texts, tie_heavy_texts
from mlmclm.data.tokenizer import train_tokenizer
train_tokenizer(synthetic_texts(400, seed=99), vocab_size=200, output_dir=sys.argv[1] + "/varied")
train_tokenizer(tie_heavy_texts(), vocab_size=120, output_dir=sys.argv[1] + "/ties")
"""


@pytest.mark.slow  # three interpreter start-ups
def test_training_twice_in_fresh_processes_gives_identical_tokenizer_bytes(tmp_path):
    """HF's trainer numbers ## pieces in a per-process hash-map order; the saved file must not show it."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    tests_dir = str(Path(__file__).resolve().parents[1])
    repo = str(Path(__file__).resolve().parents[2])
    environments = [
        {"PYTHONHASHSEED": "0", "RAYON_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"},
        {"PYTHONHASHSEED": "12345", "RAYON_NUM_THREADS": "2", "TOKENIZERS_PARALLELISM": "true"},
        {"PYTHONHASHSEED": "random"},
    ]
    outputs = []
    for index, extra in enumerate(environments):
        env = {**os.environ, "PYTHONPATH": repo, **extra}
        out = tmp_path / f"t{index}"
        subprocess.run([sys.executable, "-c", _TRAIN_IN_A_FRESH_PROCESS, str(out), tests_dir], env=env, check=True)
        outputs.append([(out / name / "tokenizer.json").read_bytes() for name in ("varied", "ties")])
    assert outputs[0] == outputs[1] == outputs[2]


def test_tie_heavy_text_trains_the_vocabulary_of_pinned_continuation_pieces(tmp_path):
    """The ## pieces are ordinary vocabulary after training, never added (special) tokens."""
    from mlmclm.data.tokenizer import train_tokenizer

    from .conftest import tie_heavy_texts

    info = load_tokenizer(train_tokenizer(tie_heavy_texts(), vocab_size=120, output_dir=tmp_path))
    vocab = info.tokenizer.get_vocab()
    assert info.vocab_size == 120 and set(info.special_ids) == {0, 1, 2, 3, 4}
    assert {"##a", "##l", "##0"} <= set(vocab)
    added = json.loads((tmp_path / "tokenizer.json").read_text())["added_tokens"]
    assert [token["content"] for token in added] == list(SPECIAL_TOKENS)
    assert "##a" not in info.tokenizer.encode("##a alpha0", add_special_tokens=False).tokens  # not an added token


def test_canonical_ids_change_no_segmentation(tmp_path):
    """Re-numbering keeps the vocabulary set, so every text splits into the same pieces as HF trained it."""
    from tokenizers import normalizers, pre_tokenizers, trainers

    from mlmclm.data.tokenizer import canonical_wordpiece

    from .conftest import synthetic_texts

    texts = synthetic_texts(200, seed=3)
    raw = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    raw.normalizer = normalizers.BertNormalizer(lowercase=True)
    raw.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    raw.train_from_iterator(
        texts,
        trainer=trainers.WordPieceTrainer(vocab_size=150, special_tokens=list(SPECIAL_TOKENS), show_progress=False),
    )
    canonical = Tokenizer.from_str(raw.to_str())
    canonical.model = canonical_wordpiece(raw.get_vocab(with_added_tokens=False))
    assert set(canonical.get_vocab()) == set(raw.get_vocab())
    assert [canonical.id_to_token(i) for i in range(5)] == list(SPECIAL_TOKENS)
    rest = [canonical.id_to_token(i) for i in range(5, canonical.get_vocab_size())]
    assert rest == sorted(rest)
    for text in texts[:50] + ["Quilbexthuzan, KA-lo!"]:
        assert canonical.encode(text).tokens == raw.encode(text).tokens
