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
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from llmforge.components import TrainResult
from llmforge.errors import ConfigError, NotFoundError
from llmforge.finetune_config import FinetuneConfig, load_finetune_config

#: keyword arguments of ``finetune`` that steer the job rather than override the config
JOB_KWARGS = ("progress", "on_step", "user")


@dataclass
class FinetuneResult(TrainResult):
    """The local trainer's :class:`~llmforge.components.TrainResult`; ``model_uri`` loads with
    ``load_causal_lm(uri, home)``."""

    model_dir: Path | None = None
    losses: list[tuple[int, float]] = field(default_factory=list)
    resumed_from: int = 0
    tokens_per_second: float = 0.0
    #: who the adapter was trained for (``department:hr``), None for every readable row
    audience: str | None = None


def job_key(cfg: FinetuneConfig, table_version: int, audience: str | None = None) -> str:
    """Same effective config + same table version (+ same audience) = same job, so a rerun
    resumes it."""
    raw = json.dumps(
        {"cfg": cfg.model_dump(mode="json", exclude={"local", "databricks"}), "table_version": table_version}
        | ({"audience": audience} if audience else {}),
        sort_keys=True,
    )
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
        raise NotFoundError(
            f"evaluation table {name!r} does not exist; create it (rows with "
            "prompt/response) or drop rouge/faithfulness from evaluation.metrics"
        )
    return gold_pairs(t.read(), f"evaluation table {name!r}")


def run_job(forge: Any, config: Any, overrides: dict[str, Any]) -> Any:
    """One job: a :class:`FinetuneResult`, or an :class:`~llmforge_local.train.audiences.AdapterSet`
    when the config's ``llmforge.audiences`` asks for one adapter per audience."""
    from llmforge_local.models import resolve_model
    from llmforge_local.train import data as D

    job = {k: overrides.pop(k) for k in JOB_KWARGS if k in overrides}
    cfg = load_finetune_config(config).for_backend("local", **overrides)
    folder = resolve_model(cfg.model, forge.home)  # a model that cannot run fails here, first
    user = _reader(forge, job.get("user"))
    if cfg.llmforge.audiences:
        from llmforge_local.train.audiences import run_audiences

        return run_audiences(forge, cfg, folder, user, job)
    table, version = D.read_table(forge, cfg.training_data.table, user)
    return train_rows(forge, cfg, folder, table, version, user, job)


