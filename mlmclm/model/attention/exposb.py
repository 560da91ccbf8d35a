"""``exposb``: Exponential Scaling and Binning, a learned relative-distance bias on the attention logits.

Logits are  q_i·k_j/√d + b_h[bucket(j − i)]. The bucket of a query-key offset follows T5's relative position
bucketing (Raffel et al. 2020, sec. 2.1; ``_relative_position_bucket`` in the T5 code):

* bidirectional models split the B buckets into B/2 for keys left of (or at) the query and B/2 for keys to
  its right; causal models see only the left and spend all B buckets there;
* within a side with S buckets, distances n < S/2 get a bucket each (exact), larger distances share
  logarithmically spaced bins  S/2 + ⌊log(n / (S/2)) / log(D / (S/2)) · (S − S/2)⌋, clipped to S − 1, so bin
  widths grow exponentially up to D = ``model.exposb_max_distance``; every distance ≥ D shares the last bin.

As in T5, one table b ∈ R^{H×B} is shared by all layers (in bidirectional mode the right side's first bucket,
distance 0, is never used: offset 0 counts as left). It is trained, starting from an exponential-scaling
initialisation that makes it an ALiBi-like recency prior (Press et al. 2022):

    b_h[bin] = −s_h · r(bin),   s_h = 2^(−8h/H) (h = 1..H),
    r(bin) = n for exact bins,  r(bin) = (S/2) · (D / (S/2))^((bin − S/2) / (S − S/2)) for log bins,

where r(bin) is the bin's smallest (continuous) distance. The name "ExpoSB" is also used in the literature for
stick-breaking attention; that mechanism is ``stickbreaking`` here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from mlmclm.config import ExperimentConfig, ModelConfig, require_positive
from mlmclm.errors import ConfigError
from mlmclm.model.attention.base import (
    ATTENTION_MECHANISMS,
    AttentionMechanism,
    SoftmaxMask,
    TokenLayout,
    build_softmax_mask,
    head_slopes,
    relative_positions,
)


def distance_buckets(
    relative_position: torch.Tensor, *, causal: bool, num_buckets: int, max_distance: int
) -> torch.Tensor:
    """Bucket index in [0, num_buckets) of every offset j − i (T5's bucketing; see the module docstring)."""
    if causal:
        side_buckets = num_buckets
        offset = torch.zeros_like(relative_position)
        distance = (-relative_position).clamp(min=0)
    else:
        side_buckets = num_buckets // 2
        offset = (relative_position > 0).long() * side_buckets
        distance = relative_position.abs()
    exact = side_buckets // 2
    scaled = torch.log(distance.float().clamp(min=1) / exact) / math.log(max_distance / exact)
    logarithmic = exact + (scaled * (side_buckets - exact)).long()
    logarithmic = logarithmic.clamp(max=side_buckets - 1)
    return offset + torch.where(distance < exact, distance, logarithmic)


def bucket_distances(num_buckets: int, *, causal: bool, max_distance: int) -> torch.Tensor:
    """The representative (smallest, continuous) distance r(bin) of every bucket, shape ``[num_buckets]``."""
    side_buckets = num_buckets if causal else num_buckets // 2
    exact = side_buckets // 2
    index = torch.arange(side_buckets, dtype=torch.float64)
    growth = (max_distance / exact) ** ((index - exact) / (side_buckets - exact))
    side = torch.where(index < exact, index, exact * growth)
    return (side if causal else torch.cat([side, side])).float()


@ATTENTION_MECHANISMS.register("exposb")
class ExponentialScalingBinning(AttentionMechanism):
    """Softmax attention plus a trained per-head bias indexed by log-binned relative distance."""

    summary = "a learned, log-binned relative-distance bias on the attention logits"
    extrapolates = True  # distances beyond exposb_max_distance share the last bucket, any length has a bias
    no_weight_decay = frozenset({"bucket_bias"})  # a learned prior on the logits, not a weight to shrink to 0

    @dataclass(frozen=True)
    class Config:
        """``model.exposb_num_buckets`` B and ``model.exposb_max_distance`` D of the bucketing above."""

        num_buckets: int = 32
        max_distance: int = 128

        def check(self, config: ExperimentConfig) -> None:
            require_positive("model.exposb_num_buckets", self.num_buckets)
            if self.num_buckets < 4 or self.num_buckets % 2:
                raise ConfigError(
                    f"model.exposb_num_buckets must be even and >= 4 (bidirectional models split them into left "
                    f"and right halves), got {self.num_buckets}"
                )
            if self.max_distance <= self.num_buckets // 2:
                raise ConfigError("model.exposb_max_distance must exceed half of model.exposb_num_buckets")

    def __init__(self, config: ModelConfig, *, max_seq_length: int, causal: bool) -> None:
        super().__init__(config, max_seq_length=max_seq_length, causal=causal)
        settings = config.settings("exposb")
        self.num_buckets = settings.num_buckets
        self.max_distance = settings.max_distance
        # The table's layout is fixed here; a hybrid model (bidirectional layout) attending causally for one
        # batch then uses the left half of it, so its buckets keep their meaning across the two masks.
        self.causal_layout = causal
        distances = bucket_distances(self.num_buckets, causal=causal, max_distance=self.max_distance)
        self.bucket_bias = nn.Parameter(-head_slopes(config.num_heads)[:, None] * distances[None, :])

    def prepare(self, layout: TokenLayout) -> SoftmaxMask:
        # Row offsets j - i: inside a packed sequence they are its own offsets; the mask drops the others.
        buckets = distance_buckets(
            relative_positions(layout.seq_len, layout.device),
            causal=self.causal_layout,
            num_buckets=self.num_buckets,
            max_distance=self.max_distance,
        )
        bias = self.bucket_bias[:, buckets]  # [H, T, T]; gradients flow back to the table
        return build_softmax_mask(layout, self.causal, bias=bias)
