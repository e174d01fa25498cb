"""Regenerate the Acme Dynamics sample corpus (docs/, questions.jsonl, principals.yaml).

    python examples/enterprise/generate.py [--dest DIR] [--seed N]

Deterministic: the same seed writes byte-identical files (manifest.json lists their hashes).
The logic lives in ``llmforge_local.quickstart.sample`` so an installed package can regenerate it anywhere.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from llmforge_local.quickstart.sample import DEFAULT_SEED, generate_corpus


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--dest",
        type=Path,
        default=Path(__file__).parent,
        help="folder to write into (default: beside this script)",
    )
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    args = parser.parse_args()
    manifest = generate_corpus(args.dest, seed=args.seed)
    per_dept = ", ".join(f"{d} {n}" for d, n in manifest["documents_per_department"].items())
    print(
        f"wrote {manifest['documents']} documents ({per_dept}) and {manifest['questions']} questions "
        f"to {args.dest}"
    )


if __name__ == "__main__":
    main()
