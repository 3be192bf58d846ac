"""Reading text in pictures with the real PP-OCRv6 models (shipped in the rapidocr wheel, no network).

Rendered images of known text (Debian's DejaVu and Liberation fonts, several sizes, the four
rotations, on plain and on Flickr photo backgrounds) are indexed through the real stage; each
is read with a low character error rate and found first by a word of its own. The shared
documents are found by words that exist only in their pixels.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import httpx
import pypdfium2 as pdfium
import pytest
from conftest import shared_path
from PIL import Image, ImageDraw, ImageFont
from support.live_server import LiveServer
from support.serve_process import spyglass

from spyglass.api import create_app
from spyglass.engine import Engine
from spyglass.filters import Filters
from spyglass.retriever import RankingOptions
from spyglass.settings import Settings

pytest.importorskip("rapidocr", reason="OCR needs the rapidocr wheel (pip install -e .)")

FONTS = Path("/usr/share/fonts/truetype")
# file, font, size, rotation, text, background (None: plain white; else a Flickr photo)
SAMPLES = [
    ("sample-01.png", "dejavu/DejaVuSans.ttf", 40, 0, "Invoice ARE160 total 4711", None),
    ("sample-02.png", "liberation/LiberationSerif-Regular.ttf", 36, 90, "Quarterly harvest ledger", None),
    ("sample-03.png", "liberation/LiberationMono-Regular.ttf", 32, 180, "Platform seven departures", None),
    ("sample-04.png", "dejavu/DejaVuSans-Bold.ttf", 44, 270, "Lighthouse keeper notes", None),
    ("sample-05.png", "liberation/LiberationSans-Regular.ttf", 30, 0, "Blueberry pancake recipe", 0),
    ("sample-06.png", "dejavu/DejaVuSerif.ttf", 48, 0, "Marathon finish line", 1),
    ("sample-07.png", "liberation/LiberationSans-Bold.ttf", 26, 0, "Grüße aus München", None),
]
ORIGIN = (40, 60)  # where each line is drawn, before rotation


def render(font: str, size: int, rotation: int, text: str, background: Image.Image | None) -> Image.Image:
    typeface = ImageFont.truetype(str(FONTS / font), size)
    image = (background or Image.new("RGB", (900, 200), "white")).copy()
    draw = ImageDraw.Draw(image)
    if background is None:
        draw.text(ORIGIN, text, font=typeface, fill="black")
    else:  # white letters with a dark outline, as captions and signs on photos are
        draw.text(ORIGIN, text, font=typeface, fill="white", stroke_width=3, stroke_fill="black")
    return image.rotate(rotation, expand=True)


def drawn_box(font: str, size: int, text: str) -> tuple[int, int, int, int]:
    return ImageDraw.Draw(Image.new("RGB", (1, 1))).textbbox(
        ORIGIN, text, font=ImageFont.truetype(str(FONTS / font), size)
    )


def photo(index: int) -> Image.Image:
    folder = shared_path("data", "flickr8k-1k", "images")
    source = sorted(folder.glob("*.jpg"))[index * 7]
    return Image.open(source).convert("RGB").resize((900, 600))


def cer(read: str, truth: str) -> float:
    """Character error rate: edit distance over the truth's length, ignoring case and spacing."""
    a, b = " ".join(read.casefold().split()), " ".join(truth.casefold().split())
    previous = list(range(len(b) + 1))
    for i, x in enumerate(a, start=1):
        current = [i]
        for j, y in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x != y)))
        previous = current
    return previous[-1] / max(1, len(b))


def ocr_settings(data_dir: Path, **ocr) -> Settings:
    return Settings(data_dir=data_dir, ocr={"enabled": True, **ocr})


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("rendered")
    for name, font, size, rotation, text, background in SAMPLES:
        picture = None if background is None else photo(background)
        render(font, size, rotation, text, picture).save(folder / name)
    return folder


