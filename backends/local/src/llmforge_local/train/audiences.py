"""One adapter per audience: each trained on exactly the rows its audience may read.

``llmforge: {audiences: departments}`` in the fine-tuning config trains one adapter per
department: the training table is read once by the job's user, then each department's rows
are what the catalog's row filter lets a member of that department (and nothing else) see.
``audiences: [alice, bob]`` reads the table as each named principal (grants included).
Every adapter is a new version of the config's registered model, with lineage and the rows'
footprint, promoted to ``@<alias_prefix>-<audience>`` when it passes the gate.

Every audience is checked before any compute: a table without the department column, a
table without a row filter (every department would read every row), an audience that can
read no row — each fails first, so nothing is half-registered.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmforge.errors import ConfigError, DataError
from llmforge.finetune_config import FinetuneConfig
from llmforge.governance import DEPARTMENT_PREFIX, audience_principal


@dataclass
class AdapterSet:
    """The adapters one per-audience job registered. It has the fields of a single training
    result (``run_id``, ``model_version``, ``model_uri``, ``metrics``), each keyed by audience."""

    registered_model: str
    training_table: str
    training_table_version: int
    #: audience (``department:hr`` or a principal name) → its training result
    adapters: dict[str, Any] = field(default_factory=dict)
    #: audience → the alias it was promoted to, or None when its gate refused it
    aliases: dict[str, str | None] = field(default_factory=dict)
    #: audience → why promotion was refused
    refused: dict[str, str] = field(default_factory=dict)

    @property
    def run_id(self) -> dict[str, str]:
        return {a: r.run_id for a, r in self.adapters.items()}

    @property
    def model_version(self) -> dict[str, str]:
        return {a: r.model_version for a, r in self.adapters.items()}

    @property
    def model_uri(self) -> dict[str, str]:
        return {a: r.model_uri for a, r in self.adapters.items()}

    @property
    def metrics(self) -> dict[str, dict[str, float]]:
        return {a: r.metrics for a, r in self.adapters.items()}


def alias_for(audience: str, prefix: str) -> str:
    """``department:hr`` → ``champion-hr``; ``alice@acme.example`` → ``champion-alice_acme_example``."""
    name = audience[len(DEPARTMENT_PREFIX) :] if audience.startswith(DEPARTMENT_PREFIX) else audience
    return f"{prefix}-{re.sub(r'[^A-Za-z0-9_]', '_', name)}"


def audience_rows(forge: Any, cfg: FinetuneConfig, user: str) -> tuple[int, dict[str, Any]]:
    """``(table version, {audience: rows})`` for every audience, checked before any training."""
    from llmforge_local.train import data as D

    name = cfg.training_data.table
    gov = cfg.llmforge
    full, version = D.read_table(forge, name, user)
    if gov.audiences == "departments":
        column = gov.department_column
        if column not in full.column_names:
            raise DataError(
                f"llmforge.audiences: departments needs a '{column}' column in training table {name!r}, "
                f"which has {full.column_names}; keep the documents' department column on the pairs "
                f"(llmforge.pairs.pairs_table does by default) or set llmforge.department_column"
            )
        spec = forge.catalog.row_filter(name)
        if spec is None:
            raise ConfigError(
                f"training table {name!r} has no row filter, so every department would read every row; "
                f"give it its source's filter (llmforge.governance.inherit_row_filter) or "
                f"forge.catalog.set_row_filter({name!r}, {{'type': 'department_membership', "
                f"'column': '{column}'}})"
            )
        shared = set(spec.get("always_visible", []))
        values = {str(v) for v in full.column(column).to_pylist() if v is not None}
        audiences = [DEPARTMENT_PREFIX + d for d in sorted(values - shared)]
        if not audiences:
            raise DataError(f"training table {name!r} has no department-specific rows to train adapters on")
        rows = {
            a: forge.catalog.apply_policies(name, audience_principal(forge.catalog, a), full)
            for a in audiences
        }
    else:
        rows = {a: forge.table(name, user=a).read(version=version) for a in gov.audiences}
    empty = [a for a, r in rows.items() if r.num_rows == 0]
    if empty:
        raise DataError(
            f"audience(s) {empty} can read no row of {name}@{version}; drop them from "
            f"llmforge.audiences, or grant them rows (row filter, grants) and train again"
        )
    return version, rows


def run_audiences(
    forge: Any, cfg: FinetuneConfig, folder: Path, user: str, job: dict[str, Any]
) -> AdapterSet:
    from llmforge.tracking import PromotionRefused
    from llmforge_local.train.job import train_rows

    version, rows = audience_rows(forge, cfg, user)
    out = AdapterSet(cfg.output.registered_model, cfg.training_data.table, version)
    for audience, data in rows.items():
        reader = audience if not audience.startswith(DEPARTMENT_PREFIX) else user
        result = train_rows(forge, cfg, folder, data, version, reader, job, audience=audience)
        out.adapters[audience] = result
        alias = alias_for(audience, cfg.llmforge.alias_prefix)
        try:
            forge.models.promote(result.registered_model, result.model_version, alias=alias)
            out.aliases[audience] = alias
        except PromotionRefused as exc:
            out.aliases[audience] = None
            out.refused[audience] = str(exc)
    return out
