"""``python -m llmforge_local.kernels``: build (or find) the engine's CPU kernels and say which."""

import sys

from llmforge_local.kernels import build, load, why_off

if __name__ == "__main__":
    ops = load()
    if ops is None:
        print(f"llmforge CPU kernels: off ({why_off()}); the engine runs plain PyTorch ops")
        sys.exit(0)
    print(f"llmforge CPU kernels: ready ({build()})")
    for scheme, ready, needs in (
        ("int8", ops.q8_ready(), "amx-bf16"),
        ("w8a8", ops.a8_ready(), "amx-int8"),
    ):
        if ready:
            print(f"int8 weights (generator option quantize: {scheme}): ready, on AMX")
        else:
            print(
                f"int8 weights (generator option quantize: {scheme}): off, this CPU has no AMX ({needs}); "
                "the engine keeps bf16"
            )
