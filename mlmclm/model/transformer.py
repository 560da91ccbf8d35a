"""One BERT-style transformer for both objectives (Devlin et al. 2019); only the attention mask differs.

token embeddings (+ the mechanism's absolute positions) → LayerNorm → dropout → N blocks of multi-head
attention and a GELU feed-forward network, post-LN as BERT or pre-LN (with a final LayerNorm) → prediction
head (dense, GELU, LayerNorm) → vocabulary logits through the transposed token embeddings plus a bias.
An "mlm" model attends bidirectionally, a "clm" model causally; parameters, head and loss are identical.
The hybrid objectives (``clm_mlm``, ``mntp``; mlmclm/objectives.py) train one model under both masks: their
batches say which mask they need (``causal=`` of :meth:`Transformer.loss`), and their default is bidirectional.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from mlmclm.config import ModelConfig
from mlmclm.errors import ConfigError
from mlmclm.model.attention import ATTENTION_MECHANISMS, AttentionMechanism
from mlmclm.model.attention.base import TokenLayout
from mlmclm.model.dropout import Dropout
from mlmclm.model.fused_loss import linear_cross_entropy
from mlmclm.objectives import OBJECTIVE_DEFINITIONS, OBJECTIVES

IGNORE_INDEX = -100  # labels at positions that are not scored (HF convention)


class LossOutput(NamedTuple):
    """Mean cross-entropy over labelled positions and the counts behind it (0-dim tensors, no host sync)."""

    loss: torch.Tensor
    num_correct: torch.Tensor  # scored positions whose target has the highest logit (a tie counts as correct)
    num_predicted: torch.Tensor


def token_layout(
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor | None,
    has_padding: bool | None,
    segment_ids: torch.Tensor | None,
    position_ids: torch.Tensor | None,
) -> TokenLayout:
    """The batch's :class:`TokenLayout`; no device read: whether there is padding is the caller's to say."""
    if (segment_ids is None) != (position_ids is None):
        raise ValueError("packed rows need both segment_ids and position_ids")
    padded = attention_mask is not None and has_padding is not False
    return TokenLayout(
        seq_len=input_ids.shape[1],
        device=input_ids.device,
        key_padding_mask=attention_mask.bool() if padded else None,
        segment_ids=segment_ids,
        position_ids=position_ids,
    )


class SelfAttention(nn.Module):
    """Multi-head projections around whichever attention mechanism the model uses."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.num_heads = config.num_heads
        self.qkv = nn.Linear(config.hidden_size, 3 * config.hidden_size)
        self.output = nn.Linear(config.hidden_size, config.hidden_size)
        self.dropout_p = config.attention_dropout

    def forward(self, x: torch.Tensor, mechanism: AttentionMechanism, state: Any) -> torch.Tensor:
        batch, seq_len, hidden = x.shape
        q, k, v = self.qkv(x).view(batch, seq_len, 3, self.num_heads, -1).permute(2, 0, 3, 1, 4)
        y = mechanism.attend(q, k, v, state, self.dropout_p if self.training else 0.0)
        return self.output(y.transpose(1, 2).reshape(batch, seq_len, hidden))


