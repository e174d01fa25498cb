"""Files written whole or not at all, and the one per-user cache root.

Every file or folder llmforge commits (index state, endpoint lists, tokens, checkpoints,
saved models, converted weights) is written beside its target under a temporary name and
renamed into place: a process killed half-way leaves the old version or the new one, never a
torn file. ``LLMFORGE_CACHE`` is the one environment variable naming the cache root.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

CACHE_ENV = "LLMFORGE_CACHE"


def cache_root(*parts: str) -> Path:
    """``$LLMFORGE_CACHE`` (default ``$XDG_CACHE_HOME/llmforge``, else ``~/.cache/llmforge``) / parts."""
    root = os.environ.get(CACHE_ENV)
    if root:
        base = Path(root)
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "llmforge"
    return base.joinpath(*parts)


@contextlib.contextmanager
def atomic_file(target: str | os.PathLike, mode: int | None = None, fsync: bool = True) -> Iterator[Path]:
    """A temporary path beside ``target``; renamed onto it when the block ends without error.

    ``mode`` sets the permissions before the rename (the temp file starts 0600).
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{target.name}-", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        if fsync:
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def write_atomic(target: str | os.PathLike, data: str | bytes, mode: int | None = None) -> None:
    """Replace ``target`` with ``data`` in one rename."""
    with atomic_file(target, mode=mode) as tmp:
        tmp.write_bytes(data.encode() if isinstance(data, str) else data)


def write_json_atomic(target: str | os.PathLike, obj: Any, mode: int | None = None) -> None:
    write_atomic(target, json.dumps(obj, indent=1, default=str), mode=mode)


@contextlib.contextmanager
def atomic_dir(target: str | os.PathLike, mode: int | None = None) -> Iterator[Path]:
    """A temporary folder beside ``target``; it replaces ``target`` when the block succeeds."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        yield tmp
        if mode is not None:
            tmp.chmod(mode)
        if target.exists():  # a previous version (or a crash's leftover)
            shutil.rmtree(target)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
