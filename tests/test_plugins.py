"""Plugin discovery, allow/block lists, misspelled hooks, duplicates, third-party entry points."""

from __future__ import annotations

import textwrap

import click
import pytest
from click.testing import CliRunner

import llmforge
from llmforge import plugins
from llmforge.components import Guardrail, Trainer
from llmforge.errors import PluginError
from llmforge.hookspecs import hookimpl
from llmforge.registry import HOOK_FOR_SLOT, add_commands, collect


@pytest.fixture(autouse=True)
def fresh_manager(monkeypatch):
    monkeypatch.delenv("LLMFORGE_PLUGINS", raising=False)
    monkeypatch.delenv("LLMFORGE_DISABLE_PLUGINS", raising=False)
    plugins.reset()
    yield
    plugins.reset()


def make_distribution(tmp_path, dist: str, module: str, source: str, ep_name: str | None = None):
    """An installed distribution on sys.path: a module plus a dist-info with an entry point."""
    (tmp_path / f"{module}.py").write_text(textwrap.dedent(source))
    info = tmp_path / f"{dist.replace('-', '_')}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[llmforge]\n{ep_name or dist} = {module}\n")


GUARD_PLUGIN = """
from llmforge.components import Guardrail, GuardResult
from llmforge.hookspecs import hookimpl

class Shouty(Guardrail):
    name = "shouty"
    description = "rejects all-caps questions"
    def check_input(self, question, *, user=None):
        return GuardResult(self.name, not question.isupper())

@hookimpl
def register_guardrails(register):
    register(Shouty)
"""


def test_local_and_databricks_fill_every_backend_slot():
    avail = llmforge.available()
    for slot in ("data_source", "trainer", "index", "generator"):
        assert {"local", "databricks"} <= set(avail[slot]), slot
    assert {"faithfulness", "pii", "prompt_injection"} <= set(avail["guardrail"])


