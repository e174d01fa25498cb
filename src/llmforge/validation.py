"""pydantic validation errors turned into one ConfigError naming each bad key and the allowed ones."""

from __future__ import annotations

import difflib
from typing import Any

from pydantic import BaseModel, ValidationError

from llmforge.errors import ConfigError


def allowed_keys(model: type[BaseModel], loc: tuple) -> list[str]:
    """Allowed keys at ``loc`` (walking nested models, unions included), for error messages."""
    for part in loc[:-1]:
        field = model.model_fields.get(str(part))
        if field is None:
            return []
        ann = field.annotation
        inner = [a for a in getattr(ann, "__args__", (ann,)) if isinstance(a, type)]
        nested = [a for a in inner if issubclass(a, BaseModel)]
        if not nested:
            return []
        model = nested[0]
    return sorted(model.model_fields)


def validate_model(model: type[BaseModel], data: Any, source: str, *, suggest: bool = True) -> Any:
    """``model.model_validate(data)``; errors name the key, the allowed keys and (``suggest``) the
    closest allowed spelling."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping of keys, got {type(data).__name__}")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            key = ".".join(str(p) for p in err["loc"]) or "(top level)"
            if err["type"] == "extra_forbidden":
                allowed = allowed_keys(model, err["loc"])
                close = difflib.get_close_matches(str(err["loc"][-1]), allowed, n=1) if suggest else []
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                lines.append(f"unknown key '{key}'{hint}; allowed keys: {allowed}")
            elif err["type"] == "missing":
                lines.append(f"missing required key '{key}'")
            else:
                lines.append(f"'{key}': {err['msg'].removeprefix('Value error, ')}")
        raise ConfigError(f"{source}: " + "; ".join(lines)) from None
