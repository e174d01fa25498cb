"""The fine-tuning job file: the seed's ``mosaic-ft-config.yaml``, accepted as written.

The same file runs on every backend. A per-backend block (``local:``, ``databricks:``)
overrides the model and training parameters for that backend only, so a config written for
``meta-llama/Meta-Llama-3.1-70B-Instruct`` on Databricks can run a small model locally::

    local:
      model: smollm2-135m-instruct
      max_steps: 40
      max_seq_len: 256
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

from llmforge.errors import ConfigError
from llmforge.validation import validate_model

TaskType = Literal["INSTRUCTION_FINETUNE", "CHAT_COMPLETION", "CONTINUED_PRETRAIN"]
Metric = Literal["perplexity", "rouge", "faithfulness"]
TASK_TYPES: tuple[str, ...] = get_args(TaskType)
METRICS: tuple[str, ...] = get_args(Metric)
#: every linear layer of a Llama block; adapting all of them beats attention-only LoRA
#: at the same rank (QLoRA paper, section 4)
LLAMA_LINEAR = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TrainingData(_Strict):
    #: ``catalog.schema.table`` holding prompt/response, messages or text rows
    table: str
    #: share of rows used for training; the rest is the held-out split (perplexity)
    split: float = 0.9

    @field_validator("split")
    @classmethod
    def _open_interval(cls, v: float) -> float:
        if not 0.0 < v < 1.0:
            raise ValueError(f"split must be strictly between 0 and 1 (e.g. 0.9), got {v}")
        return v


class TrainingParams(_Strict):
    learning_rate: float = 2e-4
    num_epochs: int = Field(default=1, ge=1)
    #: sequences per micro-batch (packed rows of ``max_seq_len`` tokens locally)
    batch_size: int = Field(default=8, ge=1)
    gradient_accumulation_steps: int = Field(default=1, ge=1)
    warmup_ratio: float = Field(default=0.0, ge=0.0, lt=1.0)
    lr_scheduler: Literal["cosine", "linear", "constant"] = "cosine"
    weight_decay: float = Field(default=0.0, ge=0.0)
    max_grad_norm: float = Field(default=1.0, gt=0.0)
    #: stop after this many optimizer steps (None: run ``num_epochs``)
    max_steps: int | None = Field(default=None, ge=1)
    max_seq_len: int = Field(default=512, ge=16)
    #: pack several examples per row (attention kept within each example); else bucket by length
    packing: bool = True
    #: optimizer steps between checkpoints (0: only at the end)
    checkpoint_every: int = Field(default=50, ge=0)
    seed: int = 42

    @field_validator("learning_rate")
    @classmethod
    def _positive_lr(cls, v: float) -> float:
        if not v > 0:
            raise ValueError(f"learning_rate must be > 0 (e.g. 2e-5 for LoRA on a large model, "
                             f"2e-4 on a small one), got {v}")
        return v


class LoraOptions(_Strict):
    r: int = Field(default=16, ge=1)
    alpha: int = Field(default=32, ge=1)
    dropout: float = Field(default=0.05, ge=0.0, lt=1.0)
    target_modules: tuple[str, ...] = LLAMA_LINEAR


class Evaluation(_Strict):
    metrics: tuple[Metric, ...] = ("perplexity",)
    #: table with gold responses for rouge / faithfulness (prompt/response or messages columns)
    eval_table: str | None = None
    #: rows of ``eval_table`` to generate answers for (generation is the slow part)
    max_examples: int = Field(default=32, ge=1)
    max_new_tokens: int = Field(default=64, ge=1)
    #: promotion gate, e.g. ``{min_rougeL: 0.2, max_perplexity: 40}``; see tracking.check_gate
    gate: dict[str, float] = Field(default_factory=dict)

    @field_validator("gate")
    @classmethod
    def _gate_keys(cls, v: dict[str, float]) -> dict[str, float]:
        bad = [k for k in v if not k.startswith(("min_", "max_"))]
        if bad:
            raise ValueError(f"gate keys must start with min_ or max_ (e.g. min_rougeL), got {bad}")
        return v


class Output(_Strict):
    #: MLflow registered model; every run adds a new version
    registered_model: str
    experiment: str = "/llmforge/finetune"


class BackendOverride(_Strict):
    """Keys a ``local:`` / ``databricks:`` block may override for that backend."""

    model: str | None = None
    method: Literal["lora", "full"] | None = None
    lora: LoraOptions | None = None
    learning_rate: float | None = None
    num_epochs: int | None = Field(default=None, ge=1)
    batch_size: int | None = Field(default=None, ge=1)
    gradient_accumulation_steps: int | None = Field(default=None, ge=1)
    warmup_ratio: float | None = Field(default=None, ge=0.0, lt=1.0)
    lr_scheduler: Literal["cosine", "linear", "constant"] | None = None
    weight_decay: float | None = Field(default=None, ge=0.0)
    max_grad_norm: float | None = Field(default=None, gt=0.0)
    max_steps: int | None = Field(default=None, ge=1)
    max_seq_len: int | None = Field(default=None, ge=16)
    packing: bool | None = None
    checkpoint_every: int | None = Field(default=None, ge=0)
    seed: int | None = None
    max_examples: int | None = Field(default=None, ge=1)
    max_new_tokens: int | None = Field(default=None, ge=1)


class FinetuneConfig(_Strict):
    """One fine-tuning job."""

    model: str
    task_type: TaskType = "INSTRUCTION_FINETUNE"
    training_data: TrainingData
    training_params: TrainingParams = Field(default_factory=TrainingParams)
    #: ``lora`` trains adapters on a frozen base; ``full`` updates every weight (tiny models)
    method: Literal["lora", "full"] = "lora"
    lora: LoraOptions = Field(default_factory=LoraOptions)
    evaluation: Evaluation = Field(default_factory=Evaluation)
    output: Output
    local: BackendOverride | None = None
    databricks: BackendOverride | None = None

    def for_backend(self, backend: str, **overrides: Any) -> FinetuneConfig:
        """The effective config on ``backend``: its block, then ``overrides`` (e.g. ``model=``)."""
        merged: dict[str, Any] = {}
        block = getattr(self, backend, None) if backend in ("local", "databricks") else None
        if block is not None:
            merged.update(block.model_dump(exclude_none=True))
        given = {k: v for k, v in overrides.items() if v is not None}
        if given:
            merged.update(validate_model(BackendOverride, given, "overrides").model_dump(exclude_none=True))
        if not merged:
            return self
        data = self.model_dump()
        params = set(TrainingParams.model_fields)
        evals = {"max_examples", "max_new_tokens"}
        for key, value in merged.items():
            if key in params:
                data["training_params"][key] = value
            elif key in evals:
                data["evaluation"][key] = value
            else:
                data[key] = value
        return validate_model(FinetuneConfig, data, f"{backend} overrides")


def load_finetune_config(source: str | os.PathLike | dict | FinetuneConfig) -> FinetuneConfig:
    """Parse a ``mosaic-ft-config.yaml`` path, a YAML string's dict, or pass a config through."""
    if isinstance(source, FinetuneConfig):
        return source
    if isinstance(source, dict):
        return validate_model(FinetuneConfig, source, "fine-tuning config")
    path = Path(source)
    if not path.exists():
        raise ConfigError(f"fine-tuning config {path} not found; pass the path of a "
                          "mosaic-ft-config.yaml (see examples/mosaic-ft-config.yaml)")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from None
    return validate_model(FinetuneConfig, data, str(path))