@pytest.fixture(scope="module")
def engine(tmp_path_factory, rendered, shapes_encoder):
    docs = shared_path("data", "docs")
    engine = Engine(ocr_settings(tmp_path_factory.mktemp("ocr-data")), encoder=shapes_encoder)
    engine.index(rendered, progress=False)
    engine.index(docs, progress=False)
    yield engine
    engine.close()


def item_of(engine: Engine, name: str) -> int:
    hits = [r for r in engine.search(f'"{Path(name).stem}"', k=50).results if Path(r.path).name == name]
    assert hits, f"{name} is not indexed"
    return hits[0].item_id


def test_rendered_text_is_read_with_a_low_error_rate(engine, capsys):
    store = engine.store
    rates = {}
    for name, _, _, _, text, _ in SAMPLES:
        output = store.stage_outputs("ocr", [item_of(engine, name)])
        lines = next(iter(output.values()))["lines"]
        rates[name] = cer(" ".join(line["text"] for line in lines), text)
        assert all(0.6 <= line["confidence"] <= 1.0 for line in lines)
    with capsys.disabled():
        print("\nOCR character error rate: " + ", ".join(f"{n} {r:.3f}" for n, r in rates.items()))
    assert max(rates.values()) <= 0.2, rates
    assert sum(rates.values()) / len(rates) <= 0.06, rates


@pytest.mark.parametrize(
    ("query", "name"),
    [
        ("harvest", "sample-02.png"),  # rotated 90°
        ("departures", "sample-03.png"),  # upside down
        ("lighthouse keeper", "sample-04.png"),  # rotated 270°
        ("pancake", "sample-05.png"),  # on a photo
        ("marathon", "sample-06.png"),  # on a photo
        ("grusse munchen", "sample-07.png"),  # accents ignored
        ('"total 4711"', "sample-01.png"),  # a phrase
        ("RE16", "sample-01.png"),  # a code inside a longer token (ARE160)
        ("invoise", "sample-01.png"),  # a typo, as OCR itself makes them
    ],
)
def test_a_word_read_in_a_picture_finds_it_first(engine, query, name):
    first = engine.search(query, k=5).results[0]
    assert Path(first.path).name == name
    assert first.ocr and first.ocr["lines"], "the result shows the line it matched"


def test_words_only_in_chart_images_find_the_financial_report(engine):
    pdf = pdfium.PdfDocument(str(shared_path("data", "docs", "financial_report.pdf")))
    layer = " ".join(page.get_textpage().get_text_range() for page in pdf).casefold()
    pdf.close()
    assert "revenue" not in layer and "monthly" not in layer  # the words exist only in the charts' pixels
    results = engine.search("monthly revenue", k=5).results
    found = [r for r in results[:3] if Path(r.path).name == "financial_report.pdf"]
    assert found and found[0].kind in ("page", "figure")
    assert any("Revenue" in line["text"] for line in found[0].ocr["lines"])


def test_the_table_image_is_found_by_a_cell(engine):
    first = engine.search("EN-FR", k=3).results[0]
    assert Path(first.path).name == "attention_table.png"
    assert any("EN-FR" in line["text"] for line in first.ocr["lines"])


def test_pages_are_read_only_where_their_text_layer_is_sparse(engine):
    def page_outputs(name: str) -> list:
        path = str(shared_path("data", "docs", name))
        pages = engine.store.allowed(Filters(kinds=("page",), path_prefix=path))
        return list(engine.store.stage_outputs("ocr", pages.tolist()).values())

    paper, report = page_outputs("attention.pdf"), page_outputs("financial_report.pdf")
    assert len(paper) == 15 and all(out == {"skipped": "the page has a text layer"} for out in paper)
    assert len(report) == 6 and all(out["lines"] for out in report)  # charts and tables as pictures


