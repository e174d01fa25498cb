"""The training step of a llmforge job on Databricks compute.

``llmforge_databricks.trainer`` uploads the llmforge wheels, a job config (JSON) and a
two-line driver script to a Unity Catalog volume, then submits a one-time Jobs run whose Spark
Python task calls :func:`main` with the config's volume path. On the cluster :func:`main`:

1. builds a scratch local forge on the driver's disk and copies the training (and eval) table
   into it from Unity Catalog through Spark, so the local trainer reads exactly those rows;
2. trains with the local trainer (:func:`train`) — on several GPUs through
   ``pyspark.ml.torch.distributor.TorchDistributor`` when ``num_gpus`` > 1;
3. publishes the run to the workspace MLflow and registers the adapter in Unity Catalog
   (``models:/catalog.schema.name``) (:func:`publish`);
4. writes the result JSON to ``result_path`` in the volume, which the submitting client reads.

The Databricks emulator calls :func:`train` directly on its own forge (its registry is the
"workspace" registry), so steps 1, 3 and the multi-GPU launch run only on a real workspace.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

#: fields of a trainer result that travel back to the client
RESULT_FIELDS = (
    "run_id",
    "registered_model",
    "model_version",
    "model_uri",
    "training_table",
    "training_table_version",
    "metrics",
)


def train(forge: Any, job: dict[str, Any], user: str | None = None, on_step: Any = None) -> dict[str, Any]:
    """Run the job's config with ``forge``'s trainer as ``user``; the result as plain JSON data."""
    kw: dict[str, Any] = {"progress": False, **(job.get("overrides") or {})}
    if user is not None:
        kw["user"] = user
    if on_step is not None:
        kw["on_step"] = on_step
    res = forge.finetune(job["config"], **kw)
    out = {k: getattr(res, k, None) for k in RESULT_FIELDS}
    out["details"] = {
        "tokens_per_second": getattr(res, "tokens_per_second", None),
        "losses": [list(p) for p in getattr(res, "losses", []) or []],
    }
    return out


def _copy_tables(forge: Any, cfg: Any) -> None:
    """The training/eval tables from Unity Catalog (Spark on the cluster) into the scratch forge."""
    import pyarrow as pa
    from pyspark.sql import SparkSession

    spark = SparkSession.builder.getOrCreate()
    for name in filter(None, (cfg.training_data.table, cfg.evaluation.eval_table)):
        data = pa.Table.from_pandas(spark.table(name).toPandas(), preserve_index=False)
        forge.table(name).create(data)


def publish(result: dict[str, Any], cfg: Any, forge: Any) -> dict[str, Any]:
    """Copy the scratch run to the workspace MLflow and register the adapter in Unity Catalog."""
    import mlflow
    from mlflow.tracking import MlflowClient

    local = forge.models.client.get_run(result["run_id"])
    folder = forge.models.resolve(result["model_uri"]).path
    mlflow.set_tracking_uri("databricks")
    mlflow.set_registry_uri("databricks-uc")
    mlflow.set_experiment(cfg.output.experiment)
    with mlflow.start_run() as run:
        mlflow.log_params(dict(local.data.params))
        mlflow.log_metrics(dict(local.data.metrics))
        for step, loss in result["details"]["losses"]:
            mlflow.log_metric("train_loss", loss, step=int(step))
        mlflow.log_artifacts(str(folder), "model")
    mv = mlflow.register_model(f"runs:/{run.info.run_id}/model", cfg.output.registered_model)
    MlflowClient().set_model_version_tag(mv.name, mv.version, "llmforge.source_run", result["run_id"])
    return {
        **result,
        "run_id": run.info.run_id,
        "model_version": str(mv.version),
        "model_uri": f"models:/{mv.name}/{mv.version}",
    }


def _on_cluster(job: dict[str, Any]) -> dict[str, Any]:
    import llmforge
    from llmforge.finetune_config import load_finetune_config

    cfg = load_finetune_config(job["config"])
    forge = llmforge.connect(backend="local", home=job.get("scratch_home", "/local_disk0/llmforge"))
    _copy_tables(forge, cfg)
    return publish(train(forge, job), cfg, forge)


def _rank_main(job: dict[str, Any]) -> dict[str, Any] | None:
    """One process of a TorchDistributor launch: torch.distributed is initialised from the
    environment the distributor sets; rank 0 trains, publishes and reports."""
    import torch.distributed as dist

    dist.init_process_group("nccl")
    try:
        return _on_cluster(job) if dist.get_rank() == 0 else None
    finally:
        dist.barrier()
        dist.destroy_process_group()


def run(job: dict[str, Any]) -> dict[str, Any]:
    gpus = int(job.get("num_gpus") or 1)
    if gpus > 1:
        from pyspark.ml.torch.distributor import TorchDistributor

        return TorchDistributor(num_processes=gpus, local_mode=True, use_gpu=True).run(_rank_main, job)
    return _on_cluster(job)


def main(argv: list[str] | None = None) -> int:
    """``python llmforge_train.py /Volumes/.../job.json`` on the cluster (volumes are mounted)."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: llmforge_train.py /Volumes/<catalog>/<schema>/<volume>/.../job.json", file=sys.stderr)
        return 2
    job = json.loads(Path(args[0]).read_text())
    result = run(job)
    from llmforge.fsutil import write_atomic

    write_atomic(job["result_path"], json.dumps(result, default=str))  # the volume is mounted here
    return 0
