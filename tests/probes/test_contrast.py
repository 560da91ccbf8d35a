"""Contrast tasks (``ProbeExample.contrast``, the ``word_order`` probe): features are pooled(text) -
pooled(contrast), in linear mode, for the baselines and in fine-tuning."""

import dataclasses

import numpy as np
import pytest
import torch
from tokenizers import Tokenizer, models, pre_tokenizers

from mlmclm.config import ModelConfig, ProbeConfig
from mlmclm.errors import DataError
from mlmclm.model.transformer import Transformer
from mlmclm.probes import ProbeTask, build_probe_tasks, run_probes
from mlmclm.probes.examples import ProbeExample
from mlmclm.probes.features import special_token_id
from mlmclm.probes.run import probe_features, tokenized_splits

from .conftest import BagOfEmbeddingsEncoder

FILLERS = [f"w{i}" for i in range(20)]
WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "alpha", "beta", *FILLERS]


@pytest.fixture(scope="module")
def word_order(corpus):
    cfg = ProbeConfig(tasks=["word_order"], examples_per_task=200, test_fraction=0.3, seed=0)
    (task,) = build_probe_tasks(corpus["heldout"], corpus["training"], cfg)
    return task


@pytest.fixture(scope="module")
def word_level():
    tokenizer = Tokenizer(models.WordLevel({w: i for i, w in enumerate(WORDS)}, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    return tokenizer


def nope_encoder(objective: str, vocab_size: int) -> Transformer:
    torch.manual_seed(0)
    config = ModelConfig(hidden_size=32, num_layers=2, num_heads=4, intermediate_size=64,
                         hidden_dropout=0.0, attention_dropout=0.0)
    return Transformer(config, objective=objective, attention="nope", vocab_size=vocab_size,
                       max_seq_length=128, pad_token_id=0).eval()


def features(model, tokenizer, task, poolings=("mean",)):
    splits = tokenized_splits(tokenizer, task, int(model.config["max_seq_length"]))
    pad = special_token_id(tokenizer, "pad")
    return probe_features(model, splits.train_sequences, splits.train_contrast, pad, torch.device("cpu"), 16,
                          poolings)


def swapped(task: ProbeTask) -> ProbeTask:
    flip = [dataclasses.replace(e, text=e.contrast, contrast=e.text) for e in task.train]
    return dataclasses.replace(task, train=flip)


def test_a_position_free_bidirectional_encoder_gives_zero_contrast_features(word_order, tokenizer):
    """MLM-nope is permutation-equivariant (Haviv et al. 2022): a sentence and its bigram swap look the same."""
    mean = features(nope_encoder("mlm", tokenizer.get_vocab_size()), tokenizer, word_order)["mean"]
    assert mean.shape == (len(word_order.train), 32)
    np.testing.assert_allclose(mean, 0.0, atol=1e-5)


def test_the_causal_mask_gives_nonzero_contrast_features_in_both_views(word_order, tokenizer):
    clm = features(nope_encoder("clm", tokenizer.get_vocab_size()), tokenizer, word_order, ("mean", "last_token"))
    # every pair differs by more than the tolerance MLM-nope's zero features meet (1e-5; they reach ~1e-7)
    assert (np.abs(clm["mean"]).max(axis=1) > 1e-5).all()
    assert np.abs(clm["last_token"]).max() > 1e-5


def test_swapping_text_and_contrast_negates_the_features(word_order, tokenizer):
    model = nope_encoder("clm", tokenizer.get_vocab_size())
    forward = features(model, tokenizer, word_order)["mean"]
    backward = features(model, tokenizer, swapped(word_order))["mean"]
    # equal up to float rounding (the two sides may share a batch with different padding); pooled(text)
    # alone would be O(1) away from this
    np.testing.assert_allclose(backward, -forward, rtol=0, atol=1e-6)
    assert np.abs(forward).max() > 1e-3


def test_an_order_blind_encoder_is_at_chance_and_every_baseline_is_reported(
    word_order, make_encoder, tokenizer, probe_cfg
):
    metrics = run_probes(make_encoder("mlm"), tokenizer, [word_order], probe_cfg, "cpu",
                         random_init=make_encoder("mlm"))
    names = ["accuracy", "f1", "random_init_accuracy", "gain_over_random_init", "control_accuracy", "selectivity"]
    assert sorted(metrics) == sorted(f"probe/word_order/{name}" for name in names)
    assert 0.35 <= metrics["probe/word_order/accuracy"] <= 0.65
    assert 0.35 <= metrics["probe/word_order/random_init_accuracy"] <= 0.65


class PositionWeightedEncoder(BagOfEmbeddingsEncoder):
    """Token embeddings scaled by position: mean pooling then reads order, so the original "alpha beta"
    and its swap "beta alpha" differ by exactly +-(e_beta - e_alpha) / length."""

    def encode(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        positions = torch.arange(1, input_ids.shape[1] + 1, dtype=torch.float32).view(1, -1, 1)
        return self.embedding(input_ids) * positions


def alpha_beta_task(rng: np.random.Generator, n: int = 120) -> ProbeTask:
    """Originals hold "alpha beta" among random fillers; label 0 puts the original first, 1 its swap."""
    examples = []
    for i in range(n):
        left, right = rng.choice(FILLERS, size=rng.integers(1, 5)), rng.choice(FILLERS, size=rng.integers(1, 5))
        original = " ".join([*left, "alpha", "beta", *right])
        twin = " ".join([*left, "beta", "alpha", *right])
        label = i % 2
        first, second = (original, twin) if label == 0 else (twin, original)
        examples.append(ProbeExample(first, label, group=str(i), contrast=second))
    return ProbeTask("alpha_beta", ["original_first", "original_second"], examples[: n * 2 // 3],
                     examples[n * 2 // 3 :])


def test_an_encoder_that_sees_order_scores_near_one(word_level, probe_cfg):
    task = alpha_beta_task(np.random.default_rng(0))
    model, untrained = PositionWeightedEncoder(len(WORDS), "mlm"), PositionWeightedEncoder(len(WORDS), "mlm")
    metrics = run_probes(model, word_level, [task], probe_cfg, "cpu", random_init=untrained)
    assert metrics["probe/alpha_beta/accuracy"] >= 0.95
    assert metrics["probe/alpha_beta/random_init_accuracy"] >= 0.95  # position weights are not learned


def marker_task(rng: np.random.Generator, n: int = 150) -> ProbeTask:
    """The label is only in the contrast: text is random fillers, contrast the same fillers plus "alpha"
    (label 0) or "beta" (label 1). A probe that ignores the contrast sees nothing."""
    examples = []
    for i in range(n):
        text = " ".join(rng.choice(FILLERS, size=rng.integers(3, 8)))
        label = i % 2
        examples.append(ProbeExample(text, label, group=str(i), contrast=f"{text} {('alpha', 'beta')[label]}"))
    return ProbeTask("marker", ["alpha", "beta"], examples[:100], examples[100:])


def test_the_linear_probe_and_the_random_init_baseline_read_the_contrast(word_level, probe_cfg):
    task = marker_task(np.random.default_rng(1))
    untrained = BagOfEmbeddingsEncoder(len(WORDS), "mlm")
    metrics = run_probes(BagOfEmbeddingsEncoder(len(WORDS), "mlm"), word_level, [task], probe_cfg, "cpu",
                         random_init=untrained)
    assert metrics["probe/marker/accuracy"] >= 0.9 and metrics["probe/marker/random_init_accuracy"] >= 0.9


def test_finetune_mode_reads_the_contrast(word_level, probe_cfg):
    task = marker_task(np.random.default_rng(1))
    cfg = dataclasses.replace(probe_cfg, mode="finetune", finetune_learning_rate=3e-3, finetune_epochs=5)
    metrics = run_probes(BagOfEmbeddingsEncoder(len(WORDS), "mlm"), word_level, [task], cfg, "cpu")
    assert metrics["probe/marker/accuracy"] >= 0.9
    plain = [dataclasses.replace(e, contrast=None) for e in task.train + task.test]
    without = dataclasses.replace(task, train=plain[:100], test=plain[100:])
    metrics = run_probes(BagOfEmbeddingsEncoder(len(WORDS), "mlm"), word_level, [without], cfg, "cpu")
    assert metrics["probe/marker/accuracy"] <= 0.75  # the same texts without their contrasts: no signal


def test_a_task_mixing_contrast_and_plain_examples_is_a_data_error():
    examples = [ProbeExample("a b c", 0, contrast="a c b"), ProbeExample("a b c", 1)]
    with pytest.raises(DataError, match="mixes contrast pairs and plain examples"):
        ProbeTask("mixed", ["x", "y"], examples, examples)
    with pytest.raises(DataError, match="not both"):
        ProbeExample("a b", 0, text_pair="c", contrast="b a")
