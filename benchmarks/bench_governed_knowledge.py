"""Weights that obey governance: what each department's served model reveals about the others.

The training recipe that ``bench_learns_business.py`` measured to inject the facts (pairs
from the sample company's documents, augmented, with replay and the documents' own text,
early stopping on a held-in probe), as ``method: lora_from_full`` adapters (the layers trained
in full, each adapter the rank-128 SVD of their change), run through the product: the pairs table inherits the documents' row filter, ``forge.finetune``
with ``llmforge: {audiences: departments}`` trains one adapter per department *reading the
table as that department*, and the routed local generator (what ``llmforge serve`` uses)
answers each caller from the adapter it is entitled to. Then, closed book:

- leakage: every department's user asks every question about another department's
  documents (``examples/enterprise/questions.jsonl``); a probe leaks when the answer
  contains the gold fact. Baselines in the same run: the base model, and a single adapter
  trained by the same recipe on every row (``forge.finetune`` as an admin, no audiences),
  which is what one ungoverned adapter served to everyone would reveal;
- knowledge: the all-rows adapter's closed-book accuracy on all questions and the
  perplexity of documents held out of training, base vs fine-tuned (did it learn the
  facts without forgetting how to model the company's text?);
- own knowledge: the same users' accuracy on their own department's (and company-wide)
  questions, so "reveals nothing" is not just "learned nothing";
- training cost: wall time to train every department's adapter and its tokens/s.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_governed_knowledge.py [--no-all-rows] [--json out.json]

By default it trains on the 71 documents the questions ask about (``--docs all``: all 235);
``--method lora --rank 32 --lr 1e-3 --accum 2 --max-len 512 --kinds fact,acronym --augment 2
--epochs 1 --patience 0`` is the plain-LoRA recipe of earlier runs.
"""

from __future__ import annotations

