"""Faithfulness guard quality and cost on ClapNQ answerable (real questions, passages, answers).

Each question's retrieved context is its gold passage plus two other passages (as a RAG
retriever returns several). Four answer sets are scored by the guard:

- ``gold``: the annotated long-form answer;
- ``swap-out``: the gold answer with one name or number swapped for one from a passage that
  is *not* in the context;
- ``swap-in``: the same, but the new name or number comes from a distractor passage that *is*
  in the context (present, but not aligned with the rest of the sentence);
- ``other``: another question's gold answer.

Swaps are made by a rule of this script (capitalised word runs after the first word, and
digit numbers), not by the guard's own extractor. Questions are split by id hash into a dev
half (defaults were tuned there) and a test half (reported). Printed per half: AUROC of gold
vs each negative set, false blocks of gold answers and catch rate at the default threshold,
and guard latency per answer, beside the old lexical-overlap guard as the baseline.

    .venv/bin/python benchmarks/bench_guard.py [--data ../shared/data/clapnq] [--limit N]
        [--half test|dev] [--gen-seconds S] [--json PATH]
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
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))

from _results import add_json_option, figure, write_json  # noqa: E402

NAME = re.compile(r"(?<=[a-z,;:()] )[A-Z][a-z]+(?: [A-Z][a-z]+)*")
NUMBER = re.compile(r"(?<![\w.])\d+(?:[.,]\d+)*(?![\w])")


def load(data: Path) -> list[dict]:
    rows = []
    for line in (data / "dev_answerable.jsonl").read_text().splitlines():
        rec = json.loads(line)
        p = rec["passages"][0]
        rows.append(
            {
                "id": rec["id"],
                "question": rec["input"],
                "answer": rec["output"][0]["answer"],
                "passage": f"{p['title']}\n{p['text'].strip()}",
            }
        )
    return rows


def half(rec: dict) -> str:
    return "dev" if int(hashlib.sha1(rec["id"].encode()).hexdigest(), 16) % 2 == 0 else "test"


def candidates(text: str) -> list[tuple[str, str]]:
    return [("name", m.group(0)) for m in NAME.finditer(text)] + [
        ("number", m.group(0)) for m in NUMBER.finditer(text)
    ]


def swap(answer: str, context: str, pool: list[str], rng: random.Random) -> str | None:
    """``answer`` with one name or number replaced by one of the same kind from ``pool``."""
    cands = candidates(answer)
    rng.shuffle(cands)
    lower = context.lower()
    for kind, old in cands:
        new = [v for k, v in (c for p in pool for c in candidates(p)) if k == kind]
        new = [v for v in new if v.lower() not in lower and v.lower() != old.lower()]
        if new:
            return answer.replace(old, rng.choice(new), 1)
    return None


def auroc(pos: list[float], neg: list[float]) -> float:
    """P(score of a gold answer > score of a negative), ties counted half."""
    if not pos or not neg:
        return float("nan")
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def baseline_score(answer: str, contexts: list[str]) -> float:
    """The guard this replaces: share of sentences with 60% of content words in the context."""
    from llmforge.text import content_words, sentences

    ctx = set()
    for c in contexts:
        ctx.update(content_words(c))
    rows = []
    for s in sentences(answer):
        words = content_words(s)
        if words:
            bad = [w for w in words if w[0].isdigit() and w not in ctx]
            rows.append(sum(w in ctx for w in words) / len(words) >= 0.6 and not bad)
    return sum(rows) / len(rows) if rows else 1.0


def build(rows: list[dict], seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    cases = []
    n = len(rows)
    for i, r in enumerate(rows):
        d1, d2 = rows[(i + 7) % n], rows[(i + 13) % n]
        contexts = [r["passage"], d1["passage"], d2["passage"]]
        outside = [rows[(i + k) % n]["passage"] for k in (29, 31, 37)]
        sets = {
            "gold": r["answer"],
            "swap-out": swap(r["answer"], " ".join(contexts), outside, rng),
            "swap-in": swap(r["answer"], r["passage"], [d1["passage"], d2["passage"]], rng),
            "other": rows[(i + n // 2) % n]["answer"],
        }
        cases.append({"half": half(r), "question": r["question"], "contexts": contexts, "answers": sets})
    return cases


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "clapnq"))
    ap.add_argument("--limit", type=int, default=0, help="questions to use (0: all 300)")
    ap.add_argument("--half", default="test", choices=["dev", "test", "all"])
    ap.add_argument(
        "--gen-seconds", type=float, default=0.0, help="generation time per answer, for the cost ratio"
    )
    add_json_option(ap)
    args = ap.parse_args()

    from llmforge.guard.faithfulness import DEFAULT, FaithfulnessOptions, check

    rows = load(Path(args.data))
    cases = [c for c in build(rows) if args.half == "all" or c["half"] == args.half]
    if args.limit:
        cases = cases[: args.limit]
    check("warm up.", ["warm up the sentence model."])  # model load is a one-off, not per answer
    lexical = FaithfulnessOptions(semantic=False)
    scores: dict[str, dict[str, list]] = {}
    times: dict[str, list[float]] = {"full": [], "facts+words": []}
    for c in cases:
        for name, ans in c["answers"].items():
            if ans is None:
                continue
            t = time.perf_counter()
            v = check(ans, c["contexts"], DEFAULT)
            times["full"].append(time.perf_counter() - t)
            t = time.perf_counter()
            lex = check(ans, c["contexts"], lexical)
            times["facts+words"].append(time.perf_counter() - t)
            s = scores.setdefault(name, {"guard": [], "passed": [], "lexical": [], "baseline": []})
            s["guard"].append(v["score"])
            s["passed"].append(v["passed"])
            s["lexical"].append(lex["score"])
            s["baseline"].append(baseline_score(ans, c["contexts"]))

    gold = scores["gold"]
    figs = []
    print(f"ClapNQ answerable, {args.half} half: {len(cases)} questions, threshold {DEFAULT.threshold}")
    print(
        f"{'negative set':<10} {'n':>4} {'AUROC guard':>12} {'facts+words':>12} {'baseline':>9} {'caught':>7}"
    )
    for name in ("swap-out", "swap-in", "other"):
        s = scores[name]
        caught = 1 - sum(s["passed"]) / len(s["passed"])
        figs.append(
            figure(
                f"AUROC {name}",
                auroc(gold["guard"], s["guard"]),
                "",
                baseline="lexical-overlap guard (the one it replaced)",
                baseline_value=auroc(gold["baseline"], s["baseline"]),
            )
        )
        figs.append(figure(f"caught {name}", 100 * caught, "%"))
        print(
            f"{name:<10} {len(s['guard']):>4} {auroc(gold['guard'], s['guard']):>12.3f} "
            f"{auroc(gold['lexical'], s['lexical']):>12.3f} {auroc(gold['baseline'], s['baseline']):>9.3f} "
            f"{caught:>7.1%}"
        )
    false_blocks = 1 - sum(gold["passed"]) / len(gold["passed"])
    figs.append(figure("false blocks of gold answers", 100 * false_blocks, "%", better="lower"))
    print(
        f"false blocks of gold answers: {false_blocks:.1%} ({len(gold['passed']) - sum(gold['passed'])}/{len(gold['passed'])})"
    )
    for k, v in times.items():
        ms = statistics.mean(v) * 1000
        p95 = sorted(v)[int(0.95 * (len(v) - 1))] * 1000
        extra = f", {ms / 1000 / args.gen_seconds:.1%} of generation" if args.gen_seconds else ""
        print(f"guard cost ({k}): {ms:.1f} ms/answer mean, {p95:.1f} ms p95{extra}")
    figs.append(figure("guard ms/answer (mean)", statistics.mean(times["full"]) * 1000, "ms", better="lower"))
    if args.json:
        note = f"ClapNQ {args.half} half, {len(cases)} questions, threshold {DEFAULT.threshold}"
        write_json(args.json, "guard", figs, note)


if __name__ == "__main__":
    main()
