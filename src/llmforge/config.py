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
# a key is a secret when its last word (or last two, joined) is one of these; words split at
# '_', '-', '.', spaces and camelCase humps: api_key, api-key, apiKey, accessToken, Authorization
_SECRET_WORDS = {"token", "password", "passwd", "secret", "pat", "credential", "credentials"}
_SECRET_WORDS |= {"authorization", "apikey", "accesstoken", "privatekey", "clientsecret", "passphrase"}
_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")
# values shaped like a credential, whatever their key: Databricks PATs, bearer/basic headers,
# OpenAI / GitHub / Slack / AWS keys, llmforge API tokens, JWTs, PEM private keys
SECRET_VALUE = re.compile(
    r"^\s*(?:(?:bearer|basic)\s+\S{8,}|dapi[0-9a-f]{32}|sk-[A-Za-z0-9_-]{20,}|gh[pousr]_[A-Za-z0-9]{30,}"
    r"|xox[abpr]-[A-Za-z0-9-]{10,}|AKIA[0-9A-Z]{16}|lf-[A-Za-z0-9_-]{40,}"
    r"|eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*)\s*$"
    r"|-----BEGIN [A-Z ]*PRIVATE KEY-----",
    re.IGNORECASE,
)


def secret_key(key: str) -> bool:
    words = [w.lower() for w in _WORD.findall(str(key))]
    return bool(words) and (words[-1] in _SECRET_WORDS or "".join(words[-2:]) in _SECRET_WORDS)


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


class LimitsConfig(BaseModel):
    """Sizes the server refuses before any work (parsing the model, tokenising, quota)."""

    model_config = ConfigDict(extra="forbid")
    #: bytes of one HTTP request body (413 beyond)
    max_request_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    #: characters of one message or one prompt (413 beyond)
    max_message_chars: int = Field(default=100_000, ge=1)
    #: characters of all messages or prompts of one request together (413 beyond)
    max_prompt_chars: int = Field(default=200_000, ge=1)


class RagConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    index: str = "main.knowledge.documents_index"
    num_results: int = Field(default=4, ge=1, le=100)
    score_threshold: float = 0.2
    query_type: Literal["ANN", "HYBRID"] = "HYBRID"
    prompt_template: str | None = None
    max_tokens: int = Field(default=128, ge=1, le=4096)
    #: Delta table of one row per answer; on a workspace name one in a catalog you own
    #: (Unity Catalog's ``system`` catalog is read-only)
    request_log: str = "system.llmforge.request_log"
    #: sentences an answer keeps (the prompt asks for one; a small model runs on); 0 = all
    max_sentences: int = Field(default=1, ge=0, le=100)
    #: when the guards refuse the model's answer: quote the retrieved fact that answers the
    #: question (verbatim, with its [n]) if there is a clear one, or refuse
    fallback: Literal["quote", "refuse"] = "quote"
    #: with ``quote`` and no clear fact to quote: the retrieved sentence closest in meaning to
    #: the question (MiniLM cosine), if at least this close; it passes the output guards like
    #: any answer. 0 = off
    quote_min_similarity: float = Field(default=0.6, ge=0.0, le=1.0)


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
    #: request, message and prompt size limits of the server
    limits: LimitsConfig = Field(default_factory=LimitsConfig)

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
    """Refuse keys named like a secret and values shaped like one, anywhere in the file."""
    if isinstance(data, dict):
        for k, v in data.items():
            key = f"{path}.{k}" if path else str(k)
            if secret_key(str(k)) and isinstance(v, str | int) and not isinstance(v, bool):
                raise ConfigError(
                    f"'{key}' looks like a secret; secrets are read only from environment "
                    f"variables (e.g. DATABRICKS_TOKEN), never from {CONFIG_FILE}. Remove the key."
                )
            _reject_secrets(v, key)
    elif isinstance(data, list):
        for i, v in enumerate(data):
            _reject_secrets(v, f"{path}[{i}]")
    elif isinstance(data, str) and SECRET_VALUE.search(data):
        raise ConfigError(
            f"the value of '{path}' looks like a credential; secrets are read only from environment "
            f"variables (e.g. DATABRICKS_TOKEN), never from {CONFIG_FILE}. Remove it."
        )


def prepare_home(path: str | os.PathLike) -> Path:
    """The project home, created 0700 when missing; a file or unwritable place is a ConfigError."""
    home = Path(path)
    if home.exists() and not home.is_dir():
        raise ConfigError(f"the project home {home} is a file, not a folder; pass another --home")
    try:
        home.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(
            f"cannot create the project home {home} ({exc.strerror}); pass a writable folder as --home"
        ) from None
    if not os.access(home, os.W_OK | os.X_OK):
        raise ConfigError(f"the project home {home} is not writable by you; pass another --home")
    return home


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
