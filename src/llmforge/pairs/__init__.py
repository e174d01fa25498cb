"""Instruction/response pairs from documents, for fine-tuning.

``create_training_pair`` is the deterministic generator (see :mod:`llmforge.pairs.rules`
for the rules); ``ModelPairGenerator`` asks a chat model for pairs and checks them
(:mod:`llmforge.pairs.model`); ``pairs_table`` turns a documents table into a training
table with ``prompt``/``response`` and ``messages`` columns.
"""

from __future__ import annotations

from llmforge.pairs.model import ModelPairGenerator, ModelPairOptions
from llmforge.pairs.rules import KINDS, create_training_pair
from llmforge.pairs.table import COLUMNS, pair_id, pairs_schema, pairs_table, training_format

__all__ = [
    "COLUMNS",
    "KINDS",
    "ModelPairGenerator",
    "ModelPairOptions",
    "create_training_pair",
    "pair_id",
    "pairs_schema",
    "pairs_table",
    "training_format",
]
