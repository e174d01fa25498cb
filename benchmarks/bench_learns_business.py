"""It learns the business: closed-book accuracy and held-out perplexity, before vs after.

Corpus: the sample company in ``examples/enterprise``. Documents are split once (seeded):
a few documents that no benchmark question is about are held out; instruction pairs
(``llmforge.pairs``, deterministic rules) from the other documents train SmolLM2-135M with
LoRA through llmforge's loop. Then, with no retrieval context:

- closed-book accuracy on ``questions.jsonl`` (held-in facts: their documents were trained
  on, but the questions are worded differently from the generated pairs), an answer counts
  when it contains the gold answer or an alias (``llmforge.evaluation.contains_fact``);
- perplexity on the raw text of the held-out documents (did it learn the company's
  language without forgetting how to model text?).

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_learns_business.py [--epochs 3]

The recipe measured to inject the facts (1.2% -> 94.0% closed book, held-out perplexity
26.6 -> 7.6, ~35 min on 2 CPU cores; ``llmforge bench --full --only learns_business``):

    ... bench_learns_business.py --docs asked --method full --lr 2e-4 --epochs 6 --augment 1 \
        --replay --raw-text --evals-per-epoch 1 --patience 2

Without ``--raw-text`` the same run reaches 92.8% but held-out perplexity triples (81.4): a
model trained on questions alone forgets how to model the company's prose.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "examples" / "enterprise"


def load_corpus(n_heldout: int, seed: int, only_asked: bool = False):
    """(training documents, held-out documents, questions); ``only_asked`` trains on just the
    documents some question is about (a quicker run of the same measurement)."""
    from llmforge.loaders import load_documents

    docs, _ = load_documents(CORPUS / "docs")
    questions = [json.loads(line) for line in (CORPUS / "questions.jsonl").read_text().splitlines() if line]
    asked = {q["document_id"] for q in questions}
    free = sorted(set(docs.column("document_id").to_pylist()) - asked)
    heldout = set(random.Random(seed).sample(free, min(n_heldout, len(free))))
    ids = docs.column("document_id").to_pylist()
    train_docs = docs.take(
        [i for i, d in enumerate(ids) if d not in heldout and (d in asked or not only_asked)]
    )
    held_docs = docs.take([i for i, d in enumerate(ids) if d in heldout])
    return train_docs, held_docs, questions


def lora_run(model, tok, examples, args, device: str, progress: bool):
    """``(LoRA-wrapped model, packed batches, loop options)`` for ``args.epochs`` over
    ``examples`` (``args``: rank, lr, batch, max_len, seed, and ``method`` "lora" or "full")
    — the benchmarks' one training set-up."""
    import torch
    from llmforge_local.models import bf16_supported
    from llmforge_local.train import data as D
    from llmforge_local.train.loop import LoopOptions
    from llmforge_local.train.lora import prepare

    torch.manual_seed(args.seed)
    model = prepare(model, getattr(args, "method", "lora"), lora_options(args))
    batches = D.make_batches(D.pack(examples, args.max_len), args.batch, tok.pad_token_id)
    opts = LoopOptions(
        learning_rate=args.lr,
        total_steps=args.epochs * len(batches),
        warmup_ratio=0.05,
        seed=args.seed,
        bf16=bf16_supported(device),
        progress=progress,
    )
    return model, batches, opts


def lora_options(args):
    from llmforge.finetune_config import LoraOptions

    return LoraOptions(
        r=args.rank,
        alpha=getattr(args, "alpha", None) or 2 * args.rank,
        dropout=0.05,
        use_rslora=getattr(args, "rslora", False),
        lr_ratio=getattr(args, "lr_ratio", 1.0),
    )


def closed_book(model, tok, questions, max_new_tokens: int) -> tuple[float, list[str]]:
    from llmforge.evaluation import closed_book_accuracy, generate_answers

    answers = generate_answers(model, tok, [q["question"] for q in questions], max_new_tokens, batch_size=16)
    expected = [[q["answer"], *q.get("aliases", [])] for q in questions]
    return closed_book_accuracy(answers, expected), answers


