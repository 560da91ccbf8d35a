"""Packed rows (``data.packing``) give every mechanism the loss and gradients of the same sequences padded.

The packed rows and the padded reference are built here by hand from the same token lists, independently of
mlmclm/data/packing.py, so a wrong mask, a position that does not restart, or an offset read across two
sequences changes the numbers.
"""

from __future__ import annotations

import pytest
import torch

from tests.model.tiny import MAX_SEQ_LENGTH, MECHANISMS, PAD_ID, VOCAB_SIZE, tiny_model

# Four sequences of 5, 3, 7 and 4 tokens: rows [0 | 1 | pad] and [2 | 3 | pad] of 12 slots, or 4 padded rows.
LENGTHS = (5, 3, 7, 4)
ROWS = ((0, 1), (2, 3))
# (model objective, causal view passed to loss); mntp is a hybrid trained under both masks
VIEWS = [("mlm", None), ("clm", None), ("mntp", True), ("mntp", False)]
# Weights 10x BERT's initial scale, so attention moves the outputs well beyond the tolerances below.
INIT = {"initializer_range": 0.2}


def sequences(seed: int = 0) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return [torch.randint(1, VOCAB_SIZE, (n,), generator=generator) for n in LENGTHS]


def labels_of(tokens: torch.Tensor, causal: bool, seed: int) -> torch.Tensor:
    """CLM: the next token inside the sequence (none after its last token); MLM: about half of the tokens."""
    labels = torch.full_like(tokens, -100)
    if causal:
        labels[:-1] = tokens[1:]
    else:
        chosen = torch.rand(len(tokens), generator=torch.Generator().manual_seed(seed)) < 0.5
        chosen[seed % len(tokens)] = True  # at least one target per sequence
        labels[chosen] = tokens[chosen]
    return labels


def padded_batch(tokens: list[torch.Tensor], labels: list[torch.Tensor]) -> dict:
    width = max(len(t) for t in tokens)
    batch = {
        "input_ids": torch.full((len(tokens), width), PAD_ID),
        "attention_mask": torch.zeros((len(tokens), width), dtype=torch.long),
        "labels": torch.full((len(tokens), width), -100),
    }
    for row, (ids, target) in enumerate(zip(tokens, labels, strict=True)):
        batch["input_ids"][row, : len(ids)] = ids
        batch["attention_mask"][row, : len(ids)] = 1
        batch["labels"][row, : len(ids)] = target
    return batch


def packed_batch(tokens: list[torch.Tensor], labels: list[torch.Tensor]) -> dict:
    shape = (len(ROWS), MAX_SEQ_LENGTH)
    batch = {key: torch.zeros(shape, dtype=torch.long) for key in
             ("input_ids", "attention_mask", "segment_ids", "position_ids")}
    batch["input_ids"].fill_(PAD_ID)
    batch["labels"] = torch.full(shape, -100)
    for row, members in enumerate(ROWS):
        column = 0
        for segment, index in enumerate(members, start=1):
            span = slice(column, column + LENGTHS[index])
            batch["input_ids"][row, span] = tokens[index]
            batch["labels"][row, span] = labels[index]
            batch["attention_mask"][row, span] = 1
            batch["segment_ids"][row, span] = segment
            batch["position_ids"][row, span] = torch.arange(LENGTHS[index])
            column += LENGTHS[index]
    return batch


def loss_and_grads(model, batch: dict, causal: bool | None, **layout):
    model.zero_grad(set_to_none=True)
    out = model.loss(batch["input_ids"], batch["attention_mask"], batch["labels"], causal=causal, **layout)
    out.loss.backward()
    grads = {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}
    return out, grads


@pytest.mark.parametrize(("objective", "causal"), VIEWS, ids=[f"{o}-{c}" for o, c in VIEWS])
@pytest.mark.parametrize("name", MECHANISMS)
def test_packed_rows_give_the_loss_counts_and_gradients_of_the_padded_sequences(name, objective, causal):
    torch.manual_seed(3)
    model = tiny_model(objective, name, **INIT)
    if name == "exposb":  # random biases, so every bucket matters
        with torch.no_grad():
            model.mechanism.bucket_bias.normal_(generator=torch.Generator().manual_seed(7))
    is_causal = model.causal if causal is None else causal
    tokens = sequences()
    labels = [labels_of(t, is_causal, seed) for seed, t in enumerate(tokens)]
    padded, packed = padded_batch(tokens, labels), packed_batch(tokens, labels)
    want, want_grads = loss_and_grads(model, padded, causal, has_padding=True)
    got, got_grads = loss_and_grads(
        model, packed, causal, segment_ids=packed["segment_ids"], position_ids=packed["position_ids"]
    )
    assert int(got.num_predicted) == int(want.num_predicted) > 0
    assert int(got.num_correct) == int(want.num_correct)
    torch.testing.assert_close(got.loss, want.loss, rtol=1e-5, atol=1e-6)
    assert got_grads.keys() == want_grads.keys()
    for key, grad in want_grads.items():
        torch.testing.assert_close(got_grads[key], grad, rtol=1e-5, atol=1e-6, msg=key)


