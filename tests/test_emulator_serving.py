"""Model Serving through the emulator with the real mlflow.deployments and databricks-sdk clients."""

from __future__ import annotations

import pytest

CHAT = "databricks-meta-llama-3-3-70b-instruct"
MESSAGES = [{"role": "user", "content": "Who owns Project Helix?"}]


def test_chat_predict_returns_an_openai_style_completion_with_usage(tiny_emulator):
    from mlflow.deployments import get_deploy_client

    resp = get_deploy_client("databricks").predict(endpoint=CHAT,
                                                   inputs={"messages": MESSAGES, "max_tokens": 6})
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
    resp = ws.serving_endpoints.query(name=CHAT, max_tokens=4,
                                      messages=[ChatMessage(role=ChatMessageRole.USER, content="hi")])
    assert resp.served_model_name == CHAT
    assert resp.usage.completion_tokens <= 4


def test_stream_yields_chunks_then_stop(tiny_emulator):
    from mlflow.deployments import get_deploy_client

    chunks = list(get_deploy_client("databricks").predict_stream(
        endpoint=CHAT, inputs={"messages": MESSAGES, "max_tokens": 5}))
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


@pytest.mark.parametrize("inputs, match", [
    ({"prompt": "hi"}, "send 'messages'"),
    ({"messages": []}, "non-empty list"),
    ({"messages": MESSAGES, "n": 2}, "'n' must be 1"),
    ({"messages": MESSAGES, "max_tokens": 0}, "max_tokens"),
])
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

    import llmforge
    from llmforge.emulator import start_emulator
    from llmforge.quotas import ledger_for

    forge = llmforge.connect(config={"quotas": {"hr": 20}}, backend="local", home=str(home), user="admin",
                             generator={"name": "local", "options": {"model": "tiny-random-llama"}})
    forge.catalog.add_principal("alice", departments=["engineering"])
    forge.catalog.add_principal("bob", departments=["hr"])
    url, stop = start_emulator(forge, tokens={"ta": "alice", "tb": "bob"})
    try:
        def ask(token):
            return requests.post(f"{url}/serving-endpoints/{CHAT}/invocations", timeout=120,
                                 headers={"Authorization": f"Bearer {token}"},
                                 json={"messages": MESSAGES, "max_tokens": 16})

        refused = ask("tb")
        assert refused.status_code == 429
        assert refused.json()["error_code"] == "REQUEST_LIMIT_EXCEEDED" and "hr" in refused.json()["message"]
        ok = ask("ta")
        assert ok.status_code == 200
        used = {r["department"]: r["used"] for r in ledger_for(forge).usage()}
        assert used["engineering"] == ok.json()["usage"]["total_tokens"] and used.get("hr", 0) == 0
    finally:
        stop()
