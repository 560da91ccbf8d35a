"""The model as a whole: causality, padding, parameter parity, loss, initialisation, checkpointing."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from tests.model.tiny import MAX_SEQ_LENGTH, OBJECTIVES, PAD_ID, VOCAB_SIZE, tiny_model

POSITION_FREE = ("absolute", "rope", "alibi", "nope", "stickbreaking")


def random_ids(batch: int, seq_len: int, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(1, VOCAB_SIZE, (batch, seq_len), generator=generator)


@pytest.mark.parametrize("objective", OBJECTIVES)
def test_later_tokens_change_earlier_outputs_only_without_causal_mask(mechanism_name, objective):
    torch.manual_seed(0)
    # A wide init makes attention far from uniform, so a real dependence is far above float noise.
    model = tiny_model(objective, mechanism_name, initializer_range=0.2).eval()
    ids = random_ids(2, MAX_SEQ_LENGTH, seed=1)
    changed = ids.clone()
    t = 5
    changed[:, t + 1 :] = (changed[:, t + 1 :] + 7) % (VOCAB_SIZE - 1) + 1
    with torch.no_grad():
        before, after = model(ids), model(changed)
    if objective == "clm":
        torch.testing.assert_close(before[:, : t + 1], after[:, : t + 1], rtol=0, atol=1e-6)
    else:
        assert (before[:, : t + 1] - after[:, : t + 1]).abs().max() > 1e-2, "mlm must see later tokens"
    assert (before[:, t + 1 :] - after[:, t + 1 :]).abs().max() > 1e-2


@pytest.mark.parametrize("objective", OBJECTIVES)
def test_right_padding_leaves_real_token_outputs_unchanged(mechanism_name, objective):
    torch.manual_seed(0)
    model = tiny_model(objective, mechanism_name, initializer_range=0.2).eval()
    real = random_ids(1, 7, seed=2)
    padded = torch.cat([real, torch.full((1, 5), PAD_ID)], dim=1)
    mask = torch.cat([torch.ones(1, 7), torch.zeros(1, 5)], dim=1).long()
    with torch.no_grad():
        alone = model(real)
        with_pads = model(padded, mask)
        # Batched with a longer sequence: the pads then sit next to a real row in the same batch.
        longer = random_ids(1, 12, seed=3)
        batched = model(torch.cat([padded, longer]), torch.cat([mask, torch.ones(1, 12).long()]))
    torch.testing.assert_close(with_pads[:, :7], alone, rtol=0, atol=1e-5)
    torch.testing.assert_close(batched[:1, :7], alone, rtol=0, atol=1e-5)
    torch.testing.assert_close(batched[1:], model(longer).detach(), rtol=0, atol=1e-5)


def test_parameter_counts_are_equal_across_objectives_and_only_standard_has_position_parameters(
    mechanism_name,
):
    mlm, clm = tiny_model("mlm", mechanism_name), tiny_model("clm", mechanism_name)
    assert mlm.num_parameters() == clm.num_parameters()
    assert [n for n, _ in mlm.named_parameters()] == [n for n, _ in clm.named_parameters()]
    position = sum(p.numel() for p in mlm.mechanism.parameters())
    if mechanism_name == "standard":
        assert position == MAX_SEQ_LENGTH * 32
    elif mechanism_name == "exposb":
        assert position == 2 * 8  # heads × buckets, shared by all layers
    else:
        assert mechanism_name in POSITION_FREE and position == 0
    assert mlm.num_parameters() - position == tiny_model("mlm", "nope").num_parameters()


def test_output_projection_is_tied_to_token_embeddings():
    model = tiny_model("mlm", "nope")
    vocab_matrices = [n for n, p in model.named_parameters() if p.shape == (VOCAB_SIZE, 32)]
    assert vocab_matrices == ["token_embeddings.weight"], "no separate output matrix may exist"
    ids = random_ids(2, 6, seed=12)
    with torch.no_grad():
        model.token_embeddings.weight[5] += 1.0  # the logit of token 5 must follow its input embedding
        transformed = model.head.norm(F.gelu(model.head.dense(model.encode(ids))))
        expected = transformed @ model.token_embeddings.weight.T + model.head.bias
        torch.testing.assert_close(model(ids), expected)


def test_both_objectives_start_from_identical_weights_for_the_same_seed(mechanism_name):
    """Paired runs share a seed; the arms must then differ only in the mask, not in their initial weights."""
    torch.manual_seed(3)
    mlm = tiny_model("mlm", mechanism_name).state_dict()
    torch.manual_seed(3)
    clm = tiny_model("clm", mechanism_name).state_dict()
    assert mlm.keys() == clm.keys()
    for name in mlm:
        if name != "mechanism.bucket_bias":  # exposb's bins (and so their init) differ by design: left only
            assert torch.equal(mlm[name], clm[name]), name


@pytest.mark.parametrize("objective", OBJECTIVES)
def test_loss_equals_full_logits_cross_entropy_and_counts_correct_predictions(mechanism_name, objective):
    torch.manual_seed(0)
    model = tiny_model(objective, mechanism_name).eval()
    ids = random_ids(3, MAX_SEQ_LENGTH, seed=4)
    mask = torch.ones_like(ids)
    mask[2, 8:] = 0
    labels = torch.full_like(ids, -100)
    generator = torch.Generator().manual_seed(5)
    chosen = torch.rand(ids.shape, generator=generator) < 0.4
    chosen &= mask.bool()
    labels[chosen] = random_ids(3, MAX_SEQ_LENGTH, seed=6)[chosen]
    out = model.loss(ids, mask, labels)
    logits = model(ids, mask)
    expected = F.cross_entropy(logits.reshape(-1, VOCAB_SIZE), labels.reshape(-1), ignore_index=-100)
    torch.testing.assert_close(out.loss, expected, rtol=1e-5, atol=1e-6)
    assert int(out.num_predicted) == int(chosen.sum())
    predictions = logits.argmax(-1)
    assert int(out.num_correct) == int(((predictions == labels) & chosen).sum())
    # Make some predictions right so num_correct is tested beyond zero.
    labels[chosen] = predictions[chosen]
    assert int(model.loss(ids, mask, labels).num_correct) == int(chosen.sum())


def test_loss_with_no_labelled_positions_is_zero_not_nan():
    model = tiny_model("mlm", "nope")
    ids = random_ids(1, 6, seed=7)
    out = model.loss(ids, torch.ones_like(ids), torch.full_like(ids, -100))
    assert out.loss.item() == 0.0 and int(out.num_predicted) == 0


def test_loss_sends_only_labelled_positions_through_the_vocabulary_projection():
    model = tiny_model("clm", "rope")
    seen = []
    model.head.dense.register_forward_hook(lambda module, inputs, output: seen.append(inputs[0].shape))
    ids = random_ids(2, MAX_SEQ_LENGTH, seed=8)
    labels = torch.full_like(ids, -100)
    labels[0, 3] = labels[1, 7] = 4
    model.loss(ids, torch.ones_like(ids), labels)
    assert seen == [torch.Size([2, 32])]


@pytest.mark.parametrize("norm", ["post", "pre"])
def test_initialisation_follows_bert(norm):
    torch.manual_seed(0)
    model = tiny_model("mlm", "standard", norm=norm, initializer_range=0.05)
    for name, parameter in model.named_parameters():
        if "norm" in name:
            expected = 1.0 if name.endswith("weight") else 0.0
            assert (parameter == expected).all(), name
        elif name.endswith("bias"):
            assert (parameter == 0).all(), name
        else:
            assert parameter.std().item() == pytest.approx(0.05, rel=0.25), name
    assert (model.token_embeddings.weight[PAD_ID] == 0).all()
    has_final_norm = isinstance(model.final_norm, torch.nn.LayerNorm)
    assert has_final_norm == (norm == "pre")


def test_pre_and_post_norm_compute_different_functions():
    torch.manual_seed(0)
    post = tiny_model("mlm", "rope")
    torch.manual_seed(0)
    pre = tiny_model("mlm", "rope", norm="pre")
    ids = random_ids(1, 8, seed=9)
    assert not torch.allclose(post(ids), pre(ids))


def test_config_records_the_condition_and_is_plain_json():
    model = tiny_model("clm", "exposb")
    config = json.loads(json.dumps(model.config))
    assert config["objective"] == "clm" and config["attention"] == "exposb"
    assert config["vocab_size"] == VOCAB_SIZE and config["max_seq_length"] == MAX_SEQ_LENGTH
    assert config["hidden_size"] == 32 and config["pad_token_id"] == PAD_ID


def test_gradient_checkpointing_gives_the_same_loss_and_gradients(mechanism_name):
    torch.manual_seed(0)
    objective = "clm" if mechanism_name in ("rope", "stickbreaking") else "mlm"
    model = tiny_model(objective, mechanism_name, hidden_dropout=0.1, attention_dropout=0.1).train()
    ids = random_ids(2, MAX_SEQ_LENGTH, seed=10)
    mask = torch.ones_like(ids)
    mask[1, 9:] = 0
    labels = torch.where(mask.bool(), ids, -100)

    def loss_and_grads(checkpointing: bool):
        model.set_gradient_checkpointing(checkpointing)
        model.zero_grad()
        torch.manual_seed(123)  # same dropout masks in both runs; checkpointing must replay them
        loss = model.loss(ids, mask, labels).loss
        loss.backward()
        return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}

    plain_loss, plain_grads = loss_and_grads(False)
    checkpointed_loss, checkpointed_grads = loss_and_grads(True)
    torch.testing.assert_close(checkpointed_loss, plain_loss)
    assert plain_grads.keys() == checkpointed_grads.keys()
    for name in plain_grads:
        torch.testing.assert_close(checkpointed_grads[name], plain_grads[name], msg=name)


def test_bf16_autocast_runs_forward_and_backward(mechanism_name):
    torch.manual_seed(0)
    model = tiny_model("clm", mechanism_name)
    ids = random_ids(2, MAX_SEQ_LENGTH, seed=11)
    mask = torch.ones_like(ids)
    mask[0, 10:] = 0
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model.loss(ids, mask, torch.where(mask.bool(), ids, -100))
    out.loss.backward()
    assert torch.isfinite(out.loss)
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
