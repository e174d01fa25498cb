#!/usr/bin/env bash
# Set up (scripts/setup.sh) and run the whole recipe end to end on the local backend.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
exec .venv/bin/llmforge quickstart "$@"