def test_third_party_distribution_is_discovered_and_usable(tmp_path, monkeypatch, home):
    make_distribution(tmp_path, "llmforge-shouty", "llmforge_shouty", GUARD_PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    plugins.reset()
    assert "shouty" in llmforge.available()["guardrail"]
    forge = llmforge.connect(home=str(home), guardrails=["shouty"])
    (guard,) = forge.guardrails
    assert guard.check_input("WHAT IS HELIX").passed is False
    assert guard.check_input("what is helix").passed is True


def test_allow_list_loads_only_named_entry_points(monkeypatch):
    monkeypatch.setenv("LLMFORGE_PLUGINS", "local")
    plugins.reset()
    avail = llmforge.available()
    assert avail["index"] == ["local"]
    # built-in default plugins always load
    assert "faithfulness" in avail["guardrail"]


def test_block_list_removes_a_backend(monkeypatch):
    monkeypatch.setenv("LLMFORGE_DISABLE_PLUGINS", "databricks")
    plugins.reset()
    assert "databricks" not in llmforge.available()["trainer"]
    assert "local" in llmforge.available()["trainer"]


def test_misspelled_hook_fails_loudly():
    class Typo:
        @hookimpl
        def register_guardrail(self, register):  # singular: not a hook
            pass

    with pytest.raises(PluginError, match="register_guardrail.*Hooks are: .*register_guardrails"):
        plugins.make_plugin_manager(extra=(Typo(),))


def test_duplicate_names_are_rejected_with_both_providers():
    class A(Trainer):
        name = "local"

    class Dup:
        @hookimpl
        def register_trainers(self, register):
            register(A)

    pm = plugins.make_plugin_manager(extra=(Dup(),))
    with pytest.raises(PluginError, match="duplicate trainer name 'local'"):
        collect(pm)


def test_registering_the_wrong_kind_is_an_error():
    class NotAGuard(Trainer):
        name = "oops"

    class Wrong:
        @hookimpl
        def register_guardrails(self, register):
            register(NotAGuard)

    with pytest.raises(PluginError, match="subclass of llmforge.components.Guardrail"):
        collect(plugins.make_plugin_manager(extra=(Wrong(),)))


def test_broken_plugin_import_names_the_plugin(tmp_path, monkeypatch):
    make_distribution(tmp_path, "llmforge-broken", "llmforge_broken", "raise RuntimeError('boom')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(PluginError, match="llmforge-broken.*boom.*LLMFORGE_DISABLE_PLUGINS"):
        plugins.make_plugin_manager()
    monkeypatch.setenv("LLMFORGE_DISABLE_PLUGINS", "llmforge-broken")
    plugins.make_plugin_manager()


def test_unknown_component_name_lists_installed(home):
    with pytest.raises(PluginError, match=r"no index named 'pinecone'.*installed: \['databricks', 'local'\]"):
        llmforge.connect(home=str(home), index="pinecone")
    with pytest.raises(PluginError, match="no guardrail named 'nope'"):
        llmforge.connect(home=str(home), guardrails=["nope"])


def test_options_are_validated_by_the_component(home):
    class Opts(Guardrail):
        name = "x"

    with pytest.raises(llmforge.ConfigError, match="unknown option.*'colour'.*allowed: none"):
        Opts.make_options({"colour": "red"})


def test_a_plugin_can_fill_every_slot(home, monkeypatch):
    """A third party provides one component per hook; connect() picks them by name."""
    from llmforge.components import Completion, DataSource, Generator, Usage, VectorSearch

    class EchoGen(Generator):
        name = "echo"

        def chat(self, messages, **kw):
            text = messages[-1]["content"]
            return Completion(text, Usage(len(text.split()), len(text.split())))

    class MemData(DataSource):
        name = "memory"

        def list_tables(self, pattern="*"):
            return ["mem.db.t"]

    class MemIndex(VectorSearch):
        name = "memory"

        def list_indexes(self, name=None):
            return [{"name": "mem.db.idx"}]

    class NopTrainer(Trainer):
        name = "nop"

    class Always(Guardrail):
        name = "always"

    class Everything:
        @hookimpl
        def register_data_sources(self, register):
            register(MemData)

        @hookimpl
        def register_trainers(self, register):
            register(NopTrainer)

        @hookimpl
        def register_indexes(self, register):
            register(MemIndex)

        @hookimpl
        def register_generators(self, register):
            register(EchoGen)

        @hookimpl
        def register_guardrails(self, register):
            register(Always)

    reg = collect(plugins.make_plugin_manager(extra=(Everything(),)))
    monkeypatch.setattr("llmforge.forge.installed", lambda: reg)
    forge = llmforge.connect(
        home=str(home),
        data_source="memory",
        index="memory",
        generator="echo",
        trainer="nop",
        guardrails=["always"],
    )
    assert forge.generator.chat([{"role": "user", "content": "hi there"}]).usage.total_tokens == 4
    assert forge.data.list_tables() == ["mem.db.t"]
    assert forge.vector_search.list_indexes()[0]["name"] == "mem.db.idx"
    assert isinstance(forge.trainer, NopTrainer) and isinstance(forge.guardrails[0], Always)


def fresh_group() -> click.Group:
    @click.group()
    def cli() -> None:
        pass

    @cli.command()
    def plugins() -> None:
        pass

    return cli


def test_register_commands_adds_a_distributions_command(tmp_path, monkeypatch):
    make_distribution(
        tmp_path,
        "llmforge-hello",
        "llmforge_hello",
        """
        import click
        from llmforge.hookspecs import hookimpl

        @hookimpl
        def register_commands(cli):
            @cli.command()
            @click.argument("name")
            def hello(name):
                click.echo(f"hello {name}")
        """,
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    cli = fresh_group()
    add_commands(cli, plugins.make_plugin_manager())
    result = CliRunner().invoke(cli, ["hello", "world"])
    assert result.exit_code == 0 and result.output == "hello world\n"
    # the shipped distributions bring theirs the same way
    assert {"emulator", "quickstart"} <= set(cli.commands)


def test_register_commands_is_not_a_component_slot():
    assert "register_commands" in plugins.hook_names()
    assert "register_commands" not in HOOK_FOR_SLOT.values()
    assert sorted([*HOOK_FOR_SLOT.values(), "register_commands"]) == plugins.hook_names()

    calls = []

    class OnlyCommands:
        @hookimpl
        def register_commands(self, cli):
            calls.append(cli)

    reg = collect(plugins.make_plugin_manager(extra=(OnlyCommands(),)))
    assert calls == [] and set(reg.components) == set(HOOK_FOR_SLOT)


def test_a_broken_command_plugin_names_itself():
    class Broken:
        @hookimpl
        def register_commands(self, cli):
            raise RuntimeError("boom")

    pm = plugins.make_plugin_manager(extra=(Broken(),))
    with pytest.raises(PluginError, match=r"failed to register its commands: boom.*LLMFORGE_DISABLE_PLUGINS"):
        add_commands(fresh_group(), pm)


def test_a_plugin_may_not_replace_a_command():
    class Hijack:
        @hookimpl
        def register_commands(self, cli):
            cli.command("plugins")(lambda: None)

    with pytest.raises(PluginError, match=r"replaced the command\(s\) \['plugins'\]"):
        add_commands(fresh_group(), plugins.make_plugin_manager(extra=(Hijack(),)))
