"""Meta-test: every hook is documented in the README and exercised by a test."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmforge.plugins import hook_names

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("hook", hook_names())
def test_hook_is_documented_and_tested(hook):
    assert hook in (REPO / "README.md").read_text(), f"{hook} missing from README.md"
    tests = [p for p in (REPO / "tests").rglob("test_*.py") if p.name != Path(__file__).name]
    assert any(f"def {hook}(" in p.read_text() for p in tests), f"no test plugin implements {hook}"


def test_there_are_five_hooks():
    assert hook_names() == ["register_data_sources", "register_generators", "register_guardrails",
                            "register_indexes", "register_trainers"]
