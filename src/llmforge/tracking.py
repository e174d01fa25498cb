"""MLflow tracking and model registry for training jobs (real MLflow, SQLite store).

The store lives in the project home: ``<home>/mlflow.db`` (runs and registry) and
``<home>/mlruns`` (artifacts). Every training run registers a *new* version of its
registered model; nothing here overwrites or deletes a version. Aliases (``@champion``,
``@challenger``) move only through :meth:`Tracker.promote`, which refuses a version whose
evaluation metrics fail the gate.

MLflow names: the open-source registry accepts Unity Catalog style names such as
``main.production.enterprise-llm-v1`` unchanged, so no mapping is applied.

A home is relocatable: MLflow stores absolute artifact URIs, so the store records the home it
was written in and, opened from anywhere else (a ``cp -a`` copy, a restored backup), rewrites
its URIs to the new place before use — a copy never reads or writes the original's artifacts.
A run whose process died (kill -9, power loss) is marked ``KILLED`` on the next open instead of
staying ``RUNNING`` forever. Promotion acts as the forge's principal: it needs ownership of the
registered model (its registrant), OWNER on its schema, or membership of ``admins``.
"""

from __future__ import annotations

import json
import platform
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from llmforge.errors import ModelError, NotFoundError, PermissionDeniedError
from llmforge.tracking_repair import HOST_TAG, PID_TAG, repair

GATE_TAG = "llmforge.gate"
MANIFEST = "llmforge_model.json"
#: registered-model tag naming the principal that registered it (its owner)
OWNER_TAG = "llmforge.owner"


class PromotionRefused(ModelError):
    """A model version failed its promotion gate; the alias was not moved."""


@dataclass(frozen=True)
class ResolvedModel:
    """What a ``models:/name@alias`` URI points at, ready for a local loader."""

    name: str
    version: str
    run_id: str
    #: folder with the adapter (or full model) + tokenizer + ``llmforge_model.json``
    path: Path
    #: model spec of the frozen base (None for a full fine-tune: ``path`` is the whole model)
    base_model: str | None
    #: ``path`` as an adapter folder, or None for a full fine-tune
    adapter: Path | None


def check_gate(metrics: dict[str, float], gate: dict[str, float]) -> list[str]:
    """Failures of ``metrics`` against ``gate`` (``min_<metric>`` / ``max_<metric>``)."""
    failures = []
    for key, bound in sorted(gate.items()):
        kind, _, metric = key.partition("_")
        value = metrics.get(metric)
        if value is None:
            failures.append(f"{metric} was not measured (gate {key}={bound})")
        elif kind == "min" and value < bound:
            failures.append(f"{metric}={value:.4g} < {bound}")
        elif kind == "max" and value > bound:
            failures.append(f"{metric}={value:.4g} > {bound}")
    return failures


def system_info() -> dict[str, str]:
    import torch

    info = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "cpu_threads": str(torch.get_num_threads()),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none",
    }
    try:
        import transformers

        info["transformers"] = transformers.__version__
    except ImportError:
        pass
    return info


