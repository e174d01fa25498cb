"""``llmforge.yaml``: one validated file per project. Secrets come only from env vars.

Precedence for the backend: ``connect(backend=...)`` > ``LLMFORGE_BACKEND`` > the file >
``local``. Per-slot overrides (``index="databricks"``) beat the backend for that slot.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

from llmforge.errors import ConfigError
from llmforge.validation import validate_model

CONFIG_FILE = "llmforge.yaml"
SECRET_KEY = re.compile(r"(^|_)(token|password|passwd|secret|api_key|apikey|pat)$")


class SlotConfig(BaseModel):
    """Which component fills a slot, and its options."""

    model_config = ConfigDict(extra="forbid")
    name: str
    options: dict[str, Any] = Field(default_factory=dict)


class IdentityConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    #: YAML or CSV file of principals, groups and departments (relative to the config file)
    directory: str | None = None
    #: principal used when a call names none
    default_user: str | None = None


class RagConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    index: str = "main.knowledge.documents_index"
    num_results: int = Field(default=4, ge=1, le=100)
    score_threshold: float = 0.2
    query_type: Literal["ANN", "HYBRID"] = "HYBRID"
    prompt_template: str | None = None
    max_tokens: int = Field(default=128, ge=1, le=4096)


class ProjectConfig(BaseModel):
    """The whole ``llmforge.yaml``."""

    model_config = ConfigDict(extra="forbid")
    project: str = "llmforge"
    backend: str = "local"
    #: project home: tables, catalog, MLflow store, indexes, models (relative to the file)
    home: str = ".llmforge"
    components: dict[str, str | SlotConfig] = Field(default_factory=dict)
    #: guardrail names, or ``{name, options}`` blocks, applied in order
    guardrails: list[str | SlotConfig] = Field(default_factory=lambda: ["faithfulness", "prompt_injection"])
    identity: IdentityConfig = Field(default_factory=IdentityConfig)
    rag: RagConfig = Field(default_factory=RagConfig)
    #: tokens per department per day; a department not listed is unlimited
    quotas: dict[str, int] = Field(default_factory=dict)

    @field_validator("components")
    @classmethod
    def _known_slots(cls, v: dict[str, Any]) -> dict[str, Any]:
        from llmforge.components import SLOTS

        allowed = sorted(set(SLOTS) - {"guardrail"})
        bad = sorted(set(v) - set(allowed))
        if bad:
            raise ValueError(f"unknown slot(s) {bad}; allowed: {allowed} (guardrails have their own list)")
        return v

    def guardrail_configs(self) -> list[SlotConfig]:
        return [SlotConfig(name=g) if isinstance(g, str) else g for g in self.guardrails]

    def slot(self, slot: str) -> SlotConfig:
        raw = self.components.get(slot)
        if raw is None:
            return SlotConfig(name=self.backend)
        return SlotConfig(name=raw) if isinstance(raw, str) else raw


def _reject_secrets(data: Any, path: str = "") -> None:
    if isinstance(data, dict):
        for k, v in data.items():
            key = f"{path}.{k}" if path else str(k)
            if SECRET_KEY.search(str(k).lower()) and isinstance(v, str | int):
                raise ConfigError(
                    f"'{key}' looks like a secret; secrets are read only from environment "
                    f"variables (e.g. DATABRICKS_TOKEN), never from {CONFIG_FILE}. Remove the key."
                )
            _reject_secrets(v, key)
    elif isinstance(data, list):
        for i, v in enumerate(data):
            _reject_secrets(v, f"{path}[{i}]")


def validate(data: dict[str, Any], source: str = CONFIG_FILE) -> ProjectConfig:
    """Validate a config dict; errors name the bad key and the allowed values."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping of keys, got {type(data).__name__}")
    _reject_secrets(data)
    return validate_model(ProjectConfig, data, source, suggest=False)


def load(path: str | os.PathLike | None = None) -> tuple[ProjectConfig, Path]:
    """Load ``path`` (or ``./llmforge.yaml`` when present). Returns the config and its folder."""
    if path is None:
        candidate = Path(os.environ.get("LLMFORGE_CONFIG", CONFIG_FILE))
        if not candidate.exists():
            return ProjectConfig(), Path.cwd()
        path = candidate
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"config file {p} not found; create one with `llmforge init` or pass another path")
    try:
        data = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p} is not valid YAML: {exc}") from None
    return validate(data, str(p)), p.resolve().parent
