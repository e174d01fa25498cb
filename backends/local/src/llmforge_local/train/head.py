"""The LM head and its cross-entropy as one pass over the vocabulary.

The plain way, ``F.cross_entropy(lm_head(h).float(), target)``, writes the (tokens x vocab)
logits in the matmul's dtype, copies them to fp32 and keeps that copy for the backward
pass, which then fills a zero tensor of the same size, scatters into it and casts it back:
with a 49k vocabulary that is ~50 MB held per 256 learned tokens (~0.5 GB for a 128k
vocabulary and 1k learned tokens) and several passes over it. Here each chunk of rows
computes its logits, log-sum-exp, loss *and* gradient (softmax minus one-hot) at once and
drops the logits; the backward pass only scales the saved input gradient by the incoming
one. Same function, same precision (logits rounded to the matmul's dtype, softmax in
fp32); on the 2-core CPU and SmolLM2-135M its speed is within noise of the plain way --
it is here for the memory.
"""

from __future__ import annotations

from functools import cache
from typing import Any

#: rows of logits computed at a time (256 x 49k fp32 = 50 MB)
CHUNK = 256


def head_cross_entropy(hidden: Any, head: Any, target: Any) -> Any:
    """Summed cross-entropy of ``head(hidden)`` (N, V) against ``target`` (N,)."""
    import torch

    if type(head) is not torch.nn.Linear or head.bias is not None or hidden.shape[0] == 0:
        logits = head(hidden).float()
        return torch.nn.functional.cross_entropy(logits, target, reduction="sum")
    return _function().apply(hidden, head.weight, target)


@cache
def _function() -> Any:
    import torch

    class HeadCrossEntropy(torch.autograd.Function):
        @staticmethod
        def forward(ctx: Any, hidden: Any, weight: Any, target: Any) -> Any:
            total = None
            grad_hidden = torch.empty_like(hidden)
            acc = torch.promote_types(weight.dtype, torch.float32)
            grad_weight = (
                torch.zeros(weight.shape, dtype=acc, device=weight.device)
                if ctx.needs_input_grad[1]
                else None
            )
            for i in range(0, hidden.shape[0], CHUNK):
                h, t = hidden[i : i + CHUNK], target[i : i + CHUNK]
                raw = torch.matmul(h, weight.t())  # under autocast a bf16 matmul
                logits = raw.to(torch.promote_types(raw.dtype, torch.float32))
                lse = torch.logsumexp(logits, dim=-1)
                part = (lse - logits.gather(1, t[:, None]).squeeze(1)).sum()
                total = part if total is None else total + part
                grad = logits.sub_(lse[:, None]).exp_()  # softmax ...
                grad[torch.arange(len(t), device=t.device), t] -= 1.0  # ... minus one-hot
                grad = grad.to(raw.dtype)
                grad_hidden[i : i + CHUNK] = torch.matmul(grad, weight)
                if grad_weight is not None:
                    grad_weight += torch.matmul(grad.t(), h).to(grad_weight.dtype)
            if grad_weight is not None:
                grad_weight = grad_weight.to(weight.dtype)
            ctx.save_for_backward(grad_hidden, grad_weight)
            return total

        @staticmethod
        def backward(ctx: Any, grad_total: Any) -> Any:
            grad_hidden, grad_weight = ctx.saved_tensors
            gw = None if grad_weight is None else grad_weight * grad_total.to(grad_weight.dtype)
            return grad_hidden * grad_total.to(grad_hidden.dtype), gw, None

    return HeadCrossEntropy
