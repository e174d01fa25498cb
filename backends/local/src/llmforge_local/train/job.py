"""One fine-tuning job end to end: config -> data -> train -> evaluate -> track -> register.

Order matters for safety: the model is resolved and the tables are checked before any
compute, and a registry version is created only after training, saving and evaluation
have all succeeded, so a failed job never leaves a half-made version behind.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmforge.errors import NotFoundError
from llmforge.finetune_config import FinetuneConfig, load_finetune_config

#: keyword arguments of ``finetune`` that steer the job rather than override the config
JOB_KWARGS = ("progress", "on_step", "user")


@dataclass
class FinetuneResult:
    run_id: str
    registered_model: str
    model_version: str
    #: ``models:/<name>/<version>``; load it with ``load_causal_lm(uri, home)``
    model_uri: str
    model_dir: Path
    metrics: dict[str, float] = field(default_factory=dict)
    losses: list[tuple[int, float]] = field(default_factory=list)
    training_table: str = ""
    training_table_version: int = -1
    resumed_from: int = 0
    tokens_per_second: float = 0.0


def job_key(cfg: FinetuneConfig, table_version: int) -> str:
    """Same effective config + same table version = same job, so a rerun resumes it."""
    raw = json.dumps({"cfg": cfg.model_dump(mode="json", exclude={"local", "databricks"}),
                      "table_version": table_version}, sort_keys=True)
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def _reader(forge: Any, user: str | None) -> str:
    if user:
        return user
    if forge.user:
        return forge.user
    from llmforge.catalog import SYSTEM

    return SYSTEM


def _gold(forge: Any, cfg: FinetuneConfig, held_rows: Any, user: str) -> list[tuple[str, str]]:
    """Gold (prompt, response) pairs for rouge / faithfulness: ``eval_table``, else the
    held-out split of the training table."""
    from llmforge_local.train.evaluate import gold_pairs

    if not {"rouge", "faithfulness"} & set(cfg.evaluation.metrics):
        return []
    name = cfg.evaluation.eval_table
    if not name:
        return gold_pairs(held_rows, "the held-out split") if held_rows.num_rows else []
    t = forge.table(name, user=user)
    if not t.exists:
        raise NotFoundError(f"evaluation table {name!r} does not exist; create it (rows with "
                            "prompt/response) or drop rouge/faithfulness from evaluation.metrics")
    return gold_pairs(t.read(), f"evaluation table {name!r}")


def run_job(forge: Any, config: Any, overrides: dict[str, Any]) -> FinetuneResult:
    from llmforge_local.models import bf16_supported, default_device, load_tokenizer, resolve_model
    from llmforge_local.train import data as D
    from llmforge_local.train.loop import LoopOptions, train

    job = {k: overrides.pop(k) for k in JOB_KWARGS if k in overrides}
    cfg = load_finetune_config(config).for_backend("local", **overrides)
    p = cfg.training_params
    folder = resolve_model(cfg.model, forge.home)  # a model that cannot run fails here, first
    user = _reader(forge, job.get("user"))
    table, version = D.read_table(forge, cfg.training_data.table, user)
    tok = load_tokenizer(folder, forge.home)
    order = list(range(table.num_rows))
    train_idx, held_idx = D.split(order, cfg.training_data.split, p.seed)
    train_rows, held_rows = table.take(train_idx), table.take(held_idx)
    name = f"training table {cfg.training_data.table!r}"
    train_ex = D.build_examples(train_rows, tok, cfg.task_type, p.max_seq_len, name)
    held_ex = (D.build_examples(held_rows, tok, cfg.task_type, p.max_seq_len, name)
               if held_rows.num_rows else [])
    gold = _gold(forge, cfg, held_rows, user)  # checked before any compute is spent
    rows = D.pack(train_ex, p.max_seq_len) if p.packing else D.unpacked(train_ex)
    batches = D.make_batches(rows, p.batch_size, tok.pad_token_id)
    per_epoch = math.ceil(len(batches) / p.gradient_accumulation_steps)
    total_steps = p.max_steps or p.num_epochs * per_epoch

    key = job_key(cfg, version)
    job_dir = forge.home / "training" / key
    device = default_device()
    model = _load_trainable(folder, cfg, device)

    from llmforge.tracking import GATE_TAG, Tracker, loss_curve_png, system_info

    tracker = Tracker(forge.home, forge.catalog)
    run = tracker.start_run(cfg.output.experiment, run_name=f"{cfg.model}-{key[:8]}",
                            tags={"llmforge.job": key, "llmforge.base_model": cfg.model,
                                  "llmforge.training_table": cfg.training_data.table,
                                  "llmforge.training_table_version": str(version),
                                  "llmforge.task_type": cfg.task_type, "llmforge.user": user,
                                  GATE_TAG: json.dumps(cfg.evaluation.gate)})
    with run:
        run.log_params(_params(cfg, version, total_steps, len(train_ex), len(held_ex), device,
                               bf16_supported(device)))
        run.log_dict(cfg.model_dump(mode="json"), "config/finetune_config.json")
        run.log_dict(system_info(), "system_info.json")
        logged = {"n": 0}

        def on_step(step: int, loss: float, state: Any) -> None:
            if step % 10 == 0 or step == total_steps:  # one SQLite write per 10 steps
                run.log_series("train_loss", state.losses[logged["n"]:])
                logged["n"] = len(state.losses)
            if job.get("on_step"):
                job["on_step"](step, loss, state)

        opts = LoopOptions(learning_rate=p.learning_rate, total_steps=total_steps,
                           gradient_accumulation_steps=p.gradient_accumulation_steps,
                           warmup_ratio=p.warmup_ratio, lr_scheduler=p.lr_scheduler,
                           weight_decay=p.weight_decay, max_grad_norm=p.max_grad_norm,
                           checkpoint_every=p.checkpoint_every, seed=p.seed,
                           bf16=bf16_supported(device), progress=job.get("progress", True))
        result = train(model, batches, opts, job_dir / "checkpoints", on_step, device)
        run.set_tags({"llmforge.resumed_from_step": result.resumed_from})
        from llmforge_local.train.lora import save_model

        model_dir = save_model(model, tok, job_dir / "model",
                               {"base_model": cfg.model, "method": cfg.method,
                                "task_type": cfg.task_type, "job": key})
        from llmforge_local.train.evaluate import evaluate

        metrics, samples = evaluate(cfg, model, tok, held_ex, gold)
        metrics.update({"train_loss_final": result.losses[-1][1],
                        "tokens_per_second": result.tokens_per_second,
                        "train_tokens": float(result.tokens)})
        run.log_metrics(metrics, step=total_steps)
        run.log_artifacts(model_dir, "model")
        curve = loss_curve_png(result.losses, job_dir / "loss_curve.png",
                               f"{cfg.model} on {cfg.training_data.table}@{version}")
        run.log_artifact(curve)
        from llmforge.evaluation import html_report

        report = html_report(job_dir / "evaluation.html", f"{cfg.output.registered_model} ({key})",
                             metrics, samples, loss_curve="loss_curve.png")
        run.log_artifact(report)
        sources = [f"table:{cfg.training_data.table}@{version}"]
        mv = tracker.register(cfg.output.registered_model, run, sources=sources,
                              tags={"base_model": cfg.model, "task_type": cfg.task_type})
    shutil.rmtree(job_dir / "checkpoints", ignore_errors=True)  # the job is complete
    return FinetuneResult(run_id=run.run_id, registered_model=cfg.output.registered_model,
                          model_version=mv, model_uri=f"models:/{cfg.output.registered_model}/{mv}",
                          model_dir=model_dir, metrics=metrics, losses=result.losses,
                          training_table=cfg.training_data.table, training_table_version=version,
                          resumed_from=result.resumed_from,
                          tokens_per_second=result.tokens_per_second)


def _load_trainable(folder: Path, cfg: FinetuneConfig, device: str) -> Any:
    """Trainable weights in fp32 (bf16 only inside autocast), wrapped for LoRA or full
    training; frozen LoRA base weights in bf16 where bf16 autocast runs."""
    import torch
    from transformers import AutoModelForCausalLM

    from llmforge_local.train.lora import prepare

    from llmforge_local.models import bf16_supported

    torch.manual_seed(cfg.training_params.seed)  # LoRA init is random: seed it
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    frozen = torch.bfloat16 if bf16_supported(device) else None
    return prepare(model, cfg.method, cfg.lora, frozen_dtype=frozen).to(device)


def _params(cfg: FinetuneConfig, version: int, total_steps: int, n_train: int, n_held: int,
            device: str, bf16: bool) -> dict[str, Any]:
    p = cfg.training_params.model_dump()
    p.update({"model": cfg.model, "task_type": cfg.task_type, "method": cfg.method,
              "training_table": cfg.training_data.table, "training_table_version": version,
              "split": cfg.training_data.split, "total_steps": total_steps,
              "train_examples": n_train, "heldout_examples": n_held, "device": device,
              "bf16_autocast": bf16, "eval_table": cfg.evaluation.eval_table,
              "registered_model": cfg.output.registered_model})
    if cfg.method == "lora":
        p.update({f"lora_{k}": v for k, v in cfg.lora.model_dump().items()})
    return p

