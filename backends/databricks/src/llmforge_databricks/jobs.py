"""A llmforge job on Databricks compute: upload to a volume, submit one run, wait, read back.

Everything goes through ``databricks-sdk`` (``w.files`` for the volume, ``w.jobs`` for the
run), so the same calls work against a workspace and the emulator.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from llmforge.errors import ConfigError, ModelError
from llmforge_databricks.workspace import calling, workspace_client

#: the Spark Python task's file: calls the training step of llmforge_local with the config path
DRIVER = "from llmforge_local.train.remote import main\n\nraise SystemExit(main())\n"
#: distributions the cluster needs to run the training step
DISTRIBUTIONS = ("llmforge", "llmforge-local")
_DONE = ("TERMINATED", "SKIPPED", "INTERNAL_ERROR")


@dataclass(frozen=True)
class JobsOptions:
    #: Unity Catalog volume for wheels, job configs and results: /Volumes/<catalog>/<schema>/<volume>
    volume: str | None = None
    #: GPU node type of the job cluster (e.g. g5.12xlarge, Standard_NC24ads_A100_v4)
    node_type_id: str | None = None
    #: cluster policy that fixes the node type and limits (an admin's GPU policy)
    policy_id: str | None = None
    #: GPUs the training uses; more than one launches torch.distributed (TorchDistributor)
    num_gpus: int = 1
    #: Databricks Runtime ML (GPU) version of the job cluster
    spark_version: str = "15.4.x-gpu-ml-scala2.12"
    #: serverless GPU compute instead of a job cluster (environment client version below)
    serverless: bool = False
    serverless_environment_version: str = "3"
    #: wheel files to install; empty: built from the installed llmforge distributions
    wheels: tuple[str, ...] = ()
    #: seconds between run status polls, and the most minutes to wait for the run
    poll_seconds: float = 10.0
    timeout_minutes: int = 24 * 60

    def check(self) -> None:
        if not self.volume or not str(self.volume).startswith("/Volumes/") or len(self.volume.split("/")) < 5:
            raise ConfigError(
                "the databricks trainer needs option volume: a Unity Catalog volume such as "
                "/Volumes/main/llmforge/jobs (CREATE VOLUME main.llmforge.jobs) for wheels and job configs"
            )
        if not self.serverless and not (self.node_type_id or self.policy_id):
            raise ConfigError(
                "the databricks trainer needs GPU compute: set option node_type_id (e.g. g5.12xlarge), "
                "policy_id (a GPU cluster policy) or serverless: true"
            )
        if self.num_gpus < 1:
            raise ConfigError(f"num_gpus must be at least 1, got {self.num_gpus}")


@dataclass
class Job:
    """What the cluster reads (``job.json``): the config, its overrides, where to write the result."""

    config: dict[str, Any]
    result_path: str
    overrides: dict[str, Any] = field(default_factory=dict)
    num_gpus: int = 1


def _build_wheels(out: Path) -> list[Path]:
    """Wheels of the installed llmforge distributions, built from their source folders."""
    import importlib.metadata as md

    sources = []
    for dist in DISTRIBUTIONS:
        try:
            url = json.loads(md.distribution(dist).read_text("direct_url.json") or "{}").get("url", "")
        except md.PackageNotFoundError:
            url = ""
        if not url.startswith("file://"):
            raise ConfigError(
                f"cannot build a wheel of {dist} (not installed from a source folder); build the wheels "
                f"(pip wheel --no-deps) and list them in the trainer option wheels"
            )
        sources.append(_build_copy(Path(url[len("file://") :]), out / f".src-{dist}"))
    cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out)]
    done = subprocess.run([*cmd, *map(str, sources)], capture_output=True, text=True)
    if done.returncode != 0:
        raise ConfigError(f"building the llmforge wheels failed: {done.stderr.strip()[-500:]}")
    return sorted(out.glob("*.whl"))


def _build_copy(source: Path, dest: Path) -> Path:
    """The files a build reads, copied out of ``source``: building in place would write
    ``build/`` and ``*.egg-info`` into the user's checkout."""
    import shutil

    dest.mkdir(parents=True)
    for name in ("pyproject.toml", "README.md", "setup.cfg", "LICENSE"):
        if (source / name).is_file():
            shutil.copy2(source / name, dest / name)
    shutil.copytree(source / "src", dest / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    return dest


def upload(path: str, data: bytes) -> None:
    with calling(f"upload {path} to the volume"):
        workspace_client().files.upload(path, io.BytesIO(data), overwrite=True)


def download(path: str) -> bytes:
    with calling(f"download {path} from the volume"):
        return workspace_client().files.download(path).contents.read()


def upload_wheels(opts: JobsOptions) -> list[str]:
    """The wheels' volume paths after uploading them (built first unless ``opts.wheels``)."""
    with tempfile.TemporaryDirectory(prefix="llmforge-wheels-") as tmp:
        files = [Path(w) for w in opts.wheels] or _build_wheels(Path(tmp))
        missing = [str(f) for f in files if not f.is_file()]
        if missing:
            raise ConfigError(f"wheel file(s) {missing} do not exist")
        out = []
        for f in files:
            path = f"{opts.volume.rstrip('/')}/wheels/{f.name}"
            upload(path, f.read_bytes())
            out.append(path)
        return out


def _task(opts: JobsOptions, driver: str, job_path: str, wheels: list[str]) -> tuple[Any, list[Any]]:
    from databricks.sdk.service import compute, jobs

    task = jobs.SubmitTask(
        task_key="train",
        spark_python_task=jobs.SparkPythonTask(python_file=driver, parameters=[job_path]),
    )
    if opts.serverless:
        task.environment_key = "llmforge"
        env = jobs.JobEnvironment(
            environment_key="llmforge",
            spec=compute.Environment(
                environment_version=opts.serverless_environment_version, dependencies=wheels
            ),
        )
        return task, [env]
    single = opts.num_gpus <= 8  # one node holds up to 8 GPUs: a single-node cluster
    task.new_cluster = compute.ClusterSpec(
        spark_version=opts.spark_version,
        node_type_id=opts.node_type_id,
        policy_id=opts.policy_id,
        num_workers=0 if single else (opts.num_gpus + 7) // 8,
        spark_conf={"spark.databricks.cluster.profile": "singleNode", "spark.master": "local[*]"}
        if single
        else None,
        custom_tags={"ResourceClass": "SingleNode"} if single else None,
    )
    task.libraries = [compute.Library(whl=w) for w in wheels]
    return task, []


def submit_and_wait(
    opts: JobsOptions, job: Job, run_dir: str, wheels: list[str], name: str, say: Callable[[str], None]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Upload the config and driver, submit the run, wait; ``(run details, result JSON)``.

    A run that does not succeed raises :class:`ModelError` with the task's error and the
    run page URL (where the driver logs are)."""
    driver, job_path = f"{opts.volume.rstrip('/')}/llmforge_train.py", f"{run_dir}/job.json"
    upload(driver, DRIVER.encode())
    upload(job_path, json.dumps(asdict(job)).encode())
    task, envs = _task(opts, driver, job_path, wheels)
    w = workspace_client()
    with calling("submit the training job (jobs/runs/submit)"):
        waiter = w.jobs.submit(run_name=name, tasks=[task], environments=envs or None)
    run_id = waiter.run_id
    deadline, last = time.monotonic() + 60 * opts.timeout_minutes, None
    while True:
        with calling(f"get training job run {run_id}"):
            run = w.jobs.get_run(run_id)
        state = run.state
        life = state.life_cycle_state.value if state and state.life_cycle_state else "PENDING"
        if life != last:
            say(f"training job run {run_id}: {life}  {run.run_page_url or ''}".rstrip())
            last = life
        if life in _DONE:
            break
        if time.monotonic() > deadline:
            with calling(f"cancel training job run {run_id}"):
                w.jobs.cancel_run(run_id)
            raise ModelError(
                f"training job run {run_id} did not finish within {opts.timeout_minutes} minutes and "
                f"was cancelled; see {run.run_page_url}"
            )
        time.sleep(opts.poll_seconds)
    details = {"job_run_id": run_id, "run_page_url": run.run_page_url, "volume_dir": run_dir}
    result_state = state.result_state.value if state and state.result_state else None
    if result_state != "SUCCESS":
        task_run = (run.tasks or [None])[0]
        error = state.state_message if state else ""
        if task_run is not None:
            with calling(f"get the output of training job run {run_id}"):
                out = w.jobs.get_run_output(task_run.run_id)
            error = out.error or error
        raise ModelError(
            f"training job run {run_id} ended {result_state or life}: {error or 'no error reported'}. "
            f"Driver logs: {run.run_page_url}"
        )
    say(f"training job run {run_id}: SUCCESS")
    return details, json.loads(download(job.result_path))
