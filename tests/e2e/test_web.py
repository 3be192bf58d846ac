"""The web page in a real headless Chromium (Debian's package) against the app served by uvicorn."""

from __future__ import annotations

import io

import httpx
import pytest
from conftest import shared_path, write_shapes
from support.live_server import LiveServer

from spyglass.api import create_app
from spyglass.encoders.clip import shapes
from spyglass.engine import Engine
from spyglass.settings import Settings


@pytest.fixture(scope="module")
def server(tmp_path_factory, shapes_encoder):
    folder = tmp_path_factory.mktemp("web-shapes")
    write_shapes(folder, 48, seed=17, note="# Circles\n\nA red circle has no corners.\n")
    engine = Engine(Settings(data_dir=tmp_path_factory.mktemp("web-data")), encoder=shapes_encoder)
    engine.index(folder, progress=False)
    with LiveServer(create_app(engine)) as live:
        yield live


def test_search_upload_and_ask_in_the_page(server, browser, tmp_path):
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    page.goto(server.url + "/")
    page.fill("#q", "a red circle")  # live search, no Enter needed
    page.wait_for_function("document.querySelectorAll('#results .card').length > 0")
    first = page.locator("#results .card img").first
    assert "red-circle" in first.get_attribute("alt")
    page.wait_for_function(
        "[...document.querySelectorAll('#results img')].every(i => i.complete && i.naturalWidth > 0)"
    )
    page.screenshot(path=str(tmp_path / "search.png"), full_page=True)

    # filters: text only, then a folder that holds nothing
    page.select_option("#modality", "text")
    page.wait_for_function(
        "document.querySelectorAll('#results img').length === 0 && "
        "document.querySelectorAll('#results .card').length > 0"
    )
    page.fill("#folder", "/nowhere")
    page.dispatch_event("#folder", "change")
    page.wait_for_function("document.querySelector('#search-status').textContent.startsWith('No good match')")
    page.fill("#folder", "")
    page.select_option("#modality", "")

    # detail view and "more like this"
    page.locator("#results .card:has(img)").first.click()
    page.wait_for_selector("dialog[open] #detail-image")
    assert "red-circle" in page.text_content("#detail-meta")
    page.click("#more-like")
    page.wait_for_function("document.querySelector('#search-status').textContent.endsWith('results')")

    # search by image: the hidden file input behind the drop zone
    probe = tmp_path / "probe.png"
    sample = shapes.generate(30, seed=3)[5]
    assert sample.label == "a green square"  # unseen: a different seed from the indexed set
    sample.image.save(probe)
    page.fill("#q", "")
    page.set_input_files("#image-file", str(probe))
    page.wait_for_function(
        "(document.querySelector('#results .card img') || {}).alt?.includes('green-square')"
    )

    # ask: the answer streams in and citation cards appear
    page.click("#tab-ask")
    page.fill("#question", "which picture shows a red circle?")
    page.click("#ask-form button")
    page.wait_for_function("document.querySelectorAll('#citations .card').length > 0")
    assert "red-circle" in page.text_content("#answer")
    assert any(
        "red-circle" in (alt or "")
        for alt in page.locator("#citations img").evaluate_all("e => e.map(i => i.alt)")
    )
    page.screenshot(path=str(tmp_path / "ask.png"), full_page=True)
    assert (tmp_path / "ask.png").stat().st_size > 5000


def ask_in_page(browser, url: str, question: str):
    """A new page at ``url`` with ``question`` asked in its Ask tab."""
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    page.goto(url + "/")
    page.click("#tab-ask")
    page.fill("#question", question)
    page.click("#ask-form button.primary")
    return page


def test_the_ask_tab_keeps_the_conversation_and_starts_over(server, browser, tmp_path):
    page = ask_in_page(browser, server.url, "which picture shows a red circle?")
    page.wait_for_function("document.querySelectorAll('#citations .card').length > 0")
    first = page.text_content("#answer")
    page.fill("#question", "and does it have corners?")
    page.click("#ask-form button.primary")
    page.wait_for_function(
        "document.querySelectorAll('#thread .turn').length === 1 && "
        "document.querySelector('#asked').textContent === 'and does it have corners?' && "
        "document.querySelectorAll('#citations .card').length > 0"
    )
    turn = page.locator("#thread .turn").first
    assert turn.locator("h3").text_content() == "which picture shows a red circle?"
    assert turn.locator(".said").text_content() == first
    assert turn.locator(".card").count() > 0  # the earlier turn keeps its cited cards
    page.screenshot(path=str(tmp_path / "conversation.png"), full_page=True)
    assert (tmp_path / "conversation.png").stat().st_size > 5000
    with httpx.Client(base_url=server.url) as client:  # both turns went into one conversation
        latest = client.get("/v1/conversations").json()[0]
        assert (latest["title"], latest["turns"]) == ("which picture shows a red circle?", 2)
    page.click("#new-conversation")
    assert page.locator("#thread .turn").count() == 0 and page.text_content("#answer") == ""
    page.close()


def test_keyboard_and_phone_width(server, browser, tmp_path):
    page = browser.new_page(viewport={"width": 390, "height": 844})
    page.goto(server.url + "/")
    page.focus("#tab-search")
    page.keyboard.press("ArrowRight")
    assert page.evaluate("document.activeElement.id") == "tab-ask"
    assert page.is_visible("#panel-ask") and not page.is_visible("#panel-search")
    page.keyboard.press("ArrowLeft")
    page.fill("#q", "a blue square")
    page.keyboard.press("Enter")
    page.wait_for_function("document.querySelectorAll('#results .card').length > 0")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390  # no horizontal scrolling on a phone
    page.screenshot(path=str(tmp_path / "phone.png"), full_page=True)


