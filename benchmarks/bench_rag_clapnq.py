"""RAG end to end on ClapNQ with the default local model: answers, refusals, retrieval, guard cost.

Questions are sampled from ClapNQ's answerable and unanswerable files (``--n`` of each kind,
``--seed``); in ClapNQ an unanswerable question comes with an on-topic passage that does not
answer it, so refusing needs more than "nothing was retrieved". The passages of the sampled
questions plus ``--distractors`` passages of other questions are ingested into a Delta table
and indexed (MiniLM, FAISS) by the real local backend; each question is asked through
``forge.rag.ask`` (SmolLM2-135M-Instruct, the guards as configured by default).

Measured:

- **answered** on answerable questions (not refused, not "I don't know"; aim >= 80%) and
  **refused** on unanswerable ones (aim >= 70%);
- **correct** on answerable questions: the answer holds at least half of the gold answer's
  content words (lower-cased words less stop words, as a set: token recall >= 0.5); ClapNQ's
  gold answers are long sentences, so containment of the whole gold is too strict. Mean token
  recall and ROUGE-L F1 (longest common subsequence of words) against gold are reported too;
  a refusal scores 0 on all three;
- **recall@k** and MRR of the question's own passage among the citations (k = ``rag.num_results``);
- **guard cost**: time spent in the guards (input and output checks, the quote fallback's
  check) per answer, against the generation time of the same answers.

The abstention thresholds (the faithfulness guard's ``min_question_support`` on the question's
words and ``min_question_similarity`` on its meaning) are chosen on the dev half of the
questions (split by id hash; the setting farthest inside both aims there) and reported on the
test half, beside the shipped defaults: every
question is asked once with both checks off, recording both scores, so the decision at any
threshold is exact (the scores depend on the question and retrieved context only).

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_rag_clapnq.py [--n 40] [--seed 0]
        [--distractors 120] [--rows FILE] [--from-rows FILE] [--json PATH]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))

from _results import add_json_option, figure, write_json  # noqa: E402

DOCS = "main.clapnq.passages"
INDEX = "main.clapnq.passages_index"
_WORD = re.compile(r"[a-z0-9]+")


def load(data: Path) -> list[dict]:
    rows = []
    for kind, name in (("answerable", "dev_answerable.jsonl"), ("unanswerable", "dev_unanswerable.jsonl")):
        for line in (data / name).read_text().splitlines():
            rec = json.loads(line)
            p = rec["passages"][0]
            rows.append(
                {
                    "id": rec["id"],
                    "kind": kind,
                    "doc": f"{kind[0]}{rec['id']}",
                    "question": rec["input"],
                    "answer": (rec.get("output") or [{}])[0].get("answer", ""),
                    "passage": f"{p['title']}\n{p['text'].strip()}",
                }
            )
    return rows


def half(rec: dict) -> str:
    """The same split as bench_guard.py: by a hash of the question id."""
    return "dev" if int(hashlib.sha1(rec["id"].encode()).hexdigest(), 16) % 2 == 0 else "test"


def words(text: str) -> list[str]:
    from llmforge.text import STOP_WORDS

    return [w for w in _WORD.findall(text.lower()) if w not in STOP_WORDS]


def token_recall(answer: str, gold: str) -> float:
    g = set(words(gold))
    return len(g & set(words(answer))) / len(g) if g else 0.0


def rouge_l(answer: str, gold: str) -> float:
    a, g = _WORD.findall(answer.lower()), _WORD.findall(gold.lower())
    if not a or not g:
        return 0.0
    prev = [0] * (len(g) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(g):
            cur.append(prev[j] + 1 if x == y else max(prev[j + 1], cur[j]))
        prev = cur
    lcs = prev[-1]
    if not lcs:
        return 0.0
    p, r = lcs / len(a), lcs / len(g)
    return 2 * p * r / (p + r)


def sample(rows: list[dict], n: int, distractors: int, seed: int) -> tuple[list[dict], list[dict]]:
    """``n`` questions of each kind (half of them from each half), and the passages to index."""
    rng = random.Random(seed)
    asked = []
    for kind in ("answerable", "unanswerable"):
        for part, size in (("dev", n // 2), ("test", n - n // 2)):
            pool = [r for r in rows if r["kind"] == kind and half(r) == part]
            asked += rng.sample(pool, min(size, len(pool)))
    ids = {r["doc"] for r in asked}
    rest = [r for r in rows if r["doc"] not in ids]
    docs = asked + rng.sample(rest, min(distractors, len(rest)))
    return asked, docs


def build(home: Path, docs: list[dict], model: str, support: float | None):
    import pyarrow as pa

    import llmforge

    off = {"min_question_support": 0.0, "min_question_similarity": 0.0}
    faith = {"name": "faithfulness", "options": {} if support is None else off}
    forge = llmforge.connect(
        backend="local",
        home=str(home),
        user="admin",
        config={"rag": {"index": INDEX}, "guardrails": [faith, "prompt_injection"]},
        generator={"name": "local", "options": {"model": model}},
    )
    table = pa.table(
        {"document_id": [d["doc"] for d in docs], "content": [d["passage"] for d in docs]},
    )
    forge.table(DOCS).create(table, primary_key="document_id")
    forge.vector_search.create_delta_sync_index(
        endpoint_name="vs",
        source_table_name=DOCS,
        index_name=INDEX,
        primary_key="document_id",
        embedding_source_column="content",
        columns_to_sync=["document_id"],
    )
    return forge


class Timer:
    """Seconds spent in wrapped calls since the last ``take()``."""

    def __init__(self) -> None:
        self.spent = 0.0

    def wrap(self, fn):
        def timed(*a, **kw):
            t = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                self.spent += time.perf_counter() - t

        return timed

    def take(self) -> float:
        spent, self.spent = self.spent, 0.0
        return spent


def instrument(forge) -> tuple[Timer, Timer]:
    """Timers around the generator and around every guard check of this project."""
    gen, guard = Timer(), Timer()
    g = forge.generator
    g.chat = gen.wrap(g.chat)
    for gd in forge.guardrails:
        for m in ("check_input", "check_output"):
            if hasattr(gd, m):
                setattr(gd, m, guard.wrap(getattr(gd, m)))
    return gen, guard


def support_of(ans) -> float | None:
    scores = [v.details.get("question_support") for v in ans.guards if v.guard == "faithfulness"]
    scores = [s for s in scores if s is not None]
    return min(scores) if scores else None


def similarity_of(question: str, contexts: list[str]) -> float | None:
    """The faithfulness guard's question-similarity score for these contexts (the run turns the
    check off, so every answer's score is recorded and any threshold can be applied after)."""
    from llmforge.guard.facts import windows
    from llmforge.guard.faithfulness import DEFAULT, question_similarity

    contexts = [c for c in contexts if c and c.strip()]
    return question_similarity(question, contexts, windows(contexts, DEFAULT.window)) if contexts else None