import argparse
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
    train_docs, _, questions = load_corpus(args.heldout_docs, args.seed, args.docs == "asked")
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
            "batch_size": args.batch,
            "gradient_accumulation_steps": args.accum,
            "warmup_ratio": 0.05,
            "max_seq_len": args.max_len,
            "checkpoint_every": 0,
            "seed": args.seed,
            "early_stopping_patience": args.patience,
            "probe_size": args.probe,
            **({"max_steps": args.max_steps} if args.max_steps else {}),
        },
        "method": args.method,
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
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--rank", type=int, default=128)
    ap.add_argument(
        "--method",
        choices=("lora", "lora_from_full"),
        default="lora_from_full",
        help="lora_from_full: train the layers in full, keep the rank-r SVD of the change",
    )
    ap.add_argument("--max-len", type=int, default=256, help="packed row length")
    ap.add_argument(
        "--docs",
        choices=("all", "asked"),
        default="asked",
        help="train on every document (~3x the time), or only those some question is about",
    )
    ap.add_argument(
        "--all-rows",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also train the ungoverned all-rows baseline (doubles the training time)",
    )
    ap.add_argument("--kinds", default="fact,acronym,raw", help="pair kinds (raw: the documents' own text)")
    ap.add_argument("--augment", type=int, default=1)
    ap.add_argument("--replay", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--patience", type=int, default=2, help="early stopping on the probe (0: off)")
    ap.add_argument("--batch", type=int, default=4, help="packed rows per micro-batch")
    ap.add_argument("--accum", type=int, default=1, help="micro-batches per optimizer step")
    ap.add_argument("--probe", type=int, default=32)
    ap.add_argument("--heldout-docs", type=int, default=12)
    ap.add_argument("--max-new-tokens", type=int, default=32)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-steps", type=int, default=None, help="cap each adapter's steps (smoke runs)")
    ap.add_argument("--questions", type=int, default=None, help="ask only the first N questions (smoke runs)")
    ap.add_argument("--home", type=Path, default=None)
    ap.add_argument("--reuse", action="store_true", help="only evaluate the adapters trained in --home")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()

    from bench_learns_business import load_corpus
    from llmforge_local.models import load_causal_lm
    from llmforge_local.train import data as D

    import llmforge
    from llmforge.evaluation import generate_answers, perplexity

    home = args.home or Path(tempfile.mkdtemp(prefix="bench-governed-"))
    if args.reuse:  # evaluate the adapters an earlier run of this benchmark trained in --home
        from bench_learns_business import load_corpus as _corpus

        questions = _corpus(args.heldout_docs, args.seed)[2][: args.questions]
        registered, all_version, train_s, tokens, pairs_n = "main.models.governed", "1", None, None, None
    else:
        t0 = time.perf_counter()
        forge, pairs, questions = build_home(args, home)
        questions = questions[: args.questions]
        pairs_n = pairs.num_rows
        table = config(args)["training_data"]["table"]
        print(
            f"home {home}: {pairs.num_rows} pairs in the governed training table ({time.perf_counter() - t0:.0f} s)"
        )
        for dept, user in USERS.items():
            print(
                f"  {user} ({dept}) reads {forge.table(table, user=user).read().num_rows} pairs", flush=True
            )

        all_version = None
        if args.all_rows:  # the ungoverned baseline: one adapter on every row, same recipe, same run
            t0 = time.perf_counter()
            allcfg = config(args)
            allcfg["llmforge"] = {}
            allcfg["output"] = {**allcfg["output"], "registered_model": "main.models.allrows"}
            allres = forge.finetune(allcfg, progress=True)
            all_version = allres.model_version
            print(
                f"trained one all-rows adapter in {time.perf_counter() - t0:.0f} s "
                f"({allres.tokens_per_second:.0f} tokens/s)",
                flush=True,
            )

        t0 = time.perf_counter()
        result = forge.finetune(config(args), progress=True)
        train_s = time.perf_counter() - t0
        registered = result.registered_model
        tokens = 0.0
        for a, r in result.adapters.items():
            tokens += r.metrics.get("train_tokens", 0.0)
            print(
                f"  adapter {a}: version {r.model_version} -> @{result.aliases.get(a)}, {len(r.losses)} steps, "
                f"{r.tokens_per_second:.0f} tokens/s"
            )
        print(
            f"trained {len(result.adapters)} department adapters in {train_s:.0f} s "
            f"({tokens / train_s:.0f} tokens/s overall)",
            flush=True,
        )

    routed = llmforge.connect(
        "local",
        home=str(home),
        user="admin",
        generator={
            "name": "local",
            "options": {"model": args.model, "routed_model": registered},
        },
    )
    prompts = [q["question"] for q in questions]
    by_asker = {}
    for dept, user in USERS.items():  # through the served generator, which routes by caller
        outs = routed.generator.chat_batch(
            [[{"role": "user", "content": p}] for p in prompts],
            user=user,
            max_tokens=args.max_new_tokens,
            temperature=0.0,
        )
        by_asker[dept] = [c.text for c in outs]
    routed_res = leaks(by_asker, questions)

    _, held_docs, _ = load_corpus(args.heldout_docs, args.seed)
    base, tok = load_causal_lm(args.model, home)
    held_text = D.build_examples(held_docs.select(["content"]), tok, "CONTINUED_PRETRAIN", 512)
    base_answers = generate_answers(base, tok, prompts, args.max_new_tokens, batch_size=16)
    ppl_base = perplexity(base, held_text, batch_size=4)
    from llmforge.evaluation import closed_book_accuracy
    from llmforge.tracking import Tracker

    gold = [[q["answer"], *q.get("aliases", [])] for q in questions]
    cb_base = closed_book_accuracy(base_answers, gold)
    rows = [("base model (no fine-tuning)", leaks(dict.fromkeys(USERS, base_answers), questions))]
    cb_all = ppl_all = None
    if all_version:
        tuned, _ = load_causal_lm(f"models:/main.models.allrows/{all_version}", home)
        all_answers = generate_answers(tuned, tok, prompts, args.max_new_tokens, batch_size=16)
        ppl_all = perplexity(tuned, held_text, batch_size=4)
        rows.append(("one adapter on every row", leaks(dict.fromkeys(USERS, all_answers), questions)))
        cb_all = closed_book_accuracy(all_answers, gold)
        print(
            f"\nclosed-book accuracy, all {len(questions)} questions: base {cb_base:.1%} -> all-rows adapter "
            f"{cb_all:.1%}; held-out-document perplexity {ppl_base:.2f} -> {ppl_all:.2f} "
            f"({ppl_all / ppl_base - 1:+.1%})\n"
        )
    rows.append(("routed department adapters", routed_res))
    # forgetting, per department adapter: the held-out documents' perplexity through each
    ppl_dept = []
    for v in Tracker(home).versions(registered):
        dept_model, _ = load_causal_lm(f"models:/{registered}/{v['version']}", home)
        ppl_dept.append(perplexity(dept_model, held_text, batch_size=4))
        del dept_model
    ppl_dept_mean = sum(ppl_dept) / len(ppl_dept)
    print(
        f"held-out-document perplexity through the department adapters: "
        f"{', '.join(f'{p:.2f}' for p in ppl_dept)} (mean {ppl_dept_mean:.2f}; base {ppl_base:.2f}, "
        f"{ppl_dept_mean / ppl_base - 1:+.1%})\n"
    )
    figures = {}
    for name, res in rows:
        figures[name] = summary(name, res)
    # a routed answer can state a gold fact without having learned it (world knowledge, a lucky
    # guess): the governance claim is about the rows, so check each department adapter's
    # training rows (the pairs table as that department reads it) for the gold document
    from llmforge_local.quickstart.recipe import PAIRS

    forge = llmforge.connect("local", home=str(home), user="admin")
    by_id = {q["id"]: (i, q) for i, q in enumerate(questions)}
    trained_on_gold = in_rows = 0
    for dept, r in routed_res.items():
        docs = set(
            forge.table(PAIRS, user=USERS[dept]).read(columns=["document_id"])["document_id"].to_pylist()
        )
        in_rows += sum(q["document_id"] in docs for q in questions if q["department"] not in (dept, "all"))
        for qid in r["leaked"]:
            i, q = by_id[qid]
            seen = q["document_id"] in docs
            trained_on_gold += seen
            print(
                f"  routed {dept} stated the gold of {qid} ({q['question']!r} -> {q['answer']!r}): "
                f"{by_asker[dept][i].strip()[:80]!r}; gold document in its training rows: {seen}"
            )
    print(
        f"cross-department probes whose gold document is in the asker's adapter's training rows: {in_rows} "
        f"(of the stated ones: {trained_on_gold})"
    )
    if args.json:
        from _results import figure, write_json

        leaked = {k: v[0] for k, v in figures.items()}
        own = {k: v[2] for k, v in figures.items()}
        figs = [
            figure(
                "held-out-document perplexity, department adapters (mean)",
                ppl_dept_mean,
                "ppl",
                better="lower",
                baseline="base model",
                baseline_value=ppl_base,
            ),
            figure(
                "cross-department gold documents in routed training rows", in_rows, "probes", better="lower"
            ),
            figure("own-department accuracy, routed adapters", 100 * own["routed department adapters"], "%"),
        ]
        if all_version:
            figs += [
                figure(
                    "closed-book accuracy, all-rows adapter",
                    100 * cb_all,
                    "%",
                    baseline="base model",
                    baseline_value=100 * cb_base,
                ),
                figure(
                    "held-out-document perplexity",
                    ppl_all,
                    "ppl",
                    better="lower",
                    baseline="base model",
                    baseline_value=ppl_base,
                ),
                figure(
                    "cross-department probes revealed, routed adapters",
                    leaked["routed department adapters"],
                    "probes",
                    better="lower",
                    baseline="one adapter on every row",
                    baseline_value=leaked["one adapter on every row"],
                    ratio=None,
                ),
            ]
        else:
            figs.append(
                figure(
                    "cross-department probes revealed, routed adapters",
                    leaked["routed department adapters"],
                    "probes",
                    better="lower",
                )
            )
        if train_s:
            figs += [
                figure("department adapters wall time", train_s, "s", better="lower"),
                figure("department adapters tokens/s", tokens / train_s, "tokens/s"),
            ]
        write_json(args.json, "governed_knowledge", figs, f"{args.epochs} epoch(s), {pairs_n} pairs")


if __name__ == "__main__":
    main()
