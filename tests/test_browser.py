"""The chat page at /, driven in Debian's chromium by Playwright against a live `rag serve` on loopback.

Needs `apt-get install -y chromium` and `pip install playwright` (no `playwright install`: the browser is
Debian's). Without either the module is skipped. The server runs on a temp copy of the seeds plus one article
holding markup, with its own index folder, so the repo's index is never touched.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip("no /usr/bin/chromium (apt-get install -y chromium)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")

pytestmark = pytest.mark.slow  # a browser against a live server

REPO = Path(__file__).resolve().parent.parent
SEEDS = REPO / "seeds"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
LAPTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
ANSWER_TIMEOUT_MS = 60_000

# An article whose text, title and outlet hold markup: the page must show it as characters and run nothing.
XSS_ID = "zz_markup_probe"
XSS_TEXT = (
    "مسيرات <img src=x onerror=alert(1)> في تقرير تجريبي\n"
    "أكد تقرير تجريبي أن روسيا تستخدم المسيرات الإيرانية <img src=x onerror=alert(1)> في حربها على أوكرانيا، "
    "وأن إيران زودت روسيا بمئات المسيرات <img src=x onerror=window.__xss=1> خلال العام الماضي.\n"
    "وقال التقرير إن شحنات المسيرات الإيرانية وصلت إلى روسيا عبر بحر قزوين.\n"
)
XSS_SOURCE = "<b>Probe</b><img src=x onerror=window.__xss=1>"
XSS_QUESTION = "هل زودت إيران روسيا بالمسيرات؟"
PAYLOAD = "<img src=x onerror=alert(1)>"

ARABIC_QUESTION = "ما المناورات العسكرية المشتركة بين روسيا وإيران؟"
ENGLISH_QUESTION = "Who signed the naval memorandum between Russia and Iran?"
FOLLOW_UP = "And where was it signed?"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get_json(url: str, timeout: float = 5.0):
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.loads(response.read().decode("utf-8"))


def _post_json(url: str, body: dict, timeout: float = 60.0):
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read().decode("utf-8"))


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`rag serve` on a free loopback port over a temp corpus (seeds + the markup article) and index."""
    root = tmp_path_factory.mktemp("browser-server")
    corpus, index = root / "corpus", root / "index"
    corpus.mkdir()
    for path in SEEDS.iterdir():
        shutil.copy(path, corpus / path.name)
    (corpus / f"{XSS_ID}.txt").write_text(XSS_TEXT, encoding="utf-8")
    metadata = json.loads((corpus / "articles.json").read_text(encoding="utf-8"))
    metadata[XSS_ID] = {"source": XSS_SOURCE, "source_en": XSS_SOURCE, "date": "2024-01-02"}
    (corpus / "articles.json").write_text(json.dumps(metadata, ensure_ascii=False), encoding="utf-8")

    port = _free_port()
    env = {**os.environ, "RAG_CORPUS_DIR": str(corpus), "RAG_INDEX_DIR": str(index),
           "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    for name in ("RAG_LLM_MODEL", "RAG_LLM_API_BASE", "RAG_LLM_API_KEY", "RAG_HOST", "RAG_PORT"):
        env.pop(name, None)  # the offline extractive answerer, whatever the developer's shell says
    rag = Path(sys.executable).with_name("rag")
    command = [str(rag)] if rag.exists() else [sys.executable, "-m", "app.cli"]
    log_path = root / "server.log"
    with open(log_path, "wb") as log:
        # cwd=root: no developer .env is read.
        process = subprocess.Popen([*command, "serve", "--host", "127.0.0.1", "--port", str(port)],
                                   cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300  # the first start builds the index (about 30 s on 2 cores)
        while True:
            if process.poll() is not None:
                pytest.fail(f"rag serve exited with {process.returncode}:\n{log_path.read_text()[-3000:]}")
            try:
                if _get_json(base + "/health", timeout=2).get("status") == "ok":
                    break
            except (urllib.error.URLError, ConnectionError, TimeoutError, json.JSONDecodeError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"rag serve did not become healthy:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.5)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class Page:
    """A page plus what it reported: dialogs (all dismissed) and uncaught script errors."""

    def __init__(self, page, base: str, shots: Path):
        self.page = page
        self.base = base
        self.shots = shots
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        page.on("dialog", self._dialog)
        page.on("pageerror", lambda error: self.errors.append(str(error)))

    def _dialog(self, dialog) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def shot(self, name: str) -> Path:
        path = self.shots / f"{name}.png"
        self.page.wait_for_timeout(350)  # let the drawer and progress animations settle
        self.page.screenshot(path=str(path))
        return path

    def answers(self):
        return self.page.locator("#thread .msg.assistant")

    def ask(self, question: str):
        """Type a question, send it with Enter, and return the reply card once it is no longer pending."""
        before = self.answers().count()
        box = self.page.locator("#question")
        box.fill(question)
        box.press("Enter")
        card = self.answers().nth(before)
        card.wait_for(state="attached")
        self.page.wait_for_function(
            "n => { const c = document.querySelectorAll('#thread .msg.assistant')[n];"
            " return c && c.dataset.state !== 'pending'; }", arg=before, timeout=ANSWER_TIMEOUT_MS)
        return card


@pytest.fixture
def make_page(browser, server, tmp_path):
    contexts = []

    def make(viewport=LAPTOP) -> Page:
        context = browser.new_context(viewport=viewport, device_scale_factor=1, locale="en-US")
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(ANSWER_TIMEOUT_MS)
        wrapped = Page(page, server, tmp_path)
        page.goto(server + "/")
        page.locator("#question").wait_for()
        return wrapped

    yield make
    for context in contexts:
        context.close()


def _direction(locator) -> str:
    return locator.evaluate("node => getComputedStyle(node).direction")


def _check_citation(p: Page, chip) -> str:
    """Click a chip; the panel's highlighted passage must be the cited span of the article's raw text."""
    article_id = chip.get_attribute("data-article")
    start, end = int(chip.get_attribute("data-start")), int(chip.get_attribute("data-end"))
    chip.click()
    mark = p.page.locator("#panel #passage mark")
    mark.wait_for(state="visible")
    highlighted = mark.text_content()
    article = _get_json(f"{p.base}/articles/{article_id}")
    assert highlighted and highlighted in article["text"]
    assert highlighted == article["text"][start:end]
    # the highlight is scrolled into view inside the panel
    p.page.wait_for_function(
        """() => { const m = document.querySelector('#passage mark').getBoundingClientRect();
                   const b = document.querySelector("#passage").getBoundingClientRect();
                   return m.height > 0 && m.top >= b.top - 1 && m.top < b.bottom; }""")
    assert p.page.locator("#panel-title").text_content() == article["title"]
    meta = p.page.locator("#panel-meta").inner_text()
    assert article["source"] in meta and (article["date"] or "") in meta  # outlet and date (or "not given")
    return highlighted


def test_arabic_question_answers_rtl_with_citations(make_page):
    p = make_page()
    assert p.page.title()
    p.shot("laptop-empty")
    card = p.ask(ARABIC_QUESTION)
    assert card.get_attribute("data-state") == "done"
    assert card.get_attribute("dir") == "rtl" and _direction(card) == "rtl"
    assert card.get_attribute("lang") == "ar"
    user = p.page.locator("#thread .msg.user").last
    assert user.get_attribute("dir") == "auto" and _direction(user) == "rtl"
    chips = card.locator(".msg-body .chip")
    assert chips.count() >= 1
    assert "«" in card.locator(".msg-body").inner_text()
    p.shot("laptop-arabic-answer")

    _check_citation(p, chips.first)
    panel = p.page.locator("#panel")
    assert panel.is_visible()
    p.shot("laptop-arabic-citation")

    p.page.locator("#panel-close").click()
    assert panel.is_hidden()
    assert not p.dialogs and not p.errors


def test_english_question_answers_ltr_and_full_article(make_page):
    p = make_page()
    card = p.ask(ENGLISH_QUESTION)
    assert card.get_attribute("data-state") == "done"
    assert card.get_attribute("dir") == "ltr" and _direction(card) == "ltr"
    # the Arabic quotes inside an English answer are isolated right-to-left runs
    quote = card.locator(".msg-body .quote-box").first
    assert quote.get_attribute("dir") == "rtl" and _direction(quote) == "rtl"
    chips = card.locator(".msg-body .chip")
    assert chips.count() >= 1
    p.shot("laptop-english-answer")

    chip = chips.nth(chips.count() - 1)
    highlighted = _check_citation(p, chip)
    p.shot("laptop-english-citation")

    # the full article: the whole raw text, the same span still highlighted
    article = _get_json(f"{p.base}/articles/{chip.get_attribute('data-article')}")
    p.page.locator("#panel-toggle").click()
    p.page.locator("#passage.full mark").wait_for()
    assert p.page.locator("#passage mark").text_content() == highlighted
    assert p.page.locator("#passage").text_content().strip() == article["text"].strip()
    p.shot("laptop-full-article")
    assert not p.dialogs and not p.errors


def test_markup_in_articles_is_shown_as_text_and_never_runs(make_page):
    p = make_page()
    card = p.ask(XSS_QUESTION)
    assert card.get_attribute("data-state") == "done"
    chips = card.locator(f'.msg-body .chip[data-article="{XSS_ID}"]')
    assert chips.count() >= 1, "the markup article should be cited"
    assert PAYLOAD in card.inner_text()
    _check_citation(p, chips.first)
    assert PAYLOAD in p.page.locator("#panel-title").inner_text()
    assert "onerror=window.__xss=1" in p.page.locator("#passage").inner_text()
    assert "<b>Probe</b>" in p.page.locator("#panel-meta").inner_text()
    p.page.locator("#panel-toggle").click()
    p.page.locator("#passage.full mark").wait_for()
    p.page.wait_for_timeout(300)
    p.shot("laptop-markup-article")

    assert p.page.locator("#app img, #app b").count() == 0
    assert p.page.evaluate("() => window.__xss") is None
    assert p.dialogs == []
    assert not p.errors


def test_follow_up_sends_history_and_keeps_the_thread(make_page):
    p = make_page()
    bodies: list[dict] = []
    p.page.on("request", lambda r: bodies.append(r.post_data_json) if r.url.endswith("/ask/stream") else None)
    first = p.ask(ENGLISH_QUESTION)
    assert first.get_attribute("data-state") == "done"
    second = p.ask(FOLLOW_UP)
    assert second.get_attribute("data-state") in ("done", "abstained")
    assert second.get_attribute("dir") == "ltr"
    assert len(bodies) == 2
    assert "history" not in bodies[0]
    assert bodies[1]["question"] == FOLLOW_UP
    assert bodies[1]["history"][-1]["question"] == ENGLISH_QUESTION
    assert p.page.locator("#thread .msg.user").all_inner_texts() == [ENGLISH_QUESTION, FOLLOW_UP]
    assert p.answers().count() == 2
    p.shot("laptop-follow-up")

    # the thread survives a reload, and the clear button empties it
    p.page.reload()
    p.page.locator("#thread .turn").nth(1).wait_for()
    assert p.answers().count() == 2 and p.page.locator("#empty").is_hidden()
    p.page.locator("#clear").click()
    assert p.page.locator("#thread .turn").count() == 0
    assert p.page.locator("#empty").is_visible()
    assert not p.dialogs and not p.errors


def test_copy_button_copies_the_answer_with_sources(make_page, server):
    p = make_page()
    p.page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server)
    card = p.ask(ENGLISH_QUESTION)
    card.locator(".copy").click()
    card.locator(".copy.copied").wait_for()
    copied = p.page.evaluate("() => navigator.clipboard.readText()")
    assert copied.startswith("Here is what the sources say")
    assert "[1] " in copied and "Sources:" in copied


def test_errors_are_plain_words_and_keep_the_thread(make_page):
    p = make_page()
    first = p.ask(ENGLISH_QUESTION)
    assert first.get_attribute("data-state") == "done"

    p.page.route("**/ask/stream", lambda route: route.fulfill(
        status=502, content_type="application/json", body=json.dumps({"detail": "provider said no (HTTP 500)"})))
    card = p.ask("What did the provider say?")
    assert card.get_attribute("data-state") == "error"
    text = card.inner_text()
    assert "provider failed" in text and "provider said no (HTTP 500)" in text
    p.shot("laptop-error-502")

    p.page.unroute("**/ask/stream")
    p.page.route("**/ask/stream", lambda route: route.fulfill(
        status=200, content_type="text/event-stream",
        body='event: status\ndata: {"stage": "answering"}\n\n'
             'event: error\ndata: {"detail": "model timed out after 60 s", "status": 504}\n\n'))
    card = p.ask("A slow one?")
    assert card.get_attribute("data-state") == "error" and "took too long" in card.inner_text()

    p.page.unroute("**/ask/stream")
    p.page.route("**/ask/stream", lambda route: route.abort("connectionrefused"))
    card = p.ask("Is anyone there?")
    assert card.get_attribute("data-state") == "error" and "Could not reach the server" in card.inner_text()
    p.page.unroute("**/ask/stream")

    # a real 422 from the server, its detail shown
    long_question = "x" * 2001
    p.page.evaluate("q => { const box = document.querySelector('#question'); box.removeAttribute('maxlength'); }")
    card = p.ask(long_question)
    assert card.get_attribute("data-state") == "error"
    assert "not accepted" in card.inner_text() and "at most 2000 characters" in card.inner_text()

    # the thread is intact, and Try again on the 502 turn now answers
    assert p.page.locator("#thread .msg.user").count() == 5
    assert first.get_attribute("data-state") == "done"
    p.answers().nth(1).locator(".retry").click()
    p.page.wait_for_function(
        "() => [...document.querySelectorAll('#thread .msg.assistant')].some("
        "(c, i) => i > 0 && c.dataset.state === 'done')")
    assert not p.dialogs and not p.errors


def test_progress_while_waiting_and_stop(make_page):
    p = make_page()
    # hold every request back a moment so the waiting state can be seen
    p.page.evaluate("""() => { const real = window.fetch;
        window.fetch = (...args) => new Promise(done => setTimeout(() => done(real(...args)), 1500)); }""")
    p.page.locator("#question").fill(ENGLISH_QUESTION)
    p.page.locator("#question").press("Enter")
    pending = p.page.locator("#thread .msg.assistant.pending")
    pending.wait_for(state="visible")
    assert pending.get_attribute("aria-busy") == "true"
    assert "Sending your question" in pending.inner_text() or "Searching" in pending.inner_text()
    assert p.page.locator("#send.stop").is_visible()
    p.shot("laptop-waiting")
    p.page.wait_for_function("() => document.querySelector('#thread .msg.assistant').dataset.state === 'done'")
    assert p.page.locator("#send.stop").count() == 0

    # Stop while waiting: the turn says so, the thread and the earlier answer stay
    p.page.locator("#question").fill(FOLLOW_UP)
    p.page.locator("#question").press("Enter")
    pending.wait_for(state="visible")
    p.page.locator("#send").click()
    stopped = p.answers().nth(1)
    p.page.wait_for_function("() => document.querySelectorAll('#thread .msg.assistant')[1].dataset.state === 'error'")
    assert "Stopped" in stopped.inner_text()
    assert p.answers().first.get_attribute("data-state") == "done"
    assert not p.dialogs and not p.errors


def test_abstention_and_unsupported_citations_look_different(make_page):
    p = make_page()
    real = _post_json(p.base + "/ask", {"question": ENGLISH_QUESTION})
    real["citations"][0]["supported"] = False
    real["citations"][0]["support"] = 0.41
    abstained = {**real, "answer": "The sources do not answer this question.", "abstained": True, "citations": []}
    replies = [real, abstained]

    def fulfill(route):
        answer = replies.pop(0)
        route.fulfill(status=200, content_type="text/event-stream",
                      body=f"event: answer\ndata: {json.dumps(answer, ensure_ascii=False)}\n\n")

    p.page.route("**/ask/stream", fulfill)
    card = p.ask(ENGLISH_QUESTION)
    weak = card.locator('.msg-body .chip[data-n="1"]')
    assert "unsupported" in weak.get_attribute("class")
    assert "Weak support" in weak.get_attribute("title")
    assert weak.evaluate("n => getComputedStyle(n).borderTopStyle") == "dashed"
    weak.click()
    p.page.locator("#panel-warning").wait_for(state="visible")
    assert "0.41" in p.page.locator("#panel-warning").inner_text()

    card = p.ask("What is the boiling point of water on Mars?")
    assert card.get_attribute("data-state") == "abstained"
    assert card.locator(".chip").count() == 0
    assert "No answer in the sources" in card.inner_text()
    assert card.evaluate("n => getComputedStyle(n).borderTopStyle") == "dashed"
    p.shot("laptop-abstention-unsupported")
    assert not p.dialogs and not p.errors


def test_a_machine_translation_shows_under_the_quote_marked_as_such(make_page):
    p = make_page()
    real = _post_json(p.base + "/ask", {"question": ENGLISH_QUESTION})
    rendering = "The two navies signed a memorandum of understanding."
    real["citations"][0]["translation"] = {"text": rendering, "language": "en", "machine": True,
                                           "model": "openai/test-model"}
    p.page.route("**/ask/stream", lambda route: route.fulfill(
        status=200, content_type="text/event-stream",
        body=f"event: answer\ndata: {json.dumps(real, ensure_ascii=False)}\n\n"))
    card = p.ask(ENGLISH_QUESTION)
    card.locator('.msg-body .chip[data-n="1"]').first.click()
    box = p.page.locator("#panel-translation")
    box.wait_for(state="visible")
    assert p.page.locator("#panel-translation-text").text_content() == rendering
    assert "Machine translation" in box.inner_text() and "openai/test-model" in box.inner_text()
    # below the verbatim passage, which still highlights the source's own words
    assert p.page.locator("#passage mark").text_content() == real["citations"][0]["quote"]
    assert box.evaluate("n => n.getBoundingClientRect().top") > \
        p.page.locator("#passage").evaluate("n => n.getBoundingClientRect().top")
    p.shot("laptop-machine-translation")
    # a citation without a translation hides the box again
    if len(real["citations"]) > 1:
        card.locator(f'.msg-body .chip[data-n="{real["citations"][1]["n"]}"]').first.click()
        p.page.locator("#panel-translation").wait_for(state="hidden")
    assert not p.dialogs and not p.errors


def test_phone_layout_arabic_ui_and_citation_drawer(make_page):
    p = make_page(PHONE)
    p.page.locator('.segmented label:has(input[value="ar"])').click()
    assert p.page.evaluate("() => document.documentElement.dir") == "rtl"
    assert p.page.locator("#empty h2").inner_text() == "اسأل أرشيف الأخبار"
    p.shot("phone-empty")
    bodies: list[dict] = []
    p.page.on("request", lambda r: bodies.append(r.post_data_json) if r.url.endswith("/ask/stream") else None)
    card = p.ask(ARABIC_QUESTION)
    assert bodies[-1]["lang"] == "ar"
    assert card.get_attribute("dir") == "rtl"
    # nothing overflows the phone's width
    assert p.page.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"]
    p.shot("phone-arabic-answer")

    _check_citation(p, card.locator(".msg-body .chip").first)
    panel = p.page.locator("#panel")
    assert panel.evaluate("n => getComputedStyle(n).position") == "fixed"  # a drawer over the thread
    box = panel.bounding_box()
    assert box["width"] == PHONE["width"] and box["y"] > 0
    assert p.page.locator("#backdrop").is_visible()
    p.shot("phone-citation-drawer")
    p.page.locator("#backdrop").click(position={"x": 20, "y": 20})
    assert panel.is_hidden()

    p.page.locator('.segmented label:has(input[value="en"])').click()
    assert p.page.evaluate("() => document.documentElement.dir") == "ltr"
    card = p.ask(ENGLISH_QUESTION)
    assert bodies[-1]["lang"] == "en" and card.get_attribute("dir") == "ltr"
    p.shot("phone-english-follow-up")
    assert not p.dialogs and not p.errors


def _stream(base: str, body: dict) -> list[tuple[str, dict]]:
    request = urllib.request.Request(base + "/ask/stream", data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json", "Accept": "text/event-stream"})
    with urllib.request.urlopen(request, timeout=60) as response:
        assert response.headers["Content-Type"].startswith("text/event-stream")
        raw = response.read().decode("utf-8")
    events = []
    for block in raw.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        events.append((lines["event"], json.loads(lines["data"])))
    return events


def test_ask_stream_events_and_history(server):
    """The page's endpoint: status events, the answer text, then the full Answer; history steers retrieval."""
    events = _stream(server, {"question": ENGLISH_QUESTION})
    names = [name for name, _ in events]
    assert names == ["status", "status", "token", "answer"]
    assert [data["stage"] for name, data in events if name == "status"] == ["retrieving", "answering"]
    answer = events[-1][1]
    assert events[2][1]["text"] == answer["answer"] and answer["citations"] and answer["language"] == "en"
    assert answer == _post_json(server + "/ask", {"question": ENGLISH_QUESTION}) | {"timings_ms": answer["timings_ms"]}

    alone = _stream(server, {"question": FOLLOW_UP})[-1][1]
    followed = _stream(server, {"question": FOLLOW_UP, "history": [{"question": ENGLISH_QUESTION, "answer": "…"}]})
    assert [hit["chunk_id"] for hit in followed[-1][1]["hits"]] != [hit["chunk_id"] for hit in alone["hits"]]

    request = urllib.request.Request(server + "/ask/stream", method="POST",
                                     headers={"Content-Type": "application/json"},
                                     data=json.dumps({"question": "x", "history": [{"q": "y"}]}).encode())
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=10)
    assert caught.value.code == 422 and "history.0.question" in json.loads(caught.value.read())["detail"]

    spec = _get_json(server + "/openapi.json")["paths"]["/ask/stream"]["post"]
    assert "text/event-stream" in spec["responses"]["200"]["content"]
    assert spec["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("AskStreamRequest")
