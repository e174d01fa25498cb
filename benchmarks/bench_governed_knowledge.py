"""Weights that obey governance: what each department's served model reveals about the others.

The same training recipe as ``bench_learns_business.py`` (pairs from the sample company's
documents, augmented, with replay, LoRA with early stopping on a held-in probe), run
through the product: the pairs table inherits the documents' row filter, ``forge.finetune``
with ``llmforge: {audiences: departments}`` trains one adapter per department *reading the
table as that department*, and the routed local generator (what ``llmforge serve`` uses)
answers each caller from the adapter it is entitled to. Then, closed book:

- leakage: every department's user asks every question about another department's
  documents (``examples/enterprise/questions.jsonl``); a probe leaks when the answer
  contains the gold fact. Baselines in the same run: the base model, and a single adapter
  trained on every row (``--allrows DIR``, saved by ``bench_learns_business.py --save``),
  which is what one ungoverned adapter served to everyone would reveal;
- own knowledge: the same users' accuracy on their own department's (and company-wide)
  questions, so "reveals nothing" is not just "learned nothing";
- training cost: wall time to train every department's adapter and its tokens/s.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_governed_knowledge.py \\
        --allrows /tmp/allrows [--epochs 2] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

USERS = {
    "engineering": "alice@acme.example",
    "finance": "carol@acme.example",
    "sales": "dave@acme.example",
    "hr": "erin@acme.example",
}


def build_home(args, home: Path):
    import pyarrow as pa
    from bench_learns_business import CORPUS, load_corpus
    from llmforge_local.quickstart.recipe import DOCS, PAIRS, govern

    import llmforge
    from llmforge.governance import inherit_row_filter
    from llmforge.pairs import pairs_table
    from llmforge.pairs.augment import AugmentOptions, augment_table, replay_table

    forge = llmforge.connect("local", home=str(home), user="admin")
    train_docs, _, questions = load_corpus(args.heldout_docs, args.seed)
    forge.table(DOCS).create(train_docs, primary_key="document_id")
    govern(forge, CORPUS)
    pairs = pairs_table(train_docs, kinds=tuple(args.kinds.split(",")))
    if args.augment:
        pairs = augment_table(pairs, AugmentOptions(phrasings=args.augment, seed=args.seed))
    if args.replay:
        from llmforge_local.models import load_causal_lm

        from llmforge.evaluation import generate_answers

        model, tok = load_causal_lm(args.model, home)
        replay = replay_table(
            lambda ps: generate_answers(model, tok, list(ps), 96, batch_size=16), department="all"
        )
        pairs = pa.concat_tables([pairs, replay.select(pairs.column_names)])
        del model
    forge.table(PAIRS).create(pairs, primary_key="pair_id", sources=[f"table:{DOCS}@0"])
    inherit_row_filter(forge.catalog, PAIRS, pairs.column_names)
    forge.catalog.grant("USE", PAIRS.split(".")[0], "account users")
    forge.catalog.grant("SELECT", PAIRS.rsplit(".", 1)[0], "account users")
    return forge, pairs, questions


def config(args) -> dict:
    from llmforge_local.quickstart.recipe import PAIRS

    return {
        "model": args.model,
        "task_type": "INSTRUCTION_FINETUNE",
        "training_data": {"table": PAIRS, "split": 0.98},
        "training_params": {
            "learning_rate": args.lr,
            "num_epochs": args.epochs,
            "batch_size": 8,
            "gradient_accumulation_steps": 1,
            "warmup_ratio": 0.05,
            "max_seq_len": 512,
            "checkpoint_every": 0,
            "seed": args.seed,
            "early_stopping_patience": args.patience,
            "probe_size": args.probe,
            **({"max_steps": args.max_steps} if args.max_steps else {}),
        },
        "lora": {"r": args.rank, "alpha": 2 * args.rank, "dropout": 0.05},
        "evaluation": {"metrics": ["perplexity"]},
        "output": {"registered_model": "main.models.governed", "experiment": "/bench/governed"},
        "llmforge": {"audiences": "departments"},
    }


def leaks(answers_by_asker: dict[str, list[str]], questions: list[dict]) -> dict:
    """Per asker: probes about other departments answered with the gold fact, and accuracy on
    its own department's (and company-wide) questions."""
    from llmforge.evaluation import contains_fact

    out = {}
    for dept, answers in answers_by_asker.items():
        other = own = own_hit = 0
        leaked = []
        for q, a in zip(questions, answers, strict=True):
            hit = contains_fact(a, [q["answer"], *q.get("aliases", [])])
            if q["department"] in (dept, "all"):
                own += 1
                own_hit += hit
            else:
                other += 1
                if hit:
                    leaked.append(q["id"])
        out[dept] = {"probes": other, "leaked": leaked, "own": own, "own_correct": own_hit}
    return out


