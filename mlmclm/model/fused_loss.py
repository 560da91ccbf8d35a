"""Cross-entropy through the vocabulary projection, chunk by chunk, without the full ``[N, V]`` logits.

For each chunk of scored positions the logits are computed, reduced to the loss, turned into their gradient
(softmax − one-hot) and multiplied back into the hidden-state, weight and bias gradients while they are still
in cache; the backward pass only scales those gradients. The matmuls are exactly the unfused ones (logits,
grad-hidden, grad-weight), so no work is saved or added: what goes is the memory traffic of materialising,
log-softmaxing and back-propagating an N × V matrix (the idea of Liger Kernel's fused linear cross-entropy,
Hsu et al. 2024, on PyTorch ops). Every chunk's logits live in one reused buffer and the log-sum-exp is taken
in place: on CPU a fresh multi-MiB tensor per chunk costs its page faults again each time, which was a third of
the non-matmul time of this loss. fp32 only; the model uses it where no autocast is active.
"""

from __future__ import annotations

import torch

# 512 rows (a 16 MiB fp32 chunk at vocabulary 8192): at two threads the matmuls of 256-row chunks were too
# small to keep both busy (docs/performance.md, CPU).
CHUNK_ROWS = 512


class _LinearCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, hidden, weight, bias, targets, chunk_rows):  # noqa: D102 (autograd's signature)
        need_h, need_w, need_b = ctx.needs_input_grad[:3]
        loss = torch.zeros((), dtype=torch.float32, device=hidden.device)
        correct = torch.zeros((), dtype=torch.long, device=hidden.device)
        grad_h = torch.empty_like(hidden) if need_h else None
        grad_w = torch.zeros_like(weight) if need_w else None
        grad_b = torch.zeros_like(bias) if need_b else None
        buffer = hidden.new_empty((min(chunk_rows, hidden.shape[0]), weight.shape[0]))
        for start in range(0, hidden.shape[0], chunk_rows):
            h, t = hidden[start : start + chunk_rows], targets[start : start + chunk_rows]
            logits = torch.addmm(bias, h, weight.t(), out=buffer[: len(t)])
            row_max = logits.amax(dim=-1, keepdim=True)
            target_logit = logits.gather(1, t[:, None])
            correct += (target_logit >= row_max).sum()  # a tie counts as correct
            exp_sum = logits.sub_(row_max).exp_().sum(dim=-1, keepdim=True)  # logits now hold exp(l - max)
            loss += (exp_sum.log() + row_max - target_logit).sum()  # log-sum-exp minus the target's logit
            if need_h or need_w or need_b:
                grad_logits = logits.div_(exp_sum)  # softmax, in place
                grad_logits[torch.arange(len(t), device=t.device), t] -= 1.0
                if need_h:
                    torch.mm(grad_logits, weight, out=grad_h[start : start + chunk_rows])
                if need_w:
                    torch.addmm(grad_w, grad_logits.t(), h, out=grad_w)  # (addmm_ would hide from flop counters)
                if need_b:
                    grad_b += grad_logits.sum(dim=0)
        ctx.save_for_backward(grad_h, grad_w, grad_b)
        ctx.mark_non_differentiable(correct)
        return loss, correct

    @staticmethod
    def backward(ctx, grad_loss, grad_correct):  # noqa: D102
        grads = tuple(None if g is None else g * grad_loss for g in ctx.saved_tensors)
        return (*grads, None, None)


def linear_cross_entropy(
    hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, targets: torch.Tensor,
    chunk_rows: int = CHUNK_ROWS,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(sum of cross_entropy(hidden @ weight.T + bias, targets), number of rows whose target is the max)``."""
    return _LinearCrossEntropy.apply(hidden, weight, bias, targets, chunk_rows)
