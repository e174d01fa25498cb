"""examples/databricks_step3.py: the corrected seed Step 3 runs end to end offline."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_corrected_step3_example_runs_against_the_emulator(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            str(REPO / "examples" / "databricks_step3.py"),
            "--model",
            "tiny-random-llama",
            "--max-tokens",
            "3",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    retrieved = next(line for line in proc.stdout.splitlines() if line.startswith("retrieved: "))
    assert retrieved.split(": ")[1].split(", ")[0] == "eng-007"  # Helix document ranks first
    assert "Q: Who owns Project Helix?" in proc.stdout
