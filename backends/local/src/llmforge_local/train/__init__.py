"""LoRA / full fine-tuning of small Llama models with peft + transformers."""

from __future__ import annotations

from typing import Any

from llmforge.components import Trainer


class LocalTrainer(Trainer):
    name = "local"
    description = "LoRA (peft) fine-tuning of a small Llama on CPU/GPU, tracked in MLflow"

    def finetune(self, config: Any, **overrides: Any) -> Any:
        """Train, evaluate, track in MLflow and register a new model version.

        ``config``: a ``mosaic-ft-config.yaml`` path, dict or ``FinetuneConfig``.
        ``overrides``: keys of a ``local:`` block (``model=``, ``max_steps=``, ...) plus
        ``progress`` (bar on/off), ``on_step(step, loss, state)`` and ``user`` (reader of
        the training table; default the project user). Rerunning a job that crashed resumes
        it from its last checkpoint. Returns a :class:`~llmforge_local.train.job.FinetuneResult`.
        """
        from llmforge_local.train.job import run_job

        return run_job(self.forge, config, dict(overrides))