def ask_all(forge, asked: list[dict]) -> list[dict]:
    gen, guard = instrument(forge)
    k = forge.config.rag.num_results
    out = []
    for q in asked:
        t = time.perf_counter()
        ans = forge.rag.ask(q["question"])
        total = time.perf_counter() - t
        docs = [c["document_id"] for c in ans.citations]
        rank = docs.index(q["doc"]) + 1 if q["doc"] in docs else None
        refused_support = any(
            v.guard == "faithfulness" and not v.passed and v.details.get("unanswerable") for v in ans.guards
        )
        answered = not (ans.refused or ans.no_answer)
        out.append(
            {
                **{key: q[key] for key in ("id", "kind", "question", "answer", "doc")},
                "half": half(q),
                "text": ans.text,
                "generated": ans.generated,
                "answered": answered,
                "refused_by_support": refused_support,
                "quoted": ans.quoted,
                "support": support_of(ans),
                "similarity": similarity_of(q["question"], ans.contexts),
                "rank": rank,
                "hit": rank is not None and rank <= k,
                "recall": token_recall(ans.text, q["answer"]) if answered else 0.0,
                "rouge_l": rouge_l(ans.text, q["answer"]) if answered else 0.0,
                "gen_s": gen.take(),
                "guard_s": guard.take(),
                "total_s": total,
            }
        )
    return out


def outcome(
    rows: list[dict], threshold: float, similarity: float = 0.0, trusted: float | None = None
) -> list[dict]:
    """Each row as it comes out with the guard's question checks at these thresholds: words
    under ``threshold``, or meaning under ``similarity`` where the words are under ``trusted``
    (the guard's ``question_support_trusted``, default as shipped). The run turned both checks
    off, so a threshold only adds refusals."""
    from llmforge.guard.faithfulness import DEFAULT

    trusted = DEFAULT.question_support_trusted if trusted is None else trusted
    out = []
    for r in rows:
        support, sim = r["support"], r.get("similarity")
        low_words = support is not None and support < threshold
        low_meaning = support is not None and support < trusted and sim is not None and sim < similarity
        cut = (low_words or low_meaning) and r["answered"]
        out.append(
            {**r, "answered": r["answered"] and not cut} | ({"recall": 0.0, "rouge_l": 0.0} if cut else {})
        )
    return out


