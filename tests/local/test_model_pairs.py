"""The model-based pair generator driven by the local generator (tiny random Llama: mechanics only)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
from fixtures.generation import generator_config

import llmforge
from llmforge.pairs import ModelPairGenerator, pairs_table

PROSE = Path(__file__).parents[1] / "data" / "prose"


def test_model_pairs_run_on_the_local_generator_and_keep_only_grounded_pairs(home, chat_model_dir):
    forge = llmforge.connect("local", home=str(home), generator=generator_config(chat_model_dir))
    docs = sorted(PROSE.glob("*.txt"))[:3]
    table = pa.table(
        {
            "document_id": [p.stem for p in docs],
            "content": [p.read_text() for p in docs],
            "department": ["hr"] * 3,
        }
    )
    gen = ModelPairGenerator(forge.generator, max_tokens=8, batch_size=2, rule_kinds=("statement",))
    pairs = pairs_table(table, generator=gen)
    kinds = pairs.column("kind").to_pylist()
    assert set(kinds) <= {"model", "statement"} and kinds.count("statement") >= 6
    # random weights write no grounded pair; whatever the model wrote survived only if grounded
    for row in pairs.to_pylist():
        if row["kind"] == "model":
            text = next(p.read_text() for p in docs if p.stem == row["document_id"])
            assert row["response"].lower() in text.lower()
    assert set(pairs.column("department").to_pylist()) == {"hr"}
