"""The engine's fused CPU kernels (``engine_kernels.cpp``), compiled once per machine and cached.

A 16-row decode step of the 135M model spent about a fifth of its time in the elementwise
steps around the matmuls (RMSNorm, rotary, SiLU·mul, the KV-cache write), each a handful of tiny
ATen ops; one op each cut a step from 69 to 52 ms here. The source is compiled with the system's C++ compiler
against the installed torch, for the vector width torch itself uses on this CPU, into
``$LLMFORGE_CACHE/kernels/<key>/`` (the key covers the source, torch, the compiler and the
flags), and loaded with ``torch.ops.load_library``.

Where the CPU has AMX, the same library holds the int8 weights' matmuls that the generator
option ``quantize`` serves: ``q8_pack`` / ``q8_linear`` (``int8``: weights widened to bf16 on
AMX-BF16, ``engine_kernels.cpp``) and ``a8_pack`` / ``a8_linear`` (``w8a8``: inputs quantized
too, multiplied on AMX-INT8, ``engine_w8a8.cpp``). A decode step's matmuls read every weight
once for a handful of rows, and int8 is half the bytes of bf16.

Kernels are an optimisation, never a requirement: with no compiler, a failed build, or
``LLMFORGE_KERNELS=0``, :func:`load` returns ``None`` (saying why once, in the log) and the
engine runs the same maths in PyTorch ops. ``python -m llmforge_local.kernels`` builds them
ahead of the first request (``scripts/setup.sh`` does).
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

from llmforge.fsutil import cache_root, write_atomic

log = logging.getLogger(__name__)

SOURCES = [Path(__file__).with_name(n) for n in ("engine_kernels.cpp", "engine_w8a8.cpp")]
HEADERS = [Path(__file__).with_name("amx.h")]
ENV = "LLMFORGE_KERNELS"  # "0" turns the kernels off
NAMESPACE = "llmforge_kernels"
_LOCK = threading.Lock()
_loaded: dict[str, Any] = {}  # "ops" or "why": the outcome of this process's one attempt


def flags(capability: str) -> list[str]:
    """Compiler flags for ATen's vector types at ``capability`` (torch's own dispatch level)."""
    if capability.startswith("AVX512"):
        isa = ["-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512dq", "-mfma", "-mf16c"]
        return [*isa, "-DCPU_CAPABILITY=AVX512", "-DCPU_CAPABILITY_AVX512"]
    if capability == "AVX2":
        return ["-mavx2", "-mfma", "-mf16c", "-DCPU_CAPABILITY=AVX2", "-DCPU_CAPABILITY_AVX2"]
    return ["-DCPU_CAPABILITY=DEFAULT"]  # ATen's portable vectors: still one op, just narrower


def command(compiler: str, out: Path) -> list[str]:
    """The build command: one shared library that registers ``torch.ops.llmforge_kernels``."""
    import torch
    from torch.utils import cpp_extension

    lib = Path(torch.__file__).parent / "lib"
    includes = [f"-I{p}" for p in cpp_extension.include_paths()]
    # ATen's parallel_for is OpenMP inlined into the kernels: link the libgomp torch ships (a second
    # OpenMP runtime in the process would run a second thread team against torch's); where torch
    # ships none, the kernels run each op in the calling thread
    gomp = sorted(lib.glob("libgomp*.so*"))
    openmp = ["-fopenmp"] if gomp else []
    runtime = ["-Wl,--as-needed", str(gomp[0])] if gomp else []
    abi = f"-D_GLIBCXX_USE_CXX11_ABI={int(torch._C._GLIBCXX_USE_CXX11_ABI)}"
    capability = torch.backends.cpu.get_cpu_capability() if sys.platform == "linux" else "DEFAULT"
    return [
        compiler,
        "-O3",
        "-std=c++20",
        "-shared",
        "-fPIC",
        *openmp,
        "-w",
        abi,
        *flags(capability),
        *includes,
        *(str(p) for p in SOURCES),
        f"-L{lib}",
        "-ltorch",
        "-ltorch_cpu",
        "-lc10",
        *runtime,
        f"-Wl,-rpath,{lib}",
        "-o",
        str(out),
    ]


def library_path(compiler: str) -> Path:
    """Where this source, torch, compiler and flag set's build lives in the cache."""
    import torch

    key = hashlib.sha256()
    for p in (*SOURCES, *HEADERS):
        key.update(p.read_bytes())
    key.update(torch.__version__.encode())
    key.update(" ".join(command(compiler, Path("x"))).encode())
    key.update(_version(compiler).encode())
    return cache_root("kernels", key.hexdigest()[:16], "libllmforge_kernels.so")


