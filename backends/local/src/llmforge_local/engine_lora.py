"""Several LoRA adapters in one batch on one base model: a per-row low-rank delta.

The base projection ``W x`` is computed once for the whole batch; each row then adds its own
adapter's ``s_i · B_i (A_i x)``. Adapters are read from their peft folders (never merged into
the base, never wrapping it), stacked per target module with slot 0 the zero adapter (the bare
base), so a batch routed to several adapters costs two small batched matmuls per module.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

from llmforge.errors import ModelError

#: peft's key for one LoRA factor of one projection of one decoder layer
_KEY = re.compile(r"layers\.(\d+)\.(self_attn|mlp)\.(\w+)\.lora_([AB])\.weight$")


def read_adapter(folder: str) -> tuple[dict[str, tuple[Any, Any]], float]:
    """``{"<layer>.<proj>": (A (r, in), B (out, r))}`` and the scale of a peft LoRA folder."""
    import torch

    path = Path(folder)
    cfg = json.loads((path / "adapter_config.json").read_text())
    unsupported = [k for k in ("use_dora", "rank_pattern", "alpha_pattern", "modules_to_save") if cfg.get(k)]
    if unsupported:
        raise ModelError(
            f"adapter {folder} uses {unsupported}, which the continuous-batching engine does not "
            f"serve per row; set the generator option engine: static"
        )
    r, alpha = cfg["r"], cfg.get("lora_alpha", cfg["r"])
    scale = alpha / math.sqrt(r) if cfg.get("use_rslora") else alpha / r
    if (path / "adapter_model.safetensors").exists():
        from safetensors.torch import load_file

        state = load_file(path / "adapter_model.safetensors")
    else:
        state = torch.load(path / "adapter_model.bin", map_location="cpu", weights_only=True)
    pairs: dict[str, dict[str, Any]] = {}
    for key, value in state.items():
        hit = _KEY.search(key)
        if hit is None:
            raise ModelError(
                f"adapter {folder} has weight {key!r} outside the decoder layers' projections, which "
                f"the continuous-batching engine does not serve; set the generator option engine: static"
            )
        layer, _, proj, factor = hit.groups()
        pairs.setdefault(f"{layer}.{proj}", {})[factor] = value
    return {k: (v["A"], v["B"]) for k, v in pairs.items()}, scale


class LoraBank:
    """Adapters kept beside one base model; :meth:`delta` adds each row's own adapter."""

    def __init__(self, device: Any, dtype: Any) -> None:
        self.device, self.dtype = device, dtype
        self.slots: dict[str, int] = {}  # folder → slot; 0 is the bare base
        self._adapters: list[tuple[dict[str, tuple[Any, Any]], float]] = []
        self._stacks: dict[str, tuple[Any, Any]] = {}  # module → (A (N, R, in), B (N, out, R))
        self._scales: Any = None  # (N,)

    def slot(self, folder: str | None) -> int:
        """The slot of ``folder``'s adapter, loaded on first use; 0 for the bare base."""
        if folder is None:
            return 0
        if folder not in self.slots:
            self._adapters.append(read_adapter(folder))
            self.slots[folder] = len(self._adapters)
            self._restack()
        return self.slots[folder]

    def _restack(self) -> None:
        import torch

        modules = sorted({k for weights, _ in self._adapters for k in weights})
        n = len(self._adapters) + 1
        self._stacks = {}
        for key in modules:
            shapes = [w[key] for w, _ in self._adapters if key in w]
            rank = max(a.shape[0] for a, _ in shapes)
            fan_in, fan_out = shapes[0][0].shape[1], shapes[0][1].shape[0]
            a_stack = torch.zeros(n, rank, fan_in, dtype=self.dtype)
            b_stack = torch.zeros(n, fan_out, rank, dtype=self.dtype)
            for i, (weights, _) in enumerate(self._adapters, start=1):
                if key in weights:  # a smaller rank is padded with zeros: they add nothing
                    a, b = weights[key]
                    a_stack[i, : a.shape[0]] = a
                    b_stack[i, :, : b.shape[1]] = b
            self._stacks[key] = (a_stack.to(self.device), b_stack.to(self.device))
        scales = [0.0] + [s for _, s in self._adapters]
        self._scales = torch.tensor(scales, dtype=self.dtype, device=self.device)

    def delta(self, key: str, x: Any, rows: Any) -> Any:
        """Each row's ``s · B (A x)`` for module ``key``; ``x`` (B, T, in), ``rows`` (B,) slots.
        ``None`` when no row of the batch has an adapter on this module."""
        stack = self._stacks.get(key)
        if stack is None or rows is None:
            return None
        a_stack, b_stack = stack
        a, b = a_stack[rows], b_stack[rows]  # (B, R, in), (B, out, R)
        h = x.to(a.dtype) @ a.transpose(1, 2)  # (B, T, R)
        return (h @ b.transpose(1, 2)) * self._scales[rows].view(-1, 1, 1)  # (B, T, out)