def loss_curve_png(losses: list[tuple[int, float]], path: Path, title: str = "training loss") -> Path:
    """Plot loss per optimizer step to ``path`` (matplotlib, no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    steps, values = [s for s, _ in losses], [v for _, v in losses]
    ax.plot(steps, values, lw=0.8, alpha=0.45, label="per step")
    if len(values) >= 5:  # small batches make the raw curve noisy; the trend is what people compare
        ema, smooth = values[0], []
        for v in values:
            ema = 0.8 * ema + 0.2 * v
            smooth.append(ema)
        ax.plot(steps, smooth, lw=1.8, label="moving average (0.8)")
        ax.legend(loc="upper right")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss per learned token")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _copy_empty_store(db: Path) -> None:
    """Start a new store from a migrated empty one: MLflow's schema migrations take ~5-10 s
    per new database, which every fresh project home (and every test) would pay."""
    import shutil

    import mlflow
    from mlflow.tracking import MlflowClient

    from llmforge.fsutil import atomic_file, cache_root

    template = cache_root("mlflow") / f"empty-{mlflow.__version__}.db"
    if not template.exists():
        with atomic_file(template, fsync=False) as tmp:
            tmp.unlink()  # MLflow creates the database itself
            uri = f"sqlite:///{tmp}"
            MlflowClient(tracking_uri=uri, registry_uri=uri).search_experiments()
    with atomic_file(db, mode=0o600) as tmp:
        shutil.copyfile(template, tmp)


class Run:
    """One MLflow run; a ``with`` block marks it FINISHED, or FAILED on an exception."""

    def __init__(self, client: Any, run_id: str) -> None:
        self.client = client
        self.run_id = run_id

    def log_params(self, params: dict[str, Any]) -> None:
        from mlflow.entities import Param

        items = [Param(k, str(v)[:6000]) for k, v in params.items()]
        for i in range(0, len(items), 100):  # MLflow's per-batch limit
            self.client.log_batch(self.run_id, params=items[i : i + 100])

    def log_metrics(self, metrics: dict[str, float], step: int = 0) -> None:
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self.client.log_batch(
            self.run_id, metrics=[Metric(k, float(v), now, step) for k, v in metrics.items()]
        )

    def log_series(self, key: str, points: list[tuple[int, float]]) -> None:
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        items = [Metric(key, float(v), now, int(s)) for s, v in points]
        for i in range(0, len(items), 1000):
            self.client.log_batch(self.run_id, metrics=items[i : i + 1000])

    def set_tags(self, tags: dict[str, Any]) -> None:
        from mlflow.entities import RunTag

        self.client.log_batch(self.run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def log_dict(self, data: dict, artifact_file: str) -> None:
        self.client.log_dict(self.run_id, data, artifact_file)

    def log_artifact(self, path: Path, artifact_path: str | None = None) -> None:
        self.client.log_artifact(self.run_id, str(path), artifact_path)

    def log_artifacts(self, folder: Path, artifact_path: str) -> None:
        self.client.log_artifacts(self.run_id, str(folder), artifact_path)

    @property
    def artifact_uri(self) -> str:
        return self.client.get_run(self.run_id).info.artifact_uri

    def __enter__(self) -> Run:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.client.set_terminated(self.run_id, "FAILED" if exc_type else "FINISHED")


class Tracker:
    """Runs, registry and aliases of one project home."""

    def __init__(self, home: str | Path, catalog: Any = None) -> None:
        self.home = Path(home)
        self.catalog = catalog

    @property
    def uri(self) -> str:
        return f"sqlite:///{self.home / 'mlflow.db'}"

    @cached_property
    def client(self) -> Any:
        import logging

        from mlflow.tracking import MlflowClient

        # the first open migrates the schema and logs at INFO; that is not news for the user
        logging.getLogger("mlflow.store.db.utils").setLevel(logging.WARNING)
        logging.getLogger("alembic").setLevel(logging.WARNING)
        self.home.mkdir(mode=0o700, parents=True, exist_ok=True)
        db = self.home / "mlflow.db"
        if not db.exists():
            _copy_empty_store(db)
        repair(db, self.home)
        return MlflowClient(tracking_uri=self.uri, registry_uri=self.uri)

    def experiment_id(self, name: str) -> str:
        exp = self.client.get_experiment_by_name(name)
        if exp is not None:
            return exp.experiment_id
        location = (self.home / "mlruns").resolve().as_uri()
        return self.client.create_experiment(name, artifact_location=location)

    def start_run(
        self, experiment: str, run_name: str | None = None, tags: dict[str, str] | None = None
    ) -> Run:
        import os

        # the process that owns the run: a later open marks it KILLED if that process is gone
        tags = {**(tags or {}), PID_TAG: str(os.getpid()), HOST_TAG: platform.node()}
        run = self.client.create_run(self.experiment_id(experiment), run_name=run_name, tags=tags)
        return Run(self.client, run.info.run_id)

    # --- registry ------------------------------------------------------------------------

    def register(
        self,
        name: str,
        run: Run,
        artifact_path: str = "model",
        sources: list[str] = (),
        tags: dict[str, str] | None = None,
    ) -> str:
        """A new version of ``name`` from ``run``'s artifacts, with lineage; returns its number."""
        from mlflow.exceptions import MlflowException

        owner = getattr(self.catalog, "actor", None)
        try:
            self.client.create_registered_model(name, tags={OWNER_TAG: owner} if owner else None)
        except MlflowException as exc:
            if "already exists" not in str(exc).lower() and "RESOURCE_ALREADY_EXISTS" not in str(exc):
                raise
        version = self.client.create_model_version(
            name, source=f"{run.artifact_uri}/{artifact_path}", run_id=run.run_id, tags=tags or {}
        )
        if self.catalog is not None:
            run_node = f"mlflow_run:{run.run_id}"
            if sources:
                self.catalog.record_lineage(list(sources), run_node, job="finetune", run_id=run.run_id)
            self.catalog.record_lineage(
                [run_node], f"model:{name}/{version.version}", job="register", run_id=run.run_id
            )
        return str(version.version)

    def versions(self, name: str) -> list[dict]:
        """Every version of ``name`` with its aliases and evaluation metrics, oldest first."""
        model = self._model(name)
        aliases: dict[str, list[str]] = {}
        for alias, v in (model.aliases or {}).items():
            aliases.setdefault(str(v), []).append(alias)
        out = []
        for v in self.client.search_model_versions(f"name='{name}'"):
            out.append(
                {
                    "version": str(v.version),
                    "run_id": v.run_id,
                    "source": v.source,
                    "aliases": sorted(aliases.get(str(v.version), [])),
                    "metrics": self._metrics(v.run_id),
                    "status": v.status,
                }
            )
        return sorted(out, key=lambda d: int(d["version"]))

    def promote(
        self, name: str, version: str | int, alias: str = "champion", gate: dict[str, float] | None = None
    ) -> dict:
        """Point ``name@alias`` at ``version`` if its metrics pass ``gate`` (default: the gate
        recorded by the training config). Raises :class:`PromotionRefused` otherwise."""
        version = str(version)
        self._check_manage(name, f"move {name}@{alias}")
        mv = self._version(name, version)
        run = self.client.get_run(mv.run_id)
        if run.info.status != "FINISHED":
            raise PromotionRefused(
                f"{name} version {version} comes from run {mv.run_id} with status "
                f"{run.info.status}; only finished runs can be promoted"
            )
        if gate is None:
            gate = json.loads(run.data.tags.get(GATE_TAG, "{}"))
        failures = check_gate(dict(run.data.metrics), gate)
        if failures:
            raise PromotionRefused(
                f"refusing to set {name}@{alias} to version {version}: "
                f"{'; '.join(failures)}. Train a better version or pass a "
                "different gate explicitly."
            )
        from llmforge.governance import check_promotion

        check_promotion(self, name, version, alias)  # weights are governed like the rows they learned
        previous = None
        try:
            previous = str(self.client.get_model_version_by_alias(name, alias).version)
        except Exception:
            pass
        self.client.set_registered_model_alias(name, alias, version)
        return {
            "name": name,
            "alias": alias,
            "version": version,
            "previous": previous,
            "metrics": dict(run.data.metrics),
        }

    def resolve(self, uri: str) -> ResolvedModel:
        """``models:/name@alias`` or ``models:/name/version`` -> the local model folder."""
        if not uri.startswith("models:/"):
            raise ModelError(
                f"{uri!r} is not a registered model URI; use models:/<name>@<alias> "
                "or models:/<name>/<version>"
            )
        rest = uri[len("models:/") :]
        if "@" in rest:
            name, alias = rest.rsplit("@", 1)
            self._model(name)
            try:
                mv = self.client.get_model_version_by_alias(name, alias)
            except Exception:
                raise NotFoundError(
                    f"{name} has no alias @{alias}; set one with "
                    f"`llmforge models promote {name} VERSION --alias {alias}`"
                ) from None
        else:
            name, _, version = rest.rpartition("/")
            mv = self._version(name, version)
        path = self._local_path(mv.source)
        manifest = json.loads((path / MANIFEST).read_text()) if (path / MANIFEST).exists() else {}
        is_adapter = (path / "adapter_config.json").exists()
        return ResolvedModel(
            name=name,
            version=str(mv.version),
            run_id=mv.run_id,
            path=path,
            base_model=manifest.get("base_model") if is_adapter else None,
            adapter=path if is_adapter else None,
        )

    def _check_manage(self, name: str, what: str) -> None:
        """The acting principal owns ``name``, owns its schema, or is an admin (as in UC: MANAGE)."""
        cat = self.catalog
        actor = getattr(cat, "actor", None)
        if actor is None:
            return
        who = cat.principal(actor)
        model = self._model(name)
        if cat.is_admin(who) or (model.tags or {}).get(OWNER_TAG) in who.identities:
            return
        schema = name.rsplit(".", 1)[0] if name.count(".") == 2 else None
        if schema and cat.exists(schema) and cat.has_privilege(who, "OWNER", schema):
            return
        raise PermissionDeniedError(
            f"principal '{who.name}' cannot {what}: that needs ownership of the registered model "
            f"(owner: {(model.tags or {}).get(OWNER_TAG) or 'unknown'}), OWNER on its schema, or "
            "membership of 'admins'. Connect as one of them."
        )

    def _model(self, name: str) -> Any:
        try:
            return self.client.get_registered_model(name)
        except Exception:
            raise NotFoundError(
                f"no registered model {name!r} in {self.home}; train one with `llmforge train CONFIG`"
            ) from None

    def _version(self, name: str, version: str) -> Any:
        self._model(name)
        try:
            return self.client.get_model_version(name, version)
        except Exception:
            raise NotFoundError(
                f"model {name!r} has no version {version}; see `llmforge models versions {name}`"
            ) from None

    def _metrics(self, run_id: str) -> dict[str, float]:
        return dict(self.client.get_run(run_id).data.metrics)

    def _local_path(self, source: str) -> Path:
        from urllib.parse import unquote, urlparse

        parsed = urlparse(source)
        if parsed.scheme in ("", "file"):
            return Path(unquote(parsed.path))
        import mlflow.artifacts

        dst = self.home / "models" / "registry"
        dst.mkdir(parents=True, exist_ok=True)
        return Path(
            mlflow.artifacts.download_artifacts(artifact_uri=source, dst_path=str(dst), tracking_uri=self.uri)
        )
