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

from llmforge.components import Completion, GuardResult, Hit, IndexInfo, Table, Usage
from llmforge.errors import AlreadyExistsError, ConfigError, DataError, NotFoundError
from llmforge.guard import (
    CONTEXT_NOTICE,
    GuardOutcome,
    apply_input_guards,
    apply_output_guards,
    fence_contexts,
    map_citations,
)
from llmforge.prompting import (
    DEFAULT_TEMPLATE,
    STOP,
    SYSTEM,
    best_quote,
    disagrees,
    first_sentences,
    rag_messages,
    trim_answer,
)

REQUEST_LOG = "system.llmforge.request_log"
#: tokens a chat template adds around the prompt (role markers), for the quota's upper bound
PROMPT_OVERHEAD_TOKENS = 64
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
    #: what the generator wrote (trimmed), kept when a guard replaced it with a refusal
    generated: str = ""
    #: the model's answer failed the guards and a retrieved fact is quoted instead
    quoted: bool = False

    def to_dict(self) -> dict:
        """JSON-ready: for the CLI (``--json``) and the server."""
        out = asdict(self)
        out["usage"]["total_tokens"] = self.usage.total_tokens
        return out


def _log_schema() -> Any:
    import pyarrow as pa

    return pa.schema(
        [
            ("request_id", pa.string()),
            ("ts", pa.timestamp("us", tz="UTC")),
            ("user", pa.string()),
            ("question", pa.string()),
            ("index_name", pa.string()),
            ("index_version", pa.int64()),
            ("source_table", pa.string()),
            ("rows_used", pa.string()),
            ("model", pa.string()),
            ("answer", pa.string()),
            ("refused", pa.bool_()),
            ("no_answer", pa.bool_()),
            ("prompt_tokens", pa.int64()),
            ("completion_tokens", pa.int64()),
            ("guards", pa.string()),
        ]
    )


