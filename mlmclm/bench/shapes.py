"""The model and batch shapes a benchmark runs at: one record, a few named presets."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass


@dataclass(frozen=True)
class BenchShape:
    """Everything that fixes a training step's work: both implementations get exactly these."""

    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int
    seq: int
    batch: int

    def with_(self, **changes: int) -> BenchShape:
        return dataclasses.replace(self, **changes)

    @property
    def tokens(self) -> int:
        return self.batch * self.seq


PRESETS: dict[str, BenchShape] = {
    # issue 14's CPU target: 2 cores, fp32
    "tiny": BenchShape(hidden=256, layers=4, heads=4, ffn=1024, vocab=8192, seq=128, batch=16),
    "small": BenchShape(hidden=512, layers=8, heads=8, ffn=2048, vocab=16384, seq=256, batch=16),
    # BERT-base (Devlin et al. 2019) at sequence 512, issue 14's GPU target
    "bert-base": BenchShape(hidden=768, layers=12, heads=12, ffn=3072, vocab=30522, seq=512, batch=32),
}
# --quick: small enough that the whole command takes seconds on CPU (CI), still every code path.
QUICK = BenchShape(hidden=64, layers=2, heads=2, ffn=128, vocab=512, seq=32, batch=4)
# --sweep: sequence lengths at the preset's width, and widths/depths at the preset's sequence length.
SWEEP_SEQ_LENGTHS = (128, 256, 512, 1024, 2048)
SWEEP_SIZES: dict[str, dict[str, int]] = {
    "mini (256x4)": {"hidden": 256, "layers": 4, "heads": 4, "ffn": 1024},
    "small (512x8)": {"hidden": 512, "layers": 8, "heads": 8, "ffn": 2048},
    "base (768x12)": {"hidden": 768, "layers": 12, "heads": 12, "ffn": 3072},
    "large (1024x24)": {"hidden": 1024, "layers": 24, "heads": 16, "ffn": 4096},
}
QUICK_SWEEP_SIZES: dict[str, dict[str, int]] = {
    "quick (64x2)": {"hidden": 64, "layers": 2, "heads": 2, "ffn": 128},
    "mini (128x4)": {"hidden": 128, "layers": 4, "heads": 4, "ffn": 512},
}
