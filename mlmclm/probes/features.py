"""Token ids for probe examples and frozen sentence representations (mean-pooled and last-token views).

Inputs follow BERT: ``[CLS] text [SEP]`` or ``[CLS] text [SEP] text_pair [SEP]``, truncated longest-first to
the model's ``max_seq_length``. Mean pooling averages the final hidden states of all real tokens (special
tokens included, padding excluded); the last-token view is the final state of the last real token, the
only position that has seen the whole input under causal attention.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import torch
from tokenizers import Tokenizer

from mlmclm.data.tokenizer import SPECIAL_TOKEN_ALIASES, find_special_token
from mlmclm.errors import DataError
from mlmclm.probes.examples import ProbeExample

logger = logging.getLogger(__name__)

POOLINGS = ("mean", "last_token")


def special_token_id(tokenizer: Tokenizer, role: str) -> int:
    """The id the data pipeline uses for ``role`` ("pad", "cls", "sep"), so RoBERTa-style names work too."""
    token_id = find_special_token(tokenizer, role)
    if token_id is None:
        raise DataError(
            f"the tokenizer has no {SPECIAL_TOKEN_ALIASES[role][0]} token; probes need [PAD], [CLS] and [SEP] "
            "(or <pad> <s> </s>)"
        )
    return token_id


def _plain(tokenizer: Tokenizer) -> Tokenizer:
    """The tokenizer without padding or truncation (a copy when either is switched on), so ids are raw."""
    if tokenizer.padding is None and tokenizer.truncation is None:
        return tokenizer
    plain = Tokenizer.from_str(tokenizer.to_str())
    plain.no_padding()
    plain.no_truncation()
    return plain


def _truncate_longest_first(first: list[int], second: list[int], budget: int) -> tuple[list[int], list[int]]:
    """Hugging Face's ``longest_first``: drop from the end of the longer input (the first on ties) until
    both fit, in closed form; a token-by-token loop is quadratic in the length of long documents."""
    if len(first) + len(second) <= budget:
        return first, second
    shorter = min(len(first), len(second))
    if 2 * shorter <= budget:  # only the longer one is cut
        keep_first = budget - len(second) if len(first) >= len(second) else len(first)
    else:  # both are cut to half the budget, the first getting the smaller half
        keep_first = budget // 2
    return first[:keep_first], second[: budget - keep_first]


def encode_examples(
    tokenizer: Tokenizer, examples: Sequence[ProbeExample], max_length: int
) -> list[list[int]]:
    """Token ids of each example with [CLS]/[SEP] added; logs how many had to be truncated."""
    plain = _plain(tokenizer)
    cls_id, sep_id = special_token_id(tokenizer, "cls"), special_token_id(tokenizer, "sep")
    firsts = [
        encoding.ids for encoding in plain.encode_batch([e.text for e in examples], add_special_tokens=False)
    ]
    pair_texts = [e.text_pair or "" for e in examples]
    seconds = [encoding.ids for encoding in plain.encode_batch(pair_texts, add_special_tokens=False)]
    sequences = []
    truncated = 0
    for example, first, second in zip(examples, firsts, seconds, strict=True):
        specials = 3 if example.text_pair is not None else 2
        kept_first, kept_second = _truncate_longest_first(first, second, max_length - specials)
        truncated += (len(kept_first), len(kept_second)) != (len(first), len(second))
        ids = [cls_id, *kept_first, sep_id]
        if example.text_pair is not None:
            ids += [*kept_second, sep_id]
        sequences.append(ids)
    if truncated:
        logger.debug(
            "%d of %d probe inputs were truncated to %d tokens", truncated, len(examples), max_length
        )
    return sequences


def has_padding(sequences: Sequence[list[int]]) -> bool:
    """Whether :func:`pad_batch` pads: known on the host, so the encoder gets a mask only when it needs one
    (without it, the fused SDPA kernels run and the encoder never reads a mask back from the device)."""
    return len({len(ids) for ids in sequences}) > 1


def pad_batch(
    sequences: Sequence[list[int]], pad_id: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded ``input_ids`` and ``attention_mask`` (1 = real token), as in the batch contract."""
    width = max(len(ids) for ids in sequences)
    input_ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, ids in enumerate(sequences):
        input_ids[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
        attention_mask[row, : len(ids)] = 1
    return input_ids.to(device), attention_mask.to(device)


def pool(hidden: torch.Tensor, attention_mask: torch.Tensor, pooling: str) -> torch.Tensor:
    """[B, T, H] hidden states -> [B, H] sentence vectors; padding never contributes."""
    mask = attention_mask.to(hidden.dtype).unsqueeze(-1)
    if pooling == "mean":
        return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)
    if pooling == "last_token":
        last = attention_mask.sum(dim=1).clamp(min=1) - 1
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
    raise ValueError(f"unknown pooling {pooling!r} (valid: {', '.join(POOLINGS)})")


@torch.no_grad()
def frozen_representations(
    model: torch.nn.Module,
    sequences: Sequence[list[int]],
    pad_id: int,
    device: torch.device,
    batch_size: int,
    poolings: Sequence[str],
) -> dict[str, np.ndarray]:
    """One pass of the (already eval-mode) encoder over ``sequences``: pooling -> float32 [N, H] features.

    Sequences are batched in length order to keep padding small and put back in the input order.
    """
    order = sorted(range(len(sequences)), key=lambda i: len(sequences[i]))
    chunks: dict[str, list[torch.Tensor]] = {name: [] for name in poolings}
    for start in range(0, len(order), batch_size):
        batch = [sequences[i] for i in order[start : start + batch_size]]
        input_ids, attention_mask = pad_batch(batch, pad_id, device)
        hidden = model.encode(input_ids, attention_mask if has_padding(batch) else None)
        for name in poolings:
            chunks[name].append(pool(hidden, attention_mask, name).float().cpu())
    inverse = torch.empty(len(order), dtype=torch.long)
    inverse[torch.tensor(order, dtype=torch.long)] = torch.arange(len(order))
    return {name: torch.cat(parts)[inverse].numpy() for name, parts in chunks.items()}
