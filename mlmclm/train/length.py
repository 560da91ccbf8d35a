"""Length generalisation: score a trained run on text segmented at k x its training length.

Train short, test long (Press et al. 2022, "Train Short, Test Long", ICLR; Kazemnejad et al. 2023, "The Impact
of Positional Encoding on Length Generalization in Transformers", NeurIPS): after training at L =
``data.max_seq_length``, the test documents are re-segmented with the run's own objective and sequence
strategy at k·L for every k in ``evaluation.length_multipliers`` and scored like ``test_loss``. A document
shorter than k·L stays as long as it is, so the mean length actually evaluated is recorded beside every
score: on a corpus of short documents, 4·L may add little. A mechanism that cannot represent positions it
never saw (``extrapolates = False`` in its own file, e.g. learned absolute positions) is recorded as not
applicable at lengths above L, with a NaN score that the statistics skip, never a crash or a truncation.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch

from mlmclm.config import DataConfig
from mlmclm.data import build_eval_batches
from mlmclm.data.token_cache import TokenizedDocuments
from mlmclm.data.tokenizer import TokenizerInfo
from mlmclm.train.device import Precision
from mlmclm.train.evaluate import evaluate

EVALUATED, NOT_APPLICABLE = "evaluated", "not_applicable"


def length_metric(multiplier: int, score: str) -> str:
    """``eval_len<k>/loss`` or ``eval_len<k>/accuracy``: the run-record metric of multiplier ``k``."""
    return f"eval_len{multiplier}/{score}"


@dataclass(frozen=True)
class LengthResult:
    """One multiplier of one run (the run record's ``length_generalisation`` entries)."""

    multiplier: int
    length: int  # k x max_seq_length: the longest sequence evaluated
    status: str  # evaluated | not_applicable
    loss: float
    accuracy: float
    mean_length: float  # mean non-pad tokens per evaluated sequence (short documents stay short)
    sequences: int
    reason: str | None = None

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    def metrics(self) -> dict[str, float]:
        return {
            length_metric(self.multiplier, "loss"): self.loss,
            length_metric(self.multiplier, "accuracy"): self.accuracy,
        }


def evaluate_lengths(
    model: torch.nn.Module,
    objective: str,
    docs: TokenizedDocuments,
    data_cfg: DataConfig,
    tokenizer: TokenizerInfo,
    multipliers: list[int],
    *,
    batch_size: int,
    max_batches: int | None,
    device: torch.device,
    precision: Precision,
) -> list[LengthResult]:
    """Score ``model`` on ``docs`` re-segmented at k x ``data_cfg.max_seq_length`` for every k."""
    results = []
    for multiplier in multipliers:
        length = multiplier * data_cfg.max_seq_length
        if not model.mechanism.supports_length(length):
            reason = (
                f"{model.config['attention']} has {data_cfg.max_seq_length} trained positions and cannot "
                f"represent {length}"
            )
            results.append(LengthResult(multiplier, length, NOT_APPLICABLE, math.nan, math.nan, math.nan, 0, reason))
            continue
        # unpacked: each batch row is one sequence, which the length record's counts below rely on
        longer = dataclasses.replace(data_cfg, max_seq_length=length, packing=False)
        batches = build_eval_batches(objective, docs, longer, tokenizer, batch_size, max_batches)
        scored = evaluate(model, batches, device, precision)
        sequences = sum(int(batch["attention_mask"].shape[0]) for batch in batches)
        real_tokens = sum(int(batch["attention_mask"].sum()) for batch in batches)
        mean_length = real_tokens / sequences if sequences else math.nan
        results.append(
            LengthResult(multiplier, length, EVALUATED, scored.loss, scored.accuracy, mean_length, sequences)
        )
    return results
