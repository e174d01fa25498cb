from __future__ import annotations

import multiprocessing as mp
import threading
from datetime import UTC, datetime

import pytest

from llmforge.errors import DataError, QuotaExceededError
from llmforge.quotas import UNASSIGNED, QuotaExceeded, QuotaLedger, ledger_for


def test_reserve_and_settle_charge_actual_usage(tmp_path):
    ledger = QuotaLedger(tmp_path / "q.db", {"eng": 100})
    r = ledger.reserve(["eng"], 60)
    assert ledger.remaining("eng") == 40
    ledger.settle(r, 25)
    assert ledger.remaining("eng") == 75
    [row] = ledger.usage()
    assert row == {
        "department": "eng",
        "day": r.day,
        "used": 25,
        "reserved": 0,
        "requests": 1,
        "limit": 100,
        "remaining": 75,
    }


def test_exceeding_names_department_and_reset_time(tmp_path):
    ledger = QuotaLedger(tmp_path / "q.db", {"eng": 100})
    ledger.charge(["eng"], 90)
    with pytest.raises(QuotaExceededError) as exc:
        ledger.reserve(["eng"], 20)
    err = exc.value
    assert isinstance(err, QuotaExceeded)
    assert (err.department, err.limit, err.used, err.requested) == ("eng", 100, 90, 20)
    assert err.resets_at > datetime.now(UTC) and err.retry_after_s >= 1
    assert "'eng'" in str(err) and "resets at" in str(err)
    ledger.reserve(["eng"], 10)  # exactly up to the limit is allowed


def test_every_department_of_a_principal_is_charged(tmp_path):
    ledger = QuotaLedger(tmp_path / "q.db", {"eng": 100, "sales": 10})
    with pytest.raises(QuotaExceeded) as exc:
        ledger.reserve(["eng", "sales"], 50)
    assert exc.value.department == "sales"
    assert ledger.remaining("eng") == 100  # a refused request holds nothing anywhere
    ledger.charge(["eng", "sales"], 5)
    assert (ledger.remaining("eng"), ledger.remaining("sales")) == (95, 5)


def test_unlisted_departments_are_unlimited_but_recorded(tmp_path):
    ledger = QuotaLedger(tmp_path / "q.db", {"eng": 1})
    ledger.charge(["hr"], 10_000)
    ledger.charge([], 7)
    rows = {r["department"]: r for r in ledger.usage()}
    assert rows["hr"]["used"] == 10_000 and rows["hr"]["remaining"] is None
    assert rows[UNASSIGNED]["used"] == 7
    assert ledger.remaining("hr") is None


def test_release_frees_and_double_settle_is_refused(tmp_path):
    ledger = QuotaLedger(tmp_path / "q.db", {"eng": 10})
    r = ledger.reserve(["eng"], 10)
    ledger.release(r)
    assert ledger.remaining("eng") == 10
    r = ledger.reserve(["eng"], 4)
    ledger.settle(r, 4)
    with pytest.raises(DataError, match="already settled"):
        ledger.settle(r, 4)
    assert ledger.remaining("eng") == 6


def test_stale_reservations_expire(tmp_path):
    now = [datetime(2026, 1, 1, 10, tzinfo=UTC)]
    ledger = QuotaLedger(tmp_path / "q.db", {"eng": 10}, reservation_ttl_s=60, clock=lambda: now[0])
    ledger.reserve(["eng"], 10)  # the request dies and never settles
    with pytest.raises(QuotaExceeded):
        ledger.reserve(["eng"], 1)
    now[0] = datetime(2026, 1, 1, 10, 2, tzinfo=UTC)
    ledger.reserve(["eng"], 10)


