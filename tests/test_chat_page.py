"""The chat page at ``/``, driven end to end in headless Chromium (Debian's package) by Playwright.

A real server on loopback serves the tiny random Llama and a ``rag`` model over a governed
index; the browser signs in, asks, watches the answer stream, and reads back the citations,
guard verdicts and quota the page shows. No browser is downloaded: a missing Chromium or
Playwright is a failure that names the install command, never a skip.
"""

from __future__ import annotations

import shutil
import time

import httpx
import pytest
from fixtures.generation import generator_config
from fixtures.index import INDEX, make_governed

import llmforge
from llmforge.components import GuardResult, Usage
from llmforge.rag import Answer
from llmforge.server import start_in_thread

pytestmark = pytest.mark.slow

TOKENS = {"tok-alice": "alice", "tok-bob": "bob", "tok-carol": "carol"}
MODEL = "llmforge-local"
HELIX = "When does Project Helix ship?"
WAIT_MS = 120_000  # two busy cores: a generation can take a while
# records every distinct text the newest answer shows as the page changes it, and whether an
# element other than a citation link ever appeared inside an answer
RECORDER = """
window.__answerTexts = [];
window.__markupSeen = false;
new MutationObserver(() => {
  const shown = document.querySelectorAll('.exchange .a');
  if (!shown.length) return;
  const last = shown[shown.length - 1], text = last.textContent, seen = window.__answerTexts;
  if (seen[seen.length - 1] !== text) seen.push(text);
  if (last.querySelector(':not(a)')) window.__markupSeen = true;
}).observe(document, {subtree: true, childList: true, characterData: true});
"""


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.fail(
            "no Chromium on PATH: install Debian's package with `apt-get install -y chromium` "
            "(scripts/setup.sh does it when run as root)"
        )
    return found


@pytest.fixture(scope="module")
def browser():
    path = _chromium()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("Playwright is missing: `.venv/bin/pip install playwright==1.65.2` (scripts/setup.sh)")
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=path, headless=True)
        yield b
        b.close()


@pytest.fixture(scope="module")
def forge(tmp_path_factory, chat_model_dir):
    forge = llmforge.connect(
        backend="local",
        home=str(tmp_path_factory.mktemp("chat") / "home"),
        user="admin",
        config={"quotas": {"engineering": 100_000, "sales": 10}, "rag": {"index": INDEX, "max_tokens": 8}},
        generator=generator_config(chat_model_dir, max_new_tokens=32),
    )
    return make_governed(forge)  # alice: engineering, bob: hr, carol: sales; SELECT for everyone


@pytest.fixture(scope="module")
def url(forge):
    base, stop = start_in_thread(forge, port=0, tokens=TOKENS)
    yield base
    stop()


@pytest.fixture
def page(browser, url):
    context = browser.new_context()
    context.add_init_script(RECORDER)
    p = context.new_page()
    p.problems = []  # script errors and CSP violations: the page must produce none
    p.on("pageerror", lambda e: p.problems.append(str(e)))
    p.on(
        "console",
        lambda m: p.problems.append(m.text) if "Content Security Policy" in m.text else None,
    )
    p.goto(url + "/")
    yield p
    assert p.problems == []
    context.close()


class Paced:
    """The generator's stream, one piece every 50 ms — the pace of a bigger model on this CPU.

    The tiny test model writes its whole answer within a millisecond or two, so the browser
    would read it in one network chunk; paced, each piece arrives on its own and the test can
    see the page show the answer growing."""

    def __init__(self, stream) -> None:
        self.stream = stream

    def __iter__(self):
        return self

    def __next__(self) -> str:
        piece = next(self.stream)
        time.sleep(0.05)
        return piece

    def __getattr__(self, name):  # .completion, .close: the real stream's
        return getattr(self.stream, name)


def sign_in(page, token: str = "tok-alice") -> None:
    page.fill("#token", token)
    page.click("#signin-button")


