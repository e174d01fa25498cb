"""Identity-aware retrieval-augmented answers with citations and answer-to-row lineage.

``forge.rag.ask(question, user=...)``: input guards -> retrieve (the catalog's row filter for
the index's source table ANDed into whatever filters the request carries: a request
narrows, never widens) -> prompt -> generator -> output guards -> answer with citations.
Every answer is logged to ``system.llmforge.request_log`` (one row: question, user, index
version, rows used, model) and to catalog lineage (``table:src@v`` and ``index:name@v`` ->
``answer:<request_id>``, with the primary keys used), so "which rows produced this answer?"
is one lookup: ``forge.rag.lineage(request_id)``.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from llmforge.components import GuardResult, Usage
from llmforge.errors import AlreadyExistsError, ConfigError, DataError, NotFoundError
from llmforge.vector_filters import and_filters

DEFAULT_TEMPLATE = ("Use the following context to answer the question.\n\nContext:\n{context}\n\n"
                    "Question: {question}\n\nAnswer:")
REQUEST_LOG = "system.llmforge.request_log"
NO_ANSWER = "I don't know: nothing in the documents you can access answers this question."
REFUSED_INPUT = "I can't help with that request."
REFUSED_OUTPUT = "I don't know: the generated answer was not supported by the retrieved documents."
MAX_QUESTION_CHARS = 4000


@dataclass
class Answer:
    text: str
    request_id: str
    #: one per chunk used: source_table, delta_version, primary_key, document_id, chunk_id, score
    citations: list[dict] = field(default_factory=list)
    guards: list[GuardResult] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    #: a guard blocked the question or the answer
    refused: bool = False
    #: nothing relevant was retrieved above the score threshold ("I don't know")
    no_answer: bool = False
    question: str = ""
    user: str | None = None
    index: str = ""
    index_version: int | None = None
    model: str = ""
    contexts: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        """JSON-ready: for the CLI (``--json``) and the server."""
        out = asdict(self)
        out["usage"]["total_tokens"] = self.usage.total_tokens
        return out


def _log_schema() -> Any:
    import pyarrow as pa

    return pa.schema([
        ("request_id", pa.string()), ("ts", pa.timestamp("us", tz="UTC")), ("user", pa.string()),
        ("question", pa.string()), ("index_name", pa.string()), ("index_version", pa.int64()),
        ("source_table", pa.string()), ("rows_used", pa.string()), ("model", pa.string()),
        ("answer", pa.string()), ("refused", pa.bool_()), ("no_answer", pa.bool_()),
        ("prompt_tokens", pa.int64()), ("completion_tokens", pa.int64()), ("guards", pa.string()),
    ])


class RAG:
    """Retrieval-augmented answers for one project (``forge.rag``)."""

    def __init__(self, forge: Any) -> None:
        self.forge = forge

    @property
    def template(self) -> str:
        tpl = self.forge.config.rag.prompt_template or DEFAULT_TEMPLATE
        if "{context}" not in tpl or "{question}" not in tpl:
            raise ConfigError("rag.prompt_template must contain {context} and {question}")
        return tpl

    def prompt(self, question: str, contexts: list[str]) -> str:
        context = "\n\n".join(f"[{i + 1}] {c}" for i, c in enumerate(contexts))
        try:
            return self.template.format(context=context, question=question)
        except (KeyError, IndexError, ValueError) as exc:
            raise ConfigError(f"rag.prompt_template has a placeholder other than {{context}} and "
                              f"{{question}} ({exc}); double other braces: {{{{ }}}}") from None

    def ask(self, question: str, user: str | None = None, index: str | None = None,
            num_results: int | None = None, filters: Any = None, query_type: str | None = None) -> Answer:
        """Answer ``question`` for ``user`` (default ``forge.user``) from ``index``."""
        rc = self.forge.config.rag
        if not isinstance(question, str) or not question.strip():
            raise DataError("the question is empty; ask something")
        if len(question) > MAX_QUESTION_CHARS:
            raise DataError(f"the question has {len(question)} characters; the limit is {MAX_QUESTION_CHARS}")
        user = user or self.forge.user
        ans = Answer(text="", request_id=uuid.uuid4().hex, question=question, user=user,
                     index=index or rc.index)
        guards = self.forge.guardrails
        for g in guards:
            r = g.check_input(question, user=user)
            if r is not None:
                ans.guards.append(r)
        if any(not r.passed for r in ans.guards):
            ans.text, ans.refused = REFUSED_INPUT, True
            return self._finish(ans, None, [])
        k = rc.num_results if num_results is None else num_results
        desc, rows = self._retrieve(ans, question, user, k,
                                         filters, query_type or rc.query_type, rc.score_threshold)
        if not rows:
            ans.text, ans.no_answer = NO_ANSWER, True
            return self._finish(ans, desc, [])
        ans.contexts = [r["text"] for r in rows]
        messages = [{"role": "user", "content": self.prompt(question, ans.contexts)}]
        completion = self.forge.generator.chat(messages, max_tokens=rc.max_tokens, temperature=0.0)
        ans.usage, ans.model, ans.text = completion.usage, completion.model, completion.text
        for g in guards:
            r = g.check_output(question, completion.text, ans.contexts)
            if r is not None:
                ans.guards.append(r)
        if any(not r.passed for r in ans.guards):
            ans.text, ans.refused = REFUSED_OUTPUT, True
        return self._finish(ans, desc, rows)

    # --- retrieval ---------------------------------------------------------------------
    def _retrieve(self, ans: Answer, question: str, user: str | None, k: int, filters: Any,
                  query_type: str, threshold: float) -> tuple[dict, list[dict]]:
        idx = self.forge.vector_search.get_index(index_name=ans.index)
        desc = idx.describe()
        ans.index_version = desc.get("index_version")
        spec = desc.get("delta_sync_index_spec") or {}
        source = spec.get("source_table")
        pk = desc["primary_key"]
        text_col = (spec.get("embedding_source_columns") or [{}])[0].get("name")
        if not source or not text_col:
            raise DataError(f"index '{ans.index}' is not a delta-sync index over a text column; "
                            f"RAG needs one so answers can cite their source rows")
        cat = self.forge.catalog
        cat.check(user, "SELECT", source)
        # ANDed here as well as inside the local index, so a remote index (which knows nothing
        # of our catalog) is narrowed just the same
        combined = and_filters(filters, cat.row_filter_for(source, user))
        synced = spec.get("columns_to_sync") or []
        doc_col = next((c for c in ("document_id", "doc_id") if c in synced and c != pk), None)
        local = hasattr(idx, "as_user")  # the local handle also knows chunk ids and row versions
        columns = [pk, text_col] + ([doc_col] if doc_col else [])
        columns += ["_chunk_id", "_version"] if local else []
        extra = {"user": user} if local else {}
        res = idx.similarity_search(columns=columns, query_text=question, filters=combined,
                                    num_results=k, score_threshold=threshold, query_type=query_type, **extra)
        names = [c["name"] for c in res["manifest"]["columns"]]
        rows = []
        for values in res["result"].get("data_array", []):
            r = dict(zip(names, values, strict=True))
            rows.append({"text": r[text_col] or "", "citation": {
                "source_table": source,
                "delta_version": r.get("_version", desc.get("synced_version")),
                "primary_key": r[pk], "document_id": r.get(doc_col, r[pk]) if doc_col else r[pk],
                "chunk_id": r.get("_chunk_id", 0), "score": r["score"]}})
        return desc, rows

    # --- logging and lineage ---------------------------------------------------------------
    def _finish(self, ans: Answer, desc: dict | None, rows: list[dict]) -> Answer:
        ans.citations = [r["citation"] for r in rows]
        self._log(ans, (desc or {}).get("delta_sync_index_spec", {}).get("source_table"))
        if desc is not None:
            self._record_lineage(ans)
        return ans

    def _log_table(self) -> Any:
        from llmforge.catalog import SYSTEM

        t = self.forge.table(REQUEST_LOG, user=SYSTEM)
        if not t.exists:
            try:
                t.create(_log_schema(), primary_key="request_id", comment="one row per RAG answer")
            except AlreadyExistsError:  # another request created it first
                pass
        return t

    def _log(self, ans: Answer, source: str | None) -> None:
        import pyarrow as pa

        row = {"request_id": ans.request_id, "ts": datetime.now(UTC), "user": ans.user,
               "question": ans.question, "index_name": ans.index, "index_version": ans.index_version,
               "source_table": source, "rows_used": json.dumps(ans.citations, default=str),
               "model": ans.model, "answer": ans.text, "refused": ans.refused, "no_answer": ans.no_answer,
               "prompt_tokens": ans.usage.prompt_tokens, "completion_tokens": ans.usage.completion_tokens,
               "guards": json.dumps([asdict(g) for g in ans.guards], default=str)}
        self._log_table().append(pa.Table.from_pylist([row], schema=_log_schema()), job="rag.ask")

    def _record_lineage(self, ans: Answer) -> None:
        cat, target = self.forge.catalog, f"answer:{ans.request_id}"
        cat.record_lineage([f"index:{ans.index}@{ans.index_version}"], target, job="rag.ask",
                           run_id=ans.request_id)
        by_version: dict[str, list] = {}
        for c in ans.citations:
            node = f"table:{c['source_table']}@{c['delta_version']}"
            by_version.setdefault(node, []).append(c["primary_key"])
        for node, keys in by_version.items():
            cat.record_lineage([node], target, job="rag.ask", run_id=ans.request_id,
                               row_keys={k: [ans.request_id] for k in keys})

    def lineage(self, request_id: str, user: str | None = None) -> dict:
        """What produced answer ``request_id``: its log row, the rows it used, lineage edges.

        The asker may look up their own answers; anyone else needs SELECT on the request log.
        """
        import pyarrow.compute as pc

        from llmforge.catalog import SYSTEM

        t = self.forge.table(REQUEST_LOG, user=SYSTEM)
        if not t.exists:
            raise NotFoundError(f"no answers have been logged yet ({REQUEST_LOG} does not exist)")
        log = t.read()
        hit = log.filter(pc.equal(log.column("request_id"), request_id)).to_pylist()
        if not hit:
            raise NotFoundError(f"no answer with request_id {request_id!r} in {REQUEST_LOG}")
        row = hit[0]
        user = user or self.forge.user
        if user != row["user"]:
            self.forge.catalog.check(user, "SELECT", REQUEST_LOG)
        node = f"answer:{request_id}"
        return {"request": {k: v for k, v in row.items() if k not in ("rows_used", "guards")},
                "rows": json.loads(row["rows_used"]), "guards": json.loads(row["guards"]),
                "edges": self.forge.catalog.upstream(node, depth=1),
                "row_keys": self.forge.catalog.upstream_rows(node, request_id)}