def test_boxes_and_lines_over_http(engine):
    name, font, size, _, text, _ = SAMPLES[0]
    with LiveServer(create_app(engine)) as live:
        body = httpx.post(live.url + "/v1/search", json={"text": "invoice", "k": 3}, timeout=60).json()
        first = body["results"][0]
        assert Path(first["path"]).name == name
        item = httpx.get(live.url + f"/v1/items/{first['item_id']}", timeout=60).json()
    line = next(line for line in item["ocr"]["lines"] if "Invoice" in line["text"])
    assert item["ocr"]["size"] == list(Image.open(engine_path(engine, first["item_id"])).size)
    x0, y0, x1, y1 = line["box"]
    d0, e0, d1, e1 = drawn_box(font, size, text)
    overlap = max(0, min(x1, d1) - max(x0, d0)) * max(0, min(y1, e1) - max(y0, e0))
    union = (x1 - x0) * (y1 - y0) + (d1 - d0) * (e1 - e0) - overlap
    assert overlap / union > 0.5, (line["box"], (d0, e0, d1, e1))
    assert first["ocr"]["lines"][0]["text"] == line["text"]


def engine_path(engine: Engine, item_id: int) -> str:
    return engine.store.item(item_id)["path"]


def test_an_answer_cites_text_read_in_a_picture_and_where(engine):
    answer = engine.ask("Which table lists EN-FR scores?").public()
    cited = [c for c in answer["citations"] if Path(c["path"]).name == "attention_table.png"]
    assert cited, answer
    assert cited[0]["label"].startswith("text read from image attention_table.png, ")
    assert cited[0]["ocr"]["lines"] and cited[0]["ocr"]["size"]


def test_photos_without_text_stop_at_the_gate(tmp_path, shapes_encoder):
    folder = shared_path("data", "flickr8k-1k", "images")
    photos = tmp_path / "photos"
    photos.mkdir()
    for source in sorted(folder.glob("*.jpg"))[:16]:
        (photos / source.name).symlink_to(source)
    with Engine(ocr_settings(tmp_path / "data"), encoder=shapes_encoder) as engine:
        report = engine.index(photos, progress=False)
        assert report.stages["ocr"] == 16
        ids = [
            r.item_id
            for r in engine.search("a photo", k=16, options=RankingOptions(relevance_floor=False)).results
        ]
        outputs = engine.store.stage_outputs("ocr", ids)
    gated = [i for i, out in outputs.items() if out is None]
    assert len(outputs) == 16 and len(gated) >= 10  # most photos hold no text: nothing read, nothing stored


def test_the_quantized_detector_is_built_once_and_gates_like_the_original(tmp_path):
    from spyglass.indexer.ocr.gate import TextGate
    from spyglass.indexer.ocr.quantize import calibration_pictures, detector_path, quantized_detector

    built = quantized_detector(tmp_path)
    stamp = built.stat().st_mtime_ns
    assert quantized_detector(tmp_path) == built and built.stat().st_mtime_ns == stamp  # cached, not rebuilt
    assert list(built.parent.iterdir()) == [built]  # no scratch files left beside it
    assert built.stat().st_size < detector_path().stat().st_size / 2  # 8-bit weights

    quantized, original = TextGate(built), TextGate(detector_path())
    texts = [render(font, size, rotation, text, None) for _, font, size, rotation, text, _ in SAMPLES]
    textless = [picture for i, picture in enumerate(calibration_pictures(8, seed=1)) if i % 2 == 0]
    for gate in (quantized, original):
        assert all(map(gate, texts)) and not any(map(gate, textless))
    folder = shared_path("data", "flickr8k-1k", "images")
    photos = [Image.open(p).convert("RGB") for p in sorted(folder.glob("*.jpg"))[:60]]
    agree = sum(quantized(p) == original(p) for p in photos)
    assert agree >= 0.9 * len(photos), (
        f"the quantized gate agrees with the original on {agree} of {len(photos)}"
    )


