"""Typed facade over the hooks: the only module that calls ``pm.hook``."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING

import pluggy

from llmforge.components import SLOTS, Component
from llmforge.errors import PluginError

if TYPE_CHECKING:
    import click

HOOK_FOR_SLOT = {
    "data_source": "register_data_sources",
    "trainer": "register_trainers",
    "index": "register_indexes",
    "generator": "register_generators",
    "guardrail": "register_guardrails",
}


@dataclass
class Registry:
    """Installed component classes: ``components[slot][name] -> class``."""

    components: dict[str, dict[str, type[Component]]] = field(default_factory=dict)
    providers: dict[tuple[str, str], str] = field(default_factory=dict)

    def names(self, slot: str) -> list[str]:
        return sorted(self.components.get(slot, {}))

    def get(self, slot: str, name: str) -> type[Component]:
        if slot not in SLOTS:
            raise PluginError(f"unknown slot '{slot}'; slots are: {sorted(SLOTS)}")
        try:
            return self.components[slot][name]
        except KeyError:
            raise PluginError(
                f"no {slot} named '{name}' is installed; installed: {self.names(slot) or 'none'}. "
                f"Install a backend (pip install 'llmforge[local]') or check `llmforge plugins`."
            ) from None


def collect(pm: pluggy.PluginManager) -> Registry:
    """Call every registration hook once and check what comes back."""
    reg = Registry(components={slot: {} for slot in SLOTS})
    for slot, hook_name in HOOK_FOR_SLOT.items():
        base = SLOTS[slot]
        hook = getattr(pm.hook, hook_name)
        for impl in hook.get_hookimpls():
            provider = impl.plugin_name

            def register(cls: type, _slot=slot, _base=base, _provider=provider) -> None:
                if not (isinstance(cls, type) and issubclass(cls, _base)):
                    raise PluginError(
                        f"plugin '{_provider}' registered {cls!r} as a {_slot}; "
                        f"register a subclass of llmforge.components.{_base.__name__}"
                    )
                if not cls.name:
                    raise PluginError(f"plugin '{_provider}': {cls.__name__} has no `name`")
                if cls.name in reg.components[_slot]:
                    other = reg.providers[(_slot, cls.name)]
                    raise PluginError(
                        f"duplicate {_slot} name '{cls.name}' from plugins '{other}' and "
                        f"'{_provider}'; uninstall one or block it with LLMFORGE_DISABLE_PLUGINS"
                    )
                reg.components[_slot][cls.name] = cls
                reg.providers[(_slot, cls.name)] = _provider

            impl.function(register=register)
    return reg


@lru_cache(maxsize=1)
def installed() -> Registry:
    from llmforge.plugins import plugin_manager

    return collect(plugin_manager())


def add_commands(cli: click.Group, pm: pluggy.PluginManager | None = None) -> None:
    """Call every ``register_commands`` hook once with ``cli``; a plugin may add, never replace."""
    if pm is None:
        from llmforge.plugins import plugin_manager

        pm = plugin_manager()
    for impl in pm.hook.register_commands.get_hookimpls():
        provider = impl.plugin_name
        before = dict(cli.commands)
        try:
            impl.function(cli=cli)
        except Exception as exc:  # a broken plugin must say which one it is
            raise PluginError(
                f"plugin '{provider}' failed to register its commands: {exc}. "
                f"Fix or uninstall it, or skip it with LLMFORGE_DISABLE_PLUGINS={provider}"
            ) from exc
        replaced = sorted(n for n, cmd in before.items() if cli.commands.get(n) is not cmd)
        if replaced:
            raise PluginError(
                f"plugin '{provider}' replaced the command(s) {replaced}; pick another name, "
                f"or skip the plugin with LLMFORGE_DISABLE_PLUGINS={provider}"
            )
