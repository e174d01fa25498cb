"""The whole plugin contract: five registration hooks, one per component kind, and one for
CLI commands.

Each component hook receives a ``register`` callable; a plugin calls it once per component
class it provides. A component class names itself (``name = "local"``) and declares its slot
by subclassing one of the bases in :mod:`llmforge.components`. ``register_commands`` receives
the ``llmforge`` click group, so a distribution brings its own commands (as simonw/llm does).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    import click

hookspec = pluggy.HookspecMarker("llmforge")
hookimpl = pluggy.HookimplMarker("llmforge")

Register = Callable[[type], None]


@hookspec
def register_data_sources(register: Register) -> None:
    """Register governed-table backends (:class:`llmforge.components.DataSource`).

    :param register: call with each ``DataSource`` subclass this plugin provides.
    """


@hookspec
def register_trainers(register: Register) -> None:
    """Register fine-tuning backends (:class:`llmforge.components.Trainer`).

    :param register: call with each ``Trainer`` subclass this plugin provides.
    """


@hookspec
def register_indexes(register: Register) -> None:
    """Register vector-search backends (:class:`llmforge.components.VectorSearch`).

    :param register: call with each ``VectorSearch`` subclass this plugin provides.
    """


@hookspec
def register_generators(register: Register) -> None:
    """Register text generators (:class:`llmforge.components.Generator`).

    :param register: call with each ``Generator`` subclass this plugin provides.
    """


@hookspec
def register_guardrails(register: Register) -> None:
    """Register input/output checks (:class:`llmforge.components.Guardrail`).

    :param register: call with each ``Guardrail`` subclass this plugin provides.
    """


@hookspec
def register_commands(cli: click.Group) -> None:
    """Add commands to the ``llmforge`` CLI (e.g. ``llmforge emulator``).

    :param cli: the ``llmforge`` click group; decorate new commands with ``@cli.command()``.
    """
