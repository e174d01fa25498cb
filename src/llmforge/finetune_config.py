"""The fine-tuning job file: the seed's ``mosaic-ft-config.yaml``, accepted as written.

The same file runs on every backend. An ``llmforge:`` block holds this framework's own
options (per-audience adapters, see :class:`Governance`); the seed's keys stay as written. A per-backend block (``local:``, ``databricks:``)
overrides the model and training parameters for that backend only, so a config written for
``meta-llama/Meta-Llama-3.1-70B-Instruct`` on Databricks can run a small model locally::

    local:
      model: smollm2-135m-instruct
      max_steps: 40
      max_seq_len: 256
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal, get_args, get_type_hints

import yaml
from pydantic import BaseModel, ConfigDict, Field, create_model, field_validator

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


@dataclass(frozen=True)
class TrainArgs:
    """Training hyper-parameters (``training_params:`` of the fine-tuning config).

    Declared once, here: the config parses them into this object, a ``local:`` or
    ``databricks:`` block may override any of them, and every trainer receives the object
    whole (the local loop's options extend it) and saves it with the run.
    """

    learning_rate: float = 2e-4
    """Peak learning rate (2e-5 suits LoRA on a large model, 2e-4 a small one)."""
    num_epochs: int = 1
    """Passes over the training rows when ``max_steps`` is not set."""
    batch_size: int = 8
    """Sequences per micro-batch (packed rows of ``max_seq_len`` tokens locally)."""
    gradient_accumulation_steps: int = 1
    """Micro-batches per optimizer step."""
    warmup_ratio: float = 0.0
    """Share of the steps spent warming the learning rate up linearly, in [0, 1)."""
    lr_scheduler: Literal["cosine", "linear", "constant"] = "cosine"
    """Decay after warmup."""
    weight_decay: float = 0.0
    """AdamW weight decay on matrices (never on biases and norms)."""
    max_grad_norm: float = 1.0
    """Gradient clipping norm."""
    max_steps: int | None = None
    """Stop after this many optimizer steps (None: run ``num_epochs``)."""
    max_seq_len: int = 512
    """Tokens per training row; longer examples are truncated."""
    packing: bool = True
    """Pack several examples per row (attention kept within each example); else bucket by length."""
    checkpoint_every: int = 50
    """Optimizer steps between checkpoints (0: only at the end)."""
    seed: int = 42
    """Seeds the split, the LoRA init and the batch order: same seed, same run."""
    early_stopping_patience: int = 0
    """Early stopping on a held-in closed-book probe: stop after this many probe evaluations
    without a gain and keep the best weights (0: off; needs prompt/response pairs)."""
    probe_size: int = 64
    """Questions in the closed-book probe (one held-out phrasing per fact when the table has
    several phrasings of a fact, see ``llmforge.pairs.augment``)."""
    eval_every: int = 0
    """Optimizer steps between probe evaluations (0: once per epoch)."""

    def __post_init__(self) -> None:
        if not self.learning_rate > 0:
            raise ConfigError(
                f"learning_rate must be > 0 (e.g. 2e-5 for LoRA on a large model, "
                f"2e-4 on a small one), got {self.learning_rate}"
            )
        for name in ("num_epochs", "batch_size", "gradient_accumulation_steps"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.max_steps is not None and self.max_steps < 1:
            raise ConfigError(f"max_steps must be >= 1 (or left out to run num_epochs), got {self.max_steps}")
        if not 0.0 <= self.warmup_ratio < 1.0:
            raise ConfigError(f"warmup_ratio must be in [0, 1) (e.g. 0.03), got {self.warmup_ratio}")
        if self.weight_decay < 0 or not self.max_grad_norm > 0:
            raise ConfigError(
                f"weight_decay must be >= 0 and max_grad_norm > 0, got {self.weight_decay}, {self.max_grad_norm}"
            )
        if self.early_stopping_patience < 0 or self.probe_size < 1 or self.eval_every < 0:
            raise ConfigError(
                "early_stopping_patience and eval_every must be >= 0 and probe_size >= 1, got "
                f"{self.early_stopping_patience}, {self.eval_every}, {self.probe_size}"
            )
        if self.max_seq_len < 16 or self.checkpoint_every < 0:
            raise ConfigError(
                f"max_seq_len must be >= 16 and checkpoint_every >= 0, got "
                f"{self.max_seq_len}, {self.checkpoint_every}"
            )


TRAIN_ARGS: tuple[str, ...] = tuple(f.name for f in fields(TrainArgs))


#: how a fine-tune trains: see ``FinetuneConfig.method``
Method = Literal["lora", "full", "lora_from_full"]


class LoraOptions(_Strict):
    r: int = Field(default=16, ge=1)
    alpha: int = Field(default=32, ge=1)
    dropout: float = Field(default=0.05, ge=0.0, lt=1.0)
    target_modules: tuple[str, ...] = LLAMA_LINEAR
    #: rank-stabilised scaling ``alpha / sqrt(r)`` instead of ``alpha / r`` (rsLoRA), so a
    #: high rank keeps learning at the rate a low one does
    use_rslora: bool = False
    #: LoRA+: the ``B`` matrices learn at ``learning_rate * lr_ratio`` (``A`` at
    #: ``learning_rate``); 1 is plain LoRA, the LoRA+ paper's choice is 16
    lr_ratio: float = Field(default=1.0, ge=1.0, le=64.0)


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


#: keys a ``local:`` / ``databricks:`` block may override for that backend: every
#: :class:`TrainArgs` field (derived, never re-declared), plus the model and evaluation sizes
BackendOverride = create_model(
    "BackendOverride",
    __base__=_Strict,
    model=(str | None, None),
    method=(Method | None, None),
    lora=(LoraOptions | None, None),
    max_examples=(int | None, Field(default=None, ge=1)),
    max_new_tokens=(int | None, Field(default=None, ge=1)),
    **{name: (hint | None, None) for name, hint in get_type_hints(TrainArgs).items()},
)


class Governance(_Strict):
    """The ``llmforge:`` block: options of this framework beyond the seed's keys."""

    #: train one adapter per audience instead of one for every row: ``departments`` (one per
    #: value of ``department_column``, each reading the table as a member of that department
    #: only) or a list of principal names (each reading the table as that principal). The
    #: catalog's row filter decides what each audience's adapter learns.
    audiences: Literal["departments"] | tuple[str, ...] | None = None
    #: column naming each row's department (``audiences: departments``)
    department_column: str = "department"
    #: each adapter is promoted to ``@<alias_prefix>-<audience>`` when it passes the gate
    alias_prefix: str = Field(default="champion", pattern=r"^[A-Za-z0-9_]+$")

    @field_validator("audiences")
    @classmethod
    def _some(cls, v: Any) -> Any:
        if isinstance(v, tuple) and (not v or len(set(v)) != len(v) or not all(v)):
            raise ValueError("audiences must be 'departments' or a list of distinct principal names")
        return v


class FinetuneConfig(_Strict):
    """One fine-tuning job."""

    model: str
    task_type: TaskType = "INSTRUCTION_FINETUNE"
    training_data: TrainingData
    training_params: TrainArgs = Field(default_factory=TrainArgs)
    #: ``lora`` trains adapters on a frozen base; ``full`` updates every weight (tiny models);
    #: ``lora_from_full`` trains the ``lora.target_modules`` layers in full, then stores the
    #: rank-``lora.r`` SVD of each layer's change as a LoRA adapter: it learns at full
    #: fine-tuning's rate and still serves per caller beside other adapters on one base
    #: (``llmforge.audiences``). Costs a full fine-tune's memory while training.
    method: Method = "lora"
    lora: LoraOptions = Field(default_factory=LoraOptions)
    evaluation: Evaluation = Field(default_factory=Evaluation)
    output: Output
    local: BackendOverride | None = None
    databricks: BackendOverride | None = None
    llmforge: Governance = Field(default_factory=Governance)

    @field_validator("training_params", mode="before")
    @classmethod
    def _known_params(cls, v: Any) -> Any:
        for key in v if isinstance(v, dict) else ():
            if key not in TRAIN_ARGS:
                close = difflib.get_close_matches(str(key), TRAIN_ARGS, n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                raise ValueError(f"unknown key '{key}'{hint}; allowed keys: {sorted(TRAIN_ARGS)}")
        return v

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
        params = set(TRAIN_ARGS)
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
        raise ConfigError(
            f"fine-tuning config {path} not found; pass the path of a "
            "mosaic-ft-config.yaml (see examples/mosaic-ft-config.yaml)"
        )
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from None
    return validate_model(FinetuneConfig, data, str(path))