def main() -> None:
    from typing import get_args

    from llmforge.finetune_config import Method

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--device", default=None)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--method", choices=get_args(Method), default="lora")
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--rank", type=int, default=64)
    ap.add_argument("--alpha", type=int, default=None, help="LoRA alpha (default 2 x rank)")
    ap.add_argument("--rslora", action="store_true", help="rank-stabilised scaling alpha/sqrt(r)")
    ap.add_argument("--lr-ratio", type=float, default=1.0, help="LoRA+: B matrices learn at lr x this")
    ap.add_argument("--batch", type=int, default=4, help="packed rows per optimizer step")
    ap.add_argument("--max-len", type=int, default=256)
    ap.add_argument(
        "--docs",
        choices=("all", "asked"),
        default="all",
        help="train on every non-held-out document, or only on those a question is about (quicker)",
    )
    ap.add_argument("--kinds", default="fact,acronym", help="pair kinds to train on")
    ap.add_argument("--heldout-docs", type=int, default=12)
    ap.add_argument("--max-new-tokens", type=int, default=32)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--augment",
        type=int,
        default=0,
        help="phrasings per question (llmforge.pairs.augment: + reverse questions and short answers); 0 = off",
    )
    ap.add_argument(
        "--relations", type=int, default=3, help="attribute re-wordings per question with --augment"
    )
    ap.add_argument(
        "--replay", action="store_true", help="mix in the base model's answers to general prompts"
    )
    ap.add_argument(
        "--raw-text",
        action="store_true",
        help="also train on the training documents' own text (continued pre-training mixed in), "
        "which keeps the model a model of the company's prose",
    )
    ap.add_argument("--probe", type=int, default=64, help="held-in closed-book probe questions (0 = off)")
    ap.add_argument("--evals-per-epoch", type=int, default=2, help="probe evaluations per epoch")
    ap.add_argument("--patience", type=int, default=2, help="probe evaluations without gain before stopping")
    ap.add_argument("--save", type=Path, default=None, help="save the best adapter here")
    ap.add_argument("--json", type=Path, default=None, help="write the figures here (suite format)")
    args = ap.parse_args()

    import torch
    from llmforge_local.models import default_device, load_causal_lm
    from llmforge_local.train import data as D
    from llmforge_local.train.loop import train

    from llmforge.evaluation import perplexity
    from llmforge.pairs import pairs_table

    device = args.device or default_device()
    home = Path(tempfile.mkdtemp(prefix="bench-business-"))
    train_docs, held_docs, questions = load_corpus(args.heldout_docs, args.seed, args.docs == "asked")
    pairs = pairs_table(train_docs, kinds=tuple(args.kinds.split(",")))
    if args.augment:
        from llmforge.pairs.augment import AugmentOptions, augment_table

        pairs = augment_table(
            pairs, AugmentOptions(phrasings=args.augment, relations=args.relations, seed=args.seed)
        )
    model, tok = load_causal_lm(args.model, home, dtype=torch.float32, device=device)
    if args.replay:
        import pyarrow as pa

        from llmforge.evaluation import generate_answers
        from llmforge.pairs.augment import replay_table

        replay = replay_table(lambda ps: generate_answers(model, tok, list(ps), 96, batch_size=16))
        pairs = pa.concat_tables([pairs.select(replay.column_names), replay])
    probe = None
    if args.probe:
        from llmforge_local.train.early_stop import split_probe

        pairs, probe = split_probe(pairs, args.probe, args.seed)
    train_ex = D.build_examples(pairs, tok, "INSTRUCTION_FINETUNE", args.max_len)
    if args.raw_text:
        train_ex += D.build_examples(train_docs.select(["content"]), tok, "CONTINUED_PRETRAIN", args.max_len)
    held_text = D.build_examples(held_docs.select(["content"]), tok, "CONTINUED_PRETRAIN", args.max_len)
    print(
        f"{train_docs.num_rows} training documents -> {pairs.num_rows} pairs "
        f"({sum(len(e.input_ids) for e in train_ex)} tokens); {held_docs.num_rows} held-out "
        f"documents; {len(questions)} closed-book questions; device {device}"
    )

    t0 = time.perf_counter()
    acc_before, ans_before = closed_book(model, tok, questions, args.max_new_tokens)
    ppl_before = perplexity(model, held_text, batch_size=4)
    print(
        f"before: closed-book accuracy {acc_before:.1%}, held-out perplexity {ppl_before:.2f} "
        f"({time.perf_counter() - t0:.0f} s)"
    )

    model, batches, opts = lora_run(model, tok, train_ex, args, device, progress=False)
    steps = opts.total_steps
    stopper = None
    if probe is not None:
        from llmforge_local.train.early_stop import EarlyStopper

        every = max(1, len(batches) // args.evals_per_epoch)
        stopper = EarlyStopper(model, tok, probe, every, args.patience, args.max_new_tokens)

        def on_step(step, loss, state):
            stop = stopper.check(step, last=step == steps)
            if stopper.history and stopper.history[-1][0] == step:
                print(
                    f"  step {step}/{steps}: loss {loss:.3f}, probe closed-book {stopper.history[-1][1]:.1%}"
                    f" ({len(probe.questions)} held-in questions"
                    f"{', held-out phrasings' if probe.held_out_phrasing else ''})",
                    flush=True,
                )
            return stop
    else:
        on_step = None
    res = train(model, batches, opts, on_step=on_step, device=device)
    if stopper is not None:
        stopper.restore()
        print(
            f"early stopping: best probe {stopper.best_score:.1%} at step {stopper.best_step}; ran {res.steps}"
        )
    if args.method == "lora_from_full":
        from llmforge_local.train.lora import to_adapter

        model, kept = to_adapter(model, lora_options(args))
        print(f"adapter: rank {args.rank} SVD of the trained layers' change keeps {kept:.1%} of its energy")
    print(
        f"trained {res.steps} of {steps} steps (max {args.epochs} epochs) in {res.seconds:.0f} s, "
        f"{res.tokens_per_second:.0f} tokens/s; loss {res.losses[0][1]:.3f} -> {res.losses[-1][1]:.3f}"
    )
    if args.save:
        model.save_pretrained(args.save)
        tok.save_pretrained(args.save)

    acc_after, ans_after = closed_book(model, tok, questions, args.max_new_tokens)
    ppl_after = perplexity(model, held_text, batch_size=4)
    print(f"after:  closed-book accuracy {acc_after:.1%}, held-out perplexity {ppl_after:.2f}")
    print(
        f"\nclosed-book accuracy {acc_before:.1%} -> {acc_after:.1%}; "
        f"held-out-document perplexity {ppl_before:.2f} -> {ppl_after:.2f}"
    )
    if args.json:
        from _results import figure, write_json

        figs = [
            figure(
                "closed_book_accuracy", acc_after, "share", baseline="base model", baseline_value=acc_before
            ),
            figure("heldout_perplexity", ppl_after, "ppl", "lower", "base model", ppl_before),
            figure("train_tokens_per_second", res.tokens_per_second, "tokens/s"),
            figure("train_seconds", res.seconds, "s", "lower"),
        ]
        write_json(
            args.json,
            "learns_business",
            figs,
            f"{res.steps} steps, {args.method} lr {args.lr}, docs={args.docs}, augment={args.augment}, "
            f"relations={args.relations}, replay={args.replay}, raw_text={args.raw_text}",
        )
    for q, a, b in list(zip(questions, ans_before, ans_after, strict=True))[:5]:
        print(f"- {q['question']} (gold: {q['answer']})\n    before: {a[:90]!r}\n    after:  {b[:90]!r}")


if __name__ == "__main__":
    main()
