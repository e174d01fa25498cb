"""``llmforge eval``: score a RAG application or a model version on an evaluation table."""

from __future__ import annotations

import click

from llmforge.cli import Context, cli, echo_json, pass_ctx


@cli.command("eval")
@click.argument("table")
@click.option("--model", help="Registered model to serve, e.g. models:/main.prod.llm@challenger.")
@click.option("--closed-book", is_flag=True, help="Ask the generator alone, without retrieval.")
@click.option("--index", help="Vector index for RAG (default: rag.index of the config).")
@click.option("--metrics", help="Comma-separated metric names (default: all that apply).")
@click.option(
    "-k", "--num-results", "k", type=click.IntRange(1, 100), help="Passages retrieved per question."
)
@click.option("--report", type=click.Path(dir_okay=False), help="Where to write the HTML report.")
@click.option("--no-log", is_flag=True, help="Do not log to MLflow.")
@click.option("--json", "as_json", is_flag=True, help="Print metrics and rows as JSON.")
@pass_ctx
def eval_cmd(ctx: Context, table, model, closed_book, index, metrics, k, report, no_log, as_json) -> None:
    """Evaluate on TABLE (.jsonl/.csv/.parquet path or catalog.schema.table): correctness,
    faithfulness, recall@k, MRR, refusal rate, ROUGE, latency; MLflow run + HTML report."""
    names = [m.strip() for m in metrics.split(",") if m.strip()] if metrics else None
    forge = ctx.forge()
    res = forge.evaluate(
        table,
        model=model,
        closed_book=closed_book,
        index=index,
        metrics=names,
        k=k,
        report=report,
        log=not no_log,
    )
    if as_json:
        echo_json(res.to_dict())
        return
    click.echo(f"evaluated {res.target} on {len(res.rows)} questions")
    for key, value in sorted(res.metrics.items()):
        click.echo(f"  {key:<24} {value:.4f}")
    for key, why in sorted(res.unmeasured.items()):
        click.echo(f"  {key:<24} not measured: {why}")
    click.echo(f"report: {res.report}")
    if res.run_id:
        click.echo(f"mlflow run: {res.run_id}")
