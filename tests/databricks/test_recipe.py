"""examples/databricks_recipe.py: the whole recipe on the databricks backend, through the real
clients and environment variables only, against the emulator."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_the_whole_recipe_runs_against_the_emulator(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("DATABRICKS_")}
    proc = subprocess.run(
        [sys.executable, str(REPO / "examples" / "databricks_recipe.py"), "--emulate"],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=tmp_path,
        env={**env, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert "2. row filter main.knowledge.documents_row_filter on (department)" in out
    assert "5. registered models:/main.production.enterprise_llm_v1/1" in out
    assert "6. main.production.enterprise_llm_v1@champion -> version 1" in out
    assert "7. serving endpoint enterprise-llm-v1 is READY" in out
    cited = {
        line.split(":")[0].split()[-1]: line.split("cites ")[1]
        for line in out.splitlines()
        if "cites" in line
    }
    assert set(cited) == {"bob", "alice"}
    assert "eng-" not in cited["bob"] and "hr-" in cited["bob"]  # bob (hr) never sees engineering rows
    assert "hr-" not in cited["alice"] and "eng-007" in cited["alice"]
