"""The continuous engine's projections and LM head packed once for a CPU that runs bf16 natively:
oneDNN's blocked bf16 layout, or int8 tiles for llmforge's AMX kernels (``quantize: int8`` or
``w8a8``)."""

from __future__ import annotations

import logging
from typing import Any, NamedTuple

log = logging.getLogger(__name__)

_PROJ = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


class Q8(NamedTuple):
    """A weight as an int8 scheme's ``pack`` lays it out: int8 tiles, scales per channel and 32
    inputs, the real number of output channels, and the scheme's matmul."""

    q: Any
    scale: Any
    n: int
    linear: Any


class Int8(NamedTuple):
    """One of the kernels' int8 schemes, ``pack(w) -> (q, scale)`` and ``linear(x, q, scale, n)``:
    ``int8`` (``q8_*``: int8 weights widened to bf16 on AMX, bf16 inputs) or ``w8a8`` (``a8_*``:
    int8 weights times each row's inputs quantized to int8 per 32, on AMX-INT8)."""

    name: str
    pack: Any
    linear: Any


class Packed:
    """Each decoder layer's projections (q/k/v and gate/up fused) and the LM head, as weights
    packed once into oneDNN's layout for a CPU that runs bf16 natively.

    A plain ``F.linear`` on CPU reorders its weight on every call; decode steps are small
    matmuls over the whole model, so the packed copies (as much memory again as the weights)
    make a step markedly faster. ``build`` checks once that a packed matmul equals ``F.linear``
    bit for bit and returns ``None`` wherever it cannot (GPU, float32, no oneDNN bf16).

    With an :class:`Int8` scheme (``quantize: int8`` or ``w8a8``, where the fused kernels run
    AMX) the copies are int8 instead (:class:`Q8`, about half the bytes of bf16; a weight whose
    input width is no multiple of 32 stays bf16): a decode step reads every weight once for a
    handful of rows. The logits are then no longer the bf16 model's bit for bit: each weight is
    rounded to 1/254 of the largest magnitude among its channel's 32 neighbouring inputs, and
    with ``w8a8`` each input likewise among its row's 32."""

    def __init__(self, model: Any, int8: Int8 | None = None) -> None:
        import torch

        mkldnn = torch.ops.mkldnn._reorder_linear_weight

        def pack(w: Any) -> Any:
            if int8 is not None and w.shape[1] % 32 == 0:
                q, scale = int8.pack(w)
                return Q8(q, scale, w.shape[0], int8.linear)
            return mkldnn(w, 16)

        cfg = model.config
        self.heads = cfg.num_attention_heads
        first = model.model.layers[0]
        self.parts: dict[str, list[tuple[str, int]]] = {
            "qkv": [(n, getattr(first.self_attn, n).out_features) for n in ("q_proj", "k_proj", "v_proj")],
            "gate_up": [(n, getattr(first.mlp, n).out_features) for n in ("gate_proj", "up_proj")],
            "o_proj": [("o_proj", first.self_attn.o_proj.out_features)],
            "down_proj": [("down_proj", first.mlp.down_proj.out_features)],
        }
        self.layers = []
        for layer in model.model.layers:
            mods = {
                **{n: getattr(layer.self_attn, n) for n in _PROJ[:4]},
                **{n: getattr(layer.mlp, n) for n in _PROJ[4:]},
            }
            self.layers.append(
                {
                    name: pack(torch.cat([mods[m].weight.detach() for m, _ in parts]))
                    for name, parts in self.parts.items()
                }
            )
        self.head = pack(model.lm_head.weight.detach())

    def linear(self, weight: Any, x: Any) -> Any:
        import torch

        if isinstance(weight, Q8):
            return weight.linear(x, weight.q, weight.scale, weight.n)
        return torch.ops.mkldnn._linear_pointwise(x, weight, None, "none", [], "")

    @classmethod
    def build(cls, model: Any, device: Any, dtype: Any, quantize: str = "none") -> Packed | None:
        import torch
        import torch.nn.functional as F

        if str(device) != "cpu" or dtype != torch.bfloat16 or not torch.backends.mkldnn.is_available():
            if quantize != "none":
                log.warning(
                    "quantize: %s needs the bf16 model on a CPU (this one runs %s on %s): serving "
                    "the model's own weights",
                    quantize,
                    dtype,
                    device,
                )
            return None
        if any(
            getattr(m, "bias", None) is not None
            for layer in model.model.layers
            for m in (*layer.self_attn.children(), *layer.mlp.children())
        ):
            return None
        try:
            gen = torch.Generator().manual_seed(0)
            w = torch.randn(96, 64, generator=gen).to(dtype)
            x = torch.randn(3, 5, 64, generator=gen).to(dtype)
            packed = torch.ops.mkldnn._reorder_linear_weight(w, 16)
            same = torch.equal(
                torch.ops.mkldnn._linear_pointwise(x, packed, None, "none", [], ""), F.linear(x, w)
            )
        except (RuntimeError, AttributeError):
            return None
        if not same:
            return None
        return cls(model, int8_ops(quantize) if quantize != "none" else None)


def int8_ops(scheme: str = "int8") -> Int8 | None:
    """The kernels' ops for int8 ``scheme`` (``int8`` or ``w8a8``) where they run here, else
    ``None`` (logged: bf16 weights then)."""
    import torch

    from llmforge_local.kernels import load, why_off

    ops = load()
    prefix, needs = {"int8": ("q8", "amx-bf16, avx512-bf16"), "w8a8": ("a8", "amx-int8, avx512-bf16")}[scheme]
    if ops is None:
        why = f"the CPU kernels are off ({why_off()})"
    elif not getattr(ops, f"{prefix}_ready")():
        why = f"this CPU has no AMX ({needs}), which the {scheme} kernel runs on"
    else:  # a small product against the float32 one, as a last check of the build
        found = Int8(scheme, getattr(ops, f"{prefix}_pack"), getattr(ops, f"{prefix}_linear"))
        gen = torch.Generator().manual_seed(0)
        w = torch.randn(40, 64, generator=gen).bfloat16()
        x = torch.randn(3, 64, generator=gen).bfloat16()
        exact = x.float() @ w.float().T
        err = (found.linear(x, *found.pack(w), 40).float() - exact).norm() / exact.norm()
        if float(err) < 3e-2:  # int8 within 32 (weights, inputs) and bf16 rounding: ~6e-3, ~9e-3
            return found
        why = f"the {scheme} kernel's self-check failed (relative error {float(err):.3g})"
    log.warning("quantize: %s is off, the engine serves bf16 weights: %s", scheme, why)
    return None