class FeedForward(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.up = nn.Linear(config.hidden_size, config.intermediate_size)
        self.down = nn.Linear(config.intermediate_size, config.hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(F.gelu(self.up(x)))  # exact (erf) GELU, as BERT


class Block(nn.Module):
    """Attention and feed-forward sublayers with residuals; post-LN (BERT) or pre-LN (Xiong et al. 2020)."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.pre_norm = config.norm == "pre"
        self.attention = SelfAttention(config)
        self.attention_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.feed_forward = FeedForward(config)
        self.feed_forward_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = Dropout(config.hidden_dropout)

    def forward(self, x: torch.Tensor, mechanism: AttentionMechanism, state: Any) -> torch.Tensor:
        if self.pre_norm:
            x = x + self.dropout(self.attention(self.attention_norm(x), mechanism, state))
            return x + self.dropout(self.feed_forward(self.feed_forward_norm(x)))
        x = self.attention_norm(x + self.dropout(self.attention(x, mechanism, state)))
        return self.feed_forward_norm(x + self.dropout(self.feed_forward(x)))


class PredictionHead(nn.Module):
    """BERT's head (dense, GELU, LayerNorm); the vocabulary projection is tied to the input embeddings."""

    def __init__(self, config: ModelConfig, vocab_size: int) -> None:
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.bias = nn.Parameter(torch.zeros(vocab_size))

    def transform(self, hidden: torch.Tensor) -> torch.Tensor:
        """Everything before the vocabulary projection."""
        return self.norm(F.gelu(self.dense(hidden)))

    def forward(self, hidden: torch.Tensor, token_embeddings: torch.Tensor) -> torch.Tensor:
        return F.linear(self.transform(hidden), token_embeddings, self.bias)


class Transformer(nn.Module):
    """The encoder plus the shared prediction head; see the module docstring and docs/model.md."""

    def __init__(
        self,
        model_config: ModelConfig,
        *,
        objective: str,
        attention: str,
        vocab_size: int,
        max_seq_length: int,
        pad_token_id: int,
    ) -> None:
        super().__init__()
        if objective not in OBJECTIVES:
            raise ConfigError(f"unknown objective {objective!r} (valid: {', '.join(OBJECTIVES)})")
        mechanism_class = ATTENTION_MECHANISMS.get(attention)
        self.config: dict[str, Any] = {
            "objective": objective,
            "attention": attention,
            "vocab_size": vocab_size,
            "max_seq_length": max_seq_length,
            "pad_token_id": pad_token_id,
            **model_config.to_dict(),
        }
        hidden = model_config.hidden_size
        self.mechanism = mechanism_class(
            model_config, max_seq_length=max_seq_length, causal=OBJECTIVE_DEFINITIONS[objective].default_causal
        )
        self.token_embeddings = nn.Embedding(vocab_size, hidden, padding_idx=pad_token_id)
        self.embedding_norm = nn.LayerNorm(hidden, eps=model_config.layer_norm_eps)
        self.embedding_dropout = Dropout(model_config.hidden_dropout)
        self.blocks = nn.ModuleList(Block(model_config) for _ in range(model_config.num_layers))
        self.final_norm = (
            nn.LayerNorm(hidden, eps=model_config.layer_norm_eps)
            if model_config.norm == "pre"
            else nn.Identity()
        )
        self.head = PredictionHead(model_config, vocab_size)
        self.gradient_checkpointing = False
        self.initializer_range = model_config.initializer_range
        self.apply(self._init_weights)

    def _init_weights(self, module: nn.Module) -> None:
        """BERT's initialisation: N(0, initializer_range) weights, zero biases, LayerNorm ones/zeros."""
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, std=self.initializer_range)
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, std=self.initializer_range)
            if module.padding_idx is not None:
                nn.init.zeros_(module.weight[module.padding_idx])
        elif isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)

    @property
    def causal(self) -> bool:
        return self.mechanism.causal

    def set_gradient_checkpointing(self, enabled: bool) -> None:
        """Recompute each block's activations in the backward pass: less memory for ~30% more compute."""
        self.gradient_checkpointing = enabled

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def encode(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        causal: bool | None = None,
        *,
        segment_ids: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        has_padding: bool | None = None,
    ) -> torch.Tensor:
        """Final hidden states ``[B, T, hidden]``; ``attention_mask``: 1 = real token, 0 = (right) padding;
        ``causal``: the attention mask of this forward pass, None for the model's own (:attr:`causal`).

        ``segment_ids``/``position_ids``: packed rows (:class:`~mlmclm.model.attention.base.TokenLayout`).
        ``has_padding``: whether ``attention_mask`` has a 0, as the caller knows it on the host
        (:func:`mlmclm.data.batches.model_inputs`); False lets SDPA use its fused (causal) kernels. None with a
        mask is taken as padding: reading the mask here would cost a host sync (and a torch.compile graph break)
        on every forward pass."""
        layout = token_layout(input_ids, attention_mask, has_padding, segment_ids, position_ids)
        x = self.token_embeddings(input_ids)
        positions = self.mechanism.embed_positions(layout)
        if positions is not None:
            x = x + positions
        x = self.embedding_dropout(self.embedding_norm(x))
        state = self._prepare_attention(layout, causal)
        for block in self.blocks:
            if self.gradient_checkpointing and torch.is_grad_enabled():
                x = checkpoint(block, x, self.mechanism, state, use_reentrant=False)
            else:
                x = block(x, self.mechanism, state)
        return self.final_norm(x)

    def _prepare_attention(self, layout: TokenLayout, causal: bool | None) -> Any:
        """The mechanism's per-forward state under the requested mask. Mechanisms read their ``causal`` flag
        only while preparing (masks, visiting orders), so a hybrid's view is set for exactly that call; what a
        mechanism lays out at construction (exposb's bucket table) stays the bidirectional layout."""
        if causal is None or causal == self.mechanism.causal:
            return self.mechanism.prepare(layout)
        default = self.mechanism.causal
        self.mechanism.causal = causal
        try:
            return self.mechanism.prepare(layout)
        finally:
            self.mechanism.causal = default

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        causal: bool | None = None,
        **layout: Any,
    ) -> torch.Tensor:
        """Vocabulary logits ``[B, T, vocab]`` at every position; ``layout``: :meth:`encode`'s keywords."""
        return self.head(self.encode(input_ids, attention_mask, causal, **layout), self.token_embeddings.weight)

    def loss(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None,
        labels: torch.Tensor,
        causal: bool | None = None,
        **layout: Any,
    ) -> LossOutput:
        """Mean cross-entropy where ``labels != -100``; only those positions reach the vocabulary layer.

        ``layout``: :meth:`encode`'s keywords (``segment_ids``, ``position_ids``, ``has_padding``)."""
        return self.scored_loss(self.encode(input_ids, attention_mask, causal, **layout), labels)

    # torch.compile leaves this part eager: the scored positions' count depends on the labels' values, so a
    # compiled version would break the graph here and recompile for every new count (docs/performance.md).
    @torch.compiler.disable
    def scored_loss(self, hidden: torch.Tensor, labels: torch.Tensor) -> LossOutput:
        """The head and cross-entropy at the positions where ``labels != -100`` (:meth:`loss`)."""
        scored = labels != IGNORE_INDEX
        targets = labels[scored]
        transformed = self.head.transform(hidden[scored])
        weight, bias = self.token_embeddings.weight, self.head.bias
        num_predicted = scored.sum()
        if transformed.device.type == "cpu" and weight.dtype == torch.float32 and not torch.is_autocast_enabled("cpu"):
            # fp32 on CPU: no [N, V] logits in memory, about a quarter less time for this part (docs/performance.md)
            loss_sum, num_correct = linear_cross_entropy(transformed, weight, bias, targets)
        else:
            logits = F.linear(transformed, weight, bias)
            loss_sum = F.cross_entropy(logits, targets, reduction="sum")
            with torch.no_grad():  # the target's logit is the row maximum; cheaper than argmax
                target_logit = logits.gather(1, targets[:, None]).squeeze(1)
                num_correct = (target_logit >= logits.amax(dim=-1)).sum()
        loss = loss_sum / num_predicted.clamp(min=1)
        return LossOutput(loss, num_correct, num_predicted)
