"""Retrieval-augmented fine-tuning examples (RAFT, Zhang et al. 2024): teach the model to read.

Each question/answer pair becomes a chat example built exactly as ``forge.rag.ask`` prompts
at serving (:func:`llmforge.prompting.rag_messages`): the question over the gold document's
chunk shuffled among distractor chunks of other documents, answered with the pair's answer
and the ``[n]`` of the chunk it came from. A share of examples leaves the gold chunk out, and
their answer is "I don't know." — so the model learns to answer from what it is shown, not
from memory, and to say so when the context does not hold the answer.

Distractors are the documents most similar to the question (shared rare words), so they are
the hard negatives a real retriever returns. Everything is deterministic given ``seed``.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from llmforge.errors import DataError
from llmforge.pairs.table import carried_schema, pair_id
from llmforge.prompting import NO_ANSWER_TEXT, SYSTEM, rag_messages, terms

if TYPE_CHECKING:
    import pyarrow as pa


@dataclass(frozen=True)
class RaftOptions:
    #: distractor chunks per example (the index's ``num_results`` minus one is a good choice)
    distractors: int = 3
    #: share of examples whose context leaves the gold chunk out (answer: "I don't know.")
    no_answer_rate: float = 0.2
    #: prompt template with ``{context}`` and ``{question}`` (None: the serving default)
    template: str | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if self.distractors < 0:
            raise DataError(f"distractors must be >= 0, got {self.distractors}")
        if not 0.0 <= self.no_answer_rate < 1.0:
            raise DataError(f"no_answer_rate must be in [0, 1), got {self.no_answer_rate}")


class _Similar:
    """Documents ranked by the question's rare words (a retriever's hard negatives)."""

    def __init__(self, texts: Sequence[str]) -> None:
        self.terms = [set(terms(t)) for t in texts]
        df = Counter(t for ts in self.terms for t in ts)
        self.idf = {t: math.log(1 + len(texts) / n) for t, n in df.items()}

    def ranked(self, question: str) -> list[int]:
        q = set(terms(question))
        scores = [sum(self.idf[t] for t in q & ts) for ts in self.terms]
        return sorted(range(len(scores)), key=lambda i: (-scores[i], i))


def raft_table(pairs: pa.Table, documents: pa.Table, options: RaftOptions | None = None) -> pa.Table:
    """RAFT chat examples for every pair of ``pairs`` whose document is in ``documents``.

    ``pairs`` needs ``document_id``, ``prompt`` (the question) and ``response`` (the answer);
    ``documents`` needs ``document_id`` and ``content``. The result has the pairs-table
    columns (``kind`` is ``raft`` or ``raft_no_answer``) plus the carried policy columns of the
    pairs (e.g. ``department``), so a row filter still applies to it.
    """
    import pyarrow as pa

    from llmforge.guard.injection import CONTEXT_NOTICE, fence_contexts

    opts = options or RaftOptions()
    for table, name, cols in (
        (pairs, "pairs", ("document_id", "prompt", "response")),
        (documents, "documents", ("document_id", "content")),
    ):
        missing = [c for c in cols if c not in table.column_names]
        if missing:
            raise DataError(f"the {name} table lacks column(s) {missing}; it has {table.column_names}")
    doc_ids = documents.column("document_id").to_pylist()
    texts = [t or "" for t in documents.column("content").to_pylist()]
    where = {d: i for i, d in enumerate(doc_ids)}
    similar = _Similar(texts)
    rng = random.Random(opts.seed)
    carried, schema = carried_schema(pairs)
    rows: dict[str, list] = {name: [] for name in schema.names}
    for pair in pairs.to_pylist():
        gold = where.get(pair["document_id"])
        question, answer = pair["prompt"], pair["response"]
        if gold is None or not question or not answer:
            continue
        others = [i for i in similar.ranked(question) if i != gold][: opts.distractors]
        with_gold = rng.random() >= opts.no_answer_rate or not others
        chosen = [*others, gold] if with_gold else others
        rng.shuffle(chosen)
        # exactly what ``forge.rag.ask`` shows the model: fenced chunks, the serving system prompt
        contexts, _ = fence_contexts([texts[i] for i in chosen])
        if with_gold:
            reply = f"{answer.rstrip()} [{chosen.index(gold) + 1}]"
            kind = "raft"
        else:
            reply, kind = NO_ANSWER_TEXT, "raft_no_answer"
        messages = rag_messages(question, contexts, opts.template, system=f"{SYSTEM} {CONTEXT_NOTICE}")
        prompt = messages[-1]["content"]
        messages.append({"role": "assistant", "content": reply})
        rows["document_id"].append(pair["document_id"])
        rows["pair_id"].append(pair_id(pair["document_id"], kind, prompt, reply))
        rows["kind"].append(kind)
        rows["prompt"].append(prompt)
        rows["response"].append(reply)
        rows["messages"].append(messages)
        rows["text"].append(f"{prompt}\n{reply}")
        for c in carried:
            rows[c].append(pair[c])
    if not rows["pair_id"]:
        raise DataError(
            "no RAFT example could be built: no pair's document_id is in the documents table "
            "(or every pair lacks a prompt or response); build pairs from these documents first"
        )
    return pa.table(rows, schema=schema)


def raft_examples(pairs: pa.Table, documents: pa.Table, **options: Any) -> pa.Table:
    """:func:`raft_table` with options as keywords (``distractors=3, no_answer_rate=0.2, ...``)."""
    return raft_table(pairs, documents, RaftOptions(**options))
