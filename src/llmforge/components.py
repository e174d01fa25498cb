"""Component base classes: the small contracts every backend implements.

A component is constructed by :class:`llmforge.forge.Forge` as ``cls(forge, options)``;
``forge`` gives it the project home, the catalog, the config and the other slots.
Options are a frozen dataclass declared on the class (``Options``) and filled from the
``options:`` block of ``llmforge.yaml`` for that slot.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from llmforge.forge import Forge


@dataclass(frozen=True)
class NoOptions:
    """Options of a component that takes none."""


class Component:
    """Base of all components. Subclasses set ``name`` and may set ``Options``."""

    slot: ClassVar[str] = ""
    name: ClassVar[str] = ""
    Options: ClassVar[type] = NoOptions
    #: one line shown by ``llmforge plugins``
    description: ClassVar[str] = ""

    def __init__(self, forge: Forge, options: Any = None) -> None:
        self.forge = forge
        self.options = options if options is not None else self.Options()

    @classmethod
    def make_options(cls, raw: dict[str, Any] | None) -> Any:
        """Build ``Options`` from a plain dict, naming unknown keys and the allowed ones."""
        from llmforge.errors import ConfigError

        raw = dict(raw or {})
        allowed = {f.name for f in dataclasses.fields(cls.Options)}
        unknown = sorted(set(raw) - allowed)
        if unknown:
            raise ConfigError(
                f"unknown option(s) {unknown} for {cls.slot} '{cls.name}'; "
                f"allowed: {sorted(allowed) or 'none'}"
            )
        return cls.Options(**raw)


class DataSource(Component):
    """Governed tables: reads apply the caller's row filters and column masks;
    writes are atomic and record lineage."""

    slot = "data_source"

    def table(self, full_name: str, user: str | None = None) -> Any:
        """A handle on ``catalog.schema.table`` acting on behalf of ``user``."""
        raise NotImplementedError

    def list_tables(self, pattern: str = "*") -> list[str]:
        """Names of the tables that exist."""
        raise NotImplementedError


class Trainer(Component):
    """Runs a fine-tuning job from a parsed fine-tuning config."""

    slot = "trainer"

    def finetune(self, config: Any, **overrides: Any) -> Any:
        """Train, track and register; returns a result with ``run_id`` and ``model_version``."""
        raise NotImplementedError


class VectorSearch(Component):
    """Vector indexes with the Databricks Vector Search client's method names."""

    slot = "index"

    def create_endpoint(self, name: str, endpoint_type: str = "STANDARD") -> dict:
        raise NotImplementedError

    def create_delta_sync_index(self, endpoint_name: str, source_table_name: str,
                                index_name: str, primary_key: str,
                                embedding_source_column: str,
                                pipeline_type: str = "TRIGGERED",
                                embedding_model_endpoint_name: str | None = None,
                                columns_to_sync: Sequence[str] | None = None) -> Any:
        raise NotImplementedError

    def create_direct_access_index(self, endpoint_name: str, index_name: str,
                                   primary_key: str, embedding_dimension: int,
                                   embedding_vector_column: str, schema: dict[str, str],
                                   embedding_model_endpoint_name: str | None = None) -> Any:
        raise NotImplementedError

    def get_index(self, endpoint_name: str | None = None, index_name: str = "") -> Any:
        raise NotImplementedError

    def list_indexes(self, name: str | None = None) -> list[dict]:
        raise NotImplementedError

    def delete_index(self, endpoint_name: str | None = None, index_name: str = "") -> None:
        raise NotImplementedError


@dataclass
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass
class Completion:
    """One generated answer with its token counts."""

    text: str
    usage: Usage = field(default_factory=Usage)
    finish_reason: str = "stop"
    model: str = ""


class Generator(Component):
    """Chat completion with usage counts; batching and streaming where the backend can."""

    slot = "generator"

    def chat(self, messages: list[dict[str, str]], *, max_tokens: int = 256,
             temperature: float = 0.0, stop: Sequence[str] | None = None) -> Completion:
        raise NotImplementedError

    def chat_batch(self, conversations: list[list[dict[str, str]]], **kw: Any) -> list[Completion]:
        """Several conversations; backends override this to batch on the device."""
        return [self.chat(c, **kw) for c in conversations]

    def stream(self, messages: list[dict[str, str]], **kw: Any) -> Iterator[str]:
        """Text pieces as they are produced; the default yields the whole answer once."""
        yield self.chat(messages, **kw).text


@dataclass
class GuardResult:
    """Outcome of one guardrail check. ``score`` is in [0, 1] where the guard measures one."""

    guard: str
    passed: bool
    score: float | None = None
    reason: str = ""
    details: dict[str, Any] = field(default_factory=dict)


class Guardrail(Component):
    """A check on the question before retrieval and/or the answer after generation."""

    slot = "guardrail"

    def check_input(self, question: str, *, user: str | None = None) -> GuardResult | None:
        """``None`` when the guard does not look at inputs."""
        return None

    def check_output(self, question: str, answer: str, contexts: Sequence[str]) -> GuardResult | None:
        """``None`` when the guard does not look at outputs."""
        return None


SLOTS: dict[str, type[Component]] = {
    "data_source": DataSource,
    "trainer": Trainer,
    "index": VectorSearch,
    "generator": Generator,
    "guardrail": Guardrail,
}