def test_sideways_photos_and_rotated_files_keep_their_text(tmp_path, shapes_encoder):
    """EXIF orientation is applied before reading; a file rotated on disk and re-indexed is read again."""
    folder = tmp_path / "camera"
    folder.mkdir()
    upright = render("dejavu/DejaVuSans.ttf", 40, 0, "Receipt number 20931 Cafe Rossi", None)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display": the pixels are stored turned the other way
    upright.rotate(90, expand=True).save(folder / "IMG_0042.jpg", exif=exif, quality=95)
    with Engine(ocr_settings(tmp_path / "data"), encoder=shapes_encoder) as engine:
        engine.index(folder, progress=False)
        first = engine.search("Rossi receipt", k=3).results[0]
        assert Path(first.path).name == "IMG_0042.jpg" and first.ocr
        width, height = first.ocr["size"]
        assert width > height  # boxes refer to the upright picture the user sees
        upright.rotate(180).save(folder / "IMG_0042.jpg", quality=95)  # edited: now upside down
        report = engine.index(folder, progress=False)
        assert report.updated == 1
        again = engine.search("Rossi receipt", k=3).results[0]
        assert Path(again.path).name == "IMG_0042.jpg" and again.item_id != first.item_id and again.ocr


def test_names_and_embedded_keywords_are_searchable_and_follow_renames(tmp_path, shapes_encoder):
    folder = tmp_path / "SummerTrip2023"
    folder.mkdir()
    exif = Image.Exif()
    exif[0x010E] = "Harbour at dusk"  # ImageDescription
    xmp = (
        b"<x:xmpmeta><rdf:RDF><rdf:Description><dc:subject><rdf:Bag><rdf:li>Lisbon</rdf:li>"
        b"<rdf:li>tram</rdf:li></rdf:Bag></dc:subject></rdf:Description></rdf:RDF></x:xmpmeta>"
    )
    Image.new("RGB", (320, 240), (30, 90, 160)).save(folder / "IMG_2041-finalDraft.jpg", exif=exif, xmp=xmp)
    with Engine(Settings(data_dir=tmp_path / "data"), encoder=shapes_encoder) as engine:  # OCR off
        engine.index(folder, progress=False)
        for query in ("final draft", "summer trip", "lisbon", "harbour dusk", "IMG_2041"):
            results = engine.search(query, k=3).results
            assert results and Path(results[0].path).name == "IMG_2041-finalDraft.jpg", query
        shutil.move(folder / "IMG_2041-finalDraft.jpg", folder / "tram-stop.jpg")
        assert engine.index(folder, progress=False).renamed == 1
        assert Path(engine.search("tram stop", k=1).results[0].path).name == "tram-stop.jpg"
        assert all(Path(r.path).name != "tram-stop.jpg" for r in engine.search("final draft", k=3).results)


def test_ocr_only_backfills_an_existing_collection(tmp_path, rendered, shapes_encoder):
    """Indexed with OCR off, then ``spyglass index --ocr-only``: text is read, nothing re-embedded."""
    data = tmp_path / "data"
    spyglass(data, "index", str(rendered))
    assert "sample-02.png" not in first_path(spyglass(data, "search", "harvest", "--json"))
    status = spyglass(data, "status", SPYGLASS_OCR__ENABLED="true").stdout
    assert re.search(r"stage\s+ocr v1: 7 items waiting", status), status
    filled = spyglass(data, "index", "--ocr-only", SPYGLASS_OCR__ENABLED="true").stdout
    assert "0 added" in filled and "stage ocr: 7 items" in filled, filled
    assert first_path(spyglass(data, "search", "harvest", "--json")).endswith("sample-02.png")


def first_path(completed) -> str:
    results = json.loads(completed.stdout)["results"]
    return results[0]["path"] if results else ""


