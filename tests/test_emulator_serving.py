"""Model Serving through the emulator with the real mlflow.deployments and databricks-sdk clients."""

from __future__ import annotations

import pytest

CHAT = "databricks-meta-llama-3-3-70b-instruct"
MESSAGES = [{"role": "user", "content": "Who owns Project Helix?"}]


def test_chat_predict_returns_an_openai_style_completion_with_usage(tiny_emulator):
    from mlflow.deployments import get_deploy_client

    resp = get_deploy_client("databricks").predict(
        endpoint=CHAT, inputs={"messages": MESSAGES, "max_tokens": 6}
    )
    assert resp["object"] == "chat.completion"
    choice = resp["choices"][0]
    assert choice["message"]["role"] == "assistant" and isinstance(choice["message"]["content"], str)
    usage = resp["usage"]
    assert usage["prompt_tokens"] > 0 and 0 < usage["completion_tokens"] <= 6
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    direct = tiny_emulator.forge.generator.chat(MESSAGES, max_tokens=6)
    assert choice["message"]["content"] == direct.text  # greedy: the endpoint is the forge's generator


def test_sdk_query_reads_served_model_name(tiny_emulator):
    from databricks.sdk.service.serving import ChatMessage, ChatMessageRole

    ws = tiny_emulator.workspace()
    resp = ws.serving_endpoints.query(
        name=CHAT, max_tokens=4, messages=[ChatMessage(role=ChatMessageRole.USER, content="hi")]
    )
    assert resp.served_model_name == CHAT
    assert resp.usage.completion_tokens <= 4


def test_stream_yields_chunks_then_stop(tiny_emulator):
    from mlflow.deployments import get_deploy_client

    chunks = list(
        get_deploy_client("databricks").predict_stream(
            endpoint=CHAT, inputs={"messages": MESSAGES, "max_tokens": 5}
        )
    )
    assert chunks and all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert text == tiny_emulator.forge.generator.chat(MESSAGES, max_tokens=5).text


def test_embeddings_endpoint_uses_the_local_embedding_model(tiny_emulator):
    import numpy as np
    from mlflow.deployments import get_deploy_client

    texts = ["vacation policy", "vacation policy", "GPU"]
    client = get_deploy_client("databricks")
    resp = client.predict(endpoint="databricks-gte-large-en", inputs={"input": texts})
    vecs = np.array([d["embedding"] for d in resp["data"]])
    assert vecs.shape == (3, 384)
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-4)
    assert np.allclose(vecs[0], vecs[1]) and not np.allclose(vecs[0], vecs[2])


@pytest.mark.parametrize(
    "inputs, match",
    [
        ({"prompt": "hi"}, "send 'messages'"),
        ({"messages": []}, "non-empty list"),
        ({"messages": MESSAGES, "n": 6}, "'n' must be an integer from 1 to 5"),
        ({"messages": MESSAGES, "max_tokens": 0}, "max_tokens"),
    ],
)
def test_bad_chat_input_is_a_clear_400(tiny_emulator, inputs, match):
    r = tiny_emulator.request("POST", f"/serving-endpoints/{CHAT}/invocations", json=inputs)
    assert r.status_code == 400
    assert r.json()["error_code"] in ("INVALID_PARAMETER_VALUE", "BAD_REQUEST")
    assert match in r.json()["message"]


def test_unknown_serving_endpoint_is_not_found_for_mlflow(tiny_emulator):
    from mlflow.deployments import get_deploy_client
    from requests.exceptions import HTTPError

    with pytest.raises(HTTPError, match="404.*RESOURCE_DOES_NOT_EXIST"):
        get_deploy_client("databricks").predict(endpoint="no-such-model", inputs={"messages": MESSAGES})


