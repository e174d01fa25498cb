"""What a run was measured on: CPU, cores, memory, GPU, library versions, git commit.

Read without importing torch (versions come from package metadata, the GPU from nvidia-smi), so
describing the machine costs nothing next to the benchmarks.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import re
import shutil
import socket
import subprocess
from pathlib import Path

LIBRARIES = (
    "llmforge",
    "torch",
    "transformers",
    "peft",
    "sentence-transformers",
    "faiss-cpu",
    "pyarrow",
    "deltalake",
    "pyspark",
    "mlflow",
)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    if platform.system() == "Darwin":
        out = _run(["sysctl", "-n", "machdep.cpu.brand_string"])
        if out:
            return out
    return platform.processor() or platform.machine()


def _memory_gib() -> float | None:
    try:
        return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        return None


def _run(cmd: list[str], cwd: Path | None = None) -> str | None:
    if not shutil.which(cmd[0]):
        return None
    try:
        out = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def _gpu() -> str | None:
    out = _run(["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader"])
    return "; ".join(line.strip() for line in out.splitlines()) if out else None


def _git(repo: Path) -> dict[str, object]:
    commit = _run(["git", "rev-parse", "HEAD"], repo)
    if commit is None:
        return {"commit": None, "dirty": None}
    status = _run(["git", "status", "--porcelain", "--untracked-files=no"], repo)
    return {"commit": commit, "dirty": bool(status)}


def _versions() -> dict[str, str]:
    found = {}
    for name in LIBRARIES:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return found


def machine_id(cpu: str, cores: int, gpu: str | None) -> str:
    """A stable name for the hardware (hostnames change between CI runs; hardware does not)."""
    raw = f"{cpu} {cores}c" + (f" {gpu.split(';')[0].split(',')[0]}" if gpu else "")
    slug = re.sub(r"[^a-z0-9]+", "-", re.sub(r"\((r|tm)\)|\bprocessor\b|\bcpu\b", "", raw.lower()))
    return slug.strip("-")[:60]


def describe(repo: Path) -> dict[str, object]:
    """The machine, libraries and commit of ``repo`` a run is measured on."""
    cpu, cores, gpu = _cpu_model(), os.cpu_count() or 1, _gpu()
    return {
        "id": machine_id(cpu, cores, gpu),
        "hostname": socket.gethostname(),
        "cpu": cpu,
        "cores": cores,
        "memory_gib": _memory_gib(),
        "gpu": gpu,
        "os": platform.platform(),
        "python": platform.python_version(),
        "libraries": _versions(),
        **_git(repo),
    }
