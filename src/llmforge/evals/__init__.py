"""The evaluation service behind ``forge.evaluate(...)`` and ``llmforge eval``."""

from llmforge.evals.metrics import METRICS
from llmforge.evals.run import EvalResult, evaluate, score
from llmforge.evals.table import EvalRow, load_table

__all__ = ["METRICS", "EvalResult", "EvalRow", "evaluate", "load_table", "score"]
