"""Meta-test: every hook in the live registry is documented, with its signature, in the README,
and implemented by a test plugin."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmforge.plugins import make_plugin_manager

REPO = Path(__file__).resolve().parents[1]
#: hook name -> signature as the README writes it, e.g. ``register_commands(cli)``
HOOKS = {
    name: f"{name}({', '.join(caller.spec.argnames)})"
    for name, caller in vars(make_plugin_manager().hook).items()
    if getattr(caller, "spec", None) is not None
}


@pytest.mark.parametrize("hook", sorted(HOOKS))
def test_hook_signature_is_documented_and_a_test_implements_it(hook):
    sig = HOOKS[hook]
    assert sig in (REPO / "README.md").read_text(), f"{sig} missing from README.md"
    tests = [p for p in (REPO / "tests").rglob("test_*.py") if p.name != Path(__file__).name]
    assert any(f"def {hook}(" in p.read_text() for p in tests), f"no test plugin implements {hook}"


def test_the_hooks_are_one_per_component_kind_and_one_for_commands():
    assert sorted(HOOKS) == [
        "register_commands",
        "register_data_sources",
        "register_generators",
        "register_guardrails",
        "register_indexes",
        "register_trainers",
    ]
