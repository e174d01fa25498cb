"""The core depends only on what its pyproject declares, installs and runs alone, and the local
backend's packaged quickstart finds its config and corpus outside a checkout."""

from __future__ import annotations

import ast
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from llmforge.extras import EXTRA_FOR_MODULE

REPO = Path(__file__).resolve().parents[1]
CORE = REPO / "src" / "llmforge"
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
BACKEND_PACKAGES = {"llmforge_local", "llmforge_databricks", "llmforge_emulator"}


def dist_name(requirement: str) -> str:
    return re.split(r"[\[<>=!~; ]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def third_party_imports(root: Path) -> dict[str, set[str]]:
    """Top-level module -> files importing it, at module level or inside functions."""
    found: dict[str, set[str]] = {}
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top != "llmforge":
                    found.setdefault(top, set()).add(path.relative_to(REPO).as_posix())
    return found


def test_every_third_party_import_of_the_core_is_declared():
    extras = PYPROJECT["optional-dependencies"]
    declared = {dist_name(r) for r in PYPROJECT["dependencies"]}
    declared |= {dist_name(r) for reqs in extras.values() for r in reqs}
    providers = importlib.metadata.packages_distributions()
    imports = third_party_imports(CORE)
    assert not BACKEND_PACKAGES & set(imports), "the core imports a backend by name"
    undeclared = {
        module: sorted(files)
        for module, files in imports.items()
        if not {dist_name(d) for d in providers.get(module, [])} & declared
    }
    assert not undeclared, f"imported by the core but not in pyproject.toml: {undeclared}"


def test_each_optional_module_names_the_extra_that_installs_it():
    extras = PYPROJECT["optional-dependencies"]
    required = {dist_name(r) for r in PYPROJECT["dependencies"]}
    providers = importlib.metadata.packages_distributions()
    for module in third_party_imports(CORE):
        dists = {dist_name(d) for d in providers[module]}
        if dists & required:
            continue
        extra = EXTRA_FOR_MODULE.get(module)
        assert extra is not None, f"{module}: add it to llmforge.extras.EXTRA_FOR_MODULE"
        assert dists & {dist_name(r) for r in extras[extra]}, f"{module} is not in llmforge[{extra}]"


def test_a_missing_optional_module_exits_1_with_the_install_line(capsys):
    from llmforge.cli import build_cli, main

    cli = build_cli()

    @cli.command("needs-arrow")
    def needs_arrow() -> None:
        raise ModuleNotFoundError("No module named 'pyarrow'", name="pyarrow")

    try:
        with pytest.raises(SystemExit) as exc:
            main(["needs-arrow"])
    finally:
        cli.commands.pop("needs-arrow")
    assert exc.value.code == 1
    assert "pip install 'llmforge[data]'" in capsys.readouterr().err


def _venv(where: Path) -> Path:
    subprocess.run([sys.executable, "-m", "venv", str(where)], check=True, capture_output=True)
    return where / "bin"


def _copy_project(src: Path, dest: Path) -> Path:
    """The files a build needs, so building never writes into the shared checkout."""
    dest.mkdir(parents=True)
    for name in ("pyproject.toml", "README.md"):
        if (src / name).exists():
            shutil.copy2(src / name, dest / name)
    shutil.copytree(src / "src", dest / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    return dest


def _run(bin_dir: Path, *args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    proc = subprocess.run(
        [str(bin_dir / args[0]), *args[1:]], cwd=cwd, env=env, capture_output=True, text=True, timeout=900
    )
    if check:
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return proc


@pytest.mark.slow
def test_the_core_installs_and_runs_alone_in_a_fresh_venv(tmp_path):
    bin_dir = _venv(tmp_path / "venv")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    core = _copy_project(REPO, tmp_path / "core")
    _run(bin_dir, "python", "-m", "pip", "install", "-q", str(core), cwd=outside)

    probe = "import json, sys, llmforge; print(json.dumps([llmforge.__file__, sorted(sys.modules)]))"
    where, modules = json.loads(_run(bin_dir, "python", "-c", probe, cwd=outside).stdout)
    assert Path(where).is_relative_to(tmp_path / "venv")  # the installed copy, not the checkout
    assert not {m.split(".")[0] for m in modules} & {"pyarrow", "numpy", "fastapi", "mlflow", "torch"}
    page = "from importlib import resources; print(resources.files('llmforge').joinpath('web/chat.html').is_file())"
    assert _run(bin_dir, "python", "-c", page, cwd=outside).stdout.strip() == "True"  # package data shipped

    helped = _run(bin_dir, "llmforge", "--help", cwd=outside).stdout
    assert "plugins" in helped and "ask" in helped and "emulator" not in helped
    listed = _run(bin_dir, "llmforge", "plugins", cwd=outside).stdout
    assert "faithfulness" in listed
    # a command that needs a backend says how to get one
    (outside / "h").mkdir()
    proc = _run(bin_dir, "llmforge", "--home", "h", "grants", "main", cwd=outside, check=False)
    assert proc.returncode == 1 and "pip install 'llmforge[local]'" in proc.stderr, proc.stderr


@pytest.mark.slow
def test_the_packaged_quickstart_finds_its_config_and_corpus(tmp_path):
    wheels = tmp_path / "wheels"
    bin_dir = _venv(tmp_path / "venv")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    core = _copy_project(REPO, tmp_path / "core")
    local = _copy_project(REPO / "backends" / "local", tmp_path / "local")
    _run(
        bin_dir,
        "python",
        "-m",
        "pip",
        "wheel",
        "-q",
        "--no-deps",
        "-w",
        str(wheels),
        str(core),
        str(local),
        cwd=outside,
    )
    (core_wheel,) = wheels.glob("llmforge-*.whl")
    (local_wheel,) = wheels.glob("llmforge_local-*.whl")
    # the core's light dependencies only: the quickstart's inputs need no torch
    _run(bin_dir, "python", "-m", "pip", "install", "-q", str(core_wheel), cwd=outside)
    _run(bin_dir, "python", "-m", "pip", "install", "-q", "--no-deps", str(local_wheel), cwd=outside)

    probe = (
        "import json, llmforge_local; from llmforge_local.quickstart import assets; a = assets('qs'); "
        "print(json.dumps([llmforge_local.__file__, str(a.ft_config), str(a.corpus)]))"
    )
    where, config, corpus = map(Path, json.loads(_run(bin_dir, "python", "-c", probe, cwd=outside).stdout))
    assert where.is_relative_to(tmp_path / "venv")
    assert config == outside / "qs" / "mosaic-ft-config.yaml"
    assert config.read_bytes() == (REPO / "examples" / "mosaic-ft-config.yaml").read_bytes()
    committed = REPO / "examples" / "enterprise"
    assert (corpus / "manifest.json").read_bytes() == (committed / "manifest.json").read_bytes()
    for rel in json.loads((committed / "manifest.json").read_text())["files"]:
        assert (corpus / rel).read_bytes() == (committed / rel).read_bytes(), rel
    # the installed llmforge-local brings its command through register_commands
    assert "--max-steps" in _run(bin_dir, "llmforge", "quickstart", "--help", cwd=outside).stdout
