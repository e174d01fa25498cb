"""Issue 10, item 7: the smaller defects, each replayed as the careless user or the attacker
who found it. Every ``test_attack_*`` passes when the defect no longer shows."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import socket
import stat
import subprocess
import sys

import httpx
import pyarrow as pa
import pytest
from fixtures.data import DOCS

import llmforge
from llmforge.catalog import Catalog
from llmforge.config import validate
from llmforge.errors import ConfigError, DataError, PermissionDeniedError
from llmforge.tokens import TokenStore


def as_user(forge, user: str):
    return llmforge.connect(backend="local", home=str(forge.home), user=user)


def cli(*args: str, capsys) -> tuple[int, str, str]:
    from llmforge.cli import main

    with pytest.raises(SystemExit) as exc:
        main(list(args))
    out = capsys.readouterr()
    return exc.value.code, out.out, out.err


def _create_one(home: str, queue) -> None:
    queue.put(TokenStore.for_home(home).create("alice"))


# ---- tokens ---------------------------------------------------------------------------------


def test_attack_concurrent_token_creates_lose_none(forge):
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_create_one, args=(str(forge.home), queue)) for _ in range(10)]
    for p in procs:
        p.start()
    tokens = [queue.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    store = TokenStore.for_home(forge.home)
    assert len(set(tokens)) == 10 and len(store.list()) == 10
    assert all(store.lookup(t) == "alice" for t in tokens)


def test_token_list_and_revoke(forge, capsys):
    home = str(forge.home)
    code, tok_a, _ = cli("--home", home, "token", "create", "alice", capsys=capsys)
    code, tok_b, _ = cli("--home", home, "token", "create", "bob", capsys=capsys)
    code, out, _ = cli("--home", home, "token", "list", capsys=capsys)
    listed = json.loads(out)
    assert code == 0 and [t["principal"] for t in listed] == ["alice", "bob"]
    assert tok_a.strip() not in out and tok_b.strip() not in out  # ids, never the tokens
    code, out, _ = cli("--home", home, "token", "revoke", listed[0]["id"], capsys=capsys)
    assert code == 0 and "alice" in out
    store = TokenStore.for_home(forge.home)
    assert store.lookup(tok_a.strip()) is None and store.lookup(tok_b.strip()) == "bob"
    code, _, err = cli("--home", home, "token", "revoke", tok_b.strip(), capsys=capsys)
    assert code == 0 and store.list() == []
    code, _, err = cli("--home", home, "token", "revoke", "deadbeefdead", capsys=capsys)
    assert code == 1 and "token list" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("content", ["{not json", "[1, 2]", '{"abc": 5}', "\xff\xfe"])
def test_attack_corrupt_token_file_is_a_clear_error_not_500(forge, capsys, content):
    from llmforge.server import start_in_thread

    (forge.home / "api_tokens.json").write_bytes(content.encode("latin-1"))
    with pytest.raises(ConfigError, match="corrupt"):
        start_in_thread(forge, tokens={"tok": "alice"})
    code, _, err = cli("--home", str(forge.home), "token", "list", capsys=capsys)
    assert code == 1 and "corrupt" in err and "Traceback" not in err


def test_attack_token_file_corrupted_while_serving_is_503_with_the_reason(forge):
    from llmforge.server import start_in_thread

    token = TokenStore.for_home(forge.home).create("alice")
    base, stop = start_in_thread(forge, tokens={"fixed": "bob"})
    try:
        (forge.home / "api_tokens.json").write_text("{truncated")
        r = httpx.get(f"{base}/v1/models", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 503 and "corrupt" in r.json()["error"]["message"]
        r = httpx.get(f"{base}/v1/models", headers={"Authorization": "Bearer fixed"})
        assert r.status_code == 200  # fixed tokens keep working
    finally:
        stop()


# ---- names, homes, policies -----------------------------------------------------------------


@pytest.mark.parametrize("name", ["main.knowledge.notes\n", "main.knowledge\n.notes", "main.know ledge.x"])
def test_attack_table_name_with_a_newline_is_refused_and_leaves_nothing(forge, name):
    with pytest.raises(ConfigError):
        forge.table(name).create(pa.table({"id": ["a"]}))
    assert forge.catalog.list("table") == []


def test_attack_home_that_is_a_file_or_unwritable_is_one_line(tmp_path, capsys):
    a_file = tmp_path / "notes.txt"
    a_file.write_text("x")
    for home in (a_file, a_file / "home"):
        code, _, err = cli("--home", str(home), "ingest", str(tmp_path), "--table", DOCS, capsys=capsys)
        assert code == 1 and err.startswith("Error: ") and len(err.strip().splitlines()) == 1
        assert "--home" in err and "Traceback" not in err
    with pytest.raises(ConfigError, match="is a file"):
        llmforge.connect(backend="local", home=str(a_file))


@pytest.mark.parametrize("command", [["quotas"], ["grants", "main"], ["token", "list"], ["ask", "hi"]])
def test_attack_mistyped_home_is_an_error_not_a_new_project(tmp_path, capsys, command):
    typo = tmp_path / "hom"
    code, _, err = cli("--home", str(typo), *command, capsys=capsys)
    assert code == 2 and "does not exist" in err and len(err.strip().splitlines()) == 1
    assert not typo.exists()


def test_attack_home_and_its_files_are_private(forge):
    forge.table("main.k.t").create(pa.table({"id": ["a"]}))
    forge.quotas.usage()
    TokenStore.for_home(forge.home).create("alice")
    forge.models.client  # noqa: B018 - creates mlflow.db
    assert stat.S_IMODE(forge.home.stat().st_mode) == 0o700
    for name in ("catalog.db", "quotas.db", "api_tokens.json", "mlflow.db"):
        assert stat.S_IMODE((forge.home / name).stat().st_mode) == 0o600, name


def test_attack_row_filter_on_a_missing_column_is_refused(gov):
    with pytest.raises(DataError, match="'dept'"):
        gov.catalog.set_row_filter(DOCS, {"type": "department_membership", "column": "dept"})
    assert len(gov.table(DOCS).read()) == 5  # the owner still reads


def test_attack_index_sync_needs_modify_on_the_index_schema(gov, docs_index):
    gov.catalog.add_principal("mallory", departments=["sales"])  # SELECT on the schema, no MODIFY
    with pytest.raises(PermissionDeniedError, match="mallory"):
        docs_index.as_user("mallory").sync()
    with pytest.raises(PermissionDeniedError, match="mallory"):
        as_user(gov, "mallory").vector_search.get_index(index_name=docs_index.name).sync()
    assert docs_index.sync()["mode"] in ("none", "changes", "full", "diff")  # the owner still syncs


# ---- MLflow ---------------------------------------------------------------------------------

_KILLED_RUN = """
import os, signal, sys
from llmforge.tracking import Tracker
run = Tracker(sys.argv[1]).start_run("/exp")
print(run.run_id, flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_attack_killed_fine_tune_is_not_running_forever(forge):
    proc = subprocess.run(
        [sys.executable, "-c", _KILLED_RUN, str(forge.home)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == -signal.SIGKILL
    run_id = proc.stdout.split()[0]
    from llmforge.tracking import Tracker

    status = Tracker(forge.home).client.get_run(run_id).info.status
    assert status == "KILLED"
    live = Tracker(forge.home).start_run("/exp")  # a run of a live process is left alone
    assert Tracker(forge.home).client.get_run(live.run_id).info.status == "RUNNING"


# ---- config secrets ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        {"components": {"generator": {"name": "local", "options": {"accessToken": "abc"}}}},
        {"components": {"generator": {"name": "local", "options": {"api-key": "abc"}}}},
        {"components": {"index": {"name": "local", "options": {"headers": {"Authorization": "x y"}}}}},
        {"components": {"index": {"name": "local", "options": {"client_secret": "abc"}}}},
        {"components": {"generator": {"name": "local", "options": {"endpoint": "dapi" + "0a" * 16}}}},
        {"components": {"generator": {"name": "local", "options": {"auth": "Bearer abcdefghijklmnop"}}}},
        {"project": "sk-" + "A" * 40},
        {"components": {"generator": {"name": "local", "options": {"env": ["ghp_" + "x" * 36]}}}},
    ],
    ids=["accessToken", "api-key", "Authorization", "client_secret", "dapi", "bearer", "sk", "ghp"],
)
def test_attack_secrets_in_the_config_are_refused_by_name_and_shape(raw):
    with pytest.raises(ConfigError, match="secret|credential"):
        validate(raw)


def test_ordinary_config_is_not_mistaken_for_a_secret():
    conf = validate(
        {"rag": {"max_tokens": 64}, "components": {"generator": {"name": "local", "options": {}}}}
    )
    assert conf.rag.max_tokens == 64


# ---- CLI ----------------------------------------------------------------------------------------


def test_attack_serve_on_a_busy_port_is_one_line(forge, capsys):
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    try:
        port = str(busy.getsockname()[1])
        code, _, err = cli("--home", str(forge.home), "serve", "--port", port, capsys=capsys)
    finally:
        busy.close()
    assert code == 1 and f":{port}" in err and "--port" in err and len(err.strip().splitlines()) == 1


def test_attack_ingest_that_loads_nothing_exits_non_zero(forge, tmp_path, capsys):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "broken.jsonl").write_text("not json\n")
    code, _, err = cli("--home", str(forge.home), "ingest", str(docs), "--table", DOCS, capsys=capsys)
    assert code == 1 and "no documents" in err
    assert not Catalog(forge.home / "catalog.db").exists(DOCS)


def test_catalog_files_are_created_private_even_without_a_forge(tmp_path):
    Catalog(tmp_path / "c.db")
    assert stat.S_IMODE(os.stat(tmp_path / "c.db").st_mode) == 0o600
