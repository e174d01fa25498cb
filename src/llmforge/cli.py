"""The ``llmforge`` command. Every command has ``--help``; bad arguments exit 2 with one line."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from llmforge.errors import LLMForgeError


class Context:
    def __init__(self, home: str | None, backend: str | None, config: str | None, user: str | None) -> None:
        self.home, self.backend, self.config, self.user = home, backend, config, user

    def forge(self, **slots: Any):
        import llmforge

        return llmforge.connect(self.backend, home=self.home, config=self.config, user=self.user, **slots)


pass_ctx = click.make_pass_decorator(Context)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--home", envvar="LLMFORGE_HOME", help="Project home (tables, catalog, MLflow, indexes).")
@click.option("--backend", help="Backend for every slot (default: config file, LLMFORGE_BACKEND, local).")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="Path to llmforge.yaml.")
@click.option("--user", envvar="LLMFORGE_USER", help="Principal to act as.")
@click.version_option(package_name="llmforge")
@click.pass_context
def cli(ctx: click.Context, home, backend, config_path, user) -> None:
    """llmforge: documents → governed, fine-tuned, retrieval-augmented assistant."""
    ctx.obj = Context(home, backend, config_path, user)


@cli.command()
def plugins() -> None:
    """List installed components per slot and the plugin that provides each."""
    from llmforge.plugins import plugin_manager
    from llmforge.registry import installed

    reg = installed()
    for slot, comps in reg.components.items():
        click.echo(f"{slot}:")
        for name in sorted(comps):
            cls = comps[name]
            provider = reg.providers[(slot, name)]
            click.echo(f"  {name:<18} {provider:<20} {cls.description}")
    names = [n for n, _ in plugin_manager().list_name_plugin()]
    click.echo(f"plugins loaded: {', '.join(names)}")


@cli.command()
@click.option("--force", is_flag=True, help="Overwrite an existing llmforge.yaml.")
def init(force: bool) -> None:
    """Write a starter llmforge.yaml in the current folder."""
    from pathlib import Path

    from llmforge.config import CONFIG_FILE, ProjectConfig

    path = Path(CONFIG_FILE)
    if path.exists() and not force:
        raise click.UsageError(f"{CONFIG_FILE} exists; pass --force to overwrite")
    import yaml

    path.write_text(yaml.safe_dump(ProjectConfig().model_dump(exclude_none=True), sort_keys=False))
    click.echo(f"wrote {path}")


_plugin_commands_added = False


def build_cli() -> click.Group:
    """The whole command group: the core's commands, then each plugin's (``register_commands``).

    Plugins are asked once per process, however often it is called.
    """
    global _plugin_commands_added
    from llmforge import cli_bench, cli_commands, cli_eval  # noqa: F401  (register the workflow, eval, bench commands)
    from llmforge.registry import add_commands

    if not _plugin_commands_added:
        _plugin_commands_added = True
        add_commands(cli)
    return cli


def main(argv: list[str] | None = None) -> None:
    """Entry point: usage errors exit 2 and llmforge errors exit 1, each as one line."""
    try:
        rv = build_cli().main(args=argv, standalone_mode=False)
    except click.UsageError as exc:
        if type(exc).__name__.startswith("NoArgsIsHelp"):  # bare `llmforge`: show the help
            click.echo(exc.ctx.get_help() if exc.ctx else cli.get_help(click.Context(cli)))
            sys.exit(2)
        cmd = exc.ctx.command_path if exc.ctx else "llmforge"
        click.echo(f"Error: {exc.format_message()} (see `{cmd} --help`)", err=True)
        sys.exit(2)
    except click.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except LLMForgeError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(1)
    except ModuleNotFoundError as exc:  # an optional dependency of the core: say which extra
        from llmforge.extras import install_hint

        hint = install_hint(exc)
        if hint is None:
            raise
        click.echo(f"Error: {hint}", err=True)
        sys.exit(1)
    sys.exit(rv if isinstance(rv, int) else 0)


def echo_json(obj: Any) -> None:
    click.echo(json.dumps(obj, indent=2, default=str))
