"""Perplexity of gold answers under a registered model version (transformers, imported lazily)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def examples(tokenizer: Any, pairs: Sequence[tuple[str, str]]) -> list[Any]:
    """(question, gold answer) -> objects with ``input_ids`` and ``labels`` (prompt masked)."""
    from types import SimpleNamespace

    out = []
    for q, a in pairs:
        prompt = tokenizer.apply_chat_template(
            [{"role": "user", "content": q}], add_generation_prompt=True, tokenize=False
        )
        p_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        a_ids = tokenizer(a, add_special_tokens=False)["input_ids"]
        if a_ids:
            out.append(SimpleNamespace(input_ids=p_ids + a_ids, labels=[-100] * len(p_ids) + a_ids))
    return out


def _folder(forge: Any, spec: str) -> str:
    """A base-model spec as a local folder: a path, or the copy the backend keeps in the home."""
    from pathlib import Path

    from llmforge.errors import ModelError

    for candidate in (Path(spec).expanduser(), forge.home / "models" / spec.lower()):
        if (candidate / "config.json").exists():
            return str(candidate)
    raise ModelError(
        f"base model {spec!r} is not a local model folder; load it once (e.g. `llmforge ask`) first"
    )


def gold_perplexity(forge: Any, model_uri: str, pairs: Sequence[tuple[str, str]]) -> float:
    """Load ``model_uri`` from the registry (adapter on its base, or a full model) and score."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from llmforge.evaluation import perplexity

    r = forge.models.resolve(model_uri)
    tok = AutoTokenizer.from_pretrained(str(r.path))
    model = AutoModelForCausalLM.from_pretrained(_folder(forge, r.base_model) if r.adapter else str(r.path))
    if r.adapter:
        model.load_adapter(str(r.adapter))  # transformers' PEFT integration
    return perplexity(model, examples(tok, pairs))
