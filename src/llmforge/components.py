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
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

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


@runtime_checkable
class Table(Protocol):
    """A governed table handle acting for one principal (``forge.table(name, user=...)``).

    Reads return only what that principal may see (row filter and column masks applied by the
    backend); every write is one atomic commit that returns the new version. ``sources``,
    ``job``, ``run_id`` and ``row_keys`` of a write record lineage where the backend keeps it.
    """

    full_name: str

    @property
    def exists(self) -> bool: ...

    @property
    def version(self) -> int: ...

    @property
    def primary_key(self) -> str | None: ...

    def describe(self) -> dict: ...

    def history(self, limit: int | None = None) -> list[dict]: ...

    def read(self, version: int | None = None, columns: list[str] | None = None, as_: str = "arrow") -> Any:
        """Rows as Arrow (or ``as_="pandas"``), optionally as of ``version``."""

    def create(
        self, data_or_schema: Any, primary_key: str | None = None, comment: str | None = None, **lineage: Any
    ) -> int:
        """Create the table (version 0) from an Arrow table or schema; the caller owns it."""

    def append(self, data: Any, **lineage: Any) -> int: ...

    def overwrite(self, data: Any, **lineage: Any) -> int: ...

    def merge(self, data: Any, key: str | None = None, **lineage: Any) -> int: ...

    def delete(self, predicate: str, **lineage: Any) -> int: ...

    def node(self, version: int | None = None) -> str:
        """The lineage node ``table:<full_name>@<version>``."""


class DataSource(Component):
    """Governed tables: reads apply the caller's row filters and column masks;
    writes are atomic and record lineage."""

    slot = "data_source"

    def table(self, full_name: str, user: str | None = None) -> Table:
        """A handle on ``catalog.schema.table`` acting on behalf of ``user``."""
        raise NotImplementedError

    def list_tables(self, pattern: str = "*") -> list[str]:
        """Names of the tables that exist."""
        raise NotImplementedError

    # Governance, acting as ``forge.user``. These defaults keep it in the embedded catalog
    # (the local backend); a backend with its own catalog (Unity Catalog) overrides all five.
    def set_row_filter(self, table: str, spec: dict | None) -> None:
        """Set (``None``: remove) the table's row filter, a :mod:`llmforge.catalog.policies` spec."""
        self.forge.catalog.set_row_filter(table, spec)

    def set_column_mask(self, table: str, column: str, spec: dict | None) -> None:
        """Set (``None``: remove) a column mask, a :mod:`llmforge.catalog.policies` spec."""
        self.forge.catalog.set_column_mask(table, column, spec)

    def row_filter(self, table: str) -> dict | None:
        """The table's row filter spec, which identity-aware retrieval ANDs into searches."""
        return self.forge.catalog.row_filter(table)

    def grant(self, privilege: str, securable: str, principal: str) -> None:
        """Grant ``privilege`` on a catalog, schema or table to a user or group."""
        self.forge.catalog.grant(privilege, securable, principal)

    def revoke(self, privilege: str, securable: str, principal: str) -> None:
        self.forge.catalog.revoke(privilege, securable, principal)


@dataclass
class TrainResult:
    """What every trainer returns: the tracked run and the registered model version it made."""

    run_id: str
    registered_model: str
    model_version: str
    model_uri: str
    training_table: str | None = None
    training_table_version: int | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    #: backend-specific extras (local: adapter path, tokens/s; databricks: job run id, log URL)
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class Trainer(Component):
    """Runs a fine-tuning job from a parsed fine-tuning config."""

    slot = "trainer"

    def finetune(self, config: Any, **overrides: Any) -> TrainResult:
        """Train, track and register a new model version."""
        raise NotImplementedError


@dataclass(frozen=True)
class IndexInfo:
    """What the core needs to know about an index, cheap to get (no scan of its rows)."""

    name: str
    #: ``DELTA_SYNC`` or ``DIRECT_ACCESS``
    index_type: str
    primary_key: str
    #: the governed table a delta-sync index follows (``None`` for direct access)
    source_table: str | None = None
    #: the column whose text is embedded
    text_column: str | None = None
    #: columns a search may return
    columns: tuple[str, ...] = ()
    #: the index's own version (bumped by every sync/upsert/delete), where the backend has one
    version: int | None = None
    #: the source table version the index reflects, where the backend reports it
    synced_version: int | None = None


@dataclass(frozen=True)
class Hit:
    """One retrieved chunk with what an answer needs to cite it."""

    primary_key: Any
    text: str
    score: float
    document_id: Any = None
    chunk_id: int = 0
    #: the source table version the chunk was read from (``None`` when the backend cannot say)
    source_version: int | None = None


