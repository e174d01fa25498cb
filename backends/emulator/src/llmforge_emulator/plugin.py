"""The emulator's plugin: it brings the ``llmforge emulator`` command through ``register_commands``."""

from __future__ import annotations

import click

from llmforge.hookspecs import hookimpl


@hookimpl
def register_commands(cli: click.Group) -> None:
    from llmforge.cli import Context, pass_ctx

    @cli.command()
    @click.option("--host", default="127.0.0.1", show_default=True)
    @click.option("--port", type=click.IntRange(0, 65535), default=8787, show_default=True)
    @click.option(
        "--tokens",
        default=None,
        help="Token→principal map: a YAML file or 'tok=alice,tok2=bob' "
        "(default: LLMFORGE_EMULATOR_TOKENS, else one random token for --user).",
    )
    @pass_ctx
    def emulator(ctx: Context, host: str, port: int, tokens: str | None) -> None:
        """Serve the Databricks REST subset (Vector Search, Serving, Unity Catalog) on loopback.

        Point DATABRICKS_HOST/DATABRICKS_TOKEN at it and unmodified databricks-vectorsearch,
        mlflow.deployments and databricks-sdk code runs offline against the local backend.
        """
        from llmforge_emulator import serve_emulator

        serve_emulator(ctx.forge(), host=host, port=port, tokens=tokens)
