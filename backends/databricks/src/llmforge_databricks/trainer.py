"""Fine-tuning on Databricks compute as llmforge's own training job (Jobs API), with the
``fm.create()`` signature of Foundation Model Fine-tuning kept as a stable front end.

That service is deprecated (removal scheduled for 2026-08-14), so nothing here calls it. A
run is: the llmforge wheels, the job config and a two-line driver uploaded to a Unity Catalog
volume (Files API); a one-time Jobs run (``jobs.submit``) on a GPU job cluster (node type or
cluster policy) or serverless GPU compute, whose Spark Python task runs the local trainer
(:mod:`llmforge_local.train.remote`): metrics to the workspace MLflow, the adapter registered
in Unity Catalog; then ``forge.finetune`` waits for it (``jobs.get_run``) and reads the result.
"""

from __future__ import annotations

import re
import sys
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from llmforge.components import Trainer, TrainResult
from llmforge.errors import ConfigError
from llmforge_databricks.jobs import Job, JobsOptions, submit_and_wait, upload_wheels

TASK_TYPES = ("INSTRUCTION_FINETUNE", "CHAT_COMPLETION", "CONTINUED_PRETRAIN")
_UC_NAME = re.compile(r"^[^.\s]+\.[^.\s]+(\.[^.\s]+)?$")
#: keyword arguments of ``finetune`` that steer the client rather than override the config
_CLIENT_KW = ("progress",)


@dataclass(frozen=True)
class DatabricksTrainerOptions(JobsOptions):
    """Where and on what the training job runs (see :class:`~llmforge_databricks.jobs.JobsOptions`)."""


@dataclass
class FinetuningRun(TrainResult):
    """A finished training job: the workspace MLflow run, the Unity Catalog model version, and
    the job run (``details``: ``job_run_id``, ``run_page_url``, ``volume_dir``)."""

    status: str = "SUCCESS"
    request: dict[str, Any] = field(default_factory=dict)


def create_request(
    model: str,
    train_data_path: str,
    register_to: str,
    *,
    experiment_path: str | None = None,
    task_type: str = "INSTRUCTION_FINETUNE",
    eval_data_path: str | None = None,
    eval_prompts: list[str] | None = None,
    custom_weights_path: str | None = None,
    training_duration: str | None = None,
    learning_rate: float | None = None,
    context_length: int | None = None,
    data_prep_cluster_id: str | None = None,
    validate_inputs: bool = True,
) -> dict[str, Any]:
    """The run request for ``fm.create(...)``'s arguments, checked when ``validate_inputs``."""
    if validate_inputs:
        if not model:
            raise ConfigError("model is required, e.g. meta-llama/Meta-Llama-3.1-8B-Instruct")
        if task_type not in TASK_TYPES:
            raise ConfigError(f"task_type '{task_type}' is not one of {list(TASK_TYPES)}")
        if not train_data_path:
            raise ConfigError(
                "train_data_path is required: a UC table catalog.schema.table, a "
                "dbfs:/Volumes/... JSONL file or a Hugging Face dataset"
            )
        if not _UC_NAME.match(register_to or ""):
            raise ConfigError(f"register_to '{register_to}' must be catalog.schema or catalog.schema.model")
        if learning_rate is not None and learning_rate <= 0:
            raise ConfigError(f"learning_rate must be > 0, got {learning_rate}")
    args = {
        "model": model,
        "train_data_path": train_data_path,
        "register_to": register_to,
        "experiment_path": experiment_path,
        "task_type": task_type,
        "eval_data_path": eval_data_path,
        "eval_prompts": eval_prompts,
        "custom_weights_path": custom_weights_path,
        "training_duration": training_duration,
        "learning_rate": learning_rate,
        "context_length": context_length,
        "data_prep_cluster_id": data_prep_cluster_id,
    }
    return {k: v for k, v in args.items() if v is not None}


def request_from_config(config: Any, **overrides: Any) -> dict[str, Any]:
    """The ``fm.create`` arguments a ``mosaic-ft-config.yaml`` (path, dict or parsed) stands for.

    The ``databricks:`` block of the file (and ``overrides``) apply; local-only knobs
    (packing, LoRA rank, checkpoints) have no ``fm.create`` counterpart and are not listed.
    """
    from llmforge.finetune_config import load_finetune_config

    cfg = load_finetune_config(config).for_backend("databricks", **overrides)
    params = cfg.training_params
    return create_request(
        cfg.model,
        cfg.training_data.table,
        cfg.output.registered_model,
        experiment_path=cfg.output.experiment,
        task_type=cfg.task_type,
        eval_data_path=cfg.evaluation.eval_table,
        training_duration=f"{params.num_epochs}ep",
        learning_rate=params.learning_rate,
        context_length=cfg.databricks.max_seq_len if cfg.databricks else None,
    )


