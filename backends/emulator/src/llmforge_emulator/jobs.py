"""Jobs API one-time runs (``/api/2.1/jobs/runs/submit|get|get-output|cancel``).

A submitted run is checked as the service checks it (one task, compute named, libraries and
the Python file present in their volume), then its training step runs in a background thread
on the emulator's own forge, as the calling principal: the same
:func:`llmforge_local.train.remote.train` the job's driver script calls on a cluster, with the
emulator's forge standing in for the cluster's. Its MLflow run and model version land in the
emulator's registry (the "workspace" registry); the result JSON is written to the volume path
the job names, as on a cluster. Runs live in memory for the life of the emulator.
"""

from __future__ import annotations

import itertools
import json
import threading
import traceback
from typing import Any

from llmforge_emulator import files
from llmforge_emulator.errors import ApiError, bad_request
from llmforge_emulator.routes import Call, Routes
from llmforge_emulator.state import now_ms

#: the SDK (0.162) calls 2.2; the REST docs and older clients 2.1: the same runs API
JOBS = ("/api/2.1/jobs", "/api/2.2/jobs")
routes = Routes()
_ids = itertools.count(1001)
_lock = threading.Lock()


class Canceled(Exception):
    pass


class Run:
    def __init__(self, emu: Any, body: dict[str, Any], principal: str) -> None:
        self.run_id, self.task_run_id = next(_ids), next(_ids)
        self.body, self.principal, self.emu = body, principal, emu
        self.life, self.result, self.message = "PENDING", None, "Waiting for cluster"
        self.error: str | None = None
        self.trace: str | None = None
        self.start, self.end = now_ms(), 0
        self.cancel = threading.Event()

    def url(self, run_id: int) -> str:
        return f"{self.emu.base_url}/?o=1234567890123456#job/runs/{run_id}"

    def state(self) -> dict[str, Any]:
        out: dict[str, Any] = {"life_cycle_state": self.life, "state_message": self.message}
        if self.result:
            out["result_state"] = self.result
        return out

    def info(self) -> dict[str, Any]:
        task = self.body["tasks"][0]
        return {
            "run_id": self.run_id,
            "run_name": self.body.get("run_name") or "Untitled",
            "creator_user_name": self.principal,
            "run_type": "SUBMIT_RUN",
            "state": self.state(),
            "start_time": self.start,
            "end_time": self.end,
            "run_page_url": self.url(self.run_id),
            "tasks": [
                {
                    "run_id": self.task_run_id,
                    "task_key": task.get("task_key", "train"),
                    "state": self.state(),
                    "start_time": self.start,
                    "end_time": self.end,
                    "run_page_url": self.url(self.task_run_id),
                }
            ],
        }

    def finish(self, result: str, message: str, error: str | None = None, trace: str | None = None) -> None:
        with _lock:
            self.life, self.result, self.message = "TERMINATED", result, message
            self.error, self.trace, self.end = error, trace, now_ms()


def _runs(emu: Any) -> dict[int, Run]:
    if not hasattr(emu, "job_runs"):
        emu.job_runs = {}
    return emu.job_runs


def _check(emu: Any, body: dict[str, Any], principal: str) -> tuple[str, list[str]]:
    """The task's job-config path and its libraries, once the request is one the service accepts."""
    tasks = body.get("tasks")
    if not isinstance(tasks, list) or not tasks:
        raise bad_request("Missing required field: tasks")
    if len(tasks) != 1:
        raise ApiError("NOT_IMPLEMENTED", "The emulator runs one-task submissions only.")
    task = tasks[0]
    if not task.get("task_key"):
        raise bad_request("Missing required field: tasks[0].task_key")
    cluster = task.get("new_cluster")
    if cluster is not None:
        if not cluster.get("spark_version"):
            raise bad_request("Missing required field: new_cluster.spark_version")
        if not (cluster.get("node_type_id") or cluster.get("policy_id") or cluster.get("instance_pool_id")):
            raise bad_request(
                "The cluster needs node_type_id, instance_pool_id or a policy_id that sets one."
            )
    elif not (task.get("environment_key") or task.get("existing_cluster_id")):
        raise bad_request("Task 'train' needs compute: new_cluster, existing_cluster_id or environment_key.")
    spark = task.get("spark_python_task") or {}
    if not spark.get("python_file"):
        raise ApiError(
            "NOT_IMPLEMENTED", "The emulator runs spark_python_task tasks (llmforge's training driver)."
        )
    params = spark.get("parameters") or []
    if len(params) != 1:
        raise bad_request("The training driver takes one parameter: the job config's volume path.")
    libraries = [lib["whl"] for lib in task.get("libraries") or [] if "whl" in lib]
    for env in body.get("environments") or []:
        libraries += list((env.get("spec") or {}).get("dependencies") or [])
    files.volume_path(emu, spark["python_file"], principal)  # the schema exists, the caller may USE it
    return params[0], [x for x in libraries if str(x).startswith("/Volumes/")] + [spark["python_file"]]