def test_a_language_that_cannot_run_waits_and_loses_nothing(tmp_path, shapes_encoder, rendered, monkeypatch):
    """An uninstalled model (offline) or a mistyped language: the stage waits with the reason, records
    nothing, and reads everything once the setting is fixed."""
    import rapidocr.main

    data, picture = tmp_path / "data", rendered / "sample-01.png"
    with monkeypatch.context() as offline:
        offline.setattr(rapidocr.main.RapidOCR, "_load_rec_model", lambda self: 1 / 0)  # a download refused
        with Engine(ocr_settings(data, language="korean"), encoder=shapes_encoder) as engine:
            waiting = engine.index(picture, progress=False).waiting["ocr"]
    assert "'korean' is not installed" in waiting and "SPYGLASS_OCR__LANGUAGE=ch" in waiting
    with Engine(ocr_settings(data, language="klingon"), encoder=shapes_encoder) as engine:
        waiting = engine.catch_up().waiting["ocr"]
        assert "unknown OCR language 'klingon'" in waiting and "korean" in waiting  # what it knows
        assert engine.status()["stages"]["ocr"]["pending"] == 1  # nothing recorded as failed
    with Engine(ocr_settings(data), encoder=shapes_encoder) as engine:
        assert engine.catch_up().stages["ocr"] == 1
        assert Path(engine.search("invoice", k=1).results[0].path).name == "sample-01.png"


def test_the_web_page_draws_the_boxes_where_the_text_is(engine, browser, tmp_path):
    name, font, size, _, text, _ = SAMPLES[0]
    x0, y0, x1, _ = drawn_box(font, size, text)
    width, height = Image.open(engine_path(engine, item_of(engine, name))).size
    engine.tag(engine_path(engine, item_of(engine, name)), ["receipts"])
    with LiveServer(create_app(engine)) as live:
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.goto(live.url + "/")
        page.fill("#q", "invoice")
        page.wait_for_function("document.querySelectorAll('#results .card').length > 0")
        card = page.locator("#results .card").first
        assert name in card.locator("img").get_attribute("alt")
        assert card.locator("svg.ocr-boxes rect.ocr-box.match").count() >= 1
        assert "Invoice ARE160" in card.locator(".meta").text_content()
        page.wait_for_function(
            "[...document.querySelectorAll('#results img')].every(i => i.complete && i.naturalWidth > 0)"
        )
        page.screenshot(path=str(tmp_path / "ocr-search.png"))
        card.click()
        page.wait_for_selector("dialog[open] .detail-pic svg.ocr-boxes rect.match")
        page.wait_for_function("document.querySelector('#detail-image').naturalWidth > 0")
        picture = page.locator("#detail-image").bounding_box()
        box = page.locator("dialog .detail-pic rect.match").first.bounding_box()
        page.screenshot(path=str(tmp_path / "ocr-detail.png"))
        assert "Text read in the picture:\nInvoice ARE160 total 4711" in page.inner_text("#detail-text")
        assert "receipts" in page.inner_text("#detail-meta")  # the tags a person gave it
        page.click("#close-detail")
        # An answer's card shows the cited picture with the region the text was read in boxed.
        page.click("#tab-ask")
        page.fill("#question", "Which table lists EN-FR scores?")
        page.click("#ask-form button")
        page.wait_for_selector("#citations .cited svg.ocr-boxes rect.match")
        table = page.locator("#citations .cited", has_text="attention_table.png").first
        assert table.locator("svg.ocr-boxes rect.match").count() >= 1
        page.screenshot(path=str(tmp_path / "ocr-answer.png"), full_page=True)
    # Where the highlight lies on screen, as a share of the picture, is where the text was drawn.
    left, top = (box["x"] - picture["x"]) / picture["width"], (box["y"] - picture["y"]) / picture["height"]
    right = (box["x"] + box["width"] - picture["x"]) / picture["width"]
    assert abs(left - x0 / width) < 0.05 and abs(right - x1 / width) < 0.05, (left, right)
    assert abs(top - y0 / height) < 0.1, top
    assert (tmp_path / "ocr-detail.png").stat().st_size > 10_000