class RAG:
    """Retrieval-augmented answers for one project (``forge.rag``)."""

    def __init__(self, forge: Any) -> None:
        self.forge = forge
        self._log_ready: set[str] = set()

    @property
    def template(self) -> str:
        tpl = self.forge.config.rag.prompt_template or DEFAULT_TEMPLATE
        if "{context}" not in tpl or "{question}" not in tpl:
            raise ConfigError("rag.prompt_template must contain {context} and {question}")
        return tpl

    def messages(self, question: str, contexts: list[str]) -> list[dict[str, str]]:
        """The chat messages for ``question`` over ``contexts`` (:mod:`llmforge.prompting`)."""
        try:
            return rag_messages(question, contexts, self.template, system=f"{SYSTEM} {CONTEXT_NOTICE}")
        except (KeyError, IndexError, ValueError) as exc:
            raise ConfigError(
                f"rag.prompt_template has a placeholder other than {{context}} and "
                f"{{question}} ({exc}); double other braces: {{{{ }}}}"
            ) from None

    def ask(
        self,
        question: str,
        user: str | None = None,
        index: str | None = None,
        num_results: int | None = None,
        filters: Any = None,
        query_type: str | None = None,
    ) -> Answer:
        """Answer ``question`` for ``user`` (default ``forge.user``) from ``index``.

        One path down: the principal is resolved once and passed to every step; the index
        backend ANDs its row filter into the search (:func:`llmforge.vector_filters.governed`);
        the tokens are held in the quota ledger before generation and settled after.
        """
        rc = self.forge.config.rag
        if not isinstance(question, str) or not question.strip():
            raise DataError("the question is empty; ask something")
        if len(question) > MAX_QUESTION_CHARS:
            raise DataError(f"the question has {len(question)} characters; the limit is {MAX_QUESTION_CHARS}")
        principal = self.forge.catalog.principal(user or self.forge.user)
        ans = Answer(
            text="",
            request_id=uuid.uuid4().hex,
            question=question,
            user=principal.name,
            index=index or rc.index,
        )
        guards = self.forge.guardrails
        ans.guards, refused = apply_input_guards(guards, question, user=principal.name)
        if refused:
            ans.text, ans.refused = REFUSED_INPUT, True
            return self._finish(ans, None, [])
        idx = self.forge.vector_search.get_index(index_name=ans.index)
        info = idx.info()
        ans.index_version = info.version
        hits = idx.retrieve(
            question,
            user=principal,
            num_results=rc.num_results if num_results is None else num_results,
            filters=filters,
            query_type=query_type or rc.query_type,
            score_threshold=rc.score_threshold,
        )
        if not hits:
            ans.text, ans.no_answer = NO_ANSWER, True
            return self._finish(ans, info, [])
        ans.contexts = [h.text for h in hits]
        # instructions inside retrieved documents are data: fenced before the model reads them
        fenced, _ = fence_contexts(ans.contexts)
        messages = self.messages(question, fenced)

        def generate(instruction: str | None = None) -> str:
            extra = [{"role": "user", "content": instruction}] if instruction else []
            completion = self._generate(messages + extra, principal)
            ans.usage = Usage(
                ans.usage.prompt_tokens + completion.usage.prompt_tokens,
                ans.usage.completion_tokens + completion.usage.completion_tokens,
                ans.usage.cached_tokens + completion.usage.cached_tokens,
            )
            ans.model = completion.model
            return first_sentences(trim_answer(completion.text), rc.max_sentences)

        ans.generated = generate()
        outcome = apply_output_guards(guards, question, ans.generated, ans.contexts, regenerate=generate)
        ans.guards += outcome.verdicts
        if rc.fallback == "quote":
            found = best_quote(question, ans.contexts)
            # the guards refused the model's answer, or the best retrieved fact pins the value
            # down (a date, an amount, a ``key: value``) and the answer states none of it
            if found and (outcome.refused or disagrees(question, ans.generated, found[1])):
                outcome = self._quote(question, ans, guards, found) or outcome
            if outcome.refused and rc.quote_min_similarity:
                # no fact that passes pins the answer down: the sentence that means most nearly the
                # question, if it passes the guards too
                from llmforge.guard.semantic import closest_sentences

                for near in closest_sentences(question, ans.contexts, rc.quote_min_similarity):
                    quoted = None if near == found else self._quote(question, ans, guards, near)
                    if quoted is not None:
                        outcome = quoted
                        break
        if outcome.refused:
            ans.text, ans.refused = REFUSED_OUTPUT, True
        else:
            ans.text = map_citations(outcome.answer, [{} for _ in hits]).text
        return self._finish(ans, info, hits)

    def _quote(self, question: str, ans: Answer, guards: list, found: tuple[int, str]) -> GuardOutcome | None:
        """``found`` (chunk index, fact) quoted with its ``[n]``, if it passes the output guards
        too (so a quote never bypasses PII checks)."""
        quote = f"{found[1]} [{found[0] + 1}]"
        outcome = apply_output_guards(guards, question, quote, ans.contexts)
        for v in outcome.verdicts:
            v.details["fallback"] = "quote"
        ans.guards += outcome.verdicts
        if outcome.refused:
            return None
        ans.quoted = True
        return outcome

    def _generate(self, messages: list[dict[str, str]], principal: Any) -> Completion:
        """One generation for ``principal``, its tokens held in the quota ledger before and
        settled after; the generator routes ``user`` to the adapter they are entitled to."""
        rc = self.forge.config.rag
        # an upper bound before generation: a token is at least one byte of the prompt
        size = sum(len(m["content"].encode("utf-8", "surrogatepass")) for m in messages)
        with self.forge.quotas.hold(
            principal.departments, size + PROMPT_OVERHEAD_TOKENS + rc.max_tokens
        ) as held:
            completion = self.forge.generator.chat(
                messages, max_tokens=rc.max_tokens, temperature=0.0, stop=list(STOP), user=principal.name
            )
            held.used = completion.usage.total_tokens
        return completion

    # --- logging and lineage ---------------------------------------------------------------
    def _finish(self, ans: Answer, info: IndexInfo | None, hits: list[Hit]) -> Answer:
        source = info.source_table if info else None
        fallback = info.synced_version if info else None
        ans.citations = [
            {
                "source_table": source,
                "delta_version": fallback if h.source_version is None else h.source_version,
                "primary_key": h.primary_key,
                "document_id": h.primary_key if h.document_id is None else h.document_id,
                "chunk_id": h.chunk_id,
                "score": h.score,
                # the answer's [n] markers name citations by this number
                "marker": n,
            }
            for n, h in enumerate(hits, start=1)
        ]
        self._log(ans, source)
        if info is not None:
            self._record_lineage(ans)
        return ans

    def log_table(self) -> Table:
        """The request log (``rag.request_log``), created on first use, owned by the system."""
        from llmforge.catalog import SYSTEM

        name = self.forge.config.rag.request_log
        t = self.forge.table(name, user=SYSTEM)
        if name not in self._log_ready:
            if not t.exists:
                try:
                    # no declared key: request ids are fresh UUIDs, and a key would make every
                    # append scan all earlier ids for uniqueness
                    t.create(_log_schema(), comment="one row per RAG answer")
                except AlreadyExistsError:  # another request created it first
                    pass
            self._log_ready.add(name)
        return t

    def _log(self, ans: Answer, source: str | None) -> None:
        import pyarrow as pa

        row = {
            "request_id": ans.request_id,
            "ts": datetime.now(UTC),
            "user": ans.user,
            "question": ans.question,
            "index_name": ans.index,
            "index_version": ans.index_version,
            "source_table": source,
            "rows_used": json.dumps(ans.citations, default=str),
            "model": ans.model,
            "answer": ans.text,
            "refused": ans.refused,
            "no_answer": ans.no_answer,
            "prompt_tokens": ans.usage.prompt_tokens,
            "completion_tokens": ans.usage.completion_tokens,
            "guards": json.dumps([asdict(g) for g in ans.guards], default=str),
        }
        self.log_table().append(pa.Table.from_pylist([row], schema=_log_schema()), job="rag.ask")

    def _record_lineage(self, ans: Answer) -> None:
        cat, target = self.forge.catalog, f"answer:{ans.request_id}"
        cat.record_lineage(
            [f"index:{ans.index}@{ans.index_version}"], target, job="rag.ask", run_id=ans.request_id
        )
        by_version: dict[str, list] = {}
        for c in ans.citations:
            node = f"table:{c['source_table']}@{c['delta_version']}"
            by_version.setdefault(node, []).append(c["primary_key"])
        for node, keys in by_version.items():
            row_keys = {k: [ans.request_id] for k in keys}
            cat.record_lineage([node], target, job="rag.ask", run_id=ans.request_id, row_keys=row_keys)

    def lineage(self, request_id: str, user: str | None = None) -> dict:
        """What produced answer ``request_id``: its log row, the rows it used, lineage edges.

        The asker may look up their own answers; anyone else needs SELECT on the request log.
        """
        import pyarrow.compute as pc

        name = self.forge.config.rag.request_log
        log = self.log_table().read()
        hit = log.filter(pc.equal(log.column("request_id"), request_id)).to_pylist()
        if not hit:
            raise NotFoundError(f"no answer with request_id {request_id!r} in {name}")
        row = hit[0]
        user = user or self.forge.user
        if user != row["user"]:
            self.forge.catalog.check(user, "SELECT", name)
        node = f"answer:{request_id}"
        return {
            "request": {k: v for k, v in row.items() if k not in ("rows_used", "guards")},
            "rows": json.loads(row["rows_used"]),
            "guards": json.loads(row["guards"]),
            "edges": self.forge.catalog.upstream(node, depth=1),
            "row_keys": self.forge.catalog.upstream_rows(node, request_id),
        }
