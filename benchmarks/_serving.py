"""`llmforge serve` as a process of its own, for the serving benchmarks."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(root: Path, port: int, env: dict) -> subprocess.Popen:
    """``llmforge --config ROOT/llmforge.yaml --user admin serve --port PORT``, its log in
    ``ROOT/server.log``; returns once ``/health`` answers. Stop it with ``terminate()``: SIGTERM
    is a clean shutdown, which commits the queued usage rows."""
    import httpx

    cmd = [sys.executable, "-m", "llmforge", "--config", str(root / "llmforge.yaml"), "--user", "admin"]
    proc = subprocess.Popen(
        [*cmd, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(root / "server.log", "w"),  # noqa: SIM115  (the server's lifetime)
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited ({proc.returncode}); see {root / 'server.log'}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.5)
    proc.kill()
    raise SystemExit("the server did not start within 300 s")
