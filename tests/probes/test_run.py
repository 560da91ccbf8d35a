import dataclasses

import pytest
import torch
from scipy import stats

from mlmclm.config import ProbeConfig
from mlmclm.probes import build_probe_tasks, probe_metric_names, run_probes
from mlmclm.probes.examples import ProbeExample
from mlmclm.probes.features import encode_examples


@pytest.fixture(scope="module")
def tasks(corpus):
    """All generated tasks at the quick-test scale."""
    return build_probe_tasks(corpus["heldout"], corpus["training"], ProbeConfig(examples_per_task=200))


@pytest.fixture(scope="module")
def binary_tasks(tasks):
    """The two cheapest tasks, for tests about the protocol rather than the scores."""
    return [task for task in tasks if task.name in ("bigram_shift", "coherence")]


def snapshot(model):
    return {name: tensor.clone() for name, tensor in model.state_dict().items()}


def test_mlm_run_reports_the_primary_metrics_and_the_control_task_only(make_encoder, tokenizer, tasks, probe_cfg):
    metrics = run_probes(make_encoder("mlm"), tokenizer, tasks, probe_cfg, "cpu")
    controls = [f"probe/{t.name}/{m}" for t in tasks for m in ("control_accuracy", "selectivity")]
    assert sorted(metrics) == sorted(probe_metric_names(tasks) + controls)
    assert all(0.0 <= metrics[name] <= 1.0 for name in probe_metric_names(tasks))


def test_clm_run_adds_the_last_token_view(make_encoder, tokenizer, binary_tasks, probe_cfg):
    metrics = run_probes(make_encoder("clm"), tokenizer, binary_tasks, probe_cfg, "cpu")
    last_token = [f"probe/{t.name}/last_token_{m}" for t in binary_tasks for m in ("accuracy", "f1")]
    controls = [f"probe/{t.name}/{m}" for t in binary_tasks for m in ("control_accuracy", "selectivity")]
    assert sorted(metrics) == sorted(probe_metric_names(binary_tasks) + last_token + controls)


def test_clm_last_token_view_of_a_running_mean_equals_the_mlm_mean_pool(
    make_encoder, tokenizer, binary_tasks, probe_cfg
):
    """The stand-in CLM's last state is the mean of all embeddings: exactly the MLM stand-in's mean pool."""
    clm = run_probes(make_encoder("clm"), tokenizer, binary_tasks, probe_cfg, "cpu")
    mlm = run_probes(make_encoder("mlm"), tokenizer, binary_tasks, probe_cfg, "cpu")
    for task in binary_tasks:
        assert clm[f"probe/{task.name}/last_token_accuracy"] == pytest.approx(
            mlm[f"probe/{task.name}/accuracy"]
        )


def test_order_blind_encoder_is_at_chance_on_bigram_shift_and_good_at_word_content(
    make_encoder, tokenizer, corpus, probe_cfg
):
    """A mean of token embeddings cannot see word order but sees which words occur (a known-answer check)."""
    cfg = dataclasses.replace(probe_cfg, tasks=["bigram_shift", "word_content"], examples_per_task=400)
    larger = build_probe_tasks(corpus["heldout"], corpus["training"], cfg)
    metrics = run_probes(make_encoder("mlm", hidden_size=256), tokenizer, larger, cfg, "cpu")
    n_test = len(larger[0].test)
    low, high = stats.binom.interval(0.999, n_test, 0.5)
    assert low / n_test <= metrics["probe/bigram_shift/accuracy"] <= high / n_test
    assert metrics["probe/word_content/accuracy"] > 0.8  # chance is 0.1


@pytest.mark.parametrize("mode", ["linear", "finetune"])
@pytest.mark.parametrize("training", [True, False])
def test_run_probes_leaves_weights_and_mode_unchanged(
    make_encoder, tokenizer, binary_tasks, probe_cfg, mode, training
):
    model = make_encoder("clm")
    model.train(training)
    before = snapshot(model)
    metrics = run_probes(model, tokenizer, binary_tasks, dataclasses.replace(probe_cfg, mode=mode), "cpu")
    after = model.state_dict()
    assert after.keys() == before.keys()
    assert all(torch.equal(after[name], before[name]) for name in before)
    assert model.training is training and model.dropout.training is training
    assert len(metrics) == 8 + (4 if mode == "linear" else 0)  # linear mode adds the control task


def test_finetune_mode_learns_from_the_probe_train_split(make_encoder, tokenizer, corpus, probe_cfg):
    cfg = dataclasses.replace(
        probe_cfg, tasks=["word_content"], examples_per_task=400, mode="finetune", finetune_learning_rate=3e-3
    )
    word_content = build_probe_tasks(corpus["heldout"], corpus["training"], cfg)
    metrics = run_probes(make_encoder("mlm", hidden_size=256), tokenizer, word_content, cfg, "cpu")
    assert metrics["probe/word_content/accuracy"] > 0.5  # chance is 0.1


