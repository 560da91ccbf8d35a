"""Can any probe see word order in a trained run's encoder? The measurement behind docs/validation.md.

At ``cpu_small`` scale the probes of issue 11 did not rise above a random-init encoder. This script asks the
question as generously as it can be asked of one trained run: sentences of the built-in corpus, original vs
perturbed (``bshift``: two adjacent interior words swapped, as the bigram-shift probe; ``shuffle``: all
interior words shuffled, a far larger order violation), scored for the trained encoder and for a random-init
encoder of the same shape, by

* ``linear``: 5-fold cross-validated logistic regression (scikit-learn, C chosen by inner CV) on
  standardised mean-pooled features of the last layer (``last``) or of every layer concatenated (``all``);
* ``finetune``: the whole encoder plus a linear head fine-tuned with AdamW on 80% and scored on 20%;
* ``paired``: the ``word_order`` probe's protocol (docs/probes.md): for each (original, perturbed) pair, the
  difference of their mean-pooled features in a random order, and a 5-fold linear probe for which came first;
* ``minimal_pairs``: no probe at all: how often the model itself scores the original above its perturbed twin
  (BLiMP-style minimal pairs, Warstadt et al. 2020): summed next-token log-likelihood for CLM, pseudo-log-
  likelihood (each token masked in turn, Salazar et al. 2020) for MLM. The two are not like for like across
  objectives; each is compared with its own random-init encoder.

    python benchmarks/validation/order_probe_sensitivity.py RUN_DIR --task shuffle --mode finetune

``RUN_DIR`` is a run directory of ``mlmclm train`` (it holds ``model.safetensors`` and ``tokenizer.json``).
"""

from __future__ import annotations

import argparse
import copy
import re

import numpy as np
import torch
from sklearn.linear_model import LogisticRegressionCV
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from tokenizers import Tokenizer

from mlmclm.data.builtin_corpus import builtin_documents
from mlmclm.model.serialization import load_model


def corpus_sentences(seed: int) -> list[str]:
    """8-25-word sentences of the corpus's last 15,000 documents, shuffled."""
    sentences = [
        s for d in builtin_documents()[-15000:] for s in re.split(r"(?<=[.!?])\s+", d) if 8 <= len(s.split()) <= 25
    ]
    np.random.default_rng(seed).shuffle(sentences)
    return sentences


def perturbed(words: list[str], task: str, rng: np.random.Generator) -> list[str] | None:
    """``bshift``: two adjacent alphabetic interior words swapped; ``shuffle``: all interior words shuffled."""
    swappable = [
        j for j in range(1, len(words) - 2)
        if words[j].isalpha() and words[j + 1].isalpha() and words[j].casefold() != words[j + 1].casefold()
    ]
    if not swappable:
        return None
    words = list(words)
    if task == "bshift":
        j = swappable[rng.integers(len(swappable))]
        words[j], words[j + 1] = words[j + 1], words[j]
    else:
        middle = words[1:-1]
        rng.shuffle(middle)
        words[1:-1] = middle
    return words


def labelled_sentences(task: str, tokenizer: Tokenizer, count: int, seed: int) -> tuple[list[list[int]], np.ndarray]:
    """Half originals, half perturbed (each source sentence used once)."""
    rng = np.random.default_rng(seed)
    ids, labels = [], []
    for i, sentence in enumerate(corpus_sentences(seed)[:count]):
        words = perturbed(sentence.split(), task, rng) if i % 2 else sentence.split()
        encoded = tokenizer.encode(" ".join(words)).ids if words else []
        if 0 < len(encoded) <= 64:
            ids.append(encoded)
            labels.append(i % 2)
    return ids, np.asarray(labels)


def minimal_pairs(task: str, tokenizer: Tokenizer, count: int, seed: int) -> list[tuple[list[int], list[int]]]:
    """(original, perturbed) token ids with [CLS] ... [SEP], both at most 64 tokens and different."""
    rng, vocab, pairs = np.random.default_rng(seed), tokenizer.get_vocab(), []
    for sentence in corpus_sentences(seed):
        twin = perturbed(sentence.split(), task, rng)
        if twin is None:
            continue
        a, b = ([vocab["[CLS]"], *tokenizer.encode(t, add_special_tokens=False).ids, vocab["[SEP]"]]
                for t in (sentence, " ".join(twin)))
        if a != b and len(a) <= 64 and len(b) <= 64:
            pairs.append((a, b))
        if len(pairs) == count:
            break
    return pairs


def sentence_score(model: torch.nn.Module, ids: list[int], mask_id: int) -> float:
    """CLM: Σ log p(x_t | x_<t); MLM: pseudo-log-likelihood Σ log p(x_t | x with x_t masked), [CLS]/[SEP] unscored."""
    x = torch.tensor([ids])
    with torch.no_grad():
        if model.config["objective"] == "clm":
            log_probs = torch.log_softmax(model(x)[0, :-1], -1)
            return float(log_probs.gather(1, x[0, 1:, None]).sum())
        inner = torch.arange(1, len(ids) - 1)
        masked = x.repeat(len(inner), 1)
        masked[torch.arange(len(inner)), inner] = mask_id
        log_probs = torch.log_softmax(model(masked), -1)
        return float(log_probs[torch.arange(len(inner)), inner, x[0, inner]].sum())


