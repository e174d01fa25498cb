"""The local generator's options (``generator: {name: local, options: {...}}``)."""

from __future__ import annotations

from dataclasses import dataclass

from llmforge.errors import DataError
from llmforge_local.models import DEFAULT_MODEL

DTYPES = ("auto", "bfloat16", "float16", "float32")
QUANTIZE = ("none", "int8", "w8a8")


@dataclass(frozen=True)
class Options:
    #: model spec for ``llmforge_local.models.resolve_model``: a built-in name, a folder or a hub id
    model: str = DEFAULT_MODEL
    #: peft adapter folder, or a registered model URI (``models:/name@champion``, ``models:/name/3``)
    adapter: str | None = None
    #: prompts generated together on the device; 16 gives ~6x the tokens/s of 1 on 2 CPU cores
    max_batch_size: int = 16
    #: ``auto`` = bfloat16 where the CPU (AMX/AVX512-BF16) or GPU supports it, else float32
    dtype: str = "auto"
    #: ``auto`` = cuda when available, else cpu
    device: str = "auto"
    #: completion length when a call does not say
    max_new_tokens: int = 256
    #: registered model whose per-audience adapters (``@champion``, ``@champion-<audience>``)
    #: are served on ``model``, each request routed to the one its ``user`` is entitled to
    routed_model: str | None = None
    #: alias prefix of the routed adapters
    route_alias: str = "champion"
    #: a caller entitled to no adapter gets the ``base`` model, or a refusal (``refuse``)
    unentitled: str = "base"
    #: ``continuous``: requests join and leave the running batch at every decode step, each row
    #: with its own adapter (Llama models; others fall back); ``static``: coalesced batches
    engine: str = "continuous"
    #: the continuous engine keeps a copy of the projections packed for oneDNN where the CPU runs
    #: bf16 natively (a faster decode step, the same logits) at the cost of as much memory again
    #: as the weights; ``false`` saves that memory (like ``max_batch_size``, the first generator
    #: to load a model in a process sets up its engine)
    pack_weights: bool = True
    #: beside the packed weights, the engine's fused CPU kernels (compiled once per machine with
    #: the system's C++ compiler; PyTorch ops where none builds) do RMSNorm, rotary and SiLU·mul
    #: in one op each: a faster decode step at the same bf16 precision, though not bit for bit
    #: PyTorch's numbers; ``false`` keeps PyTorch's ops (``LLMFORGE_KERNELS=0`` does, process-wide)
    fused_kernels: bool = True
    #: prompt tokens whose keys and values the continuous engine keeps for later prompts that
    #: begin alike (the chat template's system turn, a RAG prompt's instructions), per caller:
    #: about 23 KB a token on the 135M model; 0 turns the prefix cache off
    prefix_cache_tokens: int = 4096
    #: ``int8``: the continuous engine's packed projections and LM head as per-channel int8
    #: (weight-only; activations stay bf16), run by a fused kernel on CPUs with AMX: half the
    #: bytes a decode step reads, so a faster step, at the cost of rounding each weight to 1/254 of
    #: the largest of its channel's 32 neighbouring inputs; where the kernel cannot run, a warning
    #: and the bf16 weights.
    #: ``w8a8``: the same int8 weights times each row's inputs quantized to int8 per 32 (as
    #: llama.cpp does for its 4-bit weights), on AMX-INT8: no widening of weights, so a faster
    #: step again, at one more rounding (measured: top token as float32's 96% -> 95%).
    #: ``none`` (the default) serves the model's own weights
    quantize: str = "none"

    def __post_init__(self) -> None:
        for name in ("pack_weights", "fused_kernels"):
            if not isinstance(getattr(self, name), bool):
                raise DataError(f"generator option {name} must be true or false, got {getattr(self, name)!r}")
        if not isinstance(self.prefix_cache_tokens, int) or self.prefix_cache_tokens < 0:
            raise DataError(
                f"generator option prefix_cache_tokens must be a whole number >= 0 (0 turns the "
                f"prefix cache off), got {self.prefix_cache_tokens!r}"
            )
        if self.quantize not in QUANTIZE:
            raise DataError(f"generator option quantize must be one of {QUANTIZE}, got {self.quantize!r}")
        if self.quantize != "none" and not (self.pack_weights and self.engine == "continuous"):
            raise DataError(
                f"generator option quantize: {self.quantize} quantizes the continuous engine's packed "
                "weights: it needs engine: continuous and pack_weights: true"
            )
        if self.max_batch_size < 1:
            raise DataError(f"generator option max_batch_size must be >= 1, got {self.max_batch_size}")
        if self.dtype not in DTYPES:
            raise DataError(f"generator option dtype must be one of {DTYPES}, got {self.dtype!r}")
        if self.max_new_tokens < 1:
            raise DataError(f"generator option max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if self.engine not in ("continuous", "static"):
            raise DataError(f"generator option engine must be 'continuous' or 'static', got {self.engine!r}")
        if self.unentitled not in ("base", "refuse"):
            raise DataError(
                f"generator option unentitled must be 'base' or 'refuse', got {self.unentitled!r}"
            )
        if self.routed_model and self.adapter:
            raise DataError(
                "generator options adapter and routed_model exclude each other: routed_model serves "
                "each caller the adapter it is entitled to; drop adapter"
            )