def summary(rows: list[dict]) -> dict:
    ans = [r for r in rows if r["kind"] == "answerable"]
    una = [r for r in rows if r["kind"] == "unanswerable"]
    mean = lambda xs: statistics.mean(xs) if xs else float("nan")  # noqa: E731
    return {
        "n_answerable": len(ans),
        "n_unanswerable": len(una),
        "answered": mean([r["answered"] for r in ans]),
        "refused": mean([not r["answered"] for r in una]),
        "correct": mean([r["answered"] and r["recall"] >= 0.5 for r in ans]),
        "recall": mean([r["recall"] for r in ans]),
        "rouge_l": mean([r["rouge_l"] for r in ans]),
        "recall_at_k": mean([r["hit"] for r in rows]),
        "mrr": mean([1 / r["rank"] if r["rank"] else 0.0 for r in rows]),
    }


#: ``question_support_trusted`` values the dev-half search tries (1.0: meaning checked unless
#: every one of the question's words is there)
TRUSTED = (0.4, 0.5, 0.6, 0.8, 1.0)


#: the issue's aims: answer >= 80% of the answerable questions, refuse >= 70% of the others
AIMS = (0.8, 0.7)
#: (words, meaning, trusted) documented for corpora of terse ``key: value`` records (README, the
#: faithfulness guard's ``min_question_support`` comment): the defaults until stop 22
TERSE = (0.25, 0.5, 0.4)


def choose(rows: list[dict], aims: tuple[float, float] = AIMS) -> tuple[float, float, float]:
    """The (words, meaning, trusted) thresholds of the dev half farthest inside both aims: the
    largest ``min(answered - aims[0], refused - aims[1])`` (ties: the lowest thresholds).

    (Until stop 19 this refused the most while answering at least 80% on dev: that sits on
    the edge of the aims, so a test half answering a little less than dev falls below 80%.)"""
    words = sorted({0.0} | {r["support"] for r in rows if r["support"] is not None})
    meaning = sorted({0.0} | {r["similarity"] for r in rows if r.get("similarity") is not None})
    best, best_key = (0.0, 0.0, 1.0), (-2.0, 0.0)
    for trusted in TRUSTED:
        for t in words:
            for m in meaning:
                s = summary(outcome(rows, t, m, trusted))
                key = (min(s["answered"] - aims[0], s["refused"] - aims[1]), -t - m)
                if key > best_key:
                    best, best_key = (t, m, trusted), key
    return best


