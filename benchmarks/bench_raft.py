"""A model that reads: RAG correctness with a RAFT-trained adapter on documents held out of training.

Retrieval-augmented fine-tuning (``llmforge.pairs.raft``: the question over its gold
document among hard-negative distractors, in the exact prompt ``forge.rag.ask`` builds,
answered with a ``[n]`` citation, plus "I don't know." examples without the gold) teaches
the model to answer from what it is shown. To measure reading rather than memory, the
sample company's question documents are split (seeded): RAFT examples are built only from
the *other* documents, and the benchmark asks, through ``forge.rag.ask`` with the real index,
the questions about the held-out half. Baseline in the same run: the base model through
the same pipeline. Reported per model: final answer correctness (after guards and the
quote fallback), the model's own answer correctness (before guards), quoted-fallback share,
refusals and gold retrieval.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_raft.py [--examples 480] [--epochs 1] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _results import add_json_option, figure, write_json
from bench_rag_answers import build, correct
from sample_home import CORPUS, USERS


def split(seed: int, share: float):
    from llmforge.loaders import load_documents

    docs, _ = load_documents(CORPUS / "docs")
    questions = [json.loads(line) for line in (CORPUS / "questions.jsonl").open() if line.strip()]
    asked = sorted({q["document_id"] for q in questions})
    held = set(random.Random(seed).sample(asked, round(len(asked) * share)))
    ids = docs.column("document_id").to_pylist()
    train_docs = docs.take([i for i, d in enumerate(ids) if d not in held])
    return train_docs, held, [q for q in questions if q["document_id"] in held]


def train_raft(args, train_docs, out: Path) -> dict:
    import torch
    from llmforge_local.models import default_device, load_causal_lm
    from llmforge_local.train import data as D
    from llmforge_local.train.loop import train

    from llmforge.pairs import pairs_table
    from llmforge.pairs.raft import RaftOptions, raft_table

    pairs = pairs_table(train_docs, kinds=("fact", "acronym"))
    raft = raft_table(
        pairs,
        train_docs,
        RaftOptions(distractors=args.distractors, no_answer_rate=args.no_answer_rate, seed=args.seed),
    )
    if raft.num_rows > args.examples:
        raft = raft.take(sorted(random.Random(args.seed).sample(range(raft.num_rows), args.examples)))
    device = default_device()
    model, tok = load_causal_lm(args.model, Path(tempfile.mkdtemp()), dtype=torch.float32, device=device)
    ex = D.build_examples(raft.select(["messages"]), tok, "CHAT_COMPLETION", args.max_len)
    from bench_learns_business import lora_run

    model, batches, opts = lora_run(model, tok, ex, args, device, progress=True)
    steps = opts.total_steps
    res = train(model, batches, opts, device=device)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    kinds = raft.column("kind").to_pylist()
    info = {
        "examples": raft.num_rows,
        "no_answer_examples": kinds.count("raft_no_answer"),
        "tokens": sum(len(e.input_ids) for e in ex),
        "steps": steps,
        "seconds": res.seconds,
        "tokens_per_second": res.tokens_per_second,
        "loss": (res.losses[0][1], res.losses[-1][1]),
    }
    print(
        f"RAFT: {info['examples']} examples ({info['no_answer_examples']} without the gold), "
        f"{info['tokens']} tokens, {steps} steps in {res.seconds:.0f} s ({res.tokens_per_second:.0f} tokens/s), "
        f"loss {info['loss'][0]:.3f} -> {info['loss'][1]:.3f}"
    )
    return info


def ask_all(model: str, adapter: str | None, questions: list[dict]) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        forge = build(Path(tmp) / "home", model, adapter)
        rows = []
        for q in questions:
            t = time.perf_counter()
            ans = forge.rag.ask(q["question"], user=USERS.get(q["asked_by"], "alice@acme.example"))
            rows.append(
                {
                    "visible": q.get("visible_to_asker", True),
                    "ok": correct(ans.text, q),
                    "own": correct(ans.generated, q),
                    "quoted": ans.quoted,
                    "refused": ans.refused or ans.no_answer,
                    "hit": any(c["document_id"] == q["document_id"] for c in ans.citations),
                    "s": time.perf_counter() - t,
                    "q": q["question"],
                    "gold": q["answer"],
                    "generated": ans.generated,
                }
            )
    vis = [r for r in rows if r["visible"]]
    hidden = [r for r in rows if not r["visible"]]
    n = max(1, len(vis))
    return {
        "n": len(vis),
        "correct": sum(r["ok"] for r in vis) / n,
        "own": sum(r["own"] for r in vis) / n,
        "quoted": sum(r["quoted"] for r in vis) / n,
        "refused": sum(r["refused"] for r in vis) / n,
        "hit": sum(r["hit"] for r in vis) / n,
        "seconds": sum(r["s"] for r in vis) / n,
        "hidden_revealed": sum(r["ok"] or r["own"] for r in hidden),
        "hidden": len(hidden),
        "rows": vis,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument(
        "--share", type=float, default=0.5, help="share of question documents held out of training"
    )
    ap.add_argument("--examples", type=int, default=480, help="RAFT examples to train on (sampled)")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--rank", type=int, default=16)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--max-len", type=int, default=768)
    ap.add_argument("--distractors", type=int, default=3)
    ap.add_argument("--no-answer-rate", type=float, default=0.2)
    ap.add_argument("--adapter", type=Path, default=None, help="reuse a RAFT adapter saved by an earlier run")
    ap.add_argument("--save", type=Path, default=None, help="where to save the adapter")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--show", type=int, default=5, help="questions to print whose model answer was wrong")
    ap.add_argument(
        "--only-adapter", action="store_true", help="skip the base model (inspect a saved adapter)"
    )
    add_json_option(ap)
    args = ap.parse_args()

    train_docs, held, questions = split(args.seed, args.share)
    print(
        f"{len(held)} question documents held out of training ({len(questions)} questions about them); "
        f"RAFT examples from the other {train_docs.num_rows} documents"
    )
    info = None
    adapter = args.adapter
    if adapter is None:
        adapter = args.save or Path(tempfile.mkdtemp(prefix="raft-"))
        info = train_raft(args, train_docs, adapter)
    base = ask_all(args.model, None, questions) if not args.only_adapter else None
    tuned = ask_all(args.model, str(adapter), questions)
    base = base or tuned
    print(f"\n{'':32}{'base model':>12}{'RAFT adapter':>14}")
    for key, label in (
        ("correct", "answer correct (final)"),
        ("own", "model's own answer correct"),
        ("quoted", "quoted-fact fallback"),
        ("refused", "refused / no answer"),
        ("hit", "gold document retrieved"),
        ("seconds", "seconds per answer"),
    ):
        fmt = "{:>12.2f}{:>14.2f}" if key == "seconds" else "{:>12.1%}{:>14.1%}"
        print(f"{label:<32}" + fmt.format(base[key], tuned[key]))
    print(
        f"{'hidden questions revealed':<32}{base['hidden_revealed']:>9}/{base['hidden']}{tuned['hidden_revealed']:>11}/{tuned['hidden']}"
    )
    for r in [r for r in tuned["rows"] if not r["own"]][: args.show]:
        print(
            f"- {r['q']} gold={r['gold']!r}{' (final answer right)' if r['ok'] else ''}\n    RAFT model: {r['generated'][:140]!r}"
        )
    if args.json:
        figs = [
            figure(
                "RAG correctness, held-out docs",
                100 * tuned["correct"],
                "%",
                baseline="base model",
                baseline_value=100 * base["correct"],
            ),
            figure(
                "model's own answer correct, held-out docs",
                100 * tuned["own"],
                "%",
                baseline="base model",
                baseline_value=100 * base["own"],
            ),
            figure(
                "quoted fallback share",
                100 * tuned["quoted"],
                "%",
                better="lower",
                baseline="base model",
                baseline_value=100 * base["quoted"],
            ),
            figure("hidden questions revealed", tuned["hidden_revealed"], "answers", better="lower"),
        ]
        note = f"{tuned['n']} questions on held-out documents" + (f"; RAFT {info}" if info else "")
        write_json(args.json, "raft", figs, note)


if __name__ == "__main__":
    main()
