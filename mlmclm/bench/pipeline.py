"""Data-pipeline throughput: tokenizing, writing the token cache, and building batches per strategy.

Runs on the embedded standard-library corpus (no download) with a WordPiece tokenizer trained on it in a
temporary directory, so the numbers are comparable between machines. Tokens per second count document tokens
for tokenizing and caching, and the non-pad tokens of the built batches for each strategy; the ``packed``
lines build ``data.packing`` batches, whose tokens per batch (tokens/s over batches/s) show what packing adds.
"""

from __future__ import annotations

import dataclasses
import itertools
import tempfile
import time
from pathlib import Path

from mlmclm.bench.records import PipelineRecord
from mlmclm.config import DataConfig
from mlmclm.data.batches import TrainStream
from mlmclm.data.builtin_corpus import builtin_documents
from mlmclm.data.masking import MLM_STRATEGIES
from mlmclm.data.sequences import CLM_STRATEGIES
from mlmclm.data.token_cache import cached_tokenization, tokenize_documents
from mlmclm.data.tokenizer import load_tokenizer, train_tokenizer


def measure_pipeline(documents: int, seq_len: int, batch_size: int, max_batches: int, vocab: int = 2000
                     ) -> list[PipelineRecord]:
    """Tokenize + cache the built-in corpus's first ``documents`` documents; time ``max_batches`` per strategy."""
    texts = builtin_documents()[:documents]
    with tempfile.TemporaryDirectory(prefix="mlmclm-bench-") as tmp:
        info = load_tokenizer(train_tokenizer(texts, vocab, Path(tmp) / "tokenizer"))
        start = time.perf_counter()
        docs = tokenize_documents(texts, info, desc="bench tokenizing")
        tokenize_s = time.perf_counter() - start
        start = time.perf_counter()
        cached_tokenization(Path(tmp) / "cache", "bench", {"train": texts}, info, {"bench": True})
        cache_s = time.perf_counter() - start
        records = [
            PipelineRecord("tokenize", "-", docs.num_tokens / tokenize_s, None, tokenize_s),
            PipelineRecord("tokenize + cache", "-", docs.num_tokens / cache_s, None, cache_s),
        ]
        base = DataConfig(max_seq_length=seq_len)
        runs = [("mlm", dataclasses.replace(base, mlm_strategy=s), f"mlm {s}")
                for s in MLM_STRATEGIES.names()]
        runs += [("clm", dataclasses.replace(base, clm_strategy=s), f"clm {s}")
                 for s in CLM_STRATEGIES.names()]
        packed = dataclasses.replace(base, packing=True)
        runs += [("mlm", packed, "mlm dynamic, packed"), ("clm", packed, "clm standard, packed")]
        for objective, data_cfg, name in runs:
            records.append(_time_batches(objective, docs, data_cfg, info, batch_size, max_batches, name))
    return records


def _time_batches(objective, docs, data_cfg, info, batch_size, max_batches, name) -> PipelineRecord:
    start = time.perf_counter()
    stream = TrainStream(objective, docs, data_cfg, info, batch_size, seed=0)
    tokens = batches = 0
    for batch in itertools.islice(stream.epoch(0), max_batches):
        tokens += int(batch["attention_mask"].sum())
        batches += 1
    seconds = time.perf_counter() - start
    return PipelineRecord("batches", name, tokens / seconds, batches / seconds, seconds)
