"""LoRA / full fine-tuning of small Llama models with peft + transformers."""

from llmforge.components import Trainer


class LocalTrainer(Trainer):
    name = "local"
    description = "LoRA (peft) fine-tuning of a small Llama on CPU/GPU, tracked in MLflow"