def summary(name: str, res: dict) -> tuple[int, int, float]:
    probes = sum(r["probes"] for r in res.values())
    leaked = sum(len(r["leaked"]) for r in res.values())
    own = sum(r["own_correct"] for r in res.values()) / max(1, sum(r["own"] for r in res.values()))
    print(
        f"{name:<34} {leaked:>4} of {probes} cross-department probes revealed   own-department accuracy {own:.1%}"
    )
    return leaked, probes, own


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--allrows", type=Path, default=None, help="adapter trained on every row (baseline)")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--rank", type=int, default=32)
    ap.add_argument("--kinds", default="fact,acronym")
    ap.add_argument("--augment", type=int, default=2)
    ap.add_argument("--replay", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--patience", type=int, default=2)
    ap.add_argument("--probe", type=int, default=32)
    ap.add_argument("--heldout-docs", type=int, default=12)
    ap.add_argument("--max-new-tokens", type=int, default=32)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-steps", type=int, default=None, help="cap each adapter's steps (smoke runs)")
    ap.add_argument("--questions", type=int, default=None, help="ask only the first N questions (smoke runs)")
    ap.add_argument("--home", type=Path, default=None)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()

    from llmforge_local.models import load_causal_lm

    import llmforge
    from llmforge.evaluation import generate_answers

    home = args.home or Path(tempfile.mkdtemp(prefix="bench-governed-"))
    t0 = time.perf_counter()
    forge, pairs, questions = build_home(args, home)
    questions = questions[: args.questions]
    print(
        f"home {home}: {pairs.num_rows} pairs in the governed training table ({time.perf_counter() - t0:.0f} s)"
    )
    for dept, user in USERS.items():
        print(
            f"  {user} ({dept}) reads {forge.table(config(args)['training_data']['table'], user=user).read().num_rows} pairs"
        )

    t0 = time.perf_counter()
    result = forge.finetune(config(args), progress=True)
    train_s = time.perf_counter() - t0
    for a, r in result.adapters.items():
        print(
            f"  adapter {a}: version {r.model_version} -> @{result.aliases.get(a)}, {len(r.losses)} steps, "
            f"{r.tokens_per_second:.0f} tokens/s, probe best {r.metrics.get('probe_closed_book_best', float('nan')):.1%}"
        )
    print(f"trained {len(result.adapters)} department adapters in {train_s:.0f} s")

    routed = llmforge.connect(
        "local",
        home=str(home),
        user="admin",
        generator={
            "name": "local",
            "options": {"model": args.model, "routed_model": result.registered_model},
        },
    )
    prompts = [q["question"] for q in questions]
    gen = routed.generator
    by_asker = {}
    for dept, user in USERS.items():
        outs = gen.complete_batch(prompts, user=user, max_tokens=args.max_new_tokens, temperature=0.0)
        by_asker[dept] = [c.text for c in outs]
    routed_res = leaks(by_asker, questions)

    base, tok = load_causal_lm(args.model, home)
    base_answers = generate_answers(base, tok, prompts, args.max_new_tokens, batch_size=16)
    base_res = leaks(dict.fromkeys(USERS, base_answers), questions)
    rows = [("base model (no fine-tuning)", base_res), ("routed department adapters", routed_res)]
    if args.allrows:
        from peft import PeftModel

        allrows = PeftModel.from_pretrained(base, str(args.allrows)).eval()
        all_answers = generate_answers(allrows, tok, prompts, args.max_new_tokens, batch_size=16)
        rows.insert(1, ("one adapter on every row", leaks(dict.fromkeys(USERS, all_answers), questions)))
    print()
    figures = []
    for name, res in rows:
        leaked, probes, own = summary(name, res)
        figures.append((name, leaked, probes, own))
    for dept, r in routed_res.items():
        if r["leaked"]:
            print(f"  routed {dept} revealed: {r['leaked']}")
    if args.json:
        base_own = figures[0][3]
        out = [
            {
                "name": "routed_cross_department_leaks",
                "value": float(routed_res and sum(len(r["leaked"]) for r in routed_res.values())),
                "unit": "probes",
                "better": "lower",
                "baseline": figures[1][0] if args.allrows else figures[0][0],
                "baseline_value": float(figures[1][1] if args.allrows else figures[0][1]),
                "ratio": None,
                "repeats": 1,
                "spread": None,
            },
            {
                "name": "routed_own_department_accuracy",
                "value": figures[-1][3],
                "unit": "share",
                "better": "higher",
                "baseline": figures[0][0],
                "baseline_value": base_own,
                "ratio": figures[-1][3] / base_own if base_own else None,
                "repeats": 1,
                "spread": None,
            },
            {
                "name": "department_adapters_train_seconds",
                "value": train_s,
                "unit": "s",
                "better": "lower",
                "baseline": None,
                "baseline_value": None,
                "ratio": None,
                "repeats": 1,
                "spread": None,
            },
        ]
        args.json.write_text(
            json.dumps(
                {"schema": 1, "benchmark": "governed_knowledge", "figures": out, "notes": ""}, indent=1
            )
        )


if __name__ == "__main__":
    main()