def _execute(run: Run, config_path: str, needed: list[str]) -> None:
    emu = run.emu
    try:
        for path in needed:  # the cluster installs libraries and fetches the file before running
            try:
                files.read(emu, path, run.principal)
            except ApiError as exc:
                run.finish("FAILED", f"Library installation failed: {exc.message}", exc.message)
                return
        job = json.loads(files.read(emu, config_path, run.principal))
        with _lock:
            if run.cancel.is_set():
                raise Canceled()
            run.life, run.message = "RUNNING", "In run"
        from llmforge_local.train.remote import train

        def on_step(step: int, loss: float, state: Any = None) -> None:
            if run.cancel.is_set():
                raise Canceled()

        result = train(emu.forge, job, user=run.principal, on_step=on_step)
        files.write(emu, job["result_path"], json.dumps(result, default=str).encode(), run.principal)
        run.finish("SUCCESS", "")
    except Exception as exc:  # the run fails, as a cluster's Python error fails the task
        if run.cancel.is_set():  # the trainer may wrap the interruption in its own error
            run.finish("CANCELED", "Run cancelled.")
            return
        message = f"{type(exc).__name__}: {exc}"
        run.finish("FAILED", "Workload failed, see run output for details", message, traceback.format_exc())


@routes.add("POST", *(f"{j}/runs/submit" for j in JOBS))
def submit(emu: Any, call: Call) -> dict[str, Any]:
    config_path, needed = _check(emu, call.body, call.principal)
    run = Run(emu, call.body, call.principal)
    _runs(emu)[run.run_id] = run
    threading.Thread(target=_execute, args=(run, config_path, needed), daemon=True, name="job-run").start()
    return {"run_id": run.run_id}


def _find(emu: Any, call: Call) -> tuple[Run, bool]:
    raw = call.arg("run_id")
    try:
        run_id = int(raw)
    except (TypeError, ValueError):
        raise bad_request("Missing required field: run_id") from None
    for run in _runs(emu).values():
        if run_id in (run.run_id, run.task_run_id) and run.principal == call.principal:
            return run, run_id == run.task_run_id
    raise ApiError("RESOURCE_DOES_NOT_EXIST", f"Run {run_id} does not exist.")


@routes.add("GET", *(f"{j}/runs/get" for j in JOBS))
def get_run(emu: Any, call: Call) -> dict[str, Any]:
    run, _ = _find(emu, call)
    with _lock:
        return run.info()


@routes.add("GET", *(f"{j}/runs/get-output" for j in JOBS))
def get_output(emu: Any, call: Call) -> dict[str, Any]:
    run, is_task = _find(emu, call)
    if not is_task:
        raise bad_request(
            "Retrieving the output of runs with multiple tasks is not supported. Please retrieve the "
            "output of each individual task run instead."
        )
    with _lock:
        info = run.info()["tasks"][0]
        out: dict[str, Any] = {"metadata": info}
        if run.error:
            out["error"], out["error_trace"] = run.error, run.trace
        return out


@routes.add("POST", *(f"{j}/runs/cancel" for j in JOBS))
def cancel(emu: Any, call: Call) -> dict[str, Any]:
    run, _ = _find(emu, call)
    if run.life != "TERMINATED":
        run.cancel.set()
        with _lock:
            run.life, run.message = "TERMINATING", "Cancelling"
    return {}
