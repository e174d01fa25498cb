"""Stop strings and streaming for :mod:`llmforge_local.generate`."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from llmforge.components import Completion

if TYPE_CHECKING:
    from llmforge_local.generate import LoadedModel, LocalGenerator


def stop_criterion(tokenizer: Any, stop: list[str], start: int, cancel: threading.Event | None) -> Any:
    """A stopping criterion: per row, a stop string in the generated text; all rows on cancel.

    (transformers' own ``stop_strings`` misreads byte-level tokens such as SmolLM2's newline
    and stops early, so the generated tail is decoded and searched instead.)
    """
    import torch
    from transformers import StoppingCriteria

    # a token decodes to at least one character, so this many tokens cover any stop string
    tail = max((len(s) for s in stop), default=0) + 1

    class Stops(StoppingCriteria):
        def __call__(self, input_ids: Any, scores: Any, **kw: Any) -> Any:
            done = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)  # (B,)
            if cancel is not None and cancel.is_set():
                return done.fill_(True)
            if stop:
                texts = tokenizer.batch_decode(
                    input_ids[:, max(start, input_ids.shape[1] - tail) :], skip_special_tokens=True
                )
                done = torch.tensor([any(s in t for s in stop) for t in texts], device=input_ids.device)
            return done

    return Stops()


class TextStream:
    """Iterator over text pieces of one streamed completion; ``completion`` is set at the end.

    Generation runs in a thread feeding a ``TextIteratorStreamer``; text that might be the
    start of a stop string is held back until it is known not to be one. Closing the stream
    early (or abandoning the iteration) stops generation at the next token.
    """

    def __init__(self, gen: LocalGenerator, m: LoadedModel, ids: list[int], params: dict) -> None:
        from transformers import TextIteratorStreamer

        self.completion: Completion | None = None
        self._cancel = threading.Event()
        self._error: BaseException | None = None
        self._streamer = TextIteratorStreamer(m.tokenizer, skip_prompt=True, skip_special_tokens=True)
        self._stop = params["stop"]

        def work() -> None:
            try:
                self.completion = gen.generate_ids(m, [ids], params, self._streamer, self._cancel)[0]
            except BaseException as exc:  # re-raised in the consumer's thread
                self._error = exc
                self._streamer.end()

        self._thread = threading.Thread(target=work, name="llmforge-stream", daemon=True)
        self._thread.start()
        self._it = self._pieces()

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        return next(self._it)

    def close(self) -> None:
        self._cancel.set()
        self._it.close()

    def _pieces(self) -> Iterator[str]:
        hold = max((len(s) for s in self._stop), default=1) - 1
        text, sent = "", 0
        try:
            for piece in self._streamer:
                text += piece
                cut = min([text.find(s) for s in self._stop if s in text], default=-1)
                if cut >= 0:
                    self._cancel.set()
                    text = text[:cut]
                safe = text[: len(text) - hold] if cut < 0 else text
                if len(safe) > sent:
                    yield safe[sent:]
                    sent = len(safe)
                if cut >= 0:
                    break
            self._thread.join()
            if self._error is not None:
                raise self._error
            final = self.completion.text if self.completion else text
            # the final decode is authoritative; send whatever the incremental one held back
            if final.startswith(text[:sent]) and len(final) > sent:
                yield final[sent:]
        finally:
            self._cancel.set()


class EngineStream:
    """Text pieces of one sequence of the continuous-batching engine, as its tokens come.

    Text that might be the start of a stop string, or half of a multi-byte character, is held
    back until it is known not to be. ``close()`` (a disconnected client) cancels the sequence
    at the engine's next step and waits for it, so ``completion`` then reports the tokens it
    produced — the caller charges them.
    """

    def __init__(self, gen: LocalGenerator, m: LoadedModel, engine: Any, seq: Any, params: dict) -> None:
        import queue

        self.completion: Completion | None = None
        self._gen, self._m, self._seq, self._params = gen, m, seq, params
        seq.feed = queue.SimpleQueue()
        engine.submit(seq)
        self._it = self._pieces()

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        return next(self._it)

    def close(self) -> None:
        self._seq.cancel()
        self._it.close()
        self._settle()

    def _settle(self) -> None:
        self._seq.done.wait()
        if self.completion is None and self._seq.error is None:
            self.completion = self._gen._settle(self._m, self._seq, self._params)

    def _pieces(self) -> Iterator[str]:
        stop, decode = self._params["stop"], self._m.tokenizer.decode
        hold = max((len(s) for s in stop), default=1) - 1
        tokens: list[int] = []
        text, sent = "", 0
        try:
            while (token := self._seq.feed.get()) is not None:
                tokens.append(token)
                text = decode(tokens, skip_special_tokens=True)
                cut = min([text.find(s) for s in stop if s in text], default=-1)
                if cut >= 0:
                    text = text[:cut]
                safe = (text if cut >= 0 else text[: len(text) - hold]).rstrip("\ufffd")
                if len(safe) > sent:
                    yield safe[sent:]
                    sent = len(safe)
                if cut >= 0:
                    break
            self._seq.wait()
            self._settle()
            final = self.completion.text
            # the final decode is authoritative; send whatever the incremental one held back
            if final.startswith(text[:sent]) and len(final) > sent:
                yield final[sent:]
        finally:
            self._seq.cancel()  # a no-op when it has ended; else it stops at the next step
