"""Workflow commands of the ``llmforge`` CLI: each a thin shell over the Python API."""

from __future__ import annotations

import json

import click

from llmforge.cli import Context, cli, echo_json, pass_ctx
from llmforge.components import TrainResult


def _forge(ctx: Context, create: bool = False):
    """The project of ``--home``; one that does not exist is created only by commands that load
    data (``create``), so a mistyped ``--home`` is an error instead of a new, empty project."""
    from pathlib import Path

    if ctx.home and not create and not Path(ctx.home).exists():
        raise click.BadParameter(
            f"'{ctx.home}' does not exist; check the path (a new project is made by `llmforge ingest`)",
            param_hint="--home",
        )
    return ctx.forge()


def _text(value: str, hint: str) -> str:
    """``value`` if it is valid Unicode; bytes the locale could not decode (Latin-1 in a UTF-8
    shell) arrive as lone surrogates, which no tokenizer or index accepts."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        bad = value[exc.start].encode("utf-8", "surrogateescape")
        raise click.BadParameter(
            f"is not valid UTF-8 (byte 0x{bad.hex()} at character {exc.start}); re-encode it as UTF-8",
            param_hint=hint,
        ) from None
    return value


def _filters(raw: str | None) -> object:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"not JSON: {exc}", param_hint="--filters") from None


@cli.command()
@click.argument("config", type=click.Path(exists=True, dir_okay=False))
@click.option("--model", default=None, help="Override the base model (e.g. smollm2-135m-instruct).")
@click.option("--max-steps", type=click.IntRange(1, 10**7), default=None, help="Stop after this many steps.")
@pass_ctx
def train(ctx: Context, config: str, model: str | None, max_steps: int | None) -> None:
    """Fine-tune from a mosaic-ft-config.yaml; registers a new model version."""
    overrides = {k: v for k, v in {"model": model, "max_steps": max_steps}.items() if v is not None}
    r = ctx.forge().finetune(config, **overrides)
    echo_json({f: getattr(r, f) for f in TrainResult.__dataclass_fields__ if f != "details"})


@cli.command()
@click.argument("path", type=click.Path(exists=True))
@click.option("--table", required=True, help="Target table, catalog.schema.table.")
@click.option("--department", default=None, help="Department for files that do not name one.")
@click.option(
    "--on-error",
    type=click.Choice(["skip", "raise"]),
    default="skip",
    show_default=True,
    help="Skip bad files (reported) or reject the whole load.",
)
@click.option(
    "--mode", type=click.Choice(["append", "overwrite", "merge"]), default="merge", show_default=True
)
@pass_ctx
def ingest(ctx: Context, path: str, table: str, department: str | None, on_error: str, mode: str) -> None:
    """Load a folder or JSONL/CSV/Parquet file of documents into a governed Delta table."""
    from llmforge.errors import DataError
    from llmforge.loaders import load_documents

    docs, report = load_documents(path, department=department, on_error=on_error)
    if docs.num_rows == 0:
        raise DataError(f"no documents were loaded from {path}, so {table} is unchanged; {report}")
    t = _forge(ctx, create=True).table(table)
    if not t.exists:
        t.create(docs, primary_key="document_id")
    elif mode == "merge":
        t.merge(docs, key="document_id")
    else:
        getattr(t, mode)(docs)
    click.echo(f"{table}: {docs.num_rows} documents, version {t.version}; {report}")


@cli.command()
@click.argument("question")
@click.option("--index", default=None, help="Index name (default: rag.index from the config).")
@click.option("--num-results", type=click.IntRange(1, 100), default=None)
@click.option(
    "--filters",
    default=None,
    help='Extra filters as JSON, e.g. \'{"department": ["engineering"]}\' '
    "(they can only narrow what your identity allows).",
)
@click.option("--query-type", type=click.Choice(["ANN", "HYBRID"]), default=None)
@click.option("--json", "as_json", is_flag=True, help="Print the whole answer with citations as JSON.")
@pass_ctx
def ask(
    ctx: Context,
    question: str,
    index: str | None,
    num_results: int | None,
    filters: str | None,
    query_type: str | None,
    as_json: bool,
) -> None:
    """Answer a question with retrieval, as --user, with citations."""
    question = _text(question, "QUESTION")
    forge = _forge(ctx)
    answer = forge.rag.ask(
        question,
        user=forge.user,
        index=index,
        num_results=num_results,
        filters=_filters(filters),
        query_type=query_type,
    )
    if as_json:
        echo_json(answer.to_dict())
        return
    click.echo(answer.text)
    for c in answer.citations:
        click.echo(f"  [{c['document_id']}] {c['source_table']}@v{c['delta_version']} score={c['score']:.3f}")


@cli.group()
def index() -> None:
    """Vector index commands."""


@index.command("sync")
@click.argument("name")
@pass_ctx
def index_sync(ctx: Context, name: str) -> None:
    """Apply the source table's changes since the last sync to a delta-sync index."""
    idx = _forge(ctx).vector_search.get_index(index_name=name)
    echo_json({"sync": idx.sync(), "index": idx.describe()})


