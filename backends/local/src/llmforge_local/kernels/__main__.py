"""``python -m llmforge_local.kernels``: build (or find) the engine's CPU kernels and say which."""

import sys

from llmforge_local.kernels import build, load, why_off

if __name__ == "__main__":
    ops = load()
    if ops is None:
        print(f"llmforge CPU kernels: off ({why_off()}); the engine runs plain PyTorch ops")
        sys.exit(0)
    print(f"llmforge CPU kernels: ready ({build()})")
    if ops.q8_ready():
        print("int8 weights (generator option quantize: int8): ready, on AMX")
    else:
        print(
            "int8 weights (generator option quantize: int8): off, this CPU has no AMX (the engine keeps bf16)"
        )
