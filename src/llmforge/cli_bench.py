"""``llmforge bench``: the checkout's benchmark suite, its results files, comparisons and history."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from llmforge.cli import cli
from llmforge.errors import ConfigError


def _results_file(name: str, folder: Path) -> Path:
    """A results file given as a path, or by its name in the results folder (``.json`` optional)."""
    for p in (Path(name), folder / name, folder / f"{name}.json"):
        if p.is_file():
            return p
    return Path(name)


def _list() -> None:
    from llmforge.bench.registry import BENCHMARKS

    for b in BENCHMARKS:
        profiles = "quick+full" if b.quick is not None else "full"
        gates = f"; floors on {', '.join(g.figure for g in b.gates)}" if b.gates else ""
        click.echo(f"{b.name:<17} {profiles:<11} {b.measures}{gates}")


def _compare(a: str, b: str, folder: Path) -> None:
    from llmforge.bench import compare, results

    pa, pb = _results_file(a, folder), _results_file(b, folder)
    try:
        ra, rb = results.load(pa), results.load(pb)
    except ConfigError as exc:
        raise click.BadParameter(str(exc), param_hint="--compare") from None
    rows, warnings = compare.compare(ra, rb)
    for w in warnings:
        click.echo(f"warning: {w}", err=True)
    click.echo(compare.render(rows, [], str(pa), str(pb)))


@cli.command("bench")
@click.option(
    "--quick",
    "profile",
    flag_value="quick",
    default=True,
    help="The CI profile: about 5 minutes on 2 cores (default).",
)
@click.option(
    "--full", "profile", flag_value="full", help="Every benchmark at full size: the README's table."
)
@click.option(
    "--only", multiple=True, metavar="NAME", help="Run only these benchmarks (repeat, or comma-separate)."
)
@click.option(
    "--device",
    type=click.Choice(["cpu", "cuda"]),
    default="cpu",
    show_default=True,
    help="Device for the benchmarks that take one.",
)
@click.option(
    "--compare",
    nargs=2,
    metavar="A B",
    help="Compare two results files (paths or names in the results folder) and exit.",
)
@click.option(
    "--history", "history_only", is_flag=True, help="Only (re)write the HTML history page and exit."
)
@click.option("--list", "list_only", is_flag=True, help="List the benchmarks and exit.")
@click.option(
    "--benchmarks-dir",
    type=click.Path(file_okay=False),
    help="The checkout's benchmarks/ (default: found from here).",
)
@click.option(
    "--results-dir",
    type=click.Path(file_okay=False),
    help="Where runs are written (default: <benchmarks-dir>/results).",
)
@click.option(
    "--timeout", type=click.FloatRange(min=1), help="Seconds one benchmark may take before it is killed."
)
@click.option("--update-readme", is_flag=True, help="With --full: put the table in the README's block.")
def bench_cmd(
    profile,
    only,
    device,
    compare,
    history_only,
    list_only,
    benchmarks_dir,
    results_dir,
    timeout,
    update_readme,
) -> None:
    """Run every benchmark against its baseline in one run; write benchmarks/results/<date>-<machine>.json
    and .md, check floors (exit 1 on a regression) and update the history page (history.html)."""
    from llmforge.bench import registry, runner

    if list_only:
        _list()
        return
    if update_readme and (profile != "full" or only):
        raise click.UsageError(
            "--update-readme takes the whole --full profile (the README's table), no --only"
        )
    try:
        folder = runner.find_benchmarks_dir(benchmarks_dir)
        benches = [] if (compare or history_only) else registry.select(profile, only)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None
    out_dir = Path(results_dir) if results_dir else folder / "results"
    if compare:
        _compare(*compare, out_dir)
        return
    from llmforge.bench import history

    if history_only:
        click.echo(f"history: {history.write(out_dir)}")
        return
    readme = folder.parent / "README.md" if update_readme else None
    sys.exit(_run(benches, folder, out_dir, profile, device, timeout, readme))


def _run(
    benches,
    folder: Path,
    out_dir: Path,
    profile: str,
    device: str,
    timeout: float | None,
    readme: Path | None,
) -> int:
    from llmforge.bench import compare, history, machine, results, runner
    from llmforge.fsutil import write_atomic, write_json_atomic

    info = machine.describe(folder.parent)
    if device == "cuda" and not info["gpu"]:
        raise click.BadParameter("no NVIDIA GPU found (nvidia-smi); use --device cpu", param_hint="--device")
    click.echo(
        f"{len(benches)} benchmarks, {profile} profile, device {device}, machine {info['id']}", err=True
    )
    run = runner.run_suite(benches, folder, profile, device, info, timeout)
    last = results.previous(out_dir, run)
    run["gates"] = compare.check_run(run, last)
    path = runner.run_path(out_dir, run)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, run, mode=0o644)
    table = results.markdown(run)
    write_atomic(path.with_suffix(".md"), table, mode=0o644)
    page = history.write(out_dir)
    if readme is not None:
        results.update_readme(readme, table)
        click.echo(f"README table updated: {readme}", err=True)
    click.echo("\n" + table)
    failed = [b for b in run["benchmarks"] if b["status"] != "ok"]
    for b in failed:
        click.echo(f"benchmark {b['name']} {b['status']}: {b['error']}", err=True)
        for line in b.get("output_tail", [])[-8:]:
            click.echo(f"    {line}", err=True)
    regressions = [g for g in run["gates"] if not g["passed"]]
    for g in regressions:
        click.echo(f"FLOOR FAILED: {g['message']}", err=True)
    if any(g.get("source", "").startswith("last run") for g in run["gates"]):
        click.echo(f"floors raised from the last run of this machine ({last['started']})", err=True)
    click.echo(f"results: {path} (+ .md); history: {page}; wall time {run['wall_s']:.0f} s", err=True)
    return 1 if failed or regressions else 0
