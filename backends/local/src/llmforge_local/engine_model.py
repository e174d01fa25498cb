"""A Llama forward pass over a slot KV cache, for iteration-level scheduling.

Each running sequence owns one slot of the cache (its own keys and values, its own length);
running sequences occupy slots ``0..B-1`` (a sequence that leaves hands its slot to the last
one), so a decode step reads the cache as a view. Prefill writes one new sequence's prompt
into its slot; a decode step feeds every running sequence its last token at its own position.
The decoder's own modules (norms, projections, rotary embedding, MLP) do the maths, so the
numbers are the model's; only attention over the per-slot cache is done here.
"""

from __future__ import annotations

from typing import Any

from llmforge_local.engine_lora import LoraBank

SUPPORTED = ("llama",)
_PROJ = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
_GROW = 256  # cache positions added at a time


def supported(model: Any) -> bool:
    """The model is a plain (not peft-wrapped) decoder this forward pass reproduces."""
    cfg = model.config
    return (
        getattr(cfg, "model_type", None) in SUPPORTED
        and hasattr(model, "model")
        and hasattr(model.model, "rotary_emb")
        and not getattr(cfg, "attention_bias", False)
        and not hasattr(model, "peft_config")
    )


class SlotModel:
    """``prefill`` and ``decode`` of a Llama causal LM over per-sequence cache slots."""

    def __init__(self, model: Any, device: Any) -> None:
        import torch

        self.model, self.device = model, device
        cfg = model.config
        self.layers = model.model.layers
        self.dtype = next(model.parameters()).dtype
        self.kv_heads = cfg.num_key_value_heads
        self.head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
        self.context = getattr(cfg, "max_position_embeddings", None) or 2048
        self.loras = LoraBank(device, self.dtype)
        self.k = self.v = torch.empty(0)  # (layers, S, kv_heads, capacity, head_dim)

    def reserve(self, slots: int, length: int) -> None:
        """Room for ``slots`` sequences of ``length`` positions; grows (and copies) when short."""
        import torch

        have_s, have_l = (self.k.shape[1], self.k.shape[3]) if self.k.dim() == 5 else (0, 0)
        if slots <= have_s and length <= have_l:
            return
        s = max(slots, have_s)
        cap = max(have_l, min(self.context, -(-length // _GROW) * _GROW))
        shape = (len(self.layers), s, self.kv_heads, cap, self.head_dim)
        k = torch.zeros(shape, dtype=self.dtype, device=self.device)
        v = torch.zeros(shape, dtype=self.dtype, device=self.device)
        if have_s:
            k[:, :have_s, :, :have_l] = self.k
            v[:, :have_s, :, :have_l] = self.v
        self.k, self.v = k, v

    def move(self, src: int, dst: int) -> None:
        """Slot ``src``'s cache into slot ``dst`` (a leaving sequence's slot is reused)."""
        self.k[:, dst] = self.k[:, src]
        self.v[:, dst] = self.v[:, src]

    def prefill(self, prompts: list[list[int]], first: int, adapters: list[int]) -> Any:
        """Logits (N, V) of the next token after each prompt, written into slots ``first..``.

        One forward pass for all N: prompts are right-padded; the padding's keys are masked
        now and overwritten by the row's own decode steps later."""
        import torch

        n, width = len(prompts), max(len(p) for p in prompts)
        self.reserve(first + n, width + 1)
        x = torch.zeros((n, width), dtype=torch.long)  # (N, T)
        for r, p in enumerate(prompts):
            x[r, : len(p)] = torch.tensor(p)
        lengths = torch.tensor([len(p) for p in prompts], device=self.device)
        pos = torch.arange(width, device=self.device)[None].expand(n, width)  # (N, T)
        rows = torch.tensor(adapters, device=self.device) if any(adapters) else None
        mask = None  # one prompt, or prompts of one length: plain causal attention
        if int(lengths.min()) != width:
            causal = torch.ones(width, width, dtype=torch.bool, device=self.device).tril()
            mask = (causal[None] & (pos[:, None, :] < lengths[:, None, None]))[:, None]  # (N, 1, T, T)
        out = self._forward(x.to(self.device), pos, slice(first, first + n), rows, mask, lengths - 1)
        return out[:, -1]

    def decode(self, last: list[int], lengths: list[int], adapters: list[int]) -> Any:
        """Logits (B, V) for running sequences in slots ``0..B-1``, each fed its last token at its
        own position ``lengths[b]`` (the number of tokens its slot holds)."""
        import torch

        b = len(last)
        self.reserve(b, max(lengths) + 1)
        x = torch.tensor(last, device=self.device)[:, None]  # (B, 1)
        pos = torch.tensor(lengths, device=self.device)[:, None]  # (B, 1)
        rows = torch.tensor(adapters, device=self.device) if any(adapters) else None
        width = max(lengths) + 1
        keep = torch.arange(width, device=self.device)[None, :] <= pos  # (B, L): own positions only
        return self._forward(x, pos, slice(0, b), rows, keep[:, None, None, :], None)[:, -1]

    def _proj(self, i: int, name: str, module: Any, x: Any, rows: Any) -> Any:
        out = module(x)
        d = self.loras.delta(f"{i}.{name}", x, rows)
        return out if d is None else out + d.to(out.dtype)

    def _forward(self, x: Any, pos: Any, slots: slice, rows: Any, mask: Any, last: Any) -> Any:
        import torch
        import torch.nn.functional as F
        from transformers.models.llama.modeling_llama import apply_rotary_pos_emb

        base = self.model.model
        h = base.embed_tokens(x)  # (B, T, C)
        cos, sin = base.rotary_emb(h, pos)
        bsz, t = x.shape
        at = pos  # (B, T) cache positions written this step
        batch = torch.arange(bsz, device=self.device)[:, None]  # (B, 1)
        for i, layer in enumerate(self.layers):
            attn, mlp = layer.self_attn, layer.mlp
            y = layer.input_layernorm(h)
            q = self._proj(i, "q_proj", attn.q_proj, y, rows).view(bsz, t, -1, self.head_dim).transpose(1, 2)
            k = self._proj(i, "k_proj", attn.k_proj, y, rows).view(bsz, t, -1, self.head_dim).transpose(1, 2)
            v = self._proj(i, "v_proj", attn.v_proj, y, rows).view(bsz, t, -1, self.head_dim).transpose(1, 2)
            q, k = apply_rotary_pos_emb(q, k, cos, sin)  # (B, H, T, D), (B, KV, T, D)
            ck, cv = self.k[i, slots], self.v[i, slots]  # (B, KV, cap, D) views
            # advanced indices around a slice: the indexed view is (B, T, KV, D)
            ck[batch, :, at] = k.transpose(1, 2)
            cv[batch, :, at] = v.transpose(1, 2)
            width = int(pos.max()) + 1
            o = F.scaled_dot_product_attention(
                q,
                ck[:, :, :width],
                cv[:, :, :width],
                attn_mask=mask,
                is_causal=mask is None,
                scale=attn.scaling,
                enable_gqa=True,
            )  # (B, H, T, D)
            o = o.transpose(1, 2).reshape(bsz, t, -1)
            h = h + self._proj(i, "o_proj", attn.o_proj, o, rows)
            y = layer.post_attention_layernorm(h)
            gate = self._proj(i, "gate_proj", mlp.gate_proj, y, rows)
            up = self._proj(i, "up_proj", mlp.up_proj, y, rows)
            h = h + self._proj(i, "down_proj", mlp.down_proj, mlp.act_fn(gate) * up, rows)
        # (B, 1, C): only each row's last real position is sampled
        h = base.norm(h[:, -1:] if last is None else h[torch.arange(bsz, device=self.device), last][:, None])
        return self.model.lm_head(h).float()  # (B, 1, V)