def test_a_new_day_starts_from_zero(tmp_path):
    now = [datetime(2026, 1, 1, 23, 59, tzinfo=UTC)]
    ledger = QuotaLedger(tmp_path / "q.db", {"eng": 10}, clock=lambda: now[0])
    ledger.charge(["eng"], 10)
    assert ledger.resets_at() == datetime(2026, 1, 2, tzinfo=UTC)
    now[0] = datetime(2026, 1, 2, 0, 1, tzinfo=UTC)
    assert ledger.remaining("eng") == 10
    assert ledger.usage("2026-01-01")[0]["used"] == 10


def test_bad_limits_and_negative_reservations_are_refused(tmp_path):
    with pytest.raises(Exception, match="quotas.eng"):
        QuotaLedger(tmp_path / "q.db", {"eng": -5})
    with pytest.raises(DataError):
        QuotaLedger(tmp_path / "q.db", {}).reserve(["eng"], -1)


def test_concurrent_threads_never_overspend(tmp_path):
    ledger = QuotaLedger(tmp_path / "q.db", {"eng": 1000})
    granted, refused = [], []

    def worker():
        for _ in range(10):
            try:
                r = ledger.reserve(["eng"], 30)
            except QuotaExceeded:
                refused.append(1)
                continue
            ledger.settle(r, 30)
            granted.append(30)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(granted) == 990  # 33 requests of 30 fit in 1000; the 34th never does
    assert len(refused) == 80 - 33
    assert ledger.usage()[0]["used"] == 990


def _spend(path: str, n: int, out) -> None:
    ledger = QuotaLedger(path, {"eng": 500})
    ok = 0
    for _ in range(n):
        try:
            ledger.charge(["eng"], 7)
            ok += 1
        except QuotaExceeded:
            pass
    out.put(ok)


def test_concurrent_processes_never_overspend(tmp_path):
    path = str(tmp_path / "q.db")
    QuotaLedger(path, {"eng": 500})
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=_spend, args=(path, 30, out)) for _ in range(4)]
    for p in procs:
        p.start()
    total = sum(out.get(timeout=60) for _ in procs)
    for p in procs:
        p.join(timeout=60)
    assert total == 500 // 7
    assert QuotaLedger(path, {"eng": 500}).usage()[0]["used"] == 7 * (500 // 7)


def test_ledger_for_uses_project_home_and_config(tmp_path):
    import llmforge

    forge = llmforge.connect(backend="local", home=str(tmp_path / "h"), config={"quotas": {"eng": 42}})
    ledger = ledger_for(forge)
    assert ledger.path == forge.home / "quotas.db"
    assert ledger.remaining("eng") == 42


def _row(ledger, dept):
    return next(r for r in ledger.usage() if r["department"] == dept)


def test_hold_reserves_on_enter_and_settles_what_was_used(tmp_path):
    ledger = QuotaLedger(tmp_path / "q.db", {"eng": 100})
    with ledger.hold(["eng"], 60) as h:
        assert ledger.remaining("eng") == 40  # the upper bound is held while the block runs
        h.used = 25
    assert ledger.remaining("eng") == 75 and _row(ledger, "eng")["reserved"] == 0
    with pytest.raises(QuotaExceeded), ledger.hold(["eng"], 80):
        pytest.fail("the block must not run when the hold does not fit")
    assert _row(ledger, "eng")["requests"] == 1


def test_hold_settles_partial_use_when_the_block_raises(tmp_path):
    ledger = QuotaLedger(tmp_path / "q.db", {"eng": 100})
    with pytest.raises(RuntimeError), ledger.hold(["eng"], 50) as h:
        h.used = 7  # a stream cancelled after 7 tokens
        raise RuntimeError("client went away")
    assert (_row(ledger, "eng")["used"], _row(ledger, "eng")["reserved"]) == (7, 0)


def test_hold_with_nothing_used_releases(tmp_path):
    ledger = QuotaLedger(tmp_path / "q.db", {"eng": 100})
    with pytest.raises(ValueError), ledger.hold(["eng"], 50):
        raise ValueError("bad input")
    row = _row(ledger, "eng")
    assert (row["used"], row["reserved"], row["requests"]) == (0, 0, 0)
