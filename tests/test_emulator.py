"""The Databricks REST emulator: routing, identity, error shapes, endpoints, serving lookup."""

from __future__ import annotations

import pytest

from llmforge.errors import ConfigError


def test_unknown_route_answers_in_databricks_error_shape(emulator):
    r = emulator.request("POST", "/api/2.0/fine-tuning/runs", json={})
    assert r.status_code == 404
    body = r.json()
    assert body["error_code"] == "ENDPOINT_NOT_FOUND"
    assert "POST /api/2.0/fine-tuning/runs" in body["message"]
    assert "Traceback" not in r.text


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic x"}])
def test_missing_or_unknown_token_is_unauthenticated(emulator, headers):
    import requests

    r = requests.get(emulator.url + "/api/2.0/vector-search/endpoints", headers=headers, timeout=30)
    assert r.status_code == 401
    assert r.json()["error_code"] == "UNAUTHENTICATED"


def test_malformed_json_body_is_a_400_not_a_traceback(emulator):
    r = emulator.request("POST", "/api/2.0/vector-search/endpoints", data=b"{not json")
    assert r.status_code == 400
    assert r.json()["error_code"] == "MALFORMED_REQUEST"


def test_well_known_config_answers_for_sdk_startup(emulator):
    import requests

    body = requests.get(emulator.url + "/.well-known/databricks-config", timeout=30).json()
    assert body["workspace_id"] and body["oidc_endpoint"].startswith(emulator.url)


def test_no_token_may_act_as_the_system_principal(forge):
    from llmforge_emulator import start_emulator

    with pytest.raises(ConfigError, match="__system__"):
        start_emulator(forge, tokens={"t": "__system__"})
    with pytest.raises(ConfigError, match="at least one token"):
        start_emulator(forge, tokens={})


def test_tokens_from_env_pairs_and_file(tmp_path, monkeypatch):
    from llmforge_emulator.identity import ENV_VAR, load_tokens

    monkeypatch.setenv(ENV_VAR, "a=alice, b=bob")
    assert load_tokens() == {"a": "alice", "b": "bob"}
    f = tmp_path / "tokens.yaml"
    f.write_text("t1: carol\n")
    monkeypatch.setenv(ENV_VAR, str(f))
    assert load_tokens() == {"t1": "carol"}
    monkeypatch.setenv(ENV_VAR, "garbage")
    with pytest.raises(ConfigError, match="neither a file"):
        load_tokens()


def test_endpoint_lifecycle_with_the_real_vector_search_client(emulator):
    from databricks.vector_search.exceptions import NotFound, ResourceConflict

    client = emulator.vs_client()
    created = client.create_endpoint(name="vs-ep", endpoint_type="STANDARD")
    assert created["name"] == "vs-ep"
    client.wait_for_endpoint("vs-ep")  # returns at once: the endpoint is ONLINE
    assert client.get_endpoint("vs-ep")["endpoint_status"]["state"] == "ONLINE"
    assert [e["name"] for e in client.list_endpoints()["endpoints"]] == ["vs-ep"]
    with pytest.raises(ResourceConflict):
        client.create_endpoint(name="vs-ep")
    assert client.list_indexes("vs-ep") == {"vector_indexes": []}
    client.delete_endpoint("vs-ep")
    with pytest.raises(NotFound) as exc:
        client.get_endpoint("vs-ep")
    assert exc.value.error_code == "RESOURCE_DOES_NOT_EXIST"


def test_bad_endpoint_type_is_invalid_parameter(emulator):
    r = emulator.request(
        "POST", "/api/2.0/vector-search/endpoints", json={"name": "x", "endpoint_type": "HUGE"}
    )
    assert r.status_code == 400
    assert r.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "STANDARD" in r.json()["message"]


def test_serving_endpoint_lookup_the_index_client_needs(emulator):
    ws = emulator.workspace()
    ep = ws.serving_endpoints.get("databricks-gte-large-en")
    assert ep.name == "databricks-gte-large-en" and ep.id
    assert "databricks-gte-large-en" in [e.name for e in ws.serving_endpoints.list()]
    r = emulator.request("GET", "/api/2.0/serving-endpoints/no-such-endpoint")
    assert r.status_code == 404 and r.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"


def test_serve_emulator_issues_a_random_token_and_serves_loopback(tmp_path):
    import os
    import re
    import subprocess
    import sys
    import time

    import requests

    code = (
        "import llmforge; from llmforge_emulator import serve_emulator; "
        f"serve_emulator(llmforge.connect(backend='local', home={str(tmp_path)!r}, user='admin'), "
        "port=0, echo=lambda s: print(s, flush=True))"
    )
    env = {k: v for k, v in os.environ.items() if k != "LLMFORGE_EMULATOR_TOKENS"}
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env)
    try:
        token_line = proc.stdout.readline()
        url_line = proc.stdout.readline()
        token = re.search(r"token for admin: (dapi[0-9a-f]{32})", token_line).group(1)
        url = re.search(r"(http://127\.0\.0\.1:\d+)", url_line).group(1)
        for _ in range(100):
            try:
                r = requests.get(
                    url + "/api/2.0/vector-search/endpoints",
                    headers={"Authorization": f"Bearer {token}"},
                    timeout=5,
                )
                break
            except requests.ConnectionError:
                time.sleep(0.1)
        assert r.status_code == 200 and r.json() == {"endpoints": []}
        assert (
            requests.get(
                url + "/api/2.0/vector-search/endpoints", headers={"Authorization": "Bearer dev"}, timeout=5
            ).status_code
            == 401
        )
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.mark.parametrize(
    "exc, code, status",
    [
        ("NotFoundError", "RESOURCE_DOES_NOT_EXIST", 404),
        ("AlreadyExistsError", "RESOURCE_ALREADY_EXISTS", 409),
        ("PermissionDeniedError", "PERMISSION_DENIED", 403),
        ("QuotaExceededError", "REQUEST_LIMIT_EXCEEDED", 429),
        ("DataError", "INVALID_PARAMETER_VALUE", 400),
        ("ModelError", "BAD_REQUEST", 400),
    ],
)
def test_llmforge_errors_map_to_databricks_codes(exc, code, status):
    from llmforge_emulator.errors import from_exception

    from llmforge import errors

    err = from_exception(getattr(errors, exc)("what went wrong"))
    assert (err.error_code, err.status, err.message) == (code, status, "what went wrong")


def test_unexpected_errors_are_internal_without_a_traceback():
    from llmforge_emulator.errors import from_exception

    err = from_exception(KeyError("x"))
    assert err.status == 500 and err.error_code == "INTERNAL_ERROR" and "Traceback" not in err.message
