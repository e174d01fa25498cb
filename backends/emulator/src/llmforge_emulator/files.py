"""Files API for Unity Catalog volumes (``/api/2.0/fs/files/Volumes/...``,
``/api/2.0/fs/directories/Volumes/...``): raw bytes in and out, as ``w.files`` sends them.

A volume ``/Volumes/<catalog>/<schema>/<volume>`` lives under the project home
(``emulator/volumes/...``). Its schema must exist in the catalog and the caller needs USE on
it; a path that leaves the volume is refused.
"""

from email.utils import formatdate
from pathlib import Path, PurePosixPath
from typing import Any

from llmforge_emulator.errors import ApiError, bad_request

FILES, DIRS = "/api/2.0/fs/files", "/api/2.0/fs/directories"


def volume_path(emu: Any, path: str, principal: str | None) -> Path:
    """The local file behind ``/Volumes/c/s/v/...``; checks the schema and the caller's USE."""
    parts = PurePosixPath("/" + path.lstrip("/")).parts
    if len(parts) < 5 or parts[1] != "Volumes" or any(p in ("..", ".") for p in parts):
        raise bad_request(
            f"'{path}' is not a path inside a volume: use /Volumes/<catalog>/<schema>/<volume>/..."
        )
    schema = f"{parts[2]}.{parts[3]}"
    cat = emu.forge.catalog
    if not cat.exists(schema):
        raise ApiError("RESOURCE_DOES_NOT_EXIST", f"Schema '{schema}' does not exist (volume {parts[4]}).")
    if principal is not None and not cat.has_privilege(principal, "USE", schema):
        raise ApiError("PERMISSION_DENIED", f"User '{principal}' does not have USE SCHEMA on '{schema}'.")
    return emu.forge.home.joinpath("emulator", "volumes", *parts[2:])


def read(emu: Any, path: str, principal: str | None = None) -> bytes:
    local = volume_path(emu, path, principal)
    if not local.is_file():
        raise ApiError("RESOURCE_DOES_NOT_EXIST", f"File '{path}' does not exist.", 404)
    return local.read_bytes()


def write(emu: Any, path: str, data: bytes, principal: str | None = None, overwrite: bool = True) -> None:
    local = volume_path(emu, path, principal)
    if local.exists() and not overwrite:
        raise ApiError("RESOURCE_ALREADY_EXISTS", f"File '{path}' already exists; pass overwrite=true.")
    from llmforge.fsutil import write_atomic

    local.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(local, data)


def add_routes(app: Any, emu: Any, error_response: Any) -> None:
    """Register the raw-body routes (the JSON route table cannot carry file bytes)."""
    from fastapi import Request, Response
    from fastapi.responses import JSONResponse
    from starlette.concurrency import run_in_threadpool

    from llmforge_emulator.errors import from_exception

    def who(request: Request) -> str:
        return emu.identity.principal(request.headers.get("authorization"))

    async def guarded(request: Request, fn: Any) -> Any:
        try:
            return await fn(who(request))
        except Exception as exc:
            return error_response(from_exception(exc))

    @app.put(FILES + "/{path:path}")
    async def upload(path: str, request: Request) -> Any:
        async def go(principal: str) -> Any:
            data = await request.body()
            overwrite = request.query_params.get("overwrite", "false").lower() == "true"
            await run_in_threadpool(write, emu, path, data, principal, overwrite)
            return Response(status_code=204)

        return await guarded(request, go)

    @app.get(FILES + "/{path:path}")
    async def download(path: str, request: Request) -> Any:
        async def go(principal: str) -> Any:
            data = await run_in_threadpool(read, emu, path, principal)
            return Response(
                data,
                media_type="application/octet-stream",
                headers={"last-modified": formatdate(usegmt=True)},
            )

        return await guarded(request, go)

    @app.head(FILES + "/{path:path}")
    async def metadata(path: str, request: Request) -> Any:
        async def go(principal: str) -> Any:
            local = volume_path(emu, path, principal)
            if not local.is_file():
                return Response(status_code=404)
            return Response(
                headers={
                    "content-length": str(local.stat().st_size),
                    "content-type": "application/octet-stream",
                    "last-modified": formatdate(local.stat().st_mtime, usegmt=True),
                }
            )

        return await guarded(request, go)

    @app.delete(FILES + "/{path:path}")
    async def delete(path: str, request: Request) -> Any:
        async def go(principal: str) -> Any:
            local = volume_path(emu, path, principal)
            if not local.is_file():
                raise ApiError("RESOURCE_DOES_NOT_EXIST", f"File '{path}' does not exist.", 404)
            local.unlink()
            return Response(status_code=204)

        return await guarded(request, go)

    @app.put(DIRS + "/{path:path}")
    async def mkdir(path: str, request: Request) -> Any:
        async def go(principal: str) -> Any:
            volume_path(emu, path, principal).mkdir(parents=True, exist_ok=True)
            return Response(status_code=204)

        return await guarded(request, go)

    @app.get(DIRS + "/{path:path}")
    async def listdir(path: str, request: Request) -> Any:
        async def go(principal: str) -> Any:
            local = volume_path(emu, path, principal)
            if not local.is_dir():
                raise ApiError("RESOURCE_DOES_NOT_EXIST", f"Directory '{path}' does not exist.", 404)
            base = "/" + path.strip("/")
            contents = [
                {
                    "path": f"{base}/{p.name}" + ("/" if p.is_dir() else ""),
                    "name": p.name,
                    "is_directory": p.is_dir(),
                    **({"file_size": p.stat().st_size} if p.is_file() else {}),
                    "last_modified": int(p.stat().st_mtime * 1000),
                }
                for p in sorted(local.iterdir())
                if not (p.name.startswith(".") and p.name.endswith(".tmp"))  # an upload in flight
            ]
            return JSONResponse({"contents": contents})

        return await guarded(request, go)
