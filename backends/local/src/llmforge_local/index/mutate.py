"""Apply document upserts and deletes to one index generation, producing the next.

Documents are keyed by primary key; a document becomes one or more chunk rows. A document
whose content hash is unchanged is left alone (no re-embedding), which makes repeating a
sync or an upsert a no-op. Only new or changed text is embedded.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from llmforge_local.index.embed import Embedder, chunk_text
from llmforge_local.index.search import make_index, vectors_of
from llmforge_local.index.store import CHUNK_ID, HASH, VERSION, IndexState


@dataclass
class ChangeStats:
    inserted: int = 0
    updated: int = 0
    deleted: int = 0
    unchanged: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


def content_hash(doc: dict, columns: list[str], vector: Any = None) -> str:
    payload = json.dumps([doc.get(c) for c in columns], default=str, sort_keys=True)
    h = hashlib.sha256(payload.encode())
    if vector is not None:
        h.update(vector.tobytes())
    return h.hexdigest()[:32]


def apply_changes(
    state: IndexState,
    rows: Any,
    index: Any,
    docs: list[dict],
    delete_keys: set,
    row_version: int,
    embedder: Embedder | None,
    vectors: Any = None,
    hnsw_m: int = 32,
) -> tuple[Any, Any, ChangeStats]:
    """New (rows, index) after upserting ``docs`` and deleting ``delete_keys``.

    ``vectors`` (direct access) gives one unit vector per doc; otherwise the text column is
    chunked and embedded. ``index`` may be modified in place when only rows are appended,
    so callers drop their in-memory copy if the commit fails.
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    pk = state.primary_key
    existing = dict(zip(rows.column(pk).to_pylist(), rows.column(HASH).to_pylist(), strict=True))
    stats = ChangeStats()
    fresh, fresh_vecs, removed = [], [], set(k for k in delete_keys if k in existing)
    stats.deleted = len(removed)
    for i, doc in enumerate(docs):
        key = doc[pk]
        vec = vectors[i] if vectors is not None else None
        h = content_hash(doc, state.columns, vec)
        if key in existing and key not in removed:
            if existing[key] == h:
                stats.unchanged += 1
                continue
            removed.add(key)
            stats.updated += 1
        else:
            stats.inserted += 1
        fresh.append((doc, h, vec))

    new_rows, texts = [], []
    for doc, h, vec in fresh:
        base = {c: doc.get(c) for c in state.columns}
        if vec is not None:
            new_rows.append({**base, CHUNK_ID: 0, VERSION: row_version, HASH: h})
            fresh_vecs.append(vec)
            continue
        for n, chunk in enumerate(
            chunk_text(doc.get(state.text_column) or "", state.chunk_words, state.chunk_overlap)
        ):
            new_rows.append({**base, state.text_column: chunk, CHUNK_ID: n, VERSION: row_version, HASH: h})
            texts.append(chunk)
    if texts:
        new_vecs = embedder.encode(texts)
    elif fresh_vecs:
        new_vecs = np.ascontiguousarray(np.stack(fresh_vecs), dtype="float32")
    else:
        new_vecs = np.zeros((0, state.dimension), dtype="float32")
    added = pa.Table.from_pylist(new_rows, schema=rows.schema)

    if removed:
        gone = pa.array(list(removed), type=rows.schema.field(pk).type)
        keep = pc.invert(pc.is_in(rows.column(pk), value_set=gone))
        keep_np = np.asarray(keep.to_numpy(zero_copy_only=False), dtype=bool)
        kept_vecs = vectors_of(index)[keep_np]
        index = make_index(state.ann, state.dimension, np.concatenate([kept_vecs, new_vecs]), hnsw_m)
        rows = pa.concat_tables([rows.filter(keep), added])
    else:  # appends only: FAISS adds in place, no rebuild
        if len(new_vecs):
            index.add(new_vecs)
        rows = pa.concat_tables([rows, added])
    return rows, index, stats
