"""CLI: --help everywhere, exit code 2 with one line on bad arguments, plugins listing."""

from __future__ import annotations

import os
import subprocess
import sys

import click
import pytest

from llmforge.cli import build_cli, main


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "llmforge", *args], capture_output=True, text=True)


def all_commands(group: click.Group, prefix=()):
    for name, cmd in group.commands.items():
        yield (*prefix, name)
        if isinstance(cmd, click.Group):
            yield from all_commands(cmd, (*prefix, name))


def test_every_command_has_help(capsys):
    commands = list(all_commands(build_cli()))
    # quickstart comes from llmforge-local and emulator from llmforge-emulator (register_commands)
    assert {("quickstart",), ("emulator",), ("plugins",), ("train",), ("ask",), ("serve",)} <= set(commands)
    for path in commands:
        with pytest.raises(SystemExit) as exc:
            main([*path, "--help"])
        assert exc.value.code == 0, path
        assert "Usage:" in capsys.readouterr().out


@pytest.mark.parametrize(
    "args",
    [
        ["bogus"],
        ["train"],
        ["ask", "--num-results", "0", "q"],
        ["ingest", "/no/such/path", "--table", "a.b.c"],
    ],
)
def test_bad_arguments_exit_2_with_one_line(args):
    proc = run(*args)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ")
    assert "Traceback" not in proc.stderr


def test_plugins_lists_both_backends_in_every_slot():
    proc = run("plugins")
    assert proc.returncode == 0, proc.stderr
    sections = {}
    current = None
    for line in proc.stdout.splitlines():
        if line.endswith(":") and not line.startswith(" "):
            current = line[:-1]
            sections[current] = []
        elif line.startswith("  ") and current:
            sections[current].append(line.split()[0])
    for slot in ("data_source", "trainer", "index", "generator"):
        assert {"local", "databricks"} <= set(sections[slot]), slot


def test_llmforge_errors_exit_1_without_traceback(tmp_path):
    cfg = tmp_path / "llmforge.yaml"
    cfg.write_text("bakend: local\n")
    proc = run("--config", str(cfg), "grants", "main")
    assert proc.returncode == 1
    assert proc.stderr.startswith("Error: ") and "unknown key 'bakend'" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_plugin_commands_are_added_once():
    group = build_cli()
    emulator = group.commands["emulator"]
    assert build_cli() is group and group.commands["emulator"] is emulator


def test_a_disabled_distribution_takes_its_command_with_it():
    env = {**os.environ, "LLMFORGE_DISABLE_PLUGINS": "emulator"}
    proc = subprocess.run(
        [sys.executable, "-m", "llmforge", "--help"], capture_output=True, text=True, env=env
    )
    assert proc.returncode == 0, proc.stderr
    assert " emulator " not in proc.stdout and " quickstart " in proc.stdout
    assert " emulator " in run("--help").stdout