def ask(page, question: str, model: str, max_tokens: int = 24) -> dict:
    """Ask through the page and wait for the answer; returns what the newest exchange shows."""
    page.wait_for_selector("#chat:not([hidden])")
    page.select_option("#model", model)
    page.fill("#max-tokens", str(max_tokens))
    page.fill("#question", question)
    before = page.locator(".exchange").count()
    page.click("#ask")
    page.wait_for_selector(f".exchange:nth-child({before + 1})[data-state]", timeout=WAIT_MS)
    return page.evaluate(
        """() => {
        const x = [...document.querySelectorAll('.exchange')].pop();
        const texts = (sel) => [...x.querySelectorAll(sel)].map((e) => e.textContent);
        return {
          state: x.dataset.state, chunks: Number(x.dataset.chunks || 0), answer: x.querySelector('.a').textContent,
          error: texts('.error').join(' '), meta: x.querySelector('.meta').textContent,
          citations: [...x.querySelectorAll('li.citation')].map((li) =>
            [li.querySelector('.n').textContent, li.querySelector('.doc').textContent,
             li.querySelector('.table').textContent]),
          guards: [...x.querySelectorAll('tr.guard')].map((tr) =>
            [tr.querySelector('.name').textContent, tr.querySelector('.stage').textContent,
             tr.querySelector('.verdict').textContent, tr.querySelector('.reason').textContent]),
          markup: x.querySelectorAll('img, script, b').length,
          links: texts('.a a'),
          partials: window.__answerTexts,
        };
    }"""
    )


def remaining(page, department: str) -> int:
    li = page.wait_for_selector(f"#quota li[data-department='{department}']")
    return int(li.get_attribute("data-remaining"))


def api_chat(url: str, token: str, **body) -> dict:
    r = httpx.post(
        f"{url}/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {token}"}, timeout=120
    )
    assert r.status_code == 200, r.text
    return r.json()


def test_the_page_is_served_with_a_strict_csp(url):
    for path in ("/", "/chat"):
        r = httpx.get(url + path)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        csp = r.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "connect-src 'self'" in csp and "unsafe" not in csp
        assert "script-src 'sha256-" in csp and "<script>" in r.text
    assert httpx.get(f"{url}/v1/quota").status_code == 401


def test_quota_endpoint_reports_the_callers_departments(forge, url):
    r = httpx.get(f"{url}/v1/quota", headers={"Authorization": "Bearer tok-alice"}).json()
    assert r["principal"] == "alice" and r["resets_at"] == forge.quotas.resets_at().isoformat()
    (row,) = r["departments"]
    assert row["department"] == "engineering" and row["limit"] == 100_000
    assert row["remaining"] == forge.quotas.remaining("engineering")
    bob = httpx.get(f"{url}/v1/quota", headers={"Authorization": "Bearer tok-bob"}).json()
    assert bob["departments"] == [  # hr has no quota: unlimited
        {"department": "hr", "limit": None, "used": 0, "reserved": 0, "remaining": None}
    ]


def test_a_wrong_token_is_refused_in_the_page(page):
    sign_in(page, "not-a-token")
    error = page.wait_for_selector("#signin-error:not(:empty)")
    assert "401" in error.text_content() and "invalid API token" in error.text_content()
    assert page.is_hidden("#chat")
    assert page.evaluate("sessionStorage.length") == 0


def test_sign_in_ask_and_watch_the_answer_stream(page, url, forge, monkeypatch):
    real = forge.generator.stream
    monkeypatch.setattr(forge.generator, "stream", lambda *a, **kw: Paced(real(*a, **kw)))
    sign_in(page)
    assert page.wait_for_selector("#who:not(:empty)").text_content() == "signed in as alice"
    assert page.eval_on_selector_all("#model option", "os => os.map((o) => o.value)") == [MODEL, "rag"]
    before = remaining(page, "engineering")
    shown = ask(page, "Tell me about Project Helix.", MODEL, max_tokens=24)
    assert shown["state"] == "done" and shown["error"] == ""
    # the same question through the API (greedy decoding: the same text)
    direct = api_chat(
        url,
        "tok-alice",
        model=MODEL,
        max_tokens=24,
        messages=[{"role": "user", "content": "Tell me about Project Helix."}],
    )
    assert shown["answer"] == direct["choices"][0]["message"]["content"]
    # streamed: many chunks, and the page showed growing prefixes of the answer on its way
    partials = [t for t in shown["partials"] if t]
    assert shown["chunks"] > 1 and len(partials) >= 2, partials
    assert all(shown["answer"].startswith(t) for t in partials) and partials[-1] == shown["answer"]
    total = direct["usage"]["total_tokens"]
    assert f"{direct['usage']['completion_tokens']} completion tokens" in shown["meta"]
    # the quota the page shows went down by exactly what this answer cost
    page.wait_for_function(
        f"document.querySelector(\"#quota li[data-department='engineering']\")"
        f".dataset.remaining !== '{before}'"
    )
    assert before - remaining(page, "engineering") == total
    # the token lives in this tab's sessionStorage only, never in the URL
    assert "tok-alice" not in page.url and page.evaluate("localStorage.length") == 0
    assert page.evaluate("sessionStorage.getItem('llmforge.token')") == "tok-alice"
    page.reload()
    page.wait_for_selector("#chat:not([hidden])")  # still signed in in this tab
    page.click("#signout")
    assert page.is_visible("#signin") and page.evaluate("sessionStorage.length") == 0


