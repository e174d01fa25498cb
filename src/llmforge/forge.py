"""The project handle returned by :func:`llmforge.connect`."""

from __future__ import annotations

import getpass
import os
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from llmforge import config as cfg
from llmforge.components import (
    SLOTS,
    Component,
    DataSource,
    Generator,
    Guardrail,
    Table,
    Trainer,
    TrainResult,
    VectorSearch,
)
from llmforge.errors import ConfigError
from llmforge.registry import Registry, installed

if TYPE_CHECKING:
    from llmforge.catalog import Catalog
    from llmforge.quotas import QuotaLedger
    from llmforge.rag import RAG
    from llmforge.tracking import Tracker


class Forge:
    """Components per slot, the catalog and the core services of one project home."""

    def __init__(
        self, config: cfg.ProjectConfig, root: Path, registry: Registry, user: str | None = None
    ) -> None:
        self.config = config
        self.root = root
        self.registry = registry
        self.home = (root / config.home).resolve()
        cfg.prepare_home(self.home)  # 0700; a file or an unwritable place is a ConfigError
        self.user = user or config.identity.default_user
        self._components: dict[str, Component] = {}
        for slot in SLOTS:  # fail at connect time, not at first use, on a bad name
            if slot != "guardrail":
                registry.get(slot, config.slot(slot).name)
        for g in config.guardrail_configs():
            registry.get("guardrail", g.name)

    @classmethod
    def open(
        cls,
        backend: str | None = None,
        home: str | None = None,
        config: Any = None,
        user: str | None = None,
        guardrails: list | None = None,
        **slots: Any,
    ) -> Forge:
        if isinstance(config, cfg.ProjectConfig):
            conf, root = config, Path.cwd()
        elif isinstance(config, dict):
            conf, root = cfg.validate(config, "config"), Path.cwd()
        else:
            conf, root = cfg.load(config)
        backend = backend or os.environ.get("LLMFORGE_BACKEND") or None
        updates: dict[str, Any] = {}
        if backend:
            updates["backend"] = backend
        if home:
            updates["home"] = str(Path(home).resolve())
        if guardrails is not None:
            updates["guardrails"] = guardrails
        if slots:
            allowed = sorted(set(SLOTS) - {"guardrail"})
            bad = sorted(set(slots) - set(allowed))
            if bad:
                raise ConfigError(
                    f"unknown slot(s) {bad} in connect(); allowed: {allowed} (and guardrails=[...])"
                )
            updates["components"] = {**conf.components, **slots}
        if updates:
            conf = cfg.validate({**conf.model_dump(), **updates})
        return cls(conf, root, installed(), user=user)

    def component(
        self, slot: str, name: str | None = None, options: dict[str, Any] | None = None
    ) -> Component:
        """The component filling ``slot`` (built once, with its configured options)."""
        sc = self.config.slot(slot)
        name = name or sc.name
        key = f"{slot}:{name}"
        if key not in self._components:
            klass = self.registry.get(slot, name)
            if options is None:
                options = sc.options if sc.name == name else {}
            self._components[key] = klass(self, klass.make_options(options))
        return self._components[key]

    @property
    def data(self) -> DataSource:
        return cast(DataSource, self.component("data_source"))

    def table(self, full_name: str, user: str | None = None) -> Table:
        """A governed table handle acting for ``user`` (default: the project's user)."""
        return self.data.table(full_name, user=user or self.user)

    @property
    def vector_search(self) -> VectorSearch:
        return cast(VectorSearch, self.component("index"))

    @property
    def generator(self) -> Generator:
        return cast(Generator, self.component("generator"))

    @property
    def trainer(self) -> Trainer:
        return cast(Trainer, self.component("trainer"))

    @property
    def guardrails(self) -> list[Guardrail]:
        return [self.component("guardrail", g.name, g.options) for g in self.config.guardrail_configs()]

    @cached_property
    def catalog(self) -> Catalog:
        """The embedded catalog: principals, grants, row filters, masks, lineage."""
        from llmforge.catalog import Catalog

        cat = Catalog(self.home / "catalog.db")
        directory = self.config.identity.directory
        if directory:  # the config file is trusted: its directory loads whoever connects
            cat.load_directory(self.root / directory)
        return cat.as_user(self.user or getpass.getuser())

    def finetune(self, config: Any, **overrides: Any) -> TrainResult:
        """Run a fine-tuning job from a ``mosaic-ft-config.yaml`` path or dict."""
        return self.trainer.finetune(config, **overrides)

    def evaluate(self, table: Any, **options: Any) -> Any:
        """Score the RAG application (or ``closed_book=True``: the generator alone, or registered
        ``model=``) on an evaluation table; see :func:`llmforge.evals.evaluate`."""
        from llmforge.evals import evaluate

        return evaluate(self, table, **options)

    @cached_property
    def models(self) -> Tracker:
        """MLflow tracking and model registry of this home (versions, ``promote``, ``resolve``)."""
        from llmforge.tracking import Tracker

        return Tracker(self.home, self.catalog)

    @cached_property
    def quotas(self) -> QuotaLedger:
        """The token quota ledger (limits per department from ``quotas:`` in the config)."""
        from llmforge.quotas import ledger_for

        return ledger_for(self)

    @cached_property
    def rag(self) -> RAG:
        from llmforge.rag import RAG

        return RAG(self)

    def __repr__(self) -> str:
        slots = {s: self.config.slot(s).name for s in SLOTS if s != "guardrail"}
        guards = [g.name for g in self.config.guardrail_configs()]
        return f"Forge(home={str(self.home)!r}, {slots}, guardrails={guards})"
