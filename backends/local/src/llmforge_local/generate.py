"""transformers generation: a continuous-batching engine, or static batches of left-padded prompts.

A model loads once per process per (model, adapter, dtype, device) and is shared by every
``LocalGenerator``. By default (``engine: continuous``, Llama models) every request — ``chat``,
``chat_batch``, ``complete_batch``, ``stream`` — joins one running batch that the model's
:class:`llmforge_local.engine.Engine` advances a token at a time, each row with its own adapter
and its own end. ``engine: static`` (and other architectures) keeps the earlier path: one lock
per model serialises ``model.generate`` calls on left-padded batches, ``chat_batch`` for a list
and :mod:`llmforge_local.batching` coalescing concurrent ``chat`` calls.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

from llmforge.components import Completion, Generator, Usage
from llmforge.errors import DataError, ModelError, NotFoundError
from llmforge_local.batching import Batcher
from llmforge_local.options import Options
from llmforge_local.streaming import EngineStream, TextStream, stop_criterion

ROLES = ("system", "user", "assistant", "tool")


@dataclass
class LoadedModel:
    model: Any
    tokenizer: Any
    device: Any
    eos_ids: frozenset[int]
    pad_id: int
    context: int
    #: held while generating: one batch at a time uses every core
    lock: threading.Lock
    #: held while encoding: a fast tokenizer refuses concurrent calls that touch its settings
    tok_lock: threading.Lock
    #: adapter folder → peft adapter name, for a base model serving routed adapters
    adapters: dict[str, str] = field(default_factory=dict)
    #: the continuous-batching engine (:mod:`llmforge_local.engine`), made on first use;
    #: ``False`` when the model's architecture is not one it runs
    engine: Any = None

    def encode(self, text: str, special: bool) -> list[int]:
        with self.tok_lock:
            return self.tokenizer(text, add_special_tokens=special)["input_ids"]


_LOADED: dict[tuple, LoadedModel] = {}
_LOADED_LOCK = threading.Lock()


def load(
    spec: str | None, home: Path, adapter: str | None, dtype: str, device: str, routed: bool = False
) -> LoadedModel:
    """The process-wide shared model for these settings, loaded on first use. A ``routed``
    base is a separate copy: adapters are loaded into it, never merged."""
    import torch

    from llmforge_local.models import default_device, load_causal_lm

    if device == "auto":
        device = default_device()
    key = (spec, str(home), adapter, dtype, device, routed)
    with _LOADED_LOCK:
        if key in _LOADED:
            return _LOADED[key]
        torch_dtype = None if dtype == "auto" else getattr(torch, dtype)
        model, tok = load_causal_lm(spec, home, dtype=torch_dtype, adapter=adapter, device=device)
        if (
            hasattr(model, "merge_and_unload") and not routed
        ):  # LoRA folded into the weights: no per-token adapter cost
            model = model.merge_and_unload().eval()
        eos = model.generation_config.eos_token_id
        eos_ids = {eos} if isinstance(eos, int) else set(eos or ())
        if tok.eos_token_id is not None:
            eos_ids.add(tok.eos_token_id)
        pad = tok.pad_token_id if tok.pad_token_id is not None else min(eos_ids)
        ctx = getattr(model.config, "max_position_embeddings", None) or 2048
        _LOADED[key] = LoadedModel(
            model, tok, device, frozenset(eos_ids), pad, ctx, threading.Lock(), threading.Lock()
        )
        return _LOADED[key]


def _check_messages(messages: Any) -> None:
    if not isinstance(messages, list) or not messages:
        raise DataError("messages must be a non-empty list of {'role': ..., 'content': ...} dicts")
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in ROLES or not isinstance(m.get("content"), str):
            raise DataError(
                f"messages[{i}] must be a dict with role in {ROLES} and a string content; got {m!r}"
            )


class LocalGenerator(Generator):
    name = "local"
    description = "transformers causal LM (default SmolLM2-135M-Instruct), batched"
    Options = Options

    @cached_property
    def source(self) -> tuple[str, str | None, str | None]:
        """``(model spec, adapter folder, registered version)`` with registry URIs resolved.

        Resolved once, at first use: an alias moved later (a new ``@champion``) is picked up by
        a new generator (a server restart), never halfway through serving.
        """
        model, adapter = self.options.model, self.options.adapter
        uri = adapter if adapter and adapter.startswith("models:/") else model
        version = None
        if uri.startswith("models:/"):
            try:
                from llmforge.tracking import Tracker
            except ImportError:
                raise ModelError(
                    f"{uri!r} is a registry URI, but the model registry (llmforge.tracking) "
                    f"is not installed; pass a local model or adapter folder instead"
                ) from None
            r = Tracker(self.forge.home, self.forge.catalog).resolve(uri)
            version = f"{r.name}/{r.version}"
            if r.adapter is None:  # a full fine-tune: the folder is the whole model
                model, adapter = str(r.path), None
            else:  # an adapter runs on the base it was trained on
                model, adapter = r.base_model or model, str(r.adapter)
        if adapter is not None and not Path(adapter).is_dir():
            raise NotFoundError(
                f"adapter folder {adapter} does not exist; pass a peft adapter folder or a "
                f"registered model URI such as models:/name@champion"
            )
        return model, adapter, version

    @property
    def model_name(self) -> str:
        """What answered: ``models:/<name>/<version>`` for a registered model, else the spec."""
        model, adapter, version = self.source
        if version:
            return f"models:/{version}"
        return f"{model}+{Path(adapter).name}" if adapter else model

    def loaded(self) -> LoadedModel:
        model, adapter, _ = self.source
        routed = self.options.routed_model is not None
        return load(model, self.forge.home, adapter, self.options.dtype, self.options.device, routed)

    @cached_property
    def router(self) -> Any:
        """``user`` → ``(adapter folder, model name)``; see :mod:`llmforge_local.adapters`."""
        from llmforge_local.adapters import Router

        o = self.options
        if o.routed_model is None:
            return lambda user: (None, self.model_name)
        return Router(self.forge, o.routed_model, o.model, o.route_alias, o.unentitled)

    # ---- prompts -------------------------------------------------------------------------
    def _chat_ids(self, m: LoadedModel, messages: list[dict[str, str]]) -> list[int]:
        _check_messages(messages)
        tok = m.tokenizer
        if tok.chat_template:
            text = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        else:  # a base model without a template still gets a readable transcript
            text = "".join(f"{x['role']}: {x['content']}\n" for x in messages) + "assistant:"
        return m.encode(text, special=False)

    def count_prompt_tokens(self, messages: list[dict[str, str]]) -> int:
        """Tokens the prompt of ``messages`` takes (for quota reservations)."""
        return len(self._chat_ids(self.loaded(), messages))

    # ---- public API ----------------------------------------------------------------------
    def chat(
        self,
        messages: list[dict[str, str]],
        *,
        max_tokens: int | None = None,
        temperature: float = 0.0,
        stop: Sequence[str] | None = None,
        top_p: float = 1.0,
        user: str | None = None,
    ) -> Completion:
        """One answer; concurrent calls (server threads) share device batches. ``user``: the
        caller, whose entitled adapter answers when the ``routed_model`` option is set."""
        m = self.loaded()
        ids = self._chat_ids(m, messages)
        params = self._params(m, [ids], max_tokens, temperature, stop, top_p, user)
        engine = self.engine(m)
        if engine is None:
            return self.batcher.submit(ids, params)
        return self._settle(m, engine.submit(self._sequence(ids, params)).wait(), params)

    def engine(self, m: LoadedModel) -> Any:
        """The model's continuous-batching engine, or ``None`` for the static path."""
        if self.options.engine == "static":
            return None
        with _LOADED_LOCK:
            if m.engine is None:
                from llmforge_local.engine import Engine
                from llmforge_local.engine_model import supported

                o = self.options
                m.engine = supported(m.model) and Engine(
                    m.model,
                    m.tokenizer,
                    m.eos_ids,
                    m.device,
                    o.max_batch_size,
                    o.pack_weights,
                    o.prefix_cache_tokens,
                    o.fused_kernels,
                    o.quantize,
                )
        return m.engine or None

    @staticmethod
    def _sequence(ids: list[int], params: dict) -> Any:
        from llmforge_local.engine import Sequence

        p = params
        return Sequence(
            ids, p["max_tokens"], p["temperature"], p["top_p"], p["stop"], p["adapter"], p["caller"]
        )

    def _settle(self, m: LoadedModel, seq: Any, params: dict) -> Completion:
        """The completion of a finished engine sequence; a cancelled one reports what it made."""
        c = self._finish(m, seq.tokens, len(seq.ids), params)
        c = replace(c, usage=replace(c.usage, cached_tokens=seq.cached_tokens))
        return replace(c, finish_reason="cancelled") if seq.finish == "cancelled" else c

    @cached_property
    def batcher(self) -> Batcher:
        m = self.loaded()
        return Batcher(
            lambda ids, params: self.generate_ids(m, ids, params), self.options.max_batch_size, m.context
        )

    def chat_batch(
        self,
        conversations: list[list[dict[str, str]]],
        *,
        max_tokens: int | None = None,
        temperature: float = 0.0,
        stop: Sequence[str] | None = None,
        top_p: float = 1.0,
        user: str | None = None,
    ) -> list[Completion]:
        m = self.loaded()
        return self._run(
            m, [self._chat_ids(m, c) for c in conversations], max_tokens, temperature, stop, top_p, user
        )

    def complete_batch(
        self,
        prompts: list[str],
        *,
        max_tokens: int | None = None,
        temperature: float = 0.0,
        stop: Sequence[str] | None = None,
        top_p: float = 1.0,
        user: str | None = None,
    ) -> list[Completion]:
        """Raw text continuation, no chat template (``/v1/completions``)."""
        if not prompts or not all(isinstance(p, str) and p for p in prompts):
            raise DataError("prompts must be a non-empty list of non-empty strings")
        m = self.loaded()
        ids = [m.encode(p, special=True) for p in prompts]
        return self._run(m, ids, max_tokens, temperature, stop, top_p, user)

    def stream(
        self,
        messages: list[dict[str, str]],
        *,
        max_tokens: int | None = None,
        temperature: float = 0.0,
        stop: Sequence[str] | None = None,
        top_p: float = 1.0,
        user: str | None = None,
    ) -> TextStream:
        """Text pieces as produced; after the last one ``.completion`` holds usage and finish_reason."""
        m = self.loaded()
        ids = self._chat_ids(m, messages)
        params = self._params(m, [ids], max_tokens, temperature, stop, top_p, user)
        engine = self.engine(m)
        if engine is None:
            return TextStream(self, m, ids, params)
        return EngineStream(self, m, engine, self._sequence(ids, params), params)

    # ---- decoding ------------------------------------------------------------------------
    def _params(
        self,
        m: LoadedModel,
        ids: list[list[int]],
        max_tokens: int | None,
        temperature: float,
        stop: Sequence[str] | None,
        top_p: float,
        user: str | None = None,
    ) -> dict:
        max_tokens = self.options.max_new_tokens if max_tokens is None else max_tokens
        if not isinstance(max_tokens, int) or max_tokens < 1:
            raise DataError(f"max_tokens must be a whole number >= 1, got {max_tokens!r}")
        if temperature < 0 or not 0 < top_p <= 1:
            raise DataError(f"temperature must be >= 0 and top_p in (0, 1]; got {temperature}, {top_p}")
        stop = [stop] if isinstance(stop, str) else [s for s in (stop or []) if s]
        longest = max(len(x) for x in ids)
        if longest + max_tokens > m.context:
            raise DataError(
                f"prompt of {longest} tokens + max_tokens {max_tokens} exceeds the model's context "
                f"of {m.context} tokens; shorten the prompt or lower max_tokens"
            )
        adapter, name = self.router(user)
        return {
            "max_tokens": max_tokens,
            "temperature": temperature,
            "stop": stop,
            "top_p": top_p,
            "adapter": adapter,
            "model": name,
            "caller": user,
        }

    def _run(
        self, m: LoadedModel, ids: list[list[int]], max_tokens, temperature, stop, top_p, user=None
    ) -> list[Completion]:
        if not ids:
            return []
        params = self._params(m, ids, max_tokens, temperature, stop, top_p, user)
        engine = self.engine(m)
        if engine is not None:  # every row joins the running batch; each leaves when done
            seqs = [engine.submit(self._sequence(x, params)) for x in ids]
            return [self._settle(m, s.wait(), params) for s in seqs]
        out: list[Completion | None] = [None] * len(ids)
        # similar lengths batch together, so little compute goes to padding
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        size = self.options.max_batch_size
        for start in range(0, len(order), size):
            chunk = order[start : start + size]
            for i, c in zip(chunk, self.generate_ids(m, [ids[i] for i in chunk], params), strict=True):
                out[i] = c
        return out  # type: ignore[return-value]

    def generate_ids(
        self,
        m: LoadedModel,
        ids: list[list[int]],
        params: dict,
        streamer: Any = None,
        cancel: threading.Event | None = None,
    ) -> list[Completion]:
        """One device batch: left-pad, ``model.generate`` with KV cache, decode each row."""
        import torch
        from transformers import GenerationConfig, StoppingCriteriaList

        width = max(len(x) for x in ids)
        input_ids = torch.full((len(ids), width), m.pad_id, dtype=torch.long)  # (B, T)
        attention = torch.zeros((len(ids), width), dtype=torch.long)  # (B, T)
        for r, row in enumerate(ids):
            input_ids[r, width - len(row) :] = torch.tensor(row)
            attention[r, width - len(row) :] = 1
        sample = params["temperature"] > 0
        config = GenerationConfig(
            max_new_tokens=params["max_tokens"],
            do_sample=sample,
            use_cache=True,
            temperature=params["temperature"] if sample else None,
            top_p=params["top_p"] if sample else None,
            top_k=None,
            eos_token_id=sorted(m.eos_ids),
            pad_token_id=m.pad_id,
        )
        criteria = StoppingCriteriaList([stop_criterion(m.tokenizer, params["stop"], width, cancel)])
        from llmforge_local.adapters import active

        with m.lock, torch.inference_mode(), active(m, params.get("adapter")):
            out = m.model.generate(
                input_ids=input_ids.to(m.device),
                attention_mask=attention.to(m.device),
                generation_config=config,
                stopping_criteria=criteria,
                streamer=streamer,
            )
        gen = out[:, width:].tolist()  # (B, new)
        limits = params.get("limits") or [params["max_tokens"]] * len(ids)  # per row, from the Batcher
        return [
            self._finish(m, row[:limit], len(p), params)
            for row, p, limit in zip(gen, ids, limits, strict=True)
        ]

    def _finish(self, m: LoadedModel, row: list[int], prompt_len: int, params: dict) -> Completion:
        n, finish = len(row), "length"
        for k, t in enumerate(row):
            if t in m.eos_ids:
                n, finish = k + 1, "stop"
                break
            if t == m.pad_id:  # a row finished by a stop string is padded afterwards
                n = k
                break
        decode = m.tokenizer.decode
        text = decode(row[:n], skip_special_tokens=True)
        hits = [text.find(s) for s in params["stop"] if s in text]
        if hits:
            text, finish = text[: min(hits)], "stop"
            # count only the tokens up to the one that completed the stop string
            n = next(
                k
                for k in range(1, n + 1)
                if any(s in decode(row[:k], skip_special_tokens=True) for s in params["stop"])
            )
        return Completion(
            text=text,
            usage=Usage(prompt_len, n),
            finish_reason=finish,
            model=params.get("model") or self.model_name,
        )
