"""Early stopping on a held-in closed-book probe.

Fine-tuning to inject facts is judged by one question: asked without context, does the
model now state the fact? The probe answers it while training runs. Its questions are
*held-in*: their facts stay in the training rows, only the probe's own phrasing is taken
out — a training table with several phrasings of one fact (``llmforge.pairs.augment``)
gives one phrasing to the probe and trains on the others, so the probe measures recall of
a trained fact asked in words the model did not see. A table with one phrasing per fact
keeps the probe rows in training (the probe then measures recall of the trained question).

Every ``eval_every`` optimizer steps the probe is asked (greedy, no context) and scored
with :func:`llmforge.evaluation.closed_book_accuracy` against the answer's short span; the
best-scoring weights are kept, and training stops after ``patience`` evaluations without
improvement. The loop then restores the best weights.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa


@dataclass
class Probe:
    questions: list[str]
    #: accepted answers per question (the answer's short span, then the whole answer)
    answers: list[list[str]]
    #: True when the probe's rows were taken out of training (facts held in by other rows)
    held_out_phrasing: bool


def split_probe(pairs: pa.Table, size: int, seed: int) -> tuple[pa.Table, Probe]:
    """``(training rows, probe)``: up to ``size`` probe questions from ``pairs``.

    Rows sharing a document and a response state one fact; from each such group with two or
    more phrasings one non-original phrasing becomes a probe question and leaves training.
    When no fact has two phrasings, the probe is a sample of the training rows (kept)."""
    from llmforge.pairs.augment import short_answer

    rows = pairs.to_pylist()
    groups: dict[tuple[str, str], list[int]] = {}
    for i, r in enumerate(rows):
        if r.get("prompt") and r.get("response"):
            groups.setdefault((r.get("document_id"), r["response"]), []).append(i)
    rng = random.Random(seed)
    multi = [g for g in groups.values() if len(g) >= 2]
    if multi:
        rng.shuffle(multi)
        picked = [next((i for i in g[1:] if "+" in str(rows[i].get("kind"))), g[-1]) for g in multi[:size]]
        keep = sorted(set(range(len(rows))) - set(picked))
        train = pairs.take(keep)
    else:
        singles = [g[0] for g in groups.values()]
        picked = rng.sample(singles, min(size, len(singles)))
        train = pairs
    questions = [rows[i]["prompt"] for i in picked]
    answers = []
    for i in picked:
        short = short_answer(rows[i]["prompt"], rows[i]["response"])
        answers.append([short, rows[i]["response"]] if short else [rows[i]["response"]])
    return train, Probe(questions, answers, held_out_phrasing=bool(multi))


@dataclass
class EarlyStopper:
    """Call :meth:`check` every ``eval_every`` steps from the loop's ``on_step``; it returns
    True when training should stop. ``best_step``/``best_score`` and ``history`` describe the
    run; :meth:`restore` puts the best weights back."""

    model: Any
    tokenizer: Any
    probe: Probe
    eval_every: int
    patience: int
    max_new_tokens: int = 32
    #: generate under bf16 autocast (the loop's frozen base weights may be bf16)
    bf16: bool = False
    history: list[tuple[int, float]] = field(default_factory=list)
    best_step: int = 0
    best_score: float = -1.0
    _best: dict[str, Any] | None = None
    _bad: int = 0

    def score(self) -> float:
        import torch

        from llmforge.evaluation import closed_book_accuracy, generate_answers

        was_training = self.model.training
        self.model.eval()
        device = next(self.model.parameters()).device.type
        try:
            with torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=self.bf16):
                answers = generate_answers(
                    self.model, self.tokenizer, self.probe.questions, self.max_new_tokens, batch_size=16
                )
        finally:
            self.model.train(was_training)
        return closed_book_accuracy(answers, self.probe.answers)

    def check(self, step: int, last: bool = False) -> bool:
        if step % self.eval_every and not last:
            return False
        s = self.score()
        self.history.append((step, s))
        if s > self.best_score:
            self.best_score, self.best_step, self._bad = s, step, 0
            self._best = {k: v.detach().clone() for k, v in self.model.named_parameters() if v.requires_grad}
            return False
        self._bad += 1
        return self._bad >= self.patience

    def restore(self) -> None:
        import torch

        if self._best is None:
            return
        named = dict(self.model.named_parameters())
        with torch.no_grad():
            for k, v in self._best.items():
                named[k].copy_(v)
