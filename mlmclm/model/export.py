"""Export to the Hugging Face ecosystem: a ``transformers`` BertForMaskedLM directory.

Only an MLM model with ``standard`` attention and post-LN is architecturally BERT, so only that combination is
exported; the logits of the exported model equal ours (to float rounding). Two details of the mapping:

* our attention uses one fused q/k/v projection; BERT's separate query/key/value weights are its three slices;
* BERT adds a token-type (segment) embedding that we do not have; we write zeros for it (type_vocab_size
  2), so the exported model adds nothing for either segment id and computes exactly our function.

``transformers`` is an optional extra (``pip install mlmclm[hf]``) and is imported only here.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import torch

from mlmclm.atomic import atomic_write_dir
from mlmclm.errors import DataError, UserError
from mlmclm.model.serialization import load_model
from mlmclm.model.transformer import Transformer

TOKENIZER_NAME = "tokenizer.json"
_EXPORTABLE = "only mlm + standard + post-LN models export"


def _check_exportable(model: Transformer) -> None:
    config = model.config
    attention, objective = config["attention"], config["objective"]
    if objective != "mlm":
        raise UserError(
            f"cannot export a {objective!r} model as BertForMaskedLM: BERT attends bidirectionally, so a "
            f"causal model has no transformers BERT equivalent ({_EXPORTABLE})"
        )
    if attention != "standard":
        raise UserError(
            f"cannot export attention {attention!r} as BertForMaskedLM: it uses {model.mechanism.summary}, "
            f"while BERT only has learned absolute position embeddings ({_EXPORTABLE})"
        )
    if config["norm"] != "post":
        raise UserError(
            f"cannot export a model.norm={config['norm']!r} model as BertForMaskedLM: BERT is post-LN "
            f"({_EXPORTABLE})"
        )


def bert_state_dict(model: Transformer) -> dict[str, torch.Tensor]:
    """Our weights under BertForMaskedLM's parameter names."""
    ours = model.state_dict()
    hidden = model.config["hidden_size"]
    bert = {
        "bert.embeddings.word_embeddings.weight": ours["token_embeddings.weight"],
        "bert.embeddings.position_embeddings.weight": ours["mechanism.position_embeddings.weight"],
        "bert.embeddings.token_type_embeddings.weight": torch.zeros(2, hidden),
        "bert.embeddings.LayerNorm.weight": ours["embedding_norm.weight"],
        "bert.embeddings.LayerNorm.bias": ours["embedding_norm.bias"],
        "cls.predictions.transform.dense.weight": ours["head.dense.weight"],
        "cls.predictions.transform.dense.bias": ours["head.dense.bias"],
        "cls.predictions.transform.LayerNorm.weight": ours["head.norm.weight"],
        "cls.predictions.transform.LayerNorm.bias": ours["head.norm.bias"],
        "cls.predictions.decoder.weight": ours["token_embeddings.weight"],
        "cls.predictions.decoder.bias": ours["head.bias"],
        "cls.predictions.bias": ours["head.bias"],
    }
    for index in range(model.config["num_layers"]):
        src, dst = f"blocks.{index}.", f"bert.encoder.layer.{index}."
        for part in ("weight", "bias"):
            query, key, value = ours[f"{src}attention.qkv.{part}"].chunk(3, dim=0)
            bert[f"{dst}attention.self.query.{part}"] = query
            bert[f"{dst}attention.self.key.{part}"] = key
            bert[f"{dst}attention.self.value.{part}"] = value
            bert[f"{dst}attention.output.dense.{part}"] = ours[f"{src}attention.output.{part}"]
            bert[f"{dst}attention.output.LayerNorm.{part}"] = ours[f"{src}attention_norm.{part}"]
            bert[f"{dst}intermediate.dense.{part}"] = ours[f"{src}feed_forward.up.{part}"]
            bert[f"{dst}output.dense.{part}"] = ours[f"{src}feed_forward.down.{part}"]
            bert[f"{dst}output.LayerNorm.{part}"] = ours[f"{src}feed_forward_norm.{part}"]
    return {name: tensor.clone() for name, tensor in bert.items()}


def export_huggingface(run_dir: str | Path, out_dir: str | Path) -> Path:
    """Write ``out_dir`` as a BertForMaskedLM model + BertTokenizerFast that ``from_pretrained`` loads.

    Everything is read and checked before anything is written, and the files are written into a temporary
    sibling directory that moves into place at the end: a failed export leaves no partial ``out_dir``.
    """
    try:
        transformers = importlib.import_module("transformers")
    except ImportError as exc:
        raise UserError(
            "exporting needs the optional 'transformers' package: pip install 'mlmclm[hf]'"
        ) from exc
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    model = load_model(run_dir)
    _check_exportable(model)
    config = model.config
    tokenizer_path = run_dir / TOKENIZER_NAME
    if not tokenizer_path.is_file():
        raise DataError(
            f"{tokenizer_path} is missing; the export needs the run's tokenizer next to the model"
        )
    tokenizer = _bert_tokenizer(transformers, tokenizer_path, config["max_seq_length"])

    bert_config = transformers.BertConfig(
        vocab_size=config["vocab_size"],
        hidden_size=config["hidden_size"],
        num_hidden_layers=config["num_layers"],
        num_attention_heads=config["num_heads"],
        intermediate_size=config["intermediate_size"],
        hidden_act="gelu",
        hidden_dropout_prob=config["hidden_dropout"],
        attention_probs_dropout_prob=config["attention_dropout"],
        max_position_embeddings=config["max_seq_length"],
        type_vocab_size=2,
        initializer_range=config["initializer_range"],
        layer_norm_eps=config["layer_norm_eps"],
        pad_token_id=config["pad_token_id"],
        architectures=["BertForMaskedLM"],
    )
    bert = transformers.BertForMaskedLM(bert_config)
    missing, unexpected = bert.load_state_dict(bert_state_dict(model), strict=False)
    if missing or unexpected:  # a transformers version with other names: fail loudly, never export garbage
        raise UserError(
            f"this transformers version ({transformers.__version__}) names BERT's weights differently "
            f"(missing {missing[:3]}, unexpected {unexpected[:3]}); please report it"
        )

    def write(directory: Path) -> None:
        bars = transformers.utils.logging
        shown = bars.is_progress_bar_enabled()
        bars.disable_progress_bar()  # a "Writing model shards" bar for one small file is noise on stderr
        try:
            bert.save_pretrained(directory)
            tokenizer.save_pretrained(directory)
        finally:
            if shown:
                bars.enable_progress_bar()

    return atomic_write_dir(out_dir, write)


def _bert_tokenizer(transformers, tokenizer_path: Path, max_length: int):
    """The run's tokenizer as a BertTokenizerFast; a file that is no tokenizer.json is a DataError."""
    from mlmclm.data.tokenizer import load_tokenizer

    load_tokenizer(tokenizer_path)  # one line for unreadable files, bad JSON and JSON that is no tokenizer
    return transformers.BertTokenizerFast(
        tokenizer_file=str(tokenizer_path),
        do_lower_case=True,
        unk_token="[UNK]",
        sep_token="[SEP]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        mask_token="[MASK]",
        model_max_length=max_length,
    )