def fmt(s: dict) -> str:
    return (
        f"answered {s['answered']:.1%} of {s['n_answerable']} answerable, refused {s['refused']:.1%} of "
        f"{s['n_unanswerable']} unanswerable; correct {s['correct']:.1%}, token recall {s['recall']:.3f}, "
        f"ROUGE-L {s['rouge_l']:.3f}; recall@k {s['recall_at_k']:.1%}, MRR {s['mrr']:.3f}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "clapnq"))
    ap.add_argument("--n", type=int, default=40, help="questions of each kind (answerable, unanswerable)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--distractors", type=int, default=120, help="passages of other questions indexed too")
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--show", type=int, default=4, help="answers of each kind to print")
    ap.add_argument("--rows", default=None, help="write every answer as JSON lines here")
    ap.add_argument("--from-rows", default=None, help="summarise the answers a --rows file holds instead")
    add_json_option(ap)
    args = ap.parse_args()

    from llmforge.guard.faithfulness import DEFAULT

    asked, docs = sample(load(Path(args.data)), args.n, args.distractors, args.seed)
    k, built = 4, 0.0
    if args.from_rows:  # the answers of an earlier run, summarised again (no generation)
        rows = [json.loads(line) for line in Path(args.from_rows).read_text().splitlines()]
        asked = rows
    else:
        with tempfile.TemporaryDirectory() as tmp:
            t = time.perf_counter()
            forge = build(Path(tmp) / "home", docs, args.model, support=0.0)
            built = time.perf_counter() - t
            k = forge.config.rag.num_results
            forge.rag.ask("warm up: what is this?")  # model loads are one-offs, not per answer
            rows = ask_all(forge, asked)
    if args.rows:
        Path(args.rows).write_text("".join(json.dumps(r) + "\n" for r in rows))

    default = (
        DEFAULT.min_question_support,
        DEFAULT.min_question_similarity,
        DEFAULT.question_support_trusted,
    )
    dev = [r for r in rows if r["half"] == "dev"]
    test = [r for r in rows if r["half"] == "test"]
    chosen = choose(dev)
    show = lambda t: f"words {t[0]:.3f} meaning {t[1]:.3f} trusted {t[2]:.2f}"  # noqa: E731
    print(
        f"ClapNQ: {len(asked)} questions ({args.n} of each kind, seed {args.seed}), {len(docs)} passages "
        f"indexed in {built:.0f} s, model {args.model}, k = {k}"
    )
    print(f"no abstention (thresholds 0), all: {fmt(summary(outcome(rows, 0.0)))}")
    print(f"words alone at the shipped {default[0]:.3f}, test: {fmt(summary(outcome(test, default[0])))}")
    print(f"chosen on dev ({show(chosen)}), dev : {fmt(summary(outcome(dev, *chosen)))}")
    print(f"                                          test: {fmt(summary(outcome(test, *chosen)))}")
    headline = summary(outcome(test, *default))
    print(f"shipped defaults ({show(default)}), test: {fmt(headline)}")
    print(f"                                          dev : {fmt(summary(outcome(dev, *default)))}")
    # the setting the README and the faithfulness option document for terse records
    print(f"documented terse-records ({show(TERSE)}), test: {fmt(summary(outcome(test, *TERSE)))}")
    print(f"                                          dev : {fmt(summary(outcome(dev, *TERSE)))}")
    gen = sum(r["gen_s"] for r in rows)
    guard = sum(r["guard_s"] for r in rows)
    ratios = [r["guard_s"] / r["gen_s"] for r in rows if r["gen_s"] > 0]
    print(
        f"guard cost: {guard / len(rows) * 1000:.1f} ms/answer vs generation {gen / len(rows) * 1000:.0f} ms/answer "
        f"= {guard / gen:.1%} of generation (per-answer median {statistics.median(ratios):.1%}, "
        f"max {max(ratios):.1%}); mean answer {statistics.mean(r['total_s'] for r in rows):.2f} s"
    )
    final = outcome(rows, *default)
    for kind in ("answerable", "unanswerable"):
        for r in [r for r in final if r["kind"] == kind][: args.show]:
            print(
                f"- [{kind}] {r['question']}\n    gold: {r['answer'][:140]!r}\n    got : {r['text'][:140]!r}"
            )

    if args.json:
        base = summary(outcome(test, 0.0))
        nb = "no abstention (thresholds 0)"
        tuned = summary(outcome(test, *chosen))
        pct = lambda key: 100 * headline[key]  # noqa: E731
        figures = [
            figure("refused unanswerable", pct("refused"), "%", "higher", nb, 100 * base["refused"]),
            figure("answered answerable", pct("answered"), "%", "higher", nb, 100 * base["answered"]),
            figure("refused unanswerable, thresholds chosen on dev", 100 * tuned["refused"], "%", "higher"),
            figure("answered answerable, thresholds chosen on dev", 100 * tuned["answered"], "%", "higher"),
            figure("correct answerable (token recall >= 0.5)", pct("correct"), "%", "higher"),
            figure("token recall of gold", headline["recall"], "", "higher"),
            figure("ROUGE-L F1", headline["rouge_l"], "", "higher"),
            figure("retrieval recall@k", pct("recall_at_k"), "%", "higher"),
            figure("retrieval MRR", headline["mrr"], "", "higher"),
            figure("guard cost / generation time", 100 * guard / gen, "%", "lower"),
            figure("guard ms/answer", guard / len(rows) * 1000, "ms", "lower"),
            figure("generation ms/answer", gen / len(rows) * 1000, "ms", "lower"),
        ]
        note = (
            f"test half ({headline['n_answerable']}+{headline['n_unanswerable']} questions) at the shipped "
            f"thresholds ({show(default)}); chosen on dev ({show(chosen)}); n={args.n} per kind, "
            f"seed {args.seed}, {len(docs)} passages, model {args.model}; correct = token recall of gold "
            "content words >= 0.5"
        )
        write_json(args.json, "rag_clapnq", figures, note)


if __name__ == "__main__":
    main()