def _version(compiler: str) -> str:
    try:
        return subprocess.run([compiler, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return ""


def build(compiler: str | None = None) -> Path:
    """Compile the kernels (unless cached) and return the library; raises ``RuntimeError`` saying
    why when they cannot be built here."""
    compiler = compiler or os.environ.get("CXX") or "g++"
    if shutil.which(compiler) is None:
        raise RuntimeError(f"no C++ compiler {compiler!r} on PATH (install g++, or set CXX)")
    target = library_path(compiler)
    failed = target.with_suffix(".failed")  # a build that failed once fails again: not retried
    if target.exists():
        return target
    if failed.exists():
        raise RuntimeError(f"{failed.read_text()} (remove {failed} to try again)")
    target.parent.mkdir(parents=True, exist_ok=True)
    log.info("compiling llmforge's CPU kernels once into %s (about 20 s)", target.parent)
    # a temporary name beside the target, renamed on success: concurrent builders each finish
    # whole, and a killed build leaves nothing a later load would trust
    fd, tmp = tempfile.mkstemp(prefix=".build-", suffix=".so", dir=target.parent)
    os.close(fd)
    try:
        done = subprocess.run(command(compiler, Path(tmp)), capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            errors = [
                line for line in done.stderr.splitlines() if "error" in line
            ] or done.stderr.splitlines()
            why = f"{compiler} failed ({done.returncode}): {' | '.join(errors[:3])[:600]}"
            write_atomic(failed, why)
            raise RuntimeError(why)
        os.replace(tmp, target)
    except subprocess.TimeoutExpired as e:
        raise RuntimeError(f"{compiler} ran past {e.timeout} s") from e
    finally:
        Path(tmp).unlink(missing_ok=True)
    return target


def load() -> Any:
    """``torch.ops.llmforge_kernels`` (``rms``, ``rope_``, ``silu_mul``, ``cache_write_``, ``attend``;
    ``q8_*`` where ``q8_ready()``, ``a8_*`` where ``a8_ready()``), or ``None`` where they
    cannot be built or are turned off; the first call builds and loads them, later calls reuse
    that outcome."""
    with _LOCK:
        if "ops" not in _loaded and "why" not in _loaded:
            try:
                _loaded["ops"] = _load()
            except (RuntimeError, OSError) as e:
                _loaded["why"] = str(e)
                asked = str(e) == f"{ENV}=0"  # turned off on purpose: no warning
                log.log(
                    logging.INFO if asked else logging.WARNING,
                    "llmforge's CPU kernels are off, the engine runs plain PyTorch ops: %s",
                    e,
                )
        return _loaded.get("ops")


def _load() -> Any:
    import torch

    if os.environ.get(ENV, "1").strip().lower() in ("0", "false", "no", "off"):
        raise RuntimeError(f"{ENV}=0")
    if not hasattr(torch.ops, NAMESPACE) or not hasattr(getattr(torch.ops, NAMESPACE), "rms"):
        torch.ops.load_library(str(build()))
    return getattr(torch.ops, NAMESPACE)


def why_off() -> str | None:
    """Why :func:`load` returned ``None`` in this process, if it did."""
    return _loaded.get("why")
