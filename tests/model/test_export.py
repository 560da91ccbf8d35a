"""Export to transformers' BertForMaskedLM: logits must match ours; other models are refused clearly."""

from __future__ import annotations

import json

import pytest
import torch
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors

from mlmclm.cli import main
from mlmclm.errors import UserError
from mlmclm.model import save_model
from mlmclm.model.export import export_huggingface
from tests.model.tiny import MAX_SEQ_LENGTH, PAD_ID, tiny_model

transformers = pytest.importorskip("transformers", reason="export needs the optional transformers package")

SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
WORDS = ["the", "cat", "sat", "on", "mat", "dog", "ran", "##s"]


def write_run(tmp_path, objective: str, attention: str, **overrides):
    vocab = {token: index for index, token in enumerate(SPECIAL + WORDS)}
    tokenizer = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
    )
    torch.manual_seed(0)
    model = tiny_model(objective, attention, initializer_range=0.2, **overrides)
    run_dir = tmp_path / "run"
    save_model(model, run_dir)
    tokenizer.save(str(run_dir / "tokenizer.json"))
    return model.eval(), run_dir


@pytest.mark.slow
def test_exported_bert_reproduces_our_logits_and_tokenizer(tmp_path):
    model, run_dir = write_run(tmp_path, "mlm", "standard")
    out_dir = export_huggingface(run_dir, tmp_path / "hf")
    bert = transformers.AutoModelForMaskedLM.from_pretrained(out_dir).eval()
    assert type(bert).__name__ == "BertForMaskedLM"
    tokenizer = transformers.AutoTokenizer.from_pretrained(out_dir)
    batch = tokenizer(["The cat sat on the mat", "dogs ran"], padding=True, return_tensors="pt")
    assert batch["input_ids"][0].tolist() == [2, 5, 6, 7, 8, 5, 9, 3]
    assert batch["input_ids"][1].tolist()[:5] == [2, 10, 12, 11, 3] and tokenizer.pad_token_id == PAD_ID
    assert tokenizer.mask_token == "[MASK]" and tokenizer.model_max_length == MAX_SEQ_LENGTH
    with torch.no_grad():
        ours = model(batch["input_ids"], batch["attention_mask"])
        theirs = bert(**batch).logits
    real = batch["attention_mask"].bool()
    torch.testing.assert_close(theirs[real], ours[real], rtol=0, atol=1e-4)
    assert ours.abs().max() > 0.1, "logits must be non-trivial for the comparison to mean something"
    modes = {path.name: path.stat().st_mode & 0o777 for path in out_dir.iterdir()}
    assert modes["model.safetensors"] == modes["config.json"], "safetensors' owner-only 0o600 hid the weights"


@pytest.mark.parametrize(
    ("objective", "attention", "overrides", "message"),
    [
        ("clm", "standard", {}, "'clm' model.*bidirectionally"),
        ("mlm", "rope", {}, "attention 'rope'.*rotary position embeddings"),
        ("mlm", "stickbreaking", {}, "attention 'stickbreaking'.*stick-breaking"),
        ("mlm", "standard", {"norm": "pre"}, "model.norm='pre'.*post-LN"),
    ],
)
def test_models_without_a_bert_equivalent_are_refused_with_the_reason(
    tmp_path, objective, attention, overrides, message
):
    _, run_dir = write_run(tmp_path, objective, attention, **overrides)
    with pytest.raises(UserError, match=message):
        export_huggingface(run_dir, tmp_path / "hf")
    assert not (tmp_path / "hf").exists()


def _corrupt(run_dir, corruption: str) -> None:
    if corruption == "num_heads_0":
        config = json.loads((run_dir / "config.json").read_text())
        (run_dir / "config.json").write_text(json.dumps({**config, "num_heads": 0}))
    elif corruption == "empty_torch_file":
        (run_dir / "model.safetensors").unlink()
        (run_dir / "final_model.pt").write_bytes(b"")
    elif corruption == "tokenizer_json_list":
        (run_dir / "tokenizer.json").write_text("[1, 2]")
    else:
        (run_dir / "tokenizer.json").write_text("{not json")


@pytest.mark.parametrize(
    ("corruption", "message"),
    [
        ("num_heads_0", "model.num_heads must be > 0"),  # was a ZeroDivisionError traceback
        ("empty_torch_file", "final_model.pt: the file is empty or truncated"),  # was a bare EOFError
        ("tokenizer_json_list", "tokenizer.json is not a valid tokenizer.json"),  # was tokenizers' Exception
        ("tokenizer_not_json", "tokenizer.json is not a valid tokenizer.json"),  # left config + weights behind
    ],
)
def test_a_corrupt_run_is_one_error_line_and_writes_nothing(tmp_path, capsys, corruption, message):
    _, run_dir = write_run(tmp_path, "mlm", "standard")
    _corrupt(run_dir, corruption)
    out = tmp_path / "exports" / "hf"
    assert main(["export", str(run_dir), "--hf", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and "\n" not in err and "Traceback" not in err
    assert sorted(path.name for path in tmp_path.iterdir()) == ["run"]  # no OUT, no parent, no temp dir


@pytest.mark.slow
def test_an_export_into_an_existing_directory_replaces_its_files_and_keeps_the_others(tmp_path):
    _, run_dir = write_run(tmp_path, "mlm", "standard")
    out = tmp_path / "hf"
    out.mkdir()
    (out / "README.md").write_text("my notes\n")
    (out / "config.json").write_text("{}")
    assert export_huggingface(run_dir, out) == out
    assert (out / "README.md").read_text() == "my notes\n"
    assert json.loads((out / "config.json").read_text())["architectures"] == ["BertForMaskedLM"]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["hf", "run"]  # the temporary directory is gone
