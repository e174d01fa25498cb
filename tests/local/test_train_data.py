"""Chat-template formatting, response-only labels, packing."""

from __future__ import annotations

import pyarrow as pa
import pytest
from llmforge_local.train import data as D

from llmforge.errors import DataError


def learned_text(tok, ex: D.Example) -> str:
    return tok.decode([t for t in ex.labels if t != D.IGNORE])


def test_instruction_rows_learn_only_the_response(tiny_tokenizer):
    table = pa.table({"prompt": ["Who owns Project Helix?"], "response": ["Maria Chen."]})
    (ex,) = D.build_examples(table, tiny_tokenizer, "INSTRUCTION_FINETUNE", 256)
    assert learned_text(tiny_tokenizer, ex) == "Maria Chen.<|im_end|>\n"
    text = tiny_tokenizer.decode(ex.input_ids)
    assert text.endswith("<|im_start|>assistant\nMaria Chen.<|im_end|>\n")
    assert "Who owns Project Helix?" in text and len(ex.labels) == len(ex.input_ids)


def test_passages_without_a_question_in_a_pairs_table_learn_as_plain_text(tiny_tokenizer):
    """Pairs of kind ``raw`` (a document's own text, empty prompt) mix continued pre-training
    into instruction tuning: the model keeps modelling the company's prose."""
    passage = "Project Helix moves the warehouse to the lakehouse. " * 12
    table = pa.table(
        {"prompt": ["Who owns Project Helix?", "", None], "response": ["Maria Chen.", passage, "Short text."]}
    )
    pair, *text = D.build_examples(table, tiny_tokenizer, "INSTRUCTION_FINETUNE", 64)
    assert learned_text(tiny_tokenizer, pair) == "Maria Chen.<|im_end|>\n"
    assert len(text) > 2 and all(e.labels == e.input_ids for e in text)  # every token learned
    joined = tiny_tokenizer.decode([t for e in text for t in e.input_ids])
    assert "<|im_start|>" not in joined and joined.startswith(passage[:40]) and "Short text." in joined


def test_chat_rows_learn_every_assistant_turn_and_no_user_turn(tiny_tokenizer):
    msgs = [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello."},
        {"role": "user", "content": "Who owns Helix?"},
        {"role": "assistant", "content": "Maria."},
    ]
    (ex,) = D.build_examples(pa.table({"messages": [msgs]}), tiny_tokenizer, "CHAT_COMPLETION", 256)
    learned = learned_text(tiny_tokenizer, ex)
    assert learned == "Hello.<|im_end|>\nMaria.<|im_end|>\n"
    assert "Who owns" not in learned


def test_continued_pretrain_learns_all_text_in_chunks(tiny_tokenizer):
    text = "Project Helix is the data platform. " * 40
    examples = D.build_examples(pa.table({"text": [text]}), tiny_tokenizer, "CONTINUED_PRETRAIN", 64)
    assert len(examples) > 2 and all(len(e.input_ids) <= 64 for e in examples)
    assert all(e.labels == e.input_ids for e in examples)
    joined = tiny_tokenizer.decode([t for e in examples for t in e.input_ids])
    assert joined.startswith(text.strip()[:50])


def test_wrong_columns_name_what_is_needed(tiny_tokenizer):
    with pytest.raises(DataError, match=r"needs \['prompt', 'response'\] or \['messages'\]"):
        D.build_examples(
            pa.table({"question": ["q"], "answer": ["a"]}), tiny_tokenizer, "INSTRUCTION_FINETUNE", 64
        )
    with pytest.raises(DataError, match="CONTINUED_PRETRAIN"):
        D.build_examples(pa.table({"prompt": ["q"]}), tiny_tokenizer, "CONTINUED_PRETRAIN", 64)


def test_rows_without_anything_to_learn_are_an_error(tiny_tokenizer):
    with pytest.raises(DataError, match="no row has any token to learn"):
        D.build_examples(
            pa.table({"messages": [[{"role": "user", "content": "hi"}]]}),
            tiny_tokenizer,
            "CHAT_COMPLETION",
            64,
        )


def test_split_is_deterministic_and_keeps_both_sides():
    a = D.split(list(range(10)), 0.9, seed=1)
    assert a == D.split(list(range(10)), 0.9, seed=1)
    assert len(a[0]) == 9 and len(a[1]) == 1 and sorted(a[0] + a[1]) == list(range(10))
    assert D.split([1, 2], 0.99, seed=0)[1]  # never an empty held-out side


def test_packing_keeps_every_token_and_wastes_less_than_padding():
    ex = [D.Example(list(range(n)), list(range(n))) for n in (50, 40, 30, 20, 10, 60, 5)]
    rows = D.pack(ex, 64)
    assert all(len(r.input_ids) <= 64 for r in rows)
    assert sum(len(r.input_ids) for r in rows) == sum(len(e.input_ids) for e in ex)
    assert len(rows) < len(ex)
    for r in rows:  # positions restart at each packed example and labels never cross one
        starts = [i for i, p in enumerate(r.position_ids) if p == 0]
        assert all(r.labels[i] == D.IGNORE for i in starts)
    batches = D.make_batches(rows, 2, pad_id=0)
    assert sum(int(b["num_tokens"]) for b in batches) == 215


def test_packed_examples_do_not_attend_to_each_other(tiny_model):
    """The loss of a packed row equals the losses of its examples run one by one."""
    import torch
    from llmforge_local.train.loop import loss_sum

    g = torch.Generator().manual_seed(0)
    ex = [D.Example(t, t) for t in (torch.randint(5, 1000, (n,), generator=g).tolist() for n in (17, 9))]
    packed = D.make_batches(D.pack(ex, 32), 1, pad_id=0)[0]
    with torch.no_grad():
        s_packed, n_packed = loss_sum(tiny_model, packed)
        alone = [loss_sum(tiny_model, D.make_batches(D.unpacked([e]), 1, pad_id=0)[0]) for e in ex]
    assert n_packed == sum(n for _, n in alone) == 16 + 8
    assert float(s_packed) == pytest.approx(sum(float(s) for s, _ in alone), rel=1e-4)


@pytest.mark.parametrize("rows", [1, 2, 3])
def test_split_table_of_a_tiny_table_never_crashes(rows):
    table = pa.table({"prompt": [f"q{i}" for i in range(rows)], "response": ["a"] * rows})
    train, held = D.split_table(table, 0.9, 42, "training table 't'")
    assert train.num_rows + held.num_rows == rows and train.num_rows >= 1
    assert held.num_rows == (0 if rows == 1 else 1) and held.schema == table.schema
    with pytest.raises(DataError, match="no rows to train on"):
        D.split_table(table.slice(0, 0), 0.9, 42, "training table 't'")
