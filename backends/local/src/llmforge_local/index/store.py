"""On-disk layout of one index: ``<home>/indexes/<name>/``.

- ``state.json``: the spec and the current generation; replaced atomically (write, fsync,
  rename), so it is the single commit point.
- ``rows-<gen>.parquet``: one row per chunk (primary key, chunk id, chunk text, synced
  columns, source version, content hash); row ``i`` is vector ``i``.
- ``vectors-<gen>.faiss``: the FAISS index (flat inner product, or HNSW).

A writer writes the new generation's files first and then swaps ``state.json``; a crash
before the swap leaves the old generation in force, after it the new one. Files of older
generations are removed after the swap.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmforge.errors import DataError
from llmforge.fsutil import write_json_atomic

CHUNK_ID, VERSION, HASH = "_chunk_id", "_version", "_hash"
INTERNAL = (CHUNK_ID, VERSION, HASH)


@dataclass
class IndexState:
    """What ``describe()`` reports and what reopening needs; persisted as ``state.json``."""

    name: str
    endpoint_name: str
    index_type: str  # DELTA_SYNC | DIRECT_ACCESS
    primary_key: str
    dimension: int
    #: stored, returnable and filterable columns (primary key and text column included)
    columns: list[str]
    text_column: str | None = None
    vector_column: str | None = None
    source_table: str | None = None
    pipeline_type: str = "TRIGGERED"
    schema: dict[str, str] | None = None
    embedding_model_endpoint_name: str | None = None
    model_path: str | None = None
    ann: str = "exact"
    chunk_words: int = 180
    chunk_overlap: int = 30
    #: bumps on every committed change; answers cite ``index:<name>@<version>``
    version: int = 0
    generation: int = 0
    synced_version: int | None = None
    indexed_row_count: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, raw: dict) -> IndexState:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in raw.items() if k in known})


class IndexStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.state_path = root / "state.json"

    def exists(self) -> bool:
        return self.state_path.exists()

    def state_stamp(self) -> tuple | None:
        """Changes whenever a writer commits (cheap freshness check per query): every commit
        renames a new file into place, so the inode changes even within one mtime tick."""
        try:
            st = self.state_path.stat()
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def read_state(self) -> IndexState:
        try:
            return IndexState.from_json(json.loads(self.state_path.read_text()))
        except (OSError, ValueError) as exc:
            raise DataError(
                f"index state {self.state_path} is unreadable: {exc}; delete and re-create the index"
            ) from exc

    def _files(self, gen: int) -> tuple[Path, Path]:
        return self.root / f"rows-{gen}.parquet", self.root / f"vectors-{gen}.faiss"

    def load(self, state: IndexState) -> tuple[Any, Any]:
        """The rows (Arrow) and FAISS index of ``state``'s generation; nothing is re-embedded."""
        import faiss
        import pyarrow.parquet as pq

        rows_path, vec_path = self._files(state.generation)
        rows = pq.read_table(rows_path)
        index = faiss.read_index(str(vec_path))
        if index.ntotal != rows.num_rows:
            raise DataError(
                f"index {state.name}: {rows.num_rows} rows but {index.ntotal} vectors; re-create the index"
            )
        return rows, index

    def commit(self, state: IndexState, rows: Any, index: Any) -> IndexState:
        """Write a new generation and make it current. Returns the committed state."""
        import faiss
        import pyarrow.parquet as pq

        old_gen = state.generation
        new = dataclasses.replace(
            state, generation=old_gen + 1, version=state.version + 1, indexed_row_count=int(rows.num_rows)
        )
        rows_path, vec_path = self._files(new.generation)
        self.root.mkdir(parents=True, exist_ok=True)
        pq.write_table(rows, rows_path)
        faiss.write_index(index, str(vec_path))
        self.write_state(new)
        for p in self._files(old_gen):
            p.unlink(missing_ok=True)
        return new

    def write_state(self, state: IndexState) -> None:
        """Replace ``state.json`` atomically (the commit point)."""
        write_json_atomic(self.state_path, dataclasses.asdict(state))

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """One writer at a time per index, across processes."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".lock", "w") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def delete(self) -> None:
        """Remove the index: renaming first makes the deletion atomic for readers."""
        trash = self.root.with_name(self.root.name + ".deleted")
        shutil.rmtree(trash, ignore_errors=True)
        os.replace(self.root, trash)
        shutil.rmtree(trash, ignore_errors=True)
