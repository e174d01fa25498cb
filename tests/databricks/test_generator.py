"""DatabricksGenerator (mlflow.deployments underneath) against the emulator's tiny model."""

from __future__ import annotations

import pytest

from llmforge.components import Completion
from llmforge.errors import ConfigError, NotFoundError

CHAT = "databricks-meta-llama-3-3-70b-instruct"
MESSAGES = [{"role": "user", "content": "Summarise the vacation policy."}]


@pytest.fixture
def dbx_generator(tiny_emulator, home):
    import llmforge

    return llmforge.connect(
        backend="local",
        home=str(home),
        user="admin",
        generator={"name": "databricks", "options": {"endpoint": CHAT}},
    ).generator


def test_chat_returns_a_completion_with_usage(dbx_generator, tiny_emulator):
    out = dbx_generator.chat(MESSAGES, max_tokens=5)
    assert isinstance(out, Completion) and out.model == CHAT
    assert out.usage.prompt_tokens > 0 and 0 < out.usage.completion_tokens <= 5
    assert out.text == tiny_emulator.forge.generator.chat(MESSAGES, max_tokens=5).text


def test_stream_concatenates_to_the_chat_answer(dbx_generator):
    streamed = "".join(dbx_generator.stream(MESSAGES, max_tokens=5))
    assert streamed == dbx_generator.chat(MESSAGES, max_tokens=5).text


def test_unknown_endpoint_is_not_found(tiny_emulator, home):
    import llmforge

    gen = llmforge.connect(
        backend="local",
        home=str(home),
        user="admin",
        generator={"name": "databricks", "options": {"endpoint": "nope"}},
    ).generator
    with pytest.raises(NotFoundError, match="nope"):
        gen.chat(MESSAGES, max_tokens=2)


def test_empty_endpoint_option_is_a_config_error():
    from llmforge_databricks.generator import DatabricksGenerator

    with pytest.raises(ConfigError, match="endpoint"):
        DatabricksGenerator.make_options({"endpoint": " "})
    with pytest.raises(ConfigError, match="allowed"):
        DatabricksGenerator.make_options({"model": "x"})
