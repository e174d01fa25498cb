"""llmforge: your documents → a governed, fine-tuned, retrieval-augmented assistant.

``import llmforge`` is cheap: heavy libraries load inside the components that use them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from llmforge.errors import (
    ConfigError,
    LLMForgeError,
    NotFoundError,
    PermissionDeniedError,
    PluginError,
)

__version__ = "0.1.0"
__all__ = [
    "ConfigError",
    "LLMForgeError",
    "NotFoundError",
    "PermissionDeniedError",
    "PluginError",
    "available",
    "connect",
    "__version__",
]

if TYPE_CHECKING:
    from llmforge.forge import Forge


def connect(
    backend: str | None = None,
    *,
    home: str | None = None,
    config: Any = None,
    user: str | None = None,
    guardrails: list | None = None,
    **slots: Any,
) -> Forge:
    """Open a project.

    :param backend: backend for every slot (default: ``LLMFORGE_BACKEND``, the config, ``local``)
    :param home: project home folder (tables, catalog, MLflow store, indexes, models)
    :param config: path to ``llmforge.yaml``, a dict, or a ``ProjectConfig``
    :param user: principal the handle acts for (row filters, grants, quotas)
    :param guardrails: guardrail names (or ``{name, options}``) replacing the configured list
    :param slots: per-slot overrides, e.g. ``index="databricks"`` or
        ``generator={"name": "local", "options": {"model": "tiny-random-llama"}}``
    """
    from llmforge.forge import Forge

    return Forge.open(backend=backend, home=home, config=config, user=user, guardrails=guardrails, **slots)


def available() -> dict[str, list[str]]:
    """Installed component names per slot, e.g. ``{"index": ["databricks", "local"], ...}``."""
    from llmforge.registry import installed

    reg = installed()
    return {slot: reg.names(slot) for slot in reg.components}
