"""The plugin manager: built-in defaults, then entry points of the ``llmforge`` group.

``LLMFORGE_PLUGINS`` (comma-separated entry-point names) is an allow-list: when set, only
those entry points load. ``LLMFORGE_DISABLE_PLUGINS`` is a block-list. Built-in default
plugins always load; they are what ``import llmforge`` alone can do.
"""

from __future__ import annotations

import importlib.metadata
import os
from functools import lru_cache

import pluggy

from llmforge import hookspecs
from llmforge.errors import PluginError

GROUP = "llmforge"
DEFAULT_PLUGINS = ("llmforge.guardrails",)


def _names(var: str) -> set[str] | None:
    raw = os.environ.get(var)
    if raw is None:
        return None
    return {n.strip() for n in raw.split(",") if n.strip()}


def _entry_points() -> list[importlib.metadata.EntryPoint]:
    allow, block = _names("LLMFORGE_PLUGINS"), _names("LLMFORGE_DISABLE_PLUGINS") or set()
    eps = sorted(importlib.metadata.entry_points(group=GROUP), key=lambda e: e.name)
    return [e for e in eps if (allow is None or e.name in allow) and e.name not in block]


def make_plugin_manager(extra: tuple[object, ...] = ()) -> pluggy.PluginManager:
    """A fresh manager with defaults, allowed entry points and ``extra`` plugin objects."""
    pm = pluggy.PluginManager(GROUP)
    pm.add_hookspecs(hookspecs)
    for modname in DEFAULT_PLUGINS:
        pm.register(importlib.import_module(modname), name=modname)
    for ep in _entry_points():
        if pm.get_plugin(ep.name) is not None:
            continue
        try:
            plugin = ep.load()
        except Exception as exc:  # a broken third-party plugin must not hide which one
            raise PluginError(
                f"plugin '{ep.name}' ({ep.value}) failed to import: {exc}. "
                f"Fix or uninstall it, or skip it with LLMFORGE_DISABLE_PLUGINS={ep.name}"
            ) from exc
        pm.register(plugin, name=ep.name)
    for plugin in extra:
        pm.register(plugin)
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginError(f"{exc}. Hooks are: {hook_names()}") from exc
    return pm


def hook_names() -> list[str]:
    """Names of the hooks a plugin may implement (the functions marked ``@hookspec``)."""
    marker = f"{GROUP}_spec"
    return sorted(n for n in dir(hookspecs) if hasattr(getattr(hookspecs, n), marker))


@lru_cache(maxsize=1)
def plugin_manager() -> pluggy.PluginManager:
    """The process-wide manager (``reset()`` drops it, e.g. after installing a plugin)."""
    return make_plugin_manager()


def reset() -> None:
    plugin_manager.cache_clear()
    from llmforge import registry

    registry.installed.cache_clear()
