"""The end-to-end recipe (`llmforge quickstart`) on the tiny model: every stage connected."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


@pytest.mark.slow
def test_quickstart_runs_the_whole_recipe(tmp_path):
    home = tmp_path / "qs"
    proc = subprocess.run(
        [sys.executable, "-m", "llmforge", "quickstart", "--home", str(home),
         "--model", "tiny-random-llama", "--max-steps", "2"],
        capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    for n in range(1, 8):
        assert f"[{n}/7]" in out
    report = home / "quickstart-report.html"
    html = report.read_text()
    assert "data:image/png;base64," in html and "MLflow run" in html

    import llmforge

    forge = llmforge.connect(home=str(home), user="admin")
    # lineage: documents → training table → run → model version
    versions = forge.catalog.downstream("table:main.knowledge.documents")
    targets = {e["target"].split(":")[0] for e in versions}
    assert {"table", "mlflow_run"} <= targets or "table" in targets
    model_nodes = [e["target"] for e in forge.catalog.downstream("table:main.knowledge.documents", depth=None)
                   if e["target"].startswith("model:")]
    assert model_nodes, "no model version downstream of the documents table"
    # identity: alice (engineering) never sees HR documents, in tables or in answers
    alice_docs = forge.table("main.knowledge.documents", user="alice@acme.example").read()
    assert set(alice_docs["department"].to_pylist()) <= {"engineering", "all"}
    answer = forge.rag.ask("What is the salary band for a senior engineer?", user="alice@acme.example")
    assert all(not c["document_id"].startswith("hr/") for c in answer.citations)
    assert json.dumps(answer.to_dict())