def stage(attempt: int) -> str:
    return "answer" + (f" (retry {attempt})" if attempt else "")


def test_rag_answer_shows_citations_and_guard_verdicts(page, url):
    sign_in(page)
    before = remaining(page, "engineering")
    shown = ask(page, HELIX, "rag")
    assert shown["state"] == "done", shown
    direct = api_chat(url, "tok-alice", model="rag", messages=[{"role": "user", "content": HELIX}])
    assert shown["answer"] == direct["choices"][0]["message"]["content"]
    expected = [
        [f"[{c['marker']}]", c["document_id"], f"{c['source_table']}@{c['delta_version']}"]
        for c in direct["citations"]
    ]
    assert shown["citations"] == expected
    assert ["[1]", "d-eng-1", "main.knowledge.documents@0"] in expected  # alice's own department's row
    assert all(doc in ("d-eng-1", "d-eng-2", "d-all-1") for _, doc, _ in expected)  # row filter held
    verdicts = [
        [
            g["guard"],
            "question" if "attempt" not in g["details"] else stage(g["details"]["attempt"]),
            "fail" if not g["passed"] else "flagged" if g["details"].get("flagged") else "pass",
            g["reason"],
        ]
        for g in direct["guards"]
    ]
    assert shown["guards"] == verdicts
    assert {("prompt_injection", "question"), ("faithfulness", "answer")} <= {(g[0], g[1]) for g in verdicts}
    assert ("refused" in shown["meta"]) == direct["refused"]
    assert remaining(page, "engineering") < before  # rag answers are charged too


def test_errors_are_shown_with_what_to_do(page, forge):
    sign_in(page, "tok-carol")  # sales: 10 tokens a day
    shown = ask(page, "Hello?", MODEL, max_tokens=16)
    assert shown["state"] == "error"
    assert "429 quota_exceeded" in shown["error"] and "Quota resets in" in shown["error"]
    assert "department 'sales'" in page.text_content("#ask-error")
    forge.catalog.revoke("SELECT", "main.knowledge", "account users")
    try:
        shown = ask(page, HELIX, "rag")
    finally:
        forge.catalog.grant("SELECT", "main.knowledge", "account users")
    assert shown["state"] == "error" and "403 permission_denied" in shown["error"], shown


class HostileRag:
    """A ``rag`` whose answer, citations and guard reasons are markup meant to run."""

    def ask(self, question: str, user: str | None = None) -> Answer:
        return Answer(
            text='<img src=x onerror="window.__xss=1"> ships in Q3 [1]',
            request_id="req-xss",
            citations=[
                {
                    "source_table": "main.knowledge.documents",
                    "delta_version": 0,
                    "document_id": "<b>d</b>",
                    "marker": 1,
                }
            ],
            guards=[GuardResult("faithfulness", True, 1.0, "<script>window.__xss=2</script>")],
            usage=Usage(10, 5),
        )


def test_model_output_is_text_never_markup(page, forge, monkeypatch):
    monkeypatch.setitem(forge.__dict__, "rag", HostileRag())
    sign_in(page)
    shown = ask(page, HELIX, "rag")
    assert shown["answer"] == '<img src=x onerror="window.__xss=1"> ships in Q3 [1]'
    assert shown["markup"] == 0 and page.evaluate("window.__xss") is None
    assert page.evaluate("window.__markupSeen") is False  # not even while it streamed
    assert shown["citations"] == [["[1]", "<b>d</b>", "main.knowledge.documents@0"]]
    assert shown["guards"] == [["faithfulness", "question", "pass", "<script>window.__xss=2</script>"]]
    assert shown["links"] == ["[1]"]  # the marker links to its citation