def test_department_quotas_apply_to_serving_calls(home):
    import requests
    from llmforge_emulator import start_emulator

    import llmforge
    from llmforge.quotas import ledger_for

    forge = llmforge.connect(
        config={"quotas": {"hr": 20}},
        backend="local",
        home=str(home),
        user="admin",
        generator={"name": "local", "options": {"model": "tiny-random-llama"}},
    )
    forge.catalog.add_principal("alice", departments=["engineering"])
    forge.catalog.add_principal("bob", departments=["hr"])
    url, stop = start_emulator(forge, tokens={"ta": "alice", "tb": "bob"})
    try:

        def ask(token):
            return requests.post(
                f"{url}/serving-endpoints/{CHAT}/invocations",
                timeout=120,
                headers={"Authorization": f"Bearer {token}"},
                json={"messages": MESSAGES, "max_tokens": 16},
            )

        refused = ask("tb")
        assert refused.status_code == 429
        assert refused.json()["error_code"] == "REQUEST_LIMIT_EXCEEDED" and "hr" in refused.json()["message"]
        ok = ask("ta")
        assert ok.status_code == 200
        used = {r["department"]: r["used"] for r in ledger_for(forge).usage()}
        assert used["engineering"] == ok.json()["usage"]["total_tokens"] and used.get("hr", 0) == 0
    finally:
        stop()


@pytest.fixture
def completions_emulator(tiny_forge, monkeypatch):
    """The emulator over the tiny forge with a completions endpoint besides the defaults."""
    from fixtures.databricks import TOKENS, Emulated
    from llmforge_emulator import start_emulator
    from llmforge_emulator.serving import COMPLETIONS, DEFAULT_ENDPOINTS

    url, stop = start_emulator(
        tiny_forge, tokens=TOKENS, serving_endpoints={**DEFAULT_ENDPOINTS, "tiny-completions": COMPLETIONS}
    )
    monkeypatch.setenv("DATABRICKS_HOST", url)
    monkeypatch.setenv("DATABRICKS_TOKEN", "tok-admin")
    monkeypatch.setenv("DATABRICKS_CONFIG_FILE", "/nonexistent/.databrickscfg")
    try:
        yield Emulated(url, tiny_forge)
    finally:
        stop()


def test_completions_task_answers_prompt_with_choices_text(completions_emulator):
    from mlflow.deployments import get_deploy_client

    resp = get_deploy_client("databricks").predict(
        endpoint="tiny-completions", inputs={"prompt": "Project Helix is", "max_tokens": 4, "n": 2}
    )
    assert resp["object"] == "text_completion" and [c["index"] for c in resp["choices"]] == [0, 1]
    direct = completions_emulator.forge.generator.complete_batch(["Project Helix is"], max_tokens=4)[0]
    assert resp["choices"][0]["text"] == resp["choices"][1]["text"] == direct.text  # greedy
    assert resp["usage"]["prompt_tokens"] == direct.usage.prompt_tokens  # the prompt counted once
    with pytest.raises(Exception, match="serves llm/v1/completions"):
        get_deploy_client("databricks").predict(endpoint="tiny-completions", inputs={"messages": MESSAGES})


@pytest.mark.parametrize("n, ok", [(1, True), (3, True), (5, True), (0, False), (6, False), ("2", False)])
def test_n_choices_from_one_to_five(tiny_emulator, n, ok):
    from mlflow.deployments import get_deploy_client

    client = get_deploy_client("databricks")
    inputs = {"messages": MESSAGES, "max_tokens": 2, "n": n}
    if ok:
        resp = client.predict(endpoint=CHAT, inputs=inputs)
        assert len(resp["choices"]) == n and resp["usage"]["completion_tokens"] <= 2 * n
    else:
        with pytest.raises(Exception, match="'n' must be an integer from 1 to 5"):
            client.predict(endpoint=CHAT, inputs=inputs)


def test_creating_an_endpoint_for_a_missing_model_version_is_refused(tiny_emulator):
    from databricks.sdk.errors import NotFound
    from databricks.sdk.service.serving import EndpointCoreConfigInput, ServedEntityInput

    ws = tiny_emulator.workspace()
    with pytest.raises(NotFound, match="main.production.enterprise-llm-v1/1"):
        ws.serving_endpoints.create(
            name="enterprise-llm-v1",
            config=EndpointCoreConfigInput(
                name="enterprise-llm-v1",
                served_entities=[
                    ServedEntityInput(
                        entity_name="main.production.enterprise-llm-v1",
                        entity_version="1",
                        workload_size="Small",
                        scale_to_zero_enabled=True,
                    )
                ],
            ),
        )
