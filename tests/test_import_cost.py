"""`import llmforge` (and loading every plugin, their CLI commands included) must not import heavy
libraries: the core's optional dependencies load inside the functions that need them."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = [
    "torch",
    "transformers",
    "faiss",
    "pyspark",
    "databricks",
    "deltalake",
    "mlflow",
    "sentence_transformers",
    "peft",
    "pandas",
    "fastapi",
    "uvicorn",
    "pyarrow",
    "numpy",
    "matplotlib",
]

PROBE = """
import json, sys
import llmforge
after_import = sorted(m for m in sys.modules if m.split('.')[0] in HEAVY)
llmforge.available()
from llmforge.cli import build_cli
build_cli()
after_plugins = sorted(m for m in sys.modules if m.split('.')[0] in HEAVY)
print(json.dumps([after_import, after_plugins]))
"""


def test_import_and_plugin_discovery_stay_light():
    code = f"HEAVY = {HEAVY!r}\n" + PROBE
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    after_import, after_plugins = json.loads(out.stdout.strip().splitlines()[-1])
    assert after_import == []
    assert after_plugins == []
