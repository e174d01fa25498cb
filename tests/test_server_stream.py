"""The streamed response's pump: a sync body iterator runs in a thread of its own, its pieces reach
the event loop in order, and closing waits for the iterator's own clean-up."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from llmforge.server_stream import _Pump


def source(n: int, log: list, delay: float = 0.0):
    try:
        for i in range(n):
            if delay:
                time.sleep(delay)
            log.append(("made", i, threading.current_thread().name))
            yield f"data: {i}\n\n"
    finally:
        time.sleep(0.05)  # a hold that takes a moment to settle
        log.append(("closed", threading.current_thread().name))


def test_every_piece_arrives_in_order_and_the_source_is_closed_where_it_ran():
    log: list = []

    async def run() -> str:
        pump = _Pump(source(50, log))
        text = "".join([p async for p in pump.pieces()])
        await pump.close()
        return text

    assert asyncio.run(run()) == "".join(f"data: {i}\n\n" for i in range(50))
    threads = {entry[-1] for entry in log}
    assert threads == {"llmforge-stream"}  # made and closed in the pump's thread, off the loop
    assert log[-1][0] == "closed"


def test_pieces_that_queued_while_the_loop_was_busy_go_out_as_one_write():
    log: list = []

    async def run() -> list[str]:
        pump = _Pump(source(20, log))
        it = pump.pieces()
        first = await it.__anext__()
        time.sleep(0.3)  # the loop is busy: the thread queues the rest meanwhile
        rest = [p async for p in it]
        await pump.close()
        return [first, *rest]

    writes = asyncio.run(run())
    assert "".join(writes) == "".join(f"data: {i}\n\n" for i in range(20))
    assert len(writes) < 20 and any(w.count("data:") > 1 for w in writes)


def test_closing_early_stops_the_source_and_waits_for_its_clean_up():
    log: list = []

    async def run() -> None:
        pump = _Pump(source(10_000, log, delay=0.002))
        it = pump.pieces()
        await it.__anext__()
        await it.aclose()  # the client went away
        await pump.close()
        assert log[-1][0] == "closed"  # close returned only after the finally block ran

    asyncio.run(run())
    made = [e for e in log if e[0] == "made"]
    assert len(made) < 10_000


def test_an_error_in_the_source_is_raised_on_the_loop_and_a_never_started_pump_closes_its_source():
    def broken():
        yield "data: 1\n\n"
        raise RuntimeError("generation failed")

    async def run() -> list[str]:
        pump = _Pump(broken())
        got = []
        with pytest.raises(RuntimeError, match="generation failed"):
            async for p in pump.pieces():
                got.append(p)
        await pump.close()
        return got

    assert "".join(asyncio.run(run())) == "data: 1\n\n"

    log: list = []
    gen = source(3, log)
    next(gen)  # started by someone, then the response never streamed

    asyncio.run(_Pump(gen).close())
    assert log[-1][0] == "closed"
