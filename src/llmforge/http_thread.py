"""Run an ASGI app with uvicorn in a background thread (tests, emulator, embedded servers)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from llmforge.errors import LLMForgeError


def run_in_thread(
    app: Any, host: str = "127.0.0.1", port: int = 0, *, name: str = "llmforge-http", timeout_s: float = 30.0
) -> tuple[str, Callable[[], None]]:
    """Start ``app`` on ``host:port`` (0 picks a free port); return its base URL and a stop function."""
    import uvicorn

    server = uvicorn.Server(
        uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False, lifespan="off")
    )
    thread = threading.Thread(target=server.run, name=name, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout_s
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise LLMForgeError(
                f"{name} did not start on {host}:{port}; is the port taken? Pass port=0 for a free one."
            )
        time.sleep(0.02)
    bound = server.servers[0].sockets[0].getsockname()[1]

    def stop() -> None:
        server.should_exit = True
        thread.join(timeout=timeout_s)

    return f"http://{host}:{bound}", stop
