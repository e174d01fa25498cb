"""Attention over packed rows without the quadratic waste of a block-diagonal mask.

A packed row holds several examples; attending across the whole row with a block-diagonal
mask costs ``T^2`` per row although only ``sum(n_i^2)`` entries are ever used, and a masked
SDPA cannot take the fast causal kernel. Here every example (a *segment*: positions
restarting at 0) is gathered into its own right-padded slot of a ``(segments, heads, L, d)``
batch -- segments of similar length share a batch -- attended causally, and scattered
back. Right padding needs no mask under causal attention: a real token never looks at a
later (padding) position.

Registered with transformers' ``AttentionInterface`` as ``llmforge_packed``; it is active
only inside :func:`packed_attention`, around one training forward that passes the layout.
Models with a sliding attention window shorter than the row keep transformers' attention.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any

NAME = "llmforge_packed"
#: keyword argument that carries the segment layout through the model's forward
SEGMENTS = "llmforge_segments"


#: a segment joins a slot group while it is at least this share of the group's longest
#: segment, so padded attention costs at most ``1 / FILL**2`` of the exact cost
FILL = 0.7
#: slot lengths are rounded up to a multiple of this
SLOT_MULTIPLE = 16


def segment_layout(position_ids: Any) -> tuple[list[tuple[Any, int, int]], Any]:
    """How to run attention per segment for a ``(B, T)`` position tensor.

    Returns ``(groups, scatter)``: each group ``(gather, n_segments, slot_len)`` lists the
    flattened ``B * T`` token indices of segments of similar length, each right-padded to
    ``slot_len`` (padding repeats a token of its own segment); ``scatter`` (B * T,) maps every
    token back from the groups' concatenated slots. A segment starts wherever the position
    does not continue the previous one, and always at the start of a row.
    """
    import torch

    pos = position_ids.detach().to("cpu", torch.long)
    b, t = pos.shape
    prev = torch.cat([pos[:, :1] - 1, pos[:, :-1]], dim=1)
    starts_mask = pos - prev != 1
    starts_mask[:, 0] = True
    starts = starts_mask.reshape(-1).nonzero().squeeze(1).tolist()
    bounds = starts + [b * t]
    segs = sorted(((bounds[i + 1] - bounds[i], bounds[i]) for i in range(len(starts))), reverse=True)
    groups, where = [], torch.empty(b * t, dtype=torch.long)
    row, i = 0, 0
    while i < len(segs):
        longest = segs[i][0]
        slot = -(-longest // SLOT_MULTIPLE) * SLOT_MULTIPLE  # few distinct shapes (see data.py)
        j = i
        while j < len(segs) and segs[j][0] >= FILL * longest:
            j += 1
        lengths = torch.tensor([n for n, _ in segs[i:j]])
        first = torch.tensor([s for _, s in segs[i:j]])
        offset = torch.arange(slot).unsqueeze(0)
        gather = first.unsqueeze(1) + torch.minimum(offset, (lengths - 1).unsqueeze(1))
        groups.append((gather.reshape(-1), j - i, slot))
        for k, (n, s0) in enumerate(segs[i:j]):
            where[s0 : s0 + n] = torch.arange(row + k * slot, row + k * slot + n)
        row += (j - i) * slot
        i = j
    return groups, where


_CAUSAL: dict[tuple[int, int, Any, Any], Any] = {}


def _causal_bias(length: int, groups: int, dtype: Any, device: Any) -> Any:
    """(groups * L, L) additive mask: row ``(g, i)`` sees keys ``0..i`` (0), not later (-inf)."""
    import torch

    key = (length, groups, dtype, device)
    if key not in _CAUSAL:
        if len(_CAUSAL) > 64:
            _CAUSAL.clear()
        causal = torch.full((length, length), float("-inf"), dtype=dtype, device=device).triu(1)
        _CAUSAL[key] = causal.repeat(groups, 1)
    return _CAUSAL[key]


def _attend(q: Any, k: Any, v: Any, scale: float, groups: int, dropout: float = 0.0) -> Any:
    """Causal attention: ``q`` (N, groups * L, d) against ``k``/``v`` (N, L, d).

    The ``groups`` query heads that share a key/value head (grouped-query attention) are
    stacked as rows of one matrix, so keys and values are never repeated per query head.
    Two batched matmuls around a softmax: for the short slots of packed training rows this
    beats torch's CPU flash-attention kernel, whose backward pass is several times slower
    at these sizes. Scores and softmax run in fp32 (the matmuls take the input dtype, bf16
    under autocast).
    """
    import torch

    n, rows, _ = q.shape
    length = k.shape[1]
    acc = torch.promote_types(q.dtype, torch.float32)
    bias = _causal_bias(length, groups, acc, q.device)
    scores = torch.baddbmm(bias.expand(n, rows, length), q.to(acc), k.to(acc).transpose(1, 2), alpha=scale)
    probs = torch.softmax(scores, dim=-1)
    if dropout:
        probs = torch.nn.functional.dropout(probs, dropout)
    return torch.bmm(probs.to(v.dtype), v)


def _forward(
    module: Any,
    query: Any,
    key: Any,
    value: Any,
    attention_mask: Any,
    dropout: float = 0.0,
    scaling: float | None = None,
    **kwargs: Any,
):
    import torch

    layout = kwargs.pop(SEGMENTS, None)
    if layout is None:  # no padding mask is built for this kernel: refuse, never guess
        raise RuntimeError(f"{NAME} attention needs {SEGMENTS}=segment_layout(position_ids)")
    slots, scatter = layout
    b, h, t, d = query.shape
    kv_heads = key.shape[1]
    groups = h // kv_heads  # query head j uses key/value head j // groups (as transformers)
    scale = scaling if scaling is not None else d**-0.5
    p = dropout if module.training else 0.0

    def flat(x: Any) -> Any:  # (B, heads, T, d) -> (heads, B * T, d); a view when B == 1
        return x.transpose(0, 1).reshape(x.shape[1], b * t, d)

    q, k, v = flat(query), flat(key), flat(value)
    outs = []
    for gather, n_seg, slot in slots:
        # (kv_heads * S, groups * L, d) queries against (kv_heads * S, L, d) keys/values
        qs = q.index_select(1, gather).view(kv_heads, groups, n_seg, slot, d).transpose(1, 2)
        ks = k.index_select(1, gather).view(kv_heads * n_seg, slot, d)
        vs = v.index_select(1, gather).view(kv_heads * n_seg, slot, d)
        out = _attend(qs.reshape(kv_heads * n_seg, groups * slot, d), ks, vs, scale, groups, p)
        outs.append(out.view(kv_heads, n_seg, groups, slot, d).transpose(1, 2).reshape(h, n_seg * slot, d))
    out = (outs[0] if len(outs) == 1 else torch.cat(outs, dim=1)).index_select(1, scatter)
    return out.view(h, b, t, d).permute(1, 2, 0, 3).to(query.dtype), None


def _register() -> None:
    from transformers import AttentionInterface

    if NAME not in AttentionInterface._global_mapping:
        AttentionInterface.register(NAME, _forward)


def supports(config: Any, width: int) -> bool:
    """Whether plain causal attention within each example is the model's attention for rows
    of ``width`` tokens (no sliding window that would cut it shorter)."""
    window = getattr(config, "sliding_window", None)
    return not window or window >= width


@contextmanager
def packed_attention(model: Any):
    """Route ``model``'s attention through the segment kernel while the block runs."""
    _register()
    config = model.config
    before = config._attn_implementation
    config._attn_implementation = NAME
    try:
        yield
    finally:
        config._attn_implementation = before