def train_rows(
    forge: Any,
    cfg: FinetuneConfig,
    folder: Path,
    table: Any,
    version: int,
    user: str,
    job: dict[str, Any],
    audience: str | None = None,
) -> FinetuneResult:
    """Train on ``table`` (rows of the training table at ``version`` as ``user`` read them),
    evaluate, track and register a new version whose tags record the rows' footprint
    (:func:`llmforge.governance.footprint`) and ``audience``."""
    from llmforge.governance import AUDIENCE_TAG, FOOTPRINT_TAG, footprint
    from llmforge_local.models import bf16_supported, default_device, load_tokenizer
    from llmforge_local.train import data as D
    from llmforge_local.train.loop import LoopOptions, train

    p = cfg.training_params
    rows_seen = footprint(forge.catalog, cfg.training_data.table, version, table)
    tok = load_tokenizer(folder, forge.home)
    name = f"training table {cfg.training_data.table!r}"
    train_rows, held_rows = D.split_table(table, cfg.training_data.split, p.seed, name)
    probe = None
    if p.early_stopping_patience:
        from llmforge_local.train.early_stop import split_probe

        if cfg.task_type != "INSTRUCTION_FINETUNE" or not {"prompt", "response"} <= set(
            train_rows.column_names
        ):
            raise ConfigError(
                f"early_stopping_patience needs INSTRUCTION_FINETUNE prompt/response pairs to ask a "
                f"closed-book probe; this is {cfg.task_type} on {name} with columns "
                f"{train_rows.column_names} — set early_stopping_patience: 0"
            )
        train_rows, probe = split_probe(train_rows, p.probe_size, p.seed)
    train_ex = D.build_examples(train_rows, tok, cfg.task_type, p.max_seq_len, name)
    held_ex = (
        D.build_examples(held_rows, tok, cfg.task_type, p.max_seq_len, name) if held_rows.num_rows else []
    )
    gold = _gold(forge, cfg, held_rows, user)  # checked before any compute is spent
    rows = D.pack(train_ex, p.max_seq_len) if p.packing else D.unpacked(train_ex)
    batches = D.make_batches(rows, p.batch_size, tok.pad_token_id)
    per_epoch = math.ceil(len(batches) / p.gradient_accumulation_steps)
    total_steps = p.max_steps or p.num_epochs * per_epoch

    key = job_key(cfg, version, audience)
    job_dir = forge.home / "training" / key
    device = default_device()
    model = _load_trainable(folder, cfg, device)

    from llmforge.tracking import GATE_TAG, Tracker, loss_curve_png, system_info

    tracker = Tracker(forge.home, forge.catalog)
    run = tracker.start_run(
        cfg.output.experiment,
        run_name=f"{cfg.model}-{key[:8]}",
        tags={
            "llmforge.job": key,
            "llmforge.base_model": cfg.model,
            "llmforge.training_table": cfg.training_data.table,
            "llmforge.training_table_version": str(version),
            "llmforge.task_type": cfg.task_type,
            "llmforge.user": user,
            **({AUDIENCE_TAG: audience} if audience else {}),
            GATE_TAG: json.dumps(cfg.evaluation.gate),
        },
    )
    with run:
        run.log_params(
            _params(cfg, version, total_steps, len(train_ex), len(held_ex), device, bf16_supported(device))
        )
        run.log_dict(cfg.model_dump(mode="json"), "config/finetune_config.json")
        run.log_dict(system_info(), "system_info.json")
        run.log_dict(rows_seen, "training_rows.json")
        run.log_dict(asdict(p), "config/train_args.json")  # the hyper-parameters, whole
        logged = {"n": 0}
        stopper = None
        if probe is not None:
            from llmforge_local.train.early_stop import EarlyStopper

            every = p.eval_every or per_epoch
            stopper = EarlyStopper(
                model, tok, probe, every, p.early_stopping_patience, bf16=bf16_supported(device)
            )

        def on_step(step: int, loss: float, state: Any) -> bool:
            stop = stopper.check(step, last=step == total_steps) if stopper else False
            if stopper and stopper.history and stopper.history[-1][0] == step:
                run.log_metrics({"probe_closed_book": stopper.history[-1][1]}, step=step)
            if step % 10 == 0 or step == total_steps or stop:  # one SQLite write per 10 steps
                run.log_series("train_loss", state.losses[logged["n"] :])
                logged["n"] = len(state.losses)
            if job.get("on_step"):
                job["on_step"](step, loss, state)
            return stop

        opts = LoopOptions.of(
            p, total_steps=total_steps, bf16=bf16_supported(device), progress=job.get("progress", True)
        )
        result = train(model, batches, opts, job_dir / "checkpoints", on_step, device)
        run.set_tags({"llmforge.resumed_from_step": result.resumed_from})
        if stopper is not None:
            stopper.restore()  # the best probe score's weights
            run.set_tags(
                {
                    "llmforge.early_stopping.best_step": stopper.best_step,
                    "llmforge.early_stopping.stopped_at": result.stopped_at or "",
                }
            )
        kept = None
        if cfg.method == "lora_from_full":  # the trained layers' change, as a rank-r adapter
            from llmforge_local.train.lora import to_adapter

            model, kept = to_adapter(model, cfg.lora)
        from llmforge_local.train.lora import save_model

        model_dir = save_model(
            model,
            tok,
            job_dir / "model",
            {"base_model": cfg.model, "method": cfg.method, "task_type": cfg.task_type, "job": key},
        )
        from llmforge_local.train.evaluate import evaluate

        metrics, samples = evaluate(cfg, model, tok, held_ex, gold)
        metrics.update(
            {
                "train_loss_final": result.losses[-1][1],
                "tokens_per_second": result.tokens_per_second,
                "train_tokens": float(result.tokens),
                **({"probe_closed_book_best": stopper.best_score} if stopper else {}),
                **({"adapter_energy_kept": kept} if kept is not None else {}),
            }
        )
        run.log_metrics(metrics, step=total_steps)
        run.log_artifacts(model_dir, "model")
        curve = loss_curve_png(
            result.losses, job_dir / "loss_curve.png", f"{cfg.model} on {cfg.training_data.table}@{version}"
        )
        run.log_artifact(curve)
        from llmforge.evaluation import html_report

        report = html_report(
            job_dir / "evaluation.html",
            f"{cfg.output.registered_model} ({key})",
            metrics,
            samples,
            loss_curve="loss_curve.png",
        )
        run.log_artifact(report)
        sources = [f"table:{cfg.training_data.table}@{version}"]
        mv = tracker.register(
            cfg.output.registered_model,
            run,
            sources=sources,
            tags={
                "base_model": cfg.model,
                "task_type": cfg.task_type,
                FOOTPRINT_TAG: json.dumps(rows_seen, sort_keys=True),
                **({AUDIENCE_TAG: audience} if audience else {}),
            },
        )
    shutil.rmtree(job_dir / "checkpoints", ignore_errors=True)  # the job is complete
    return FinetuneResult(
        run_id=run.run_id,
        registered_model=cfg.output.registered_model,
        model_version=mv,
        model_uri=f"models:/{cfg.output.registered_model}/{mv}",
        model_dir=model_dir,
        metrics=metrics,
        losses=result.losses,
        training_table=cfg.training_data.table,
        training_table_version=version,
        resumed_from=result.resumed_from,
        tokens_per_second=result.tokens_per_second,
        audience=audience,
    )


def _load_trainable(folder: Path, cfg: FinetuneConfig, device: str) -> Any:
    """Trainable weights in fp32 (bf16 only inside autocast), wrapped for LoRA or full
    training; frozen LoRA base weights in bf16 where bf16 autocast runs."""
    import torch
    from transformers import AutoModelForCausalLM

    from llmforge_local.models import bf16_supported
    from llmforge_local.train.lora import prepare

    torch.manual_seed(cfg.training_params.seed)  # LoRA init is random: seed it
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    frozen = torch.bfloat16 if bf16_supported(device) else None
    return prepare(model, cfg.method, cfg.lora, frozen_dtype=frozen).to(device)


def _params(
    cfg: FinetuneConfig, version: int, total_steps: int, n_train: int, n_held: int, device: str, bf16: bool
) -> dict[str, Any]:
    p = asdict(cfg.training_params)
    p.update(
        {
            "model": cfg.model,
            "task_type": cfg.task_type,
            "method": cfg.method,
            "training_table": cfg.training_data.table,
            "training_table_version": version,
            "split": cfg.training_data.split,
            "total_steps": total_steps,
            "train_examples": n_train,
            "heldout_examples": n_held,
            "device": device,
            "bf16_autocast": bf16,
            "eval_table": cfg.evaluation.eval_table,
            "registered_model": cfg.output.registered_model,
        }
    )
    if cfg.method in ("lora", "lora_from_full"):
        p.update({f"lora_{k}": v for k, v in cfg.lora.model_dump().items()})
    return p
