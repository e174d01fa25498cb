"""LoRA layers computed with fewer operations while the training loop runs.

peft computes every adapted linear as ``base(x) + lora_B(lora_A(dropout(x))) * scaling``
and first casts ``x`` to the adapter's fp32 dtype, which autocast casts straight back to
bf16: per layer three full-size activation copies, a scale and an add, forward and
backward, and two matmuls of rank ``r`` that re-read the whole input for a few outputs.
:func:`lean_lora` keeps peft's parameters (adapters save and load exactly as before) and
computes the same function with less traffic: the input is not cast, and the adapter's
output is accumulated into the base output by one ``addmm`` with the scaling as its
``alpha``. Layers with DoRA or other variants, several active adapters or merged weights
keep peft's own forward.

(Also tried and measured slower on the 2-core CPU, so not done: running q|k|v and gate|up
as one matmul over their concatenated frozen weights with stacked ``A`` and block-diagonal
``B`` matrices -- the split outputs make the element-wise ops that follow strided.)
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any


@dataclass
class _Adapter:
    base: Any
    a: Any
    b: Any
    dropout: Any
    scaling: float


def _plain(layer: Any) -> _Adapter | None:
    """The one active plain adapter of a peft LoRA ``Linear``, or None."""
    from peft.tuners.lora import Linear

    if not isinstance(layer, Linear) or layer.merged or layer.disable_adapters:
        return None
    active = [a for a in layer.active_adapters if a in layer.lora_A]
    if len(active) != 1 or active[0] in layer.lora_variant:
        return None
    name = active[0]
    return _Adapter(
        layer.base_layer,
        layer.lora_A[name],
        layer.lora_B[name],
        layer.lora_dropout[name],
        layer.scaling[name],
    )


def _linear_forward(ad: _Adapter) -> Any:
    import torch

    def forward(x: Any, *args: Any, **kwargs: Any) -> Any:
        y = ad.base(x, *args, **kwargs)
        z = ad.a(ad.dropout(x))
        out = torch.addmm(
            y.reshape(-1, y.shape[-1]), z.reshape(-1, z.shape[-1]), ad.b.weight.t(), alpha=ad.scaling
        )
        return out.view(y.shape)

    return forward


@contextmanager
def lean_lora(model: Any):
    """Patch ``model``'s plain LoRA linears (see the module doc) while the block runs;
    yields how many run lean."""
    patched = []
    for module in model.modules():
        ad = _plain(module)
        if ad is not None:
            module.forward = _linear_forward(ad)
            patched.append(module)
    try:
        yield len(patched)
    finally:
        for module in patched:
            del module.forward
