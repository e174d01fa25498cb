"""transformers generation with KV cache and batching."""

from llmforge.components import Generator


class LocalGenerator(Generator):
    name = "local"
    description = "transformers causal LM (default SmolLM2-135M-Instruct), batched"
