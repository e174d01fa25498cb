"""A Llama forward pass over a slot KV cache, for iteration-level scheduling.

Each running sequence owns one slot of the cache (its own keys and values, its own length);
running sequences occupy slots ``0..B-1`` (a sequence that leaves hands its slot to the last
one), so a decode step reads the cache as a view. A step feeds every running sequence its last
token at its own position and writes new sequences' prompts into their slots, all in one
forward pass: every token of the step is one row of each projection's matmul, and only
attention runs per part (decode rows over their caches, prompts causally over themselves).
The decoder's own modules (norms, projections, rotary embedding, MLP) do the maths, so the
numbers are the model's; only attention over the per-slot cache is done here.

On a CPU that runs bf16 natively the projections run from weights packed once into oneDNN's
blocked layout (:class:`Packed`): a decode step's small matmuls then skip the per-call weight
reorder, which made them about 1.5x faster here, with bit-identical results. Around them, the
fused CPU kernels (:mod:`llmforge_local.kernels`, where they build) do each elementwise step
(RMSNorm, rotary, SiLU·mul, the KV-cache write) in one op instead of several: a 16-row decode
step about 1.3x faster again, with the same bf16 precision (all but RMSNorm bit for bit; RMSNorm
to the last bit of a few values). Where the CPU has avx512-bf16 the decode rows' attention is
one kernel op as well (SDPA's per-call set-up outweighs one token's arithmetic): ~1.1x more.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

from llmforge_local.engine_lora import LoraBank
from llmforge_local.engine_packed import Packed
from llmforge_local.engine_prefix import BLOCK, PrefixCache

SUPPORTED = ("llama",)
_GROW = 256  # cache positions added at a time
#: a step's prompts are padded to a multiple of this width, and a step that prefills to a
#: multiple of this many rows: oneDNN caches a kernel per matmul shape, so fewer distinct
#: shapes keep a long-running server's memory flat
_WIDTH_STEP = 8
_ROWS_STEP = 16


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

    def __init__(
        self,
        model: Any,
        device: Any,
        pack: bool = True,
        prefix_tokens: int = 0,
        kernels: bool = True,
        quantize: str = "none",
    ) -> None:
        import torch

        self.model, self.device = model, device
        cfg = model.config
        self.layers = model.model.layers
        self.dtype = next(model.parameters()).dtype
        self.kv_heads = cfg.num_key_value_heads
        self.head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
        self.context = getattr(cfg, "max_position_embeddings", None) or 2048
        self.loras = LoraBank(device, self.dtype)
        self.prefix = PrefixCache(prefix_tokens)
        self.cached: list[int] = []  # the latest step's prompt tokens per prompt from the cache
        #: packed weights, built by the first forward pass: in the thread that runs them all, as an
        #: OpenMP team that a constructing thread kept alive would slow every later step
        self.packed: Packed | None = None
        self._pack = pack
        #: the fused kernels' ops beside the packed weights (``None``: PyTorch ops), chosen with them
        self.kernels: Any = None
        self._kernels = kernels and getattr(cfg, "hidden_act", "silu") in ("silu", "swish")
        #: decode rows' attention by the kernels' ``attend`` (set with them) instead of SDPA
        self.decode_attend = False
        #: ``int8`` / ``w8a8``: packed weights as int8 where the kernels run them (see :class:`Packed`)
        self.quantize = quantize
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
        """Logits (N, V) of the next token after each prompt, written into slots ``first..``."""
        return self.step([], [], [], prompts, adapters, first)

    def decode(self, last: list[int], lengths: list[int], adapters: list[int]) -> Any:
        """Logits (B, V) for running sequences in slots ``0..B-1``, each fed its last token at its
        own position ``lengths[b]`` (the number of tokens its slot holds)."""
        return self.step(last, lengths, adapters)

    def step(
        self,
        last: list[int],
        lengths: list[int],
        adapters: list[int],
        prompts: Sequence[list[int]] = (),
        prompt_adapters: Sequence[int] = (),
        first: int | None = None,
        salts: Sequence[Hashable] = (),
    ) -> Any:
        """One forward pass that decodes the B running sequences (slots ``0..B-1``, as
        :meth:`decode`) and prefills N new prompts (slots ``first..``, by default ``B..``):
        logits (B + N, V), decode rows first.

        Every token of the step -- each running sequence's last one and every prompt token --
        goes through the projections and the MLP as one matmul, so admitting new requests
        costs their own tokens' work instead of a second pass over the weights. Attention runs
        per part: the decode rows over their slots' caches, the prompts (right-padded; the
        padding's keys are masked now and overwritten by the row's own decode steps later)
        causally over themselves and over the beginning the prefix cache held for them
        (``salts``: each prompt's cache partition, by default one for all)."""
        import torch

        dev = self.device
        b, n = len(last), len(prompts)
        first = b if first is None else first
        salts = list(salts) or [None] * n
        adapters_in = list(prompt_adapters) or [0] * n
        hits = [self.prefix.lookup(q, a, x) for q, a, x in zip(prompts, adapters_in, salts, strict=True)]
        done = [len(h) * BLOCK for h in hits]  # each prompt's positions the cache holds

        def padded(done: list[int]) -> int:  # the step's prompt width, rounded up to _WIDTH_STEP
            longest = max((len(q) - d for q, d in zip(prompts, done, strict=True)), default=0)
            return max(longest, min(-(-longest // _WIDTH_STEP) * _WIDTH_STEP, self.context))

        width = padded(done)
        if max(done, default=0) + width > self.context:  # the padded step would run off the cache
            self.prefix.hits -= sum(done)
            hits, done = [[] for _ in prompts], [0] * n
            width = padded(done)
        self.cached = done  # read by the engine: each new prompt's tokens served from the cache
        self.reserve(max(b, first + n), max([x + 1 for x in lengths] + [max(done, default=0) + width + 1]))
        for r, blocks in enumerate(hits):
            if blocks:
                self.k[:, first + r, :, : done[r]] = torch.cat([k for k, _ in blocks], dim=2)
                self.v[:, first + r, :, : done[r]] = torch.cat([v for _, v in blocks], dim=2)
        parts: list[_Part] = []
        tokens, positions = [], []
        if b:
            pos = torch.tensor(lengths, device=dev)[:, None]  # (B, 1)
            keep = torch.arange(max(lengths) + 1, device=dev)[None, :] <= pos  # (B, L): own positions
            parts.append(_Part(0, b, 1, pos, slice(0, b), keep[:, None, None, :], adapters))
            tokens.append(torch.tensor(last, device=dev))
            positions.append(pos[:, 0])
        if n:
            x = torch.zeros((n, width), dtype=torch.long)  # (N, T)
            for r, (q, d) in enumerate(zip(prompts, done, strict=True)):
                x[r, : len(q) - d] = torch.tensor(q[d:])
            plen = torch.tensor([len(q) - d for q, d in zip(prompts, done, strict=True)], device=dev)
            start = torch.tensor(done, device=dev)[:, None]  # (N, 1)
            pos = start + torch.arange(width, device=dev)[None]  # (N, T)
            mask = None  # one prompt, or prompts of one length: plain causal attention
            if any(done):  # each query sees its cached beginning and its own prompt up to itself
                seen = torch.arange(int(pos.max()) + 1, device=dev)
                mask = (seen[None, None, :] <= pos[:, :, None])[:, None]  # (N, 1, T, seen)
            elif int(plen.min()) != width:
                causal = torch.ones(width, width, dtype=torch.bool, device=dev).tril()
                mask = (causal[None] & (pos[:, None, :] < plen[:, None, None]))[:, None]  # (N, 1, T, T)
            parts.append(_Part(b, n, width, pos, slice(first, first + n), mask, prompt_adapters))
            tokens.append(x.to(dev).reshape(-1))
            positions.append(pos.reshape(-1))
        # each part's rows: the decode rows themselves, then every prompt's last real token
        pick = [torch.arange(b, device=dev)] if b else []
        if n:
            pick.append(b + torch.arange(n, device=dev) * width + plen - 1)
        pad = -(b + n * width) % _ROWS_STEP if n else 0
        if pad:  # rows in no part: they attend to nothing and nothing reads them
            tokens.append(torch.zeros(pad, dtype=torch.long, device=dev))
            positions.append(torch.zeros(pad, dtype=torch.long, device=dev))
        flat = torch.cat(tokens)[:, None]  # (M, 1): every token of the step is one row
        out = self._forward(flat, torch.cat(positions)[:, None], parts, torch.cat(pick))
        for r, (q, a, x) in enumerate(zip(prompts, adapters_in, salts, strict=True)):
            self.prefix.store(q, a, x, self.k[:, first + r], self.v[:, first + r])
        return out[:, -1]

    def _proj(self, i: int, name: str, module: Any, x: Any, parts: list[_Part]) -> Any:
        out = module(x)
        d = self._delta(f"{i}.{name}", x, parts)
        return out if d is None else out + d.to(out.dtype)

    def _delta(self, key: str, x: Any, parts: list[_Part]) -> Any:
        """Each token's LoRA delta for module ``key`` (``x`` (M, 1, in)), computed per part over
        its (rows, T) shape so a prompt's adapter is gathered once, not once per token; ``None``
        when no adapter of the step touches this module."""
        import torch

        out = None
        for part in parts:
            if part.rows is None:
                continue
            xs = x[part.start : part.start + part.count * part.width]
            d = self.loras.delta(key, xs.reshape(part.count, part.width, x.shape[-1]), part.rows)
            if d is None:
                return None  # no loaded adapter adapts this module
            if out is None:
                out = torch.zeros((x.shape[0], 1, d.shape[-1]), dtype=d.dtype, device=d.device)
            out[part.start : part.start + part.count * part.width] = d.reshape(-1, 1, d.shape[-1])
        return out

    def _forward(self, x: Any, pos: Any, parts: list[_Part], pick: Any) -> Any:
        """Logits (R, 1, V) at the rows ``pick`` of the flat tokens ``x`` (M, 1)."""
        import torch

        if self._pack:
            self._pack, self.packed = False, Packed.build(self.model, self.device, self.dtype, self.quantize)
            if self.packed is not None and self._kernels:
                from llmforge_local.kernels import load

                self.kernels = load()
                # decode rows' attention as one op too, where the CPU has avx512-bf16
                self.decode_attend = (
                    self.kernels is not None
                    and self.head_dim % 32 == 0
                    and self.head_dim <= 128
                    and bool(self.kernels.attend_ready())
                )

        base = self.model.model
        h = base.embed_tokens(x)  # (M, 1, C)
        cos, sin = base.rotary_emb(h, pos)
        for part in parts:
            part.prepare(h.dtype, self.device)
        # padding rows (in no part) get no attention output
        pad = h.new_zeros(
            (
                h.shape[0] - sum(p.count * p.width for p in parts),
                1,
                self.layers[0].self_attn.o_proj.in_features,
            )
        )
        layer_step = self._layer if self.packed is None else self._packed_layer
        for i, layer in enumerate(self.layers):
            q, k, v = layer_step(i, layer, h, cos, sin, parts)  # (M, H, 1, D), (M, KV, 1, D) x2
            o = [self._attend(i, layer, q, k, v, part) for part in parts]
            if pad.shape[0]:
                o.append(pad)
            o = o[0] if len(o) == 1 else torch.cat(o)  # (M, 1, H*D)
            h = layer_step(i, layer, h, cos, sin, parts, o)
        h = h[pick]  # (R, 1, C): only each row's last real position is sampled
        if self.packed is None:
            return self.model.lm_head(base.norm(h)).float()  # (R, 1, V)
        return self.packed.linear(self.packed.head, self._rms(base.norm, h)).float()

    def _attend(self, i: int, layer: Any, q: Any, k: Any, v: Any, part: _Part) -> Any:
        """Write ``part``'s keys and values into its slots; attention over each slot's cache.
        ``q``/``k``/``v`` are the whole step's (M, heads, 1, D); the part's rows are taken out
        as (rows, heads, T, D) views."""
        import torch.nn.functional as F

        def rows(t: Any) -> Any:
            t = t[part.start : part.start + part.count * part.width]
            return t.view(part.count, part.width, t.shape[1], t.shape[3]).transpose(1, 2)

        q, k, v = rows(q), rows(k), rows(v)  # (B, H, T, D), (B, KV, T, D) x2
        ck, cv = self.k[i, part.slots], self.v[i, part.slots]  # (B, KV, cap, D) views
        if self.kernels is not None:
            self.kernels.cache_write_(ck, cv, k, v, part.pos)
            if part.width == 1 and self.decode_attend:  # decode rows: each over its own positions
                return self.kernels.attend(q, ck, cv, part.pos, layer.self_attn.scaling)
        else:  # advanced indices around a slice: the indexed view is (B, T, KV, D)
            ck[part.batch, :, part.pos] = k.transpose(1, 2)
            cv[part.batch, :, part.pos] = v.transpose(1, 2)
        o = F.scaled_dot_product_attention(
            q,
            ck[:, :, : part.seen],
            cv[:, :, : part.seen],
            attn_mask=part.mask,
            is_causal=part.mask is None and part.width > 1,
            scale=layer.self_attn.scaling,
            enable_gqa=True,
        )  # (B, H, T, D)
        return o.transpose(1, 2).reshape(part.count * part.width, 1, -1)

    def _layer(
        self, i: int, layer: Any, h: Any, cos: Any, sin: Any, parts: list[_Part], o: Any = None
    ) -> Any:
        """Before attention (``o`` None): q, k, v of ``h``; after: ``h`` through o_proj and the MLP."""
        from transformers.models.llama.modeling_llama import apply_rotary_pos_emb

        attn, mlp = layer.self_attn, layer.mlp
        if o is None:
            bsz, t = h.shape[:2]
            y = layer.input_layernorm(h)
            q, k, v = (
                self._proj(i, n, getattr(attn, n), y, parts).view(bsz, t, -1, self.head_dim).transpose(1, 2)
                for n in ("q_proj", "k_proj", "v_proj")
            )
            q, k = apply_rotary_pos_emb(q, k, cos, sin)
            return q, k, v
        h = h + self._proj(i, "o_proj", attn.o_proj, o, parts)
        y = layer.post_attention_layernorm(h)
        gate = self._proj(i, "gate_proj", mlp.gate_proj, y, parts)
        up = self._proj(i, "up_proj", mlp.up_proj, y, parts)
        return h + self._proj(i, "down_proj", mlp.down_proj, mlp.act_fn(gate) * up, parts)

    def _packed_layer(
        self, i: int, layer: Any, h: Any, cos: Any, sin: Any, parts: list[_Part], o: Any = None
    ) -> Any:
        """:meth:`_layer` on packed weights, q/k/v and gate/up each one matmul: the same numbers."""
        import torch

        p, fused, qk_heads = self.packed, self.kernels, self.packed.heads + self.kv_heads
        if o is None:
            bsz, t = h.shape[:2]
            qkv = self._fused(i, "qkv", self._rms(layer.input_layernorm, h), parts)
            if fused is not None:  # rotary on q and k in place, then (B, H+2KV, T, D) views
                qkv = fused.rope_(qkv.view(bsz * t, -1, self.head_dim), cos, sin, qk_heads)
                qkv = qkv.view(bsz, t, -1, self.head_dim).transpose(1, 2)
                return qkv[:, : p.heads], qkv[:, p.heads : qk_heads], qkv[:, qk_heads:]
            qkv = qkv.view(bsz, t, -1, self.head_dim).transpose(1, 2)  # (B, H+2KV, T, D)
            qk, v = qkv[:, :qk_heads], qkv[:, qk_heads:]
            half = self.head_dim // 2  # rotary on q and k at once, as apply_rotary_pos_emb does
            turned = torch.cat((-qk[..., half:], qk[..., :half]), dim=-1)
            qk = qk * cos[:, None] + turned * sin[:, None]
            return qk[:, : p.heads], qk[:, p.heads :], v
        h = h + self._fused(i, "o_proj", o, parts)
        gate_up = self._fused(i, "gate_up", self._rms(layer.post_attention_layernorm, h), parts)
        if fused is not None:
            return h + self._fused(i, "down_proj", fused.silu_mul(gate_up), parts)
        gate, up = gate_up.split([w for _, w in p.parts["gate_up"]], -1)
        return h + self._fused(i, "down_proj", layer.mlp.act_fn(gate) * up, parts)

    def _rms(self, norm: Any, x: Any) -> Any:
        if self.kernels is None:
            return _rms(norm, x)
        return self.kernels.rms(x, norm.weight, norm.variance_epsilon)

    def _fused(self, i: int, name: str, x: Any, parts: list[_Part]) -> Any:
        """Packed projection ``name`` of layer ``i``; each row's LoRA delta added to the columns of
        the module it adapts."""
        out = self.packed.linear(self.packed.layers[i][name], x)
        if all(part.rows is None for part in parts):
            return out
        start = 0
        for module, width in self.packed.parts[name]:
            d = self._delta(f"{i}.{module}", x, parts)
            if d is not None:
                out[..., start : start + width] += d.to(out.dtype)
            start += width
        return out


class _Part:
    """Rows of one step that attend alike: the decode rows (``width`` 1) or the new prompts
    (right-padded to ``width``), as ``count * width`` consecutive flat tokens from ``start``."""

    def __init__(
        self, start: int, count: int, width: int, pos: Any, slots: slice, mask: Any, adapters: list[int]
    ) -> None:
        import torch

        self.start, self.count, self.width, self.slots = start, count, width, slots
        self.pos = pos  # (rows, T) cache positions written
        self.seen = int(pos.max()) + 1  # cache positions attended
        self.batch = torch.arange(count, device=pos.device)[:, None]  # (rows, 1)
        self.mask = mask  # boolean (rows, 1, T, seen), or None: causal (prompts) / all (decode)
        self.rows = torch.tensor(adapters, device=pos.device) if any(adapters) else None

    def prepare(self, dtype: Any, device: Any) -> None:
        """The mask made additive once per step, as SDPA would convert it in every layer."""
        import torch

        if self.mask is not None and self.mask.dtype == torch.bool:
            self.mask = torch.zeros(self.mask.shape, dtype=dtype, device=device).masked_fill_(
                ~self.mask, float("-inf")
            )


def _rms(norm: Any, x: Any) -> Any:
    """``LlamaRMSNorm`` in one op: the same float32 maths, then the weight in the model's dtype."""
    import torch

    return norm.weight * torch.rms_norm(x.float(), (x.shape[-1],), eps=norm.variance_epsilon).to(x.dtype)