def document_column(columns: Sequence[str], primary_key: str) -> str | None:
    """The synced column naming a chunk's document (``document_id`` / ``doc_id``), if not the key."""
    return next((c for c in ("document_id", "doc_id") if c in columns and c != primary_key), None)


@runtime_checkable
class Index(Protocol):
    """One vector index with the Databricks ``VectorSearchIndex`` methods.

    ``user`` (or :meth:`as_user`) narrows every read to what that principal may see: the
    backend passes it through :func:`llmforge.vector_filters.governed`, the one place the
    caller's row filter is ANDed into a search.
    """

    name: str

    def as_user(self, user: Any) -> Index: ...

    def info(self) -> IndexInfo: ...

    def describe(self) -> dict: ...

    def wait_until_ready(self, verbose: bool = False, **kw: Any) -> None: ...

    def sync(self) -> dict: ...

    def upsert(self, inputs: Sequence[dict]) -> dict: ...

    def delete(self, primary_keys: Sequence[Any]) -> dict: ...

    def scan(self, num_results: int = 10, last_primary_key: Any = None) -> dict: ...

    def similarity_search(
        self,
        columns: Sequence[str] | None = None,
        query_text: str | None = None,
        query_vector: Sequence[float] | None = None,
        filters: Any = None,
        num_results: int = 5,
        debug_level: int = 0,
        score_threshold: float | None = None,
        query_type: str | None = None,
        *,
        user: Any = None,
    ) -> dict:
        """The Databricks response shape: rows are lists in manifest order, ``score`` last."""

    def retrieve(
        self,
        query_text: str,
        *,
        user: Any,
        num_results: int = 5,
        filters: Any = None,
        query_type: str | None = None,
        score_threshold: float | None = None,
    ) -> list[Hit]:
        """Chunks of a delta-sync index for ``user``, best first, with what a citation needs."""


class VectorSearch(Component):
    """Vector indexes with the Databricks Vector Search client's method names."""

    slot = "index"

    def create_endpoint(self, name: str, endpoint_type: str = "STANDARD") -> dict:
        raise NotImplementedError

    def create_delta_sync_index(
        self,
        endpoint_name: str,
        source_table_name: str,
        index_name: str,
        primary_key: str,
        embedding_source_column: str,
        pipeline_type: str = "TRIGGERED",
        embedding_model_endpoint_name: str | None = None,
        columns_to_sync: Sequence[str] | None = None,
    ) -> Index:
        raise NotImplementedError

    def create_direct_access_index(
        self,
        endpoint_name: str,
        index_name: str,
        primary_key: str,
        embedding_dimension: int,
        embedding_vector_column: str,
        schema: dict[str, str],
        embedding_model_endpoint_name: str | None = None,
    ) -> Index:
        raise NotImplementedError

    def get_index(self, endpoint_name: str | None = None, index_name: str = "") -> Index:
        raise NotImplementedError

    def list_indexes(self, name: str | None = None) -> list[dict]:
        raise NotImplementedError

    def delete_index(self, endpoint_name: str | None = None, index_name: str = "") -> None:
        raise NotImplementedError


@dataclass
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    #: of the prompt tokens, those whose work a cache of earlier prompts saved (OpenAI's
    #: ``usage.prompt_tokens_details.cached_tokens``); they are counted and charged all the same
    cached_tokens: int = 0

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

    def chat(
        self,
        messages: list[dict[str, str]],
        *,
        max_tokens: int = 256,
        temperature: float = 0.0,
        stop: Sequence[str] | None = None,
        user: str | None = None,
    ) -> Completion:
        """One answer. ``user``: the principal asking; a backend that serves per-audience
        adapters routes the request to the one that principal is entitled to
        (:func:`llmforge.governance.route`)."""
        raise NotImplementedError

    def chat_batch(
        self, conversations: list[list[dict[str, str]]], *, user: str | None = None, **kw: Any
    ) -> list[Completion]:
        """Several conversations of one ``user``; backends override this to batch on the device."""
        return [self.chat(c, user=user, **kw) for c in conversations]

    def complete_batch(self, prompts: list[str], *, user: str | None = None, **kw: Any) -> list[Completion]:
        """Raw-text completions (``/v1/completions``); backends without a raw mode send each
        prompt as one user turn."""
        return self.chat_batch([[{"role": "user", "content": p}] for p in prompts], user=user, **kw)

    def stream(self, messages: list[dict[str, str]], *, user: str | None = None, **kw: Any) -> Iterator[str]:
        """Text pieces as they are produced; the default yields the whole answer once."""
        yield self.chat(messages, user=user, **kw).text


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
