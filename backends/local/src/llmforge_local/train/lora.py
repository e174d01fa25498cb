"""LoRA adapters (peft) or full fine-tuning on top of a loaded causal LM."""

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
    from peft import LoraConfig, get_peft_model

    names = {n.rsplit(".", 1)[-1] for n, _ in model.named_modules()}
    missing = [t for t in lora.target_modules if t not in names]
    if missing:
        from llmforge.errors import ConfigError

        raise ConfigError(
            f"lora.target_modules {missing} are not layers of this model; "
            f"Llama layers are q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj"
        )
    config = LoraConfig(
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=list(lora.target_modules),
        bias="none",
        task_type="CAUSAL_LM",
        use_rslora=lora.use_rslora,
    )
    model = get_peft_model(model, config)
    for name, p in model.named_parameters():
        if ".lora_B." in name:
            p.lr_scale = lora.lr_ratio  # read by the training loop's parameter groups (LoRA+)
    if frozen_dtype is not None:
        for p in model.parameters():
            if not p.requires_grad:
                p.data = p.data.to(frozen_dtype)
    return model


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
