"""The sample enterprise corpus: Acme Dynamics, a fictional company.

``generate_corpus(dest)`` writes, deterministically for a seed:

- ``docs/<department>/<slug>.md``: Markdown with front matter (``document_id``, ``title``,
  ``department``, ``updated_at``) for engineering, hr, finance, sales and company-wide
  (``all``) documents: project pages with codenames (Project Helix among them), runbooks,
  ADRs, policies, confidential salary bands (hr only), quarterly results, vendors, accounts;
- ``questions.jsonl``: the held-out question set (see :mod:`llmforge_local.quickstart.sample.questions`);
- ``principals.yaml``: users per department; groups (``admins``, ``hr``, one per
  department) exist through membership, as ``Catalog.load_directory`` reads them;
- ``manifest.json``: seed, counts and the SHA-256 of every file above.

The repository commits the output under ``examples/enterprise/`` (``examples/enterprise/generate.py``
rewrites it byte for byte); ``sample_corpus_path(dest)`` generates it anywhere from the package.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

from llmforge_local.quickstart.sample.business import finance_docs, sales_docs
from llmforge_local.quickstart.sample.company import company_docs
from llmforge_local.quickstart.sample.engineering import engineering_docs
from llmforge_local.quickstart.sample.hr import hr_docs
from llmforge_local.quickstart.sample.questions import build_questions
from llmforge_local.quickstart.sample.render import Doc
from llmforge_local.quickstart.sample.world import build_world

__all__ = ["DEFAULT_SEED", "PRINCIPALS", "build_documents", "generate_corpus", "sample_corpus_path"]

DEFAULT_SEED = 7
#: bump when the generator's output changes, so cached copies are regenerated
CORPUS_VERSION = 1
OUTPUTS = ("docs", "questions.jsonl", "principals.yaml", "manifest.json")
PRINCIPALS = [
    ("alice@acme.example", ["engineering"], ["engineering"]),
    ("bob@acme.example", ["engineering"], ["engineering"]),
    ("carol@acme.example", ["finance"], ["finance"]),
    ("chen@acme.example", ["finance"], ["finance"]),
    ("dave@acme.example", ["sales"], ["sales"]),
    ("diana@acme.example", ["sales"], ["sales"]),
    ("erin@acme.example", ["hr"], ["hr"]),
    ("hiro@acme.example", ["hr"], ["hr"]),
    ("frank@acme.example", ["admins"], ["engineering", "hr", "finance", "sales"]),
    ("admin", ["admins"], ["engineering", "hr", "finance", "sales"]),
]


def build_documents(seed: int = DEFAULT_SEED) -> tuple[list[Doc], list[dict]]:
    """The documents and the question set for ``seed``, in memory."""
    world = build_world(seed)
    docs = (
        engineering_docs(world)
        + hr_docs(world)
        + finance_docs(world)
        + sales_docs(world)
        + company_docs(world)
    )
    return docs, build_questions(world)


def _principals_yaml() -> str:
    lines = [
        "# Users of the sample corpus: each user's departments drive the documents row filter;",
        "# members of `admins` are exempt, members of `hr` see unmasked salary data.",
        "principals:",
    ]
    for name, groups, departments in PRINCIPALS:
        lines.append(
            f"  - {{name: {name}, groups: [{', '.join(groups)}], departments: [{', '.join(departments)}]}}"
        )
    return "\n".join(lines) + "\n"


def _write(path: Path, text: str, hashes: dict[str, str], root: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = text.encode("utf-8")
    path.write_bytes(data)
    hashes[path.relative_to(root).as_posix()] = hashlib.sha256(data).hexdigest()


def generate_corpus(dest: str | Path, seed: int = DEFAULT_SEED) -> dict:
    """Write the corpus under ``dest`` (created if needed) and return its manifest.

    Built in a temporary folder beside ``dest`` and moved in output by output, so a crash
    leaves either the old or the new version of each; other files in ``dest`` are kept.
    """
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    docs, questions = build_documents(seed)
    with tempfile.TemporaryDirectory(dir=dest, prefix=".generating-") as tmp:
        work, hashes = Path(tmp), {}
        for d in docs:
            _write(work / "docs" / d.department / f"{d.slug}.md", d.markdown(), hashes, work)
        _write(
            work / "questions.jsonl",
            "".join(json.dumps(q, ensure_ascii=False) + "\n" for q in questions),
            hashes,
            work,
        )
        _write(work / "principals.yaml", _principals_yaml(), hashes, work)
        counts: dict[str, int] = {}
        for d in docs:
            counts[d.department] = counts.get(d.department, 0) + 1
        manifest = {
            "name": "Acme Dynamics sample corpus",
            "version": CORPUS_VERSION,
            "seed": seed,
            "documents": len(docs),
            "documents_per_department": dict(sorted(counts.items())),
            "questions": len(questions),
            "files": dict(sorted(hashes.items())),
        }
        (work / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
        old = Path(tmp) / ".old-docs"
        if (dest / "docs").exists():
            os.replace(dest / "docs", old)
        os.replace(work / "docs", dest / "docs")
        for name in OUTPUTS[1:]:
            os.replace(work / name, dest / name)
        shutil.rmtree(old, ignore_errors=True)
    return manifest


def _is_current(folder: Path, seed: int) -> bool:
    try:
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return manifest.get("version") == CORPUS_VERSION and manifest.get("seed") == seed


def sample_corpus_path(dest: str | Path | None = None, *, seed: int = DEFAULT_SEED) -> Path:
    """A folder holding the sample corpus (``docs/``, ``questions.jsonl``, ``principals.yaml``).

    The corpus is generated into ``dest`` (default: the cache root,
    :func:`llmforge.fsutil.cache_root`) unless an up-to-date copy is already there. The
    repository's ``examples/enterprise`` is the same output, committed.
    """
    from llmforge.fsutil import cache_root

    target = Path(dest) if dest is not None else cache_root(f"enterprise-v{CORPUS_VERSION}-seed{seed}")
    if not _is_current(target, seed):
        generate_corpus(target, seed)
    return target