@pytest.mark.parametrize("causal", [False, True], ids=["bidirectional", "causal"])
@pytest.mark.parametrize("name", MECHANISMS)
def test_changing_one_sequence_leaves_its_row_neighbour_untouched(name, causal):
    """No attention across sequences: changing sequence 0 (row 0, first) does not reach sequence 1 after it,
    which a causal mask alone would let through."""
    torch.manual_seed(4)
    model = tiny_model("clm" if causal else "mlm", name, **INIT).eval()
    tokens = sequences()
    labels = [torch.full_like(t, -100) for t in tokens]
    batch = packed_batch(tokens, labels)
    changed_tokens = [t.clone() for t in tokens]
    changed_tokens[0] = tokens[0] % (VOCAB_SIZE - 1) + 1  # every token of sequence 0 replaced by another
    changed = packed_batch(changed_tokens, labels)
    layout = {"segment_ids": batch["segment_ids"], "position_ids": batch["position_ids"]}
    with torch.no_grad():
        before = model.encode(batch["input_ids"], batch["attention_mask"], **layout)
        after = model.encode(changed["input_ids"], changed["attention_mask"], **layout)
    second = slice(LENGTHS[0], LENGTHS[0] + LENGTHS[1])
    torch.testing.assert_close(after[0, second], before[0, second], rtol=0, atol=0)
    first = slice(0, LENGTHS[0])
    assert (after[0, first] - before[0, first]).abs().max() > 1e-4  # the change itself is seen


def test_without_segment_ids_the_rows_would_mix_and_the_loss_would_differ():
    """The check above can fail: the same packed rows with only a padding mask give another loss."""
    torch.manual_seed(5)
    model = tiny_model("mlm", "nope", **INIT)
    tokens = sequences()
    labels = [labels_of(t, False, seed) for seed, t in enumerate(tokens)]
    padded, packed = padded_batch(tokens, labels), packed_batch(tokens, labels)
    with torch.no_grad():
        want = model.loss(padded["input_ids"], padded["attention_mask"], padded["labels"], has_padding=True).loss
        mixed = model.loss(packed["input_ids"], packed["attention_mask"], packed["labels"], has_padding=True).loss
    assert abs(float(mixed) - float(want)) > 1e-2


def test_segment_ids_without_position_ids_are_refused():
    model = tiny_model("mlm", "standard")
    packed = packed_batch(sequences(), [torch.full((n,), -100) for n in LENGTHS])
    with pytest.raises(ValueError, match="both segment_ids and position_ids"):
        model.encode(packed["input_ids"], packed["attention_mask"], segment_ids=packed["segment_ids"])


def test_an_unpadded_batch_said_to_have_no_padding_equals_one_read_as_padded():
    """``has_padding=False`` only chooses the kernel: a mask of ones gives the same numbers (within rounding)."""
    torch.manual_seed(6)
    model = tiny_model("clm", "alibi", **INIT)
    ids = torch.randint(1, VOCAB_SIZE, (2, MAX_SEQ_LENGTH))
    mask = torch.ones_like(ids)
    with torch.no_grad():
        fused = model.encode(ids, mask, has_padding=False)
        masked = model.encode(ids, mask)
    torch.testing.assert_close(fused, masked, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("packed", [False, True], ids=["padded", "packed"])
def test_encode_reads_nothing_back_from_the_device(packed):
    """No host sync in the forward pass: ``bool(attention_mask.all())`` was one per forward, and a torch.compile
    graph break; whether there is padding now comes from the caller (``has_padding``)."""
    model = tiny_model("clm", "alibi")
    tokens = sequences()
    batch = packed_batch(tokens, [torch.full_like(t, -100) for t in tokens])
    if packed:
        layout = {"segment_ids": batch["segment_ids"], "position_ids": batch["position_ids"]}
    else:
        layout = {"has_padding": True}
    explanation = torch._dynamo.explain(model.encode)(batch["input_ids"], batch["attention_mask"], **layout)
    torch._dynamo.reset()
    assert explanation.graph_break_count == 0, explanation.break_reasons
