"""Pairs for a whole documents table, in the Databricks fine-tuning shape."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from llmforge.errors import DataError
from llmforge.pairs.rules import KINDS, create_training_pair

if TYPE_CHECKING:
    import pyarrow as pa

#: column order of :func:`pairs_table`; ``prompt``/``response`` and ``messages`` are the two
#: formats Databricks instruction and chat fine-tuning read, ``text`` what continued
#: pre-training reads (a raw chunk as is, a pair as "prompt\nresponse").
COLUMNS = ("document_id", "pair_id", "kind", "prompt", "response", "messages", "text")
#: document columns copied onto each of its pairs: the column a row filter decides on, so a
#: pairs table can carry its documents' policy (see llmforge.governance.inherit_row_filter)
CARRY = ("department",)


def pairs_schema() -> pa.Schema:
    import pyarrow as pa

    message = pa.struct([("role", pa.string()), ("content", pa.string())])
    return pa.schema(
        [
            ("document_id", pa.string()),
            ("pair_id", pa.string()),
            ("kind", pa.string()),
            ("prompt", pa.string()),
            ("response", pa.string()),
            ("messages", pa.list_(message)),
            ("text", pa.string()),
        ]
    )


def carried_schema(source: pa.Table) -> tuple[list[str], pa.Schema]:
    """The policy columns of ``source`` a derived pairs table keeps (:data:`CARRY`), and the
    pairs schema with them appended, so the source's row filter still applies to it."""
    carried = [c for c in CARRY if c in source.column_names]
    schema = pairs_schema()
    for c in carried:
        schema = schema.append(source.schema.field(c))
    return carried, schema


def pair_id(document_id: str, kind: str, prompt: str, response: str) -> str:
    """A stable key: the same pair of the same document always gets the same id."""
    raw = "\x1f".join((document_id, kind, prompt, response)).encode()
    return hashlib.sha256(raw).hexdigest()[:20]


def training_format(content: str) -> str:
    """The deterministic pairs of ``content`` as a JSON string: the body of the
    ``training_format`` column in the seed's ``withColumn(...)`` step."""
    return json.dumps(create_training_pair(content or ""), ensure_ascii=False)


def pairs_table(
    documents: pa.Table, *, generator: Any = None, kinds: Sequence[str] = KINDS, carry: Sequence[str] = CARRY
) -> pa.Table:
    """One row per pair, keyed by ``pair_id`` and traceable to ``document_id``.

    ``carry`` names document columns copied onto each pair (after :data:`COLUMNS`) when the
    documents have them: by default ``department``, so pairs made from governed documents keep
    the column their row filter decides on.

    ``documents`` needs ``document_id`` and ``content`` (``title`` is used when present).
    ``generator`` is ``None`` for the deterministic rules (limited to ``kinds``), an object
    with ``generate_many([(content, title), ...])`` such as
    :class:`~llmforge.pairs.ModelPairGenerator`, or a callable ``(content, title) -> pairs``.
    """
    import pyarrow as pa

    missing = [c for c in ("document_id", "content") if c not in documents.column_names]
    if missing:
        raise DataError(
            f"documents table lacks column(s) {missing}; it has {documents.column_names}. "
            "Load documents with llmforge.loaders.load_documents."
        )
    ids = documents.column("document_id").to_pylist()
    contents = documents.column("content").to_pylist()
    titles = documents.column("title").to_pylist() if "title" in documents.column_names else [None] * len(ids)
    docs = list(zip(contents, titles, strict=True))
    if generator is None:
        per_doc = [create_training_pair(c or "", t, kinds=kinds) for c, t in docs]
    elif hasattr(generator, "generate_many"):
        per_doc = generator.generate_many([(c or "", t) for c, t in docs])
    else:
        per_doc = [generator(c or "", t) for c, t in docs]
    carried = [c for c in carry if c in documents.column_names and c not in COLUMNS]
    extra = {c: documents.column(c).to_pylist() for c in carried}
    rows: dict[str, list] = {c: [] for c in (*COLUMNS, *carried)}
    for d, (doc_id, pairs) in enumerate(zip(ids, per_doc, strict=True)):
        if doc_id is None:
            raise DataError("documents table has a null document_id; every document needs a key")
        seen = set()
        for p in pairs:
            pid = pair_id(doc_id, p["kind"], p["prompt"], p["response"])
            if pid in seen:
                continue
            seen.add(pid)
            for col, value in (
                ("document_id", doc_id),
                ("pair_id", pid),
                ("kind", p["kind"]),
                ("prompt", p["prompt"]),
                ("response", p["response"]),
                ("messages", p["messages"]),
                ("text", f"{p['prompt']}\n{p['response']}" if p["prompt"] else p["response"]),
            ):
                rows[col].append(value)
            for col in carried:
                rows[col].append(extra[col][d])
    schema = pairs_schema()
    for col in carried:
        schema = schema.append(documents.schema.field(col))
    return pa.table(rows, schema=schema)