@index.command("query")
@click.argument("name")
@click.argument("text")
@click.option("--num-results", type=click.IntRange(1, 1000), default=5, show_default=True)
@click.option(
    "--query-type", type=click.Choice(["ANN", "HYBRID", "FULL_TEXT"]), default="ANN", show_default=True
)
@click.option("--filters", default=None, help="Filters as JSON (Databricks dict syntax).")
@pass_ctx
def index_query(
    ctx: Context, name: str, text: str, num_results: int, query_type: str, filters: str | None
) -> None:
    """similarity_search on an index as --user; prints the Databricks response shape."""
    text = _text(text, "TEXT")
    forge = _forge(ctx)
    idx = forge.vector_search.get_index(index_name=name)
    echo_json(
        idx.similarity_search(
            query_text=text,
            num_results=num_results,
            query_type=query_type,
            filters=_filters(filters),
            user=forge.user,
        )
    )


@cli.group()
def models() -> None:
    """Model registry commands."""


@models.command("promote")
@click.argument("name")
@click.argument("version", type=int)
@click.option("--alias", default="champion", show_default=True)
@click.option(
    "--gate",
    "gates",
    multiple=True,
    metavar="KEY=VALUE",
    help="Gate on eval metrics, e.g. min_rougeL=0.2 or max_perplexity=40 (default: the run's own).",
)
@pass_ctx
def models_promote(ctx: Context, name: str, version: int, alias: str, gates: tuple[str, ...]) -> None:
    """Set an alias on a model version after checking its evaluation gate."""
    gate = None
    if gates:
        gate = {}
        for g in gates:
            key, sep, value = g.partition("=")
            try:
                gate[key.strip()] = float(value)
            except ValueError:
                raise click.BadParameter(f"{g!r} is not KEY=NUMBER", param_hint="--gate") from None
    out = _forge(ctx).models.promote(name, version, alias=alias, gate=gate)
    click.echo(f"models:/{name}@{alias} -> version {version} (was {out['previous'] or 'unset'})")


@models.command("versions")
@click.argument("name")
@pass_ctx
def models_versions(ctx: Context, name: str) -> None:
    """List the registered versions of a model with their aliases and metrics."""
    echo_json(_forge(ctx).models.versions(name))


@cli.command()
@click.argument("securable")
@pass_ctx
def grants(ctx: Context, securable: str) -> None:
    """SHOW GRANTS on a catalog, schema or table."""
    echo_json(_forge(ctx).catalog.show_grants(securable))


@cli.command()
@click.argument("node")
@click.option("--direction", type=click.Choice(["upstream", "downstream"]), default="upstream")
@pass_ctx
def lineage(ctx: Context, node: str, direction: str) -> None:
    """Lineage edges of a node such as table:main.knowledge.documents@3 or model:name/2."""
    cat = _forge(ctx).catalog
    echo_json(getattr(cat, direction)(node))


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True)
@click.option(
    "--trust-user-header", is_flag=True, help="Local dev only: take the caller from X-Llmforge-User."
)
@pass_ctx
def serve(ctx: Context, host: str, port: int, trust_user_header: bool) -> None:
    """Serve an OpenAI-compatible API (chat, completions, models, rag)."""
    from llmforge.server import serve as run_server

    run_server(_forge(ctx), host=host, port=port, trust_user_header=trust_user_header)


@cli.group()
def token() -> None:
    """API tokens for `llmforge serve`."""


def _tokens(ctx: Context):
    from llmforge.tokens import TokenStore

    return TokenStore.for_home(_forge(ctx).home)


@token.command("create")
@click.argument("principal")
@pass_ctx
def token_create(ctx: Context, principal: str) -> None:
    """Create a bearer token for PRINCIPAL (printed once; only its hash is stored)."""
    click.echo(_tokens(ctx).create(_text(principal, "PRINCIPAL")))


@token.command("list")
@pass_ctx
def token_list(ctx: Context) -> None:
    """Stored tokens: id, principal, creation time (never the token)."""
    echo_json(_tokens(ctx).list())


@token.command("revoke")
@click.argument("token_or_id")
@pass_ctx
def token_revoke(ctx: Context, token_or_id: str) -> None:
    """Revoke a stored token, given itself or its id from `llmforge token list`."""
    gone = _tokens(ctx).revoke(token_or_id)
    click.echo(f"revoked token {gone['id']} of {gone['principal']}")


@cli.command()
@pass_ctx
def quotas(ctx: Context) -> None:
    """Token usage and limits per department for today."""
    echo_json(_forge(ctx).quotas.usage())


@cli.command()
@click.option("--since", type=click.DateTime(["%Y-%m-%d"]), default=None, help="First day (UTC), YYYY-MM-DD.")
@click.option("--until", type=click.DateTime(["%Y-%m-%d"]), default=None, help="Last day (UTC), YYYY-MM-DD.")
@click.option("--department", default=None, help="Only this department.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@pass_ctx
def usage(ctx: Context, since, until, department: str | None, as_json: bool) -> None:
    """Served requests per department and day: tokens, errors, p50/p95 latency (admins only)."""
    from llmforge.usage import USAGE_TABLE, read_usage, summarise

    rows = summarise(
        read_usage(_forge(ctx)),
        since=since.date() if since else None,
        until=until.date() if until else None,
        department=department,
    )
    if as_json:
        echo_json(rows)
        return
    if not rows:
        click.echo(f"no requests in {USAGE_TABLE} for that selection")
        return
    cols = [
        "department",
        "day",
        "requests",
        "prompt_tokens",
        "completion_tokens",
        "errors",
        "p50_latency_ms",
        "p95_latency_ms",
    ]
    widths = [max(len(c), *(len(str(r[c])) for r in rows)) for c in cols]
    click.echo("  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True)))
    for r in rows:
        click.echo("  ".join(str(r[c]).ljust(w) for c, w in zip(cols, widths, strict=True)))