@pytest.mark.parametrize("mode", ["linear", "finetune"])
def test_run_probes_is_deterministic(make_encoder, tokenizer, binary_tasks, probe_cfg, mode):
    cfg = dataclasses.replace(probe_cfg, mode=mode)
    first = run_probes(make_encoder("clm"), tokenizer, binary_tasks, cfg, "cpu")
    assert run_probes(make_encoder("clm"), tokenizer, binary_tasks, cfg, "cpu") == first


def test_no_tasks_gives_no_metrics(make_encoder, tokenizer, probe_cfg):
    assert run_probes(make_encoder("mlm"), tokenizer, [], probe_cfg, "cpu") == {}


def test_inputs_are_cls_text_sep_pair_sep_truncated_to_max_length(tokenizer):
    cls, sep = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    first, second = "dina lema bego", "sipi fabi"
    a = tokenizer.encode(first, add_special_tokens=False).ids
    b = tokenizer.encode(second, add_special_tokens=False).ids
    single, pair = encode_examples(tokenizer, [ProbeExample(first, 0), ProbeExample(first, 0, second)], 64)
    assert single == [cls, *a, sep]
    assert pair == [cls, *a, sep, *b, sep]
    long_text = " ".join(["dina lema bego"] * 40)
    (truncated,) = encode_examples(tokenizer, [ProbeExample(long_text, 0, long_text)], 16)
    assert len(truncated) == 16 and truncated[0] == cls and truncated[-1] == sep and truncated.count(sep) == 2


def test_tokenizer_padding_settings_do_not_leak_into_probe_inputs(tokenizer):
    padded = tokenizer.__class__.from_str(tokenizer.to_str())
    padded.enable_padding(pad_id=0, pad_token="[PAD]", length=32)
    padded.enable_truncation(max_length=4)
    example = [ProbeExample("dina lema bego sipi", 0)]
    assert encode_examples(padded, example, 64) == encode_examples(tokenizer, example, 64)


def test_probe_metric_names_accepts_tasks_or_names(tasks):
    assert probe_metric_names(["a_task"]) == ["probe/a_task/accuracy", "probe/a_task/f1"]
    assert probe_metric_names(tasks)[:2] == ["probe/bigram_shift/accuracy", "probe/bigram_shift/f1"]


def test_roberta_style_special_tokens_are_used_like_the_data_pipeline_does(probe_cfg):
    """data.tokenizer accepts <pad> <s> </s> <mask>; probes must read those roles too, not stop the run."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    from mlmclm.probes import ProbeTask

    from .conftest import BagOfEmbeddingsEncoder

    words = ["<pad>", "<unk>", "<s>", "</s>", "<mask>", "alpha", "beta", "gamma"]
    roberta = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    roberta.pre_tokenizer = pre_tokenizers.Whitespace()
    single, pair = encode_examples(
        roberta, [ProbeExample("alpha beta", 0), ProbeExample("alpha", 0, "gamma")], 16
    )
    assert single == [2, 5, 6, 3] and pair == [2, 5, 3, 7, 3]
    examples = [
        ProbeExample(f"{word} gamma" + " gamma" * (i % 3), label)
        for i in range(40)
        for label, word in enumerate(("alpha", "beta"))
    ]
    task = ProbeTask("alpha_or_beta", ["alpha", "beta"], examples[:60], examples[60:])
    metrics = run_probes(BagOfEmbeddingsEncoder(len(words), "mlm"), roberta, [task], probe_cfg, "cpu")
    assert metrics["probe/alpha_or_beta/accuracy"] == 1.0


def reference_longest_first(first, second, budget):
    """Hugging Face's 'longest_first' rule, one token at a time: drop from the longer, the first on ties."""
    first, second = list(first), list(second)
    while len(first) + len(second) > budget:
        if len(first) >= len(second):
            first.pop()
        else:
            second.pop()
    return first, second


def test_longest_first_truncation_matches_the_token_by_token_rule_and_handles_long_inputs():
    from mlmclm.probes.features import _truncate_longest_first

    for n_first in range(0, 13):
        for n_second in range(0, 13):
            for budget in range(0, 14):
                first, second = list(range(n_first)), list(range(100, 100 + n_second))
                expected = reference_longest_first(first, second, budget)
                assert _truncate_longest_first(first, second, budget) == expected
    long_first, long_second = _truncate_longest_first(list(range(300_000)), [7] * 5, 126)
    assert long_first == list(range(121)) and long_second == [7] * 5
