"""Run the emulator: in a background thread for tests (:func:`start_emulator`) or in the
foreground for ``llmforge emulator`` (:func:`serve_emulator`)."""

from __future__ import annotations

import socket
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from llmforge.errors import LLMForgeError
from llmforge_emulator.identity import load_tokens, new_token

if TYPE_CHECKING:
    from llmforge.forge import Forge

LOOPBACK = "127.0.0.1"


def _emulator(forge: Forge, tokens: Any, serving_endpoints: Mapping[str, str] | None) -> Any:
    from llmforge_emulator.app import Emulator

    return Emulator(forge, tokens, serving_endpoints)


def _server(emu: Any, host: str, port: int) -> Any:
    import uvicorn

    from llmforge_emulator.app import build_app

    config = uvicorn.Config(
        build_app(emu), host=host, port=port, log_level="warning", access_log=False, lifespan="off"
    )
    return uvicorn.Server(config)


def start_emulator(
    forge: Forge,
    port: int = 0,
    tokens: Mapping[str, str] | str | None = None,
    serving_endpoints: Mapping[str, str] | None = None,
    timeout_s: float = 30.0,
) -> tuple[str, Callable[[], None]]:
    """Serve the Databricks REST subset for ``forge`` on loopback in a background thread.

    ``tokens`` maps bearer tokens to principals (default: ``LLMFORGE_EMULATOR_TOKENS``; one of
    the two is required). ``port=0`` picks a free port. Returns the base URL
    (``http://127.0.0.1:PORT``, the value for ``DATABRICKS_HOST``) and a function that stops it.
    """
    emu = _emulator(forge, load_tokens(tokens), serving_endpoints)
    from llmforge.http_thread import run_in_thread
    from llmforge_emulator.app import build_app

    emu.base_url, stop = run_in_thread(
        build_app(emu), LOOPBACK, port, name="the Databricks emulator", timeout_s=timeout_s
    )
    return emu.base_url, stop


def serve_emulator(
    forge: Forge,
    host: str = LOOPBACK,
    port: int = 8787,
    tokens: Mapping[str, str] | str | None = None,
    echo: Callable[[str], None] = print,
) -> None:
    """Serve in the foreground until interrupted (``llmforge emulator --port``).

    Without tokens (argument or ``LLMFORGE_EMULATOR_TOKENS``) it issues one random token for the
    forge's user and prints it, so nothing is reachable with a guessable secret.
    """
    table = load_tokens(tokens)
    if not table:
        token = new_token()
        table = {token: forge.user or "admin"}
        echo(f"token for {table[token]}: {token}")
    emu = _emulator(forge, table, None)
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))  # bound here so port=0 reports the real port before serving
    except OSError as exc:
        sock.close()
        raise LLMForgeError(f"cannot listen on {host}:{port} ({exc}); pick another --port") from None
    emu.base_url = f"http://{host}:{sock.getsockname()[1]}"
    echo(f"Databricks emulator on {emu.base_url}  (export DATABRICKS_HOST={emu.base_url})")
    _server(emu, host, port).run(sockets=[sock])