def test_live_server_upload_and_schema_over_real_http(server):
    with httpx.Client(base_url=server.url, timeout=60) as http:
        schema = http.get("/openapi.json").json()
        assert schema["info"]["title"] == "Spyglass"
        for icon in ("/favicon.ico", "/favicon.svg"):  # a browser's first request is not a 404
            answer = http.get(icon)
            assert answer.status_code == 200 and answer.headers["content-type"] == "image/svg+xml"
            assert answer.content.startswith(b"<svg")
        buffer = io.BytesIO()
        shapes.generate(5, seed=8)[4].image.save(buffer, "PNG")
        job = http.post("/v1/documents", files={"files": ("new.png", buffer.getvalue(), "image/png")}).json()
        for _ in range(600):
            state = http.get(job["status_url"]).json()
            if state["state"] in ("done", "failed"):
                break
            import time

            time.sleep(0.1)
        assert state["state"] == "done" and state["report"]["added"] == 1


@pytest.fixture(scope="module")
def paper_server(tmp_path_factory, shapes_encoder):
    """Shapes and "Attention Is All You Need": a picture grid and a PDF with many matching passages."""
    folder = write_shapes(tmp_path_factory.mktemp("web-paper"), 12, seed=4)
    (folder / "attention.pdf").symlink_to(shared_path("data", "docs", "attention.pdf"))
    engine = Engine(Settings(data_dir=tmp_path_factory.mktemp("paper-data")), encoder=shapes_encoder)
    engine.index(folder, progress=False)
    with LiveServer(create_app(engine)) as live:
        yield live


def wait_for_pictures(page, selector: str) -> None:
    page.wait_for_function(
        f"[...document.querySelectorAll({selector!r})].every(i => i.complete && i.naturalWidth > 0)"
    )


def test_passages_group_by_document_with_their_page_and_say_why(paper_server, browser, tmp_path):
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    page.goto(paper_server.url + "/")
    page.fill("#q", "multi-head attention")
    page.wait_for_selector("#results .group")
    assert page.locator("#results .group").count() == 1  # one document, one group
    heading = page.inner_text("#results .group h3")
    assert heading.startswith("attention.pdf — ") and "passages, pages " in heading, heading
    best = page.locator("#results .group > .card.text.paged")
    assert "found by keywords" in best.inner_text()
    marked = {m.lower() for m in best.locator(".snippet mark").all_inner_texts()}
    assert marked & {"multi-head", "attention"}, marked
    wait_for_pictures(page, "#results .group > .card img")  # the page the passage is on, as a picture
    # ... with the passage boxed where it is on that page
    first = next(
        r
        for r in httpx.post(
            paper_server.url + "/v1/search", json={"text": "multi-head attention", "k": 30}
        ).json()["results"]
        if r["kind"] == "chunk"
    )
    picture = best.locator("img").bounding_box()
    spot = best.locator("svg.ocr-boxes rect.match").bounding_box()
    (_, top, _, bottom), (_, height) = first["bbox"], first["page_size"]
    assert abs((spot["y"] - picture["y"]) / picture["height"] - top / height) < 0.06
    assert abs((spot["y"] + spot["height"] - picture["y"]) / picture["height"] - bottom / height) < 0.06
    more = page.locator("#results .group details")
    assert not more.locator(".card").first.is_visible()
    more.locator("summary").click()
    assert more.locator(".card").count() >= 2 and more.locator(".card").first.is_visible()
    page.screenshot(path=str(tmp_path / "grouped.png"), full_page=True)

    best.click()
    page.wait_for_selector("dialog[open] #detail-why li")
    why = page.inner_text("#detail-why")
    assert "Why it matched" in why and "keywords: BM25" in why and "matched words: " in why, why
    page.screenshot(path=str(tmp_path / "why.png"))
    page.click("#close-detail")

    page.fill("#q", "zebra")
    page.wait_for_function("document.querySelector('#search-status').textContent.startsWith('No good match')")
    assert "weaker matches hidden — show them" in page.inner_text("#search-status")
    assert page.locator("#results .card").count() == 0
    page.click("#show-hidden")
    page.wait_for_function("document.querySelectorAll('#results .card').length > 0")
    for name in ("grouped.png", "why.png"):
        assert (tmp_path / name).stat().st_size > 10_000


def test_an_answer_card_shows_the_cited_page_and_sentences(paper_server, browser, tmp_path):
    page = ask_in_page(browser, paper_server.url, "What is multi-head attention?")
    page.wait_for_selector("#citations .cited")
    cited = page.locator("#citations .cited").first
    assert cited.locator("img").count() == 1  # the cited page, not a wall of text
    wait_for_pictures(page, "#citations img")
    snippet = cited.locator(".snippet")
    short = snippet.inner_text()
    assert "multi-head attention" in short.lower() and short.endswith("more")
    page.screenshot(path=str(tmp_path / "answer.png"), full_page=True)
    cited.locator(".more").click()
    assert len(snippet.inner_text()) > len(short)
    numbers = [
        int(n)
        for n in page.locator("#citations .cited .meta").all_inner_texts()
        for n in [n[1 : n.index("]")]]
    ]
    assert numbers == sorted(numbers)

    phone = browser.new_page(viewport={"width": 390, "height": 844})
    phone.goto(paper_server.url + "/")
    phone.fill("#q", "multi-head attention")
    phone.wait_for_selector("#results .group")
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
    phone.screenshot(path=str(tmp_path / "phone-grouped.png"), full_page=True)
    assert (tmp_path / "answer.png").stat().st_size > 10_000
