"""Dropout whose CPU mask comes from 16-bit integer draws: Bernoulli dropout at a fraction of the CPU time.

Why: on CPU, ``F.dropout`` draws its mask with ``bernoulli_`` and ``rand_like`` with ``uniform_``, both one
32-bit generator call per element on one thread, which at two threads was 6% of a tiny-preset CLM step
(docs/performance.md). One 64-bit draw (``random_`` over the whole int64 range) holds four independent
uniform 16-bit integers, so the mask costs a quarter of the generator calls: an element is kept when its
16-bit integer is at or above ``round(p · 2¹⁶)`` counted from the bottom of the range. The dropout rate is
therefore ``p`` rounded to a multiple of 2⁻¹⁶ (:func:`effective_rate`; 0.1 becomes 0.1000061), and the kept
elements are scaled by ``1 / (1 − effective_rate)`` so the expectation is exactly preserved. Rates that
round to 0 or 1 take ``F.dropout``. Masks come from torch's default generator, so seeded runs repeat
exactly. Other devices keep ``F.dropout`` (CUDA's fused Philox kernel is already fast).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

_LEVELS = 1 << 16  # values of one 16-bit draw
_INT64_RANGE = (-(1 << 63), (1 << 63) - 1)  # random_'s [from, to): every 64-bit pattern but one


def effective_rate(p: float) -> float:
    """The rate the CPU mask drops at: ``p`` rounded to a multiple of 2⁻¹⁶ (within 2⁻¹⁷ of ``p``)."""
    return round(p * _LEVELS) / _LEVELS


def drawable(p: float) -> bool:
    """Whether the 16-bit draw can express ``p``: not when it rounds to 0 or 1 (within 2⁻¹⁷ of them)."""
    return 0 < round(p * _LEVELS) < _LEVELS


def keep_mask(
    shape: torch.Size | tuple[int, ...], p: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """A bool CPU ``shape`` mask, True with probability ``1 − effective_rate(p)``, from ``generator`` (default:
    torch's default generator)."""
    count = math.prod(shape)
    words = torch.empty(-(-count // 4), dtype=torch.int64).random_(*_INT64_RANGE, generator=generator)
    draws = words.view(torch.int16)[:count].view(shape)  # uniform on [-2¹⁵, 2¹⁵)
    return draws >= round(p * _LEVELS) - _LEVELS // 2


def dropout(x: torch.Tensor, p: float, training: bool = True) -> torch.Tensor:
    """Inverted dropout: zero each element with probability ``p`` and scale the rest by 1 / (1 − p)."""
    if not training or p == 0.0 or p >= 1.0 or x.device.type != "cpu":
        return F.dropout(x, p, training)
    if not drawable(p):
        return F.dropout(x, p, training)
    scaled_keep = keep_mask(x.shape, p).to(x.dtype).mul_(1.0 / (1.0 - effective_rate(p)))
    return x * scaled_keep


class Dropout(nn.Dropout):
    """``nn.Dropout`` (same settings, same state dict) through :func:`dropout`."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return dropout(x, self.p, self.training)