def pooled_layers(model: torch.nn.Module, ids: list[list[int]]) -> list[torch.Tensor]:
    """Mean-pooled hidden states of the embeddings and of every block, via forward hooks."""
    outputs: list[torch.Tensor] = []
    hooks = [block.register_forward_hook(lambda m, i, o: outputs.append(o)) for block in model.blocks]
    pooled: list[list[torch.Tensor]] = []
    with torch.no_grad():
        for start in range(0, len(ids), 128):
            input_ids, mask = padded(ids[start : start + 128])
            outputs.clear()
            model.encode(input_ids, mask)
            weights = mask[..., None].float()
            pooled.append([(h * weights).sum(1) / weights.sum(1) for h in outputs])
    for hook in hooks:
        hook.remove()
    return [torch.cat([batch[k] for batch in pooled]) for k in range(len(model.blocks))]


def padded(batch: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    length = max(len(x) for x in batch)
    input_ids = torch.tensor([x + [0] * (length - len(x)) for x in batch])
    return input_ids, (input_ids != 0).long()


def linear_accuracy(features: np.ndarray, labels: np.ndarray) -> float:
    probe = make_pipeline(StandardScaler(), LogisticRegressionCV(Cs=8, max_iter=2000))
    return float(cross_val_score(probe, features, labels, cv=5).mean())


def finetune_accuracy(model, ids, labels, lr: float, epochs: int, seed: int) -> float:
    model, generator = copy.deepcopy(model).train(), torch.Generator().manual_seed(seed)
    head = torch.nn.Linear(int(model.config["hidden_size"]), 2)
    optimizer = torch.optim.AdamW([*model.parameters(), *head.parameters()], lr=lr, weight_decay=0.01)
    y, train = torch.as_tensor(labels), int(0.8 * len(labels))

    def logits(rows: list[int]) -> torch.Tensor:
        input_ids, mask = padded([ids[r] for r in rows])
        hidden = model.encode(input_ids, mask)
        return head((hidden * mask[..., None]).sum(1) / mask.sum(1, keepdim=True))

    for _ in range(epochs):
        for rows in torch.randperm(train, generator=generator).split(32):
            loss = torch.nn.functional.cross_entropy(logits(rows.tolist()), y[rows])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    with torch.no_grad():
        test = list(range(train, len(labels)))
        return float((logits(test).argmax(-1) == y[test]).float().mean())


def paired_accuracy(trained, untrained, tokenizer: Tokenizer, args: argparse.Namespace) -> None:
    """Difference features pooled(first) - pooled(second), the order of each pair drawn at random."""
    pairs = minimal_pairs(args.task, tokenizer, min(args.sentences, 1000), args.seed)
    sign = np.random.default_rng(args.seed + 1).choice([-1.0, 1.0], size=len(pairs))
    for name, model in (("trained", trained), ("random init", untrained)):
        first = pooled_layers(model, [a for a, _ in pairs])[-1]
        second = pooled_layers(model, [b for _, b in pairs])[-1]
        accuracy = linear_accuracy((first - second).numpy() * sign[:, None], (sign > 0).astype(int))
        print(f"{args.task} paired {name}: {accuracy:.3f} (n={len(pairs)})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir")
    parser.add_argument("--task", choices=("bshift", "shuffle"), default="bshift")
    parser.add_argument("--mode", choices=("linear", "finetune", "minimal_pairs", "paired"), default="linear")
    parser.add_argument("--sentences", type=int, default=3000)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    trained = load_model(args.run_dir).eval()
    untrained = copy.deepcopy(trained)
    untrained.apply(untrained._init_weights)
    tokenizer = Tokenizer.from_file(f"{args.run_dir}/tokenizer.json")
    ids, labels = labelled_sentences(args.task, tokenizer, args.sentences, args.seed)
    if args.mode == "paired":
        paired_accuracy(trained, untrained, tokenizer, args)
        return
    if args.mode == "minimal_pairs":
        pairs = minimal_pairs(args.task, tokenizer, min(args.sentences, 400), args.seed)
        mask_id = tokenizer.get_vocab()["[MASK]"]
        for name, model in (("trained", trained), ("random init", untrained)):
            wins = np.mean([sentence_score(model, a, mask_id) > sentence_score(model, b, mask_id) for a, b in pairs])
            print(f"{args.task} minimal pairs {name}: original preferred in {wins:.3f} (n={len(pairs)})")
        return
    for name, model in (("trained", trained), ("random init", untrained)):
        if args.mode == "finetune":
            accuracy = finetune_accuracy(model, ids, labels, args.lr, args.epochs, args.seed)
            print(f"{args.task} finetune {name}: {accuracy:.3f} (n={len(labels)})")
            continue
        layers = pooled_layers(model, ids)
        for label, features in (("last", layers[-1]), ("all", torch.cat(layers, -1))):
            accuracy = linear_accuracy(features.numpy(), labels)
            print(f"{args.task} linear/{label} {name}: {accuracy:.3f} (n={len(labels)})")


if __name__ == "__main__":
    main()
