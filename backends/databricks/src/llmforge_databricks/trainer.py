"""Fine-tuning on Databricks with the ``fm.create()`` signature of Foundation Model
Fine-tuning as a stable front end.

That service is deprecated (removal scheduled for 2026-08-14) and the ``databricks_genai``
client will stop installing, so llmforge submits the run itself through the workspace REST
API and says clearly when the workspace no longer offers it. Nothing is trained or faked here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from llmforge.components import Trainer
from llmforge.errors import ConfigError, ModelError, NotFoundError
from llmforge_databricks.workspace import calling, workspace_client

TASK_TYPES = ("INSTRUCTION_FINETUNE", "CHAT_COMPLETION", "CONTINUED_PRETRAIN")
_UC_NAME = re.compile(r"^[^.\s]+\.[^.\s]+(\.[^.\s]+)?$")


@dataclass(frozen=True)
class DatabricksTrainerOptions:
    #: REST path that creates fine-tuning runs on the workspace (the service's; kept as an option
    #: because the deprecated service's successor may move it)
    runs_path: str = "/api/2.0/fine-tuning/runs"


@dataclass
class FinetuningRun:
    """A submitted run, as the workspace answered."""

    run_id: str
    status: str
    model_version: str | None = None
    request: dict[str, Any] = field(default_factory=dict)
    response: dict[str, Any] = field(default_factory=dict)


def create_request(model: str, train_data_path: str, register_to: str, *,
                   experiment_path: str | None = None, task_type: str = "INSTRUCTION_FINETUNE",
                   eval_data_path: str | None = None, eval_prompts: list[str] | None = None,
                   custom_weights_path: str | None = None, training_duration: str | None = None,
                   learning_rate: float | None = None, context_length: int | None = None,
                   data_prep_cluster_id: str | None = None, validate_inputs: bool = True) -> dict[str, Any]:
    """The run request for ``fm.create(...)``'s arguments, checked when ``validate_inputs``."""
    if validate_inputs:
        if not model:
            raise ConfigError("model is required, e.g. meta-llama/Meta-Llama-3.1-8B-Instruct")
        if task_type not in TASK_TYPES:
            raise ConfigError(f"task_type '{task_type}' is not one of {list(TASK_TYPES)}")
        if not train_data_path:
            raise ConfigError("train_data_path is required: a UC table catalog.schema.table, a "
                              "dbfs:/Volumes/... JSONL file or a Hugging Face dataset")
        if not _UC_NAME.match(register_to or ""):
            raise ConfigError(f"register_to '{register_to}' must be catalog.schema or catalog.schema.model")
        if learning_rate is not None and learning_rate <= 0:
            raise ConfigError(f"learning_rate must be > 0, got {learning_rate}")
    args = {"model": model, "train_data_path": train_data_path, "register_to": register_to,
            "experiment_path": experiment_path, "task_type": task_type, "eval_data_path": eval_data_path,
            "eval_prompts": eval_prompts, "custom_weights_path": custom_weights_path,
            "training_duration": training_duration, "learning_rate": learning_rate,
            "context_length": context_length, "data_prep_cluster_id": data_prep_cluster_id}
    return {k: v for k, v in args.items() if v is not None}


def request_from_config(config: Any, **overrides: Any) -> dict[str, Any]:
    """The run request for a ``mosaic-ft-config.yaml`` (path, dict or parsed), as written.

    The ``databricks:`` block of the file (and ``overrides``) apply; local-only knobs
    (packing, LoRA rank, checkpoints) have no counterpart in the service and are not sent.
    """
    from llmforge.finetune_config import load_finetune_config

    cfg = load_finetune_config(config).for_backend("databricks", **overrides)
    params = cfg.training_params
    return create_request(
        cfg.model, cfg.training_data.table, cfg.output.registered_model,
        experiment_path=cfg.output.experiment, task_type=cfg.task_type,
        eval_data_path=cfg.evaluation.eval_table, training_duration=f"{params.num_epochs}ep",
        learning_rate=params.learning_rate,
        context_length=cfg.databricks.max_seq_len if cfg.databricks else None)


class DatabricksTrainer(Trainer):
    name = "databricks"
    description = "Databricks fine-tuning runs (fm.create signature) via the workspace REST API"
    Options = DatabricksTrainerOptions

    def finetune(self, config: Any, **overrides: Any) -> FinetuningRun:
        """Submit a run for a ``mosaic-ft-config.yaml``; see :func:`request_from_config`."""
        return self._submit(request_from_config(config, **overrides))

    def create(self, model: str, train_data_path: str, register_to: str, **kw: Any) -> FinetuningRun:
        """``fm.create(model, train_data_path, register_to, *, experiment_path=None,
        task_type='INSTRUCTION_FINETUNE', eval_data_path=None, eval_prompts=None,
        custom_weights_path=None, training_duration=None, learning_rate=None,
        context_length=None, data_prep_cluster_id=None, validate_inputs=True)``."""
        return self._submit(create_request(model, train_data_path, register_to, **kw))

    def _submit(self, body: dict[str, Any]) -> FinetuningRun:
        path = self.options.runs_path
        try:
            with calling(f"create a fine-tuning run (POST {path})"):
                resp = workspace_client().api_client.do("POST", path, body=body)
        except NotFoundError as exc:
            raise ModelError(
                f"this workspace does not offer fine-tuning runs at {path} ({exc}). Foundation Model "
                f"Fine-tuning is deprecated (removal scheduled for 2026-08-14); use Databricks AI "
                f"Runtime for training there, or train with the local backend: "
                f"llmforge.connect(trainer='local')") from exc
        resp = resp if isinstance(resp, dict) else {}
        run_id = resp.get("name") or resp.get("run_id") or resp.get("id")
        if not run_id:
            raise ModelError(f"the workspace accepted the fine-tuning request but named no run: {resp}")
        return FinetuningRun(run_id=str(run_id), status=str(resp.get("status", "PENDING")),
                             request=body, response=resp)
