"""RAG answer correctness on the sample company's questions, with the real local model.

The sample corpus (``examples/enterprise``) is ingested into a governed table (department row
filter) and indexed; each of its 83 questions is asked through ``forge.rag.ask`` by a user of
the department that asks it. An answer is correct when it contains the gold answer or one of
its aliases (case and punctuation folded). Reported beside it: gold-document retrieval hit
rate, refusals, mean latency. Baseline in the same run: the same model answering the same
questions closed book (no retrieval), i.e. what retrieval adds.

    HF_HUB_OFFLINE=1 python benchmarks/bench_rag_answers.py [--limit 83] [--model smollm2-135m-instruct]
        [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import re
import tempfile
import time
from pathlib import Path

from _results import add_json_option, figure, write_json
from sample_home import CORPUS, INDEX, USERS, govern_and_index


def norm(text: str) -> str:
    return re.sub(r"[^a-z0-9$%.]+", " ", text.lower()).strip()


def correct(answer: str, q: dict) -> bool:
    a = f" {norm(answer)} "
    return any(f" {norm(g)} " in a or norm(g) in norm(answer) for g in [q["answer"], *q.get("aliases", [])])


def build(home: Path, model: str, adapter: str | None, guardrails: list | None = None):
    import llmforge

    gen = {"name": "local", "options": {"model": model, **({"adapter": adapter} if adapter else {})}}
    forge = llmforge.connect(
        backend="local",
        home=str(home),
        user="admin",
        config={"identity": {"directory": str(CORPUS / "principals.yaml")}, "rag": {"index": INDEX}},
        generator=gen,
        guardrails=guardrails,
    )
    return govern_and_index(forge)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=83, help="questions to ask (of 83)")
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--adapter", default=None, help="adapter folder or models:/ URI (fine-tuned model)")
    ap.add_argument("--show", type=int, default=8, help="wrong answers to print")
    ap.add_argument(
        "--guardrails",
        type=json.loads,
        default=None,
        help='guardrails replacing the configured ones, as JSON, e.g. \'[{"name": "faithfulness", '
        '"options": {"min_question_similarity": 0.59}}, "prompt_injection"]\'',
    )
    add_json_option(ap)
    args = ap.parse_args()
    questions = [json.loads(line) for line in (CORPUS / "questions.jsonl").open()][: args.limit]
    with tempfile.TemporaryDirectory() as tmp:
        forge = build(Path(tmp) / "home", args.model, args.adapter, args.guardrails)
        rows = []
        for q in questions:
            user = USERS.get(q["asked_by"], "alice@acme.example")
            t = time.perf_counter()
            ans = forge.rag.ask(q["question"], user=user)
            rows.append(
                {
                    "q": q,
                    "answer": ans.text,
                    "generated": ans.generated,
                    "s": time.perf_counter() - t,
                    "refused": ans.refused or ans.no_answer,
                    "hit": any(c["document_id"] == q["document_id"] for c in ans.citations),
                    "ok": correct(ans.text, q),
                    "draft_ok": correct(ans.generated, q),
                    "quoted": ans.quoted,
                }
            )
        closed = forge.generator.chat_batch(
            [[{"role": "user", "content": q["question"]}] for q in questions], max_tokens=48
        )
    hidden = [r for r in rows if not r["q"].get("visible_to_asker", True)]
    rows = [r for r in rows if r["q"].get("visible_to_asker", True)]
    n = len(rows)
    acc = sum(r["ok"] for r in rows) / n
    visible = [(c, q) for c, q in zip(closed, questions, strict=True) if q.get("visible_to_asker", True)]
    cb = sum(correct(c.text, q) for c, q in visible) / n
    print(
        f"{n} questions the asker may read (+{len(hidden)} about documents they may not), "
        f"model {args.model}{' + ' + args.adapter if args.adapter else ''}"
    )
    print(
        f"RAG answer correctness      {acc:6.1%}   (closed-book baseline {cb:.1%}; "
        f"{f'ratio {acc / cb:.1f}x' if cb else 'difference ' + format(acc - cb, '.1%')})"
    )
    print(f"generated answer correct    {sum(r['draft_ok'] for r in rows) / n:6.1%}   (before the guards)")
    print(f"gold document retrieved     {sum(r['hit'] for r in rows) / n:6.1%}")
    print(
        f"correct when gold retrieved {sum(r['ok'] for r in rows if r['hit']) / max(1, sum(r['hit'] for r in rows)):6.1%}"
    )
    print(f"refused / no answer         {sum(r['refused'] for r in rows) / n:6.1%}")
    print(
        f"quoted a retrieved fact     {sum(r['quoted'] for r in rows) / n:6.1%}   (the model's answer failed the guards)"
    )
    if hidden:
        leaked = sum(r["ok"] or r["draft_ok"] for r in hidden)
        print(
            f"hidden questions answered   {leaked}/{len(hidden)}   (gold revealed to someone not entitled: aim 0)"
        )
    print(f"mean seconds per answer     {sum(r['s'] for r in rows) / n:6.2f}")
    if args.json:
        hits = sum(r["hit"] for r in rows)
        figs = [
            figure(
                "RAG answer correctness",
                100 * acc,
                "%",
                baseline="closed book (same model)",
                baseline_value=100 * cb,
            ),
            figure("gold document retrieved", 100 * hits / n, "%"),
            figure(
                "correct when gold retrieved",
                100 * sum(r["ok"] for r in rows if r["hit"]) / max(1, hits),
                "%",
            ),
            figure("refused / no answer", 100 * sum(r["refused"] for r in rows) / n, "%", better="lower"),
            figure("mean seconds per answer", sum(r["s"] for r in rows) / n, "s", better="lower"),
        ]
        if hidden:
            leaked = sum(r["ok"] or r["draft_ok"] for r in hidden)
            figs.append(figure("hidden questions answered", leaked, "answers", better="lower"))
        note = f"{n} questions, model {args.model}{' + ' + args.adapter if args.adapter else ''}"
        write_json(args.json, "rag_answers", figs, note)
    for r in [r for r in rows if not r["ok"]][: args.show]:
        print(f"- {r['q']['question']}  gold={r['q']['answer']!r}\n    got: {r['answer'][:160]!r}")
        if r["answer"] != r["generated"]:
            print(f"    generated: {r['generated'][:160]!r}")


if __name__ == "__main__":
    main()
