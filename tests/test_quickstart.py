"""The end-to-end recipe (`llmforge quickstart`) on the tiny model: every stage connected."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from importlib import resources
from pathlib import Path

import pytest
from llmforge_local.quickstart import assets

REPO = Path(__file__).resolve().parents[1]


def test_packaged_ft_config_is_the_example_byte_for_byte():
    packaged = resources.files("llmforge_local.quickstart").joinpath("mosaic-ft-config.yaml").read_bytes()
    assert packaged == (REPO / "examples" / "mosaic-ft-config.yaml").read_bytes()


def test_assets_land_in_the_home_and_an_edited_config_is_kept(tmp_path):
    from llmforge.finetune_config import load_finetune_config

    got = assets(tmp_path / "qs")
    assert got.ft_config.parent == tmp_path / "qs" and got.corpus == tmp_path / "qs" / "corpus"
    assert load_finetune_config(got.ft_config).output.registered_model == "main.production.enterprise-llm-v1"
    assert len(list((got.corpus / "docs").rglob("*.md"))) >= 240
    assert (got.corpus / "principals.yaml").is_file() and (got.corpus / "questions.jsonl").is_file()
    got.ft_config.write_text(got.ft_config.read_text() + "# mine\n")
    assert assets(tmp_path / "qs").ft_config.read_text().endswith("# mine\n")


@pytest.mark.slow
def test_quickstart_runs_the_whole_recipe(tmp_path):
    home = tmp_path / "qs"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "llmforge",
            "quickstart",
            "--home",
            str(home),
            "--model",
            "tiny-random-llama",
            "--max-steps",
            "2",
        ],
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    for n in range(1, 8):
        assert f"[{n}/7]" in out
    report = home / "quickstart-report.html"
    html = report.read_text()
    assert "data:image/png;base64," in html and "MLflow run" in html
    # one adapter per department, each its own registered version (the tiny model fails the gate)
    for dept in ("engineering", "finance", "hr", "sales"):
        assert f"department:{dept}" in html
    assert len(set(re.findall(r"department:\w+: run (\w+), version (\d+)", out))) == 4

    import llmforge

    forge = llmforge.connect(home=str(home), user="admin")
    # lineage: documents → training table → run → model version
    versions = forge.catalog.downstream("table:main.knowledge.documents")
    targets = {e["target"].split(":")[0] for e in versions}
    assert {"table", "mlflow_run"} <= targets or "table" in targets
    model_nodes = [
        e["target"]
        for e in forge.catalog.downstream("table:main.knowledge.documents", depth=None)
        if e["target"].startswith("model:")
    ]
    assert model_nodes, "no model version downstream of the documents table"
    # identity: alice (engineering) never sees HR documents, in tables or in answers
    alice_docs = forge.table("main.knowledge.documents", user="alice@acme.example").read()
    assert set(alice_docs["department"].to_pylist()) <= {"engineering", "all"}
    answer = forge.rag.ask("What is the salary band for a senior engineer?", user="alice@acme.example")
    assert all(not c["document_id"].startswith("hr/") for c in answer.citations)
    assert json.dumps(answer.to_dict())
