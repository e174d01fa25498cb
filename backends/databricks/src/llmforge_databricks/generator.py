"""Chat through a Databricks Model Serving endpoint with ``mlflow.deployments``."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from llmforge.components import Completion, Generator, Usage
from llmforge.errors import ConfigError, ModelError
from llmforge_databricks.workspace import calling, reachable_credentials


@dataclass(frozen=True)
class DatabricksGeneratorOptions:
    #: the serving endpoint to query (a Foundation Model API name or your own endpoint)
    endpoint: str = "databricks-meta-llama-3-3-70b-instruct"

    def __post_init__(self) -> None:
        if not isinstance(self.endpoint, str) or not self.endpoint.strip():
            raise ConfigError(
                "generator option 'endpoint' must name a serving endpoint, "
                "e.g. databricks-meta-llama-3-3-70b-instruct"
            )


class DatabricksGenerator(Generator):
    name = "databricks"
    description = "Model Serving endpoint via mlflow.deployments"
    Options = DatabricksGeneratorOptions

    def _client(self) -> Any:
        from mlflow.deployments import get_deploy_client

        reachable_credentials()  # a clear error before mlflow looks for credentials elsewhere
        return get_deploy_client("databricks")

    @staticmethod
    def _inputs(
        messages: list[dict[str, str]], max_tokens: int, temperature: float, stop: Sequence[str] | None
    ) -> dict[str, Any]:
        inputs: dict[str, Any] = {"messages": messages, "max_tokens": max_tokens, "temperature": temperature}
        if stop:
            inputs["stop"] = list(stop)
        return inputs

    def chat(
        self,
        messages: list[dict[str, str]],
        *,
        max_tokens: int = 256,
        temperature: float = 0.0,
        stop: Sequence[str] | None = None,
        user: str | None = None,
    ) -> Completion:
        """One answer from the serving endpoint. The endpoint answers for the workspace token:
        it serves one model version to every ``user`` (per-audience adapters route locally)."""
        endpoint = self.options.endpoint
        with calling(f"query serving endpoint '{endpoint}'"):
            resp = self._client().predict(
                endpoint=endpoint, inputs=self._inputs(messages, max_tokens, temperature, stop)
            )
        try:
            choice = resp["choices"][0]
            usage = resp.get("usage") or {}
            return Completion(
                text=choice["message"]["content"] or "",
                usage=Usage(int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0))),
                finish_reason=choice.get("finish_reason") or "stop",
                model=resp.get("model") or endpoint,
            )
        except (KeyError, IndexError, TypeError) as exc:
            raise ModelError(
                f"serving endpoint '{endpoint}' did not answer as a chat model "
                f"(llm/v1/chat): {json.dumps(dict(resp))[:300]}"
            ) from exc

    def stream(
        self,
        messages: list[dict[str, str]],
        *,
        max_tokens: int = 256,
        temperature: float = 0.0,
        stop: Sequence[str] | None = None,
    ) -> Iterator[str]:
        endpoint = self.options.endpoint
        with calling(f"stream from serving endpoint '{endpoint}'"):
            for chunk in self._client().predict_stream(
                endpoint=endpoint, inputs=self._inputs(messages, max_tokens, temperature, stop)
            ):
                piece = (chunk.get("choices") or [{}])[0].get("delta", {}).get("content")
                if piece:
                    yield piece
