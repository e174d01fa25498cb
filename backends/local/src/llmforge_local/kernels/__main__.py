"""``python -m llmforge_local.kernels``: build (or find) the engine's CPU kernels and say which."""

import sys

from llmforge_local.kernels import build, load, why_off

if __name__ == "__main__":
    ops = load()
    if ops is None:
        print(f"llmforge CPU kernels: off ({why_off()}); the engine runs plain PyTorch ops")
        sys.exit(0)
    print(f"llmforge CPU kernels: ready ({build()})")