def config_from_request(request: dict[str, Any]) -> dict[str, Any]:
    """A fine-tuning config for ``fm.create`` arguments (``register_to`` may name only a schema:
    the model is then named after the base model, as the service names it)."""
    register_to = request["register_to"]
    if register_to.count(".") == 1:
        register_to += "." + re.sub(r"[^a-z0-9_]+", "_", request["model"].split("/")[-1].lower()).strip("_")
    params: dict[str, Any] = {}
    duration = request.get("training_duration")
    if duration:
        m = re.fullmatch(r"(\d+)ep", str(duration))
        if not m:
            raise ConfigError(f"training_duration '{duration}' must be a number of epochs such as '3ep'")
        params["num_epochs"] = int(m[1])
    if request.get("learning_rate") is not None:
        params["learning_rate"] = request["learning_rate"]
    config: dict[str, Any] = {
        "model": request["model"],
        "task_type": request.get("task_type", "INSTRUCTION_FINETUNE"),
        "training_data": {"table": request["train_data_path"]},
        "training_params": params,
        "output": {"registered_model": register_to},
    }
    if request.get("experiment_path"):
        config["output"]["experiment"] = request["experiment_path"]
    if request.get("eval_data_path"):
        config["evaluation"] = {"eval_table": request["eval_data_path"]}
    if request.get("context_length"):
        config["databricks"] = {"max_seq_len": request["context_length"]}
    return config


class DatabricksTrainer(Trainer):
    name = "databricks"
    description = "llmforge's training job on Databricks compute (Jobs API), fm.create() front end"
    Options = DatabricksTrainerOptions

    def finetune(self, config: Any, **overrides: Any) -> FinetuningRun:
        """Train on the workspace for a ``mosaic-ft-config.yaml`` (path, dict or parsed) and wait.

        The job trains the config as this backend sees it: its ``databricks:`` block and
        ``overrides`` applied (the ``local:`` block is for the local backend). ``progress``
        (default True) prints the run's state changes. The config is checked here first: a
        bad one fails before anything is uploaded.
        """
        from llmforge.finetune_config import load_finetune_config

        client = {k: overrides.pop(k) for k in _CLIENT_KW if k in overrides}
        overrides.pop("user", None)  # the job runs as the token's principal, nobody else
        overrides.pop("on_step", None)
        request = request_from_config(config, **overrides)
        # the cluster trains the effective config on this backend: its databricks: block applied
        effective = load_finetune_config(config).for_backend("databricks", **overrides)
        raw = effective.model_dump(mode="json", exclude_none=True, exclude={"local", "databricks"})
        return self._run(raw, {}, request, client.get("progress", True))

    def create(self, model: str, train_data_path: str, register_to: str, **kw: Any) -> FinetuningRun:
        """``fm.create(model, train_data_path, register_to, *, experiment_path=None,
        task_type='INSTRUCTION_FINETUNE', eval_data_path=None, eval_prompts=None,
        custom_weights_path=None, training_duration=None, learning_rate=None,
        context_length=None, data_prep_cluster_id=None, validate_inputs=True)``, run as
        llmforge's training job. ``progress=False`` keeps it quiet."""
        progress = kw.pop("progress", True)
        request = create_request(model, train_data_path, register_to, **kw)
        return self._run(config_from_request(request), {}, request, progress)

    def _run(self, config: dict, overrides: dict, request: dict, progress: bool) -> FinetuningRun:
        opts = self.options
        opts.check()
        run_dir = f"{opts.volume.rstrip('/')}/runs/{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:8]}"
        job = Job(
            config=config,
            overrides={k: v for k, v in overrides.items() if v is not None},
            result_path=f"{run_dir}/result.json",
            num_gpus=opts.num_gpus,
        )
        wheels = upload_wheels(opts)
        say = (lambda m: print(m, file=sys.stderr, flush=True)) if progress else (lambda m: None)
        run, result = submit_and_wait(
            opts, job, run_dir, wheels, name=f"llmforge finetune {request['register_to']}", say=say
        )
        return FinetuningRun(
            run_id=str(result.get("run_id") or ""),
            registered_model=str(result.get("registered_model") or ""),
            model_version=str(result.get("model_version") or ""),
            model_uri=str(result.get("model_uri") or ""),
            training_table=result.get("training_table") or request.get("train_data_path"),
            training_table_version=result.get("training_table_version"),
            metrics={k: float(v) for k, v in (result.get("metrics") or {}).items() if v is not None},
            details={**(result.get("details") or {}), **run},
            status="SUCCESS",
            request=request,
        )
