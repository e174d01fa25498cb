"""LoRA adapters (peft) or full fine-tuning on top of a loaded causal LM.

``lora_from_full`` trains the adapter's layers in full (every weight of ``target_modules``,
embeddings and norms frozen), then keeps the rank-``r`` truncated SVD of each layer's change
as a LoRA adapter (:func:`to_adapter`): the adapter learns at full fine-tuning's rate and is
still a small file served beside other adapters on one base model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

#: written beside the weights so a registered version knows its base model
MANIFEST = "llmforge_model.json"


def prepare(model: Any, method: str, lora: Any, frozen_dtype: Any = None) -> Any:
    """Wrap ``model`` with trainable LoRA adapters, or unfreeze it for full fine-tuning.

    ``frozen_dtype`` (e.g. bf16 when training under bf16 autocast) stores the frozen base
    weights in that dtype: autocast re-casts fp32 weights that need no gradient on every
    forward, which for a small model costs as much memory traffic as the matmuls. The
    adapters stay fp32, so the optimizer still updates full-precision weights.
    """
    if method == "full":
        for p in model.parameters():
            p.requires_grad_(True)
        return model
    _check_targets(model, lora)
    if method == "lora_from_full":
        if lora.lr_ratio != 1.0:
            from llmforge.errors import ConfigError

            raise ConfigError(
                f"lora.lr_ratio {lora.lr_ratio} speeds up LoRA's B matrices, which method: "
                f"lora_from_full does not train (it trains the layers in full); drop lr_ratio or "
                f"use method: lora"
            )
        targets = set(lora.target_modules)
        origin = {}
        for p in model.parameters():
            p.requires_grad_(False)
        for name, module in model.named_modules():
            if name.rsplit(".", 1)[-1] in targets and hasattr(module, "weight"):
                module.weight.requires_grad_(True)
                origin[name] = module.weight.detach().clone()
        model._llmforge_origin = origin  # read back by to_adapter
        return model
    from peft import get_peft_model

    model = get_peft_model(model, _peft_config(lora))
    for name, p in model.named_parameters():
        if ".lora_B." in name:
            p.lr_scale = lora.lr_ratio  # read by the training loop's parameter groups (LoRA+)
    if frozen_dtype is not None:
        for p in model.parameters():
            if not p.requires_grad:
                p.data = p.data.to(frozen_dtype)
    return model


def _check_targets(model: Any, lora: Any) -> None:
    names = {n.rsplit(".", 1)[-1] for n, _ in model.named_modules()}
    missing = [t for t in lora.target_modules if t not in names]
    if missing:
        from llmforge.errors import ConfigError

        raise ConfigError(
            f"lora.target_modules {missing} are not layers of this model; "
            f"Llama layers are q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj"
        )


def _peft_config(lora: Any) -> Any:
    from peft import LoraConfig

    return LoraConfig(
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=list(lora.target_modules),
        bias="none",
        task_type="CAUSAL_LM",
        use_rslora=lora.use_rslora,
    )


def to_adapter(model: Any, lora: Any) -> tuple[Any, float]:
    """A model prepared for ``lora_from_full`` and trained, as a peft LoRA model on its
    original weights: each target layer's change ``W - W0`` factored by SVD and truncated to
    rank ``lora.r`` (``B @ A * scaling`` is the best rank-r approximation of the change). The
    base weights go back to ``W0`` in place. Returns ``(peft model, share of the change's
    energy the adapter keeps)`` -- the squared singular values kept over all of them."""
    import math

    import torch
    from peft import get_peft_model

    origin = getattr(model, "_llmforge_origin", None)
    if origin is None:
        raise ValueError("to_adapter needs a model from prepare(..., 'lora_from_full', ...)")
    scaling = lora.alpha / (math.sqrt(lora.r) if lora.use_rslora else lora.r)
    modules = dict(model.named_modules())
    factors, kept, total = {}, 0.0, 0.0
    with torch.no_grad():
        for name, w0 in origin.items():
            weight = modules[name].weight
            w0 = w0.to(weight.device)  # the originals stay where prepare() found them (CPU)
            delta = weight.detach().float() - w0.float()
            u, s, vh = torch.linalg.svd(delta, full_matrices=False)
            r = min(lora.r, s.numel())
            root = s[:r].sqrt()
            factors[name] = (root[:, None] * vh[:r], u[:, :r] * root[None, :] / scaling)
            kept += float((s[:r] ** 2).sum())
            total += float((s**2).sum())
            weight.copy_(w0.to(weight.dtype))
            weight.requires_grad_(False)
    del model._llmforge_origin
    training = model.training
    peft_model = get_peft_model(model, _peft_config(lora))
    peft_model.train(training)  # peft's wrapper would leave dropout on
    peft_modules = dict(peft_model.base_model.model.named_modules())
    with torch.no_grad():
        for name, (a, b) in factors.items():
            layer = peft_modules[name]
            if a.shape[0] < lora.r:  # a layer narrower than the rank: pad with zero directions
                a = torch.cat([a, a.new_zeros(lora.r - a.shape[0], a.shape[1])])
                b = torch.cat([b, b.new_zeros(b.shape[0], lora.r - b.shape[1])], dim=1)
            for target, value in ((layer.lora_A["default"].weight, a), (layer.lora_B["default"].weight, b)):
                target.copy_(value.to(target.device, target.dtype))
    return peft_model, (kept / total if total else 1.0)


def count_parameters(model: Any) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    total = sum(p.numel() for p in model.parameters())
    return sum(p.numel() for p in model.parameters() if p.requires_grad), total


def save_model(model: Any, tokenizer: Any, target: Path, manifest: dict) -> Path:
    """Adapter (or full model) + tokenizer + manifest into ``target``, atomically."""
    from llmforge.fsutil import atomic_dir

    with atomic_dir(target) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
    return target
