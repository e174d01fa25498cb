#!/usr/bin/env bash
# Set up (scripts/setup.sh), lint (ruff check + ruff format --check), then run the whole test
# suite, slow tests included, then the quick benchmark profile (about 5 minutes on 2 cores; it
# fails when a figure falls below its floor). LLMFORGE_SKIP_BENCH=1 skips the benchmarks.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
.venv/bin/python -m pytest "$@"
if [ "${LLMFORGE_SKIP_BENCH:-0}" != 1 ]; then
  .venv/bin/llmforge bench --quick --timeout 600
fi
