"""Forgetting: a deleted document's words leave no bytes in any file under the data directory.

A unique phrase is planted in a text file, a PDF's text layer and the pixels of a picture (read by
the real OCR), indexed, found, quoted in a stored conversation turn, deleted, and then looked for byte by byte in every file under the
data directory: the catalog, its WAL, the vector indexes, the thumbnails. SQLite builds differ in
``SECURE_DELETE`` (this one compiles it on), so every connection here starts with it off, as on a
build without it: only Spyglass's own settings can make the test pass.
"""

from __future__ import annotations

import ctypes
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c
import pytest
from conftest import shared_path
from PIL import Image, ImageDraw, ImageFont

from spyglass import Engine, Settings
from spyglass.generator.conversation import LOCAL
from spyglass.retriever import RankingOptions

pytestmark = pytest.mark.slow

CANARIES = {  # the words FTS5 keeps are folded to lower case: both forms are looked for
    "note.txt": "quokkazephyr marmaladeumbrella",
    "scan.pdf": "wombatlantern pistachiotrellis",
    "sign.png": "VELVET PELICAN 4417",
}
FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"


@pytest.fixture
def build_without_secure_delete(monkeypatch):
    """Every SQLite connection opened from here on starts with ``secure_delete`` off."""
    connect = sqlite3.connect

    def connect_insecurely(*args, **kwargs):
        connection = connect(*args, **kwargs)
        connection.execute("PRAGMA secure_delete=OFF")
        calls.append(connection)
        return connection

    calls: list[sqlite3.Connection] = []

    monkeypatch.setattr(sqlite3, "connect", connect_insecurely)
    monkeypatch.setattr(sqlite3.dbapi2, "connect", connect_insecurely)  # the module SQLAlchemy calls
    return calls


def write_pdf(path: Path, words: str) -> Path:
    """A one-page PDF whose text layer holds ``words`` (pdfium's own text object, Helvetica)."""
    pdf = pdfium.PdfDocument.new()
    page = pdf.new_page(612, 792)
    font = pdfium_c.FPDFText_LoadStandardFont(pdf.raw, b"Helvetica")
    line = f"The archive box is labelled {words} in the ledger of the old library."
    for row in range(8):  # enough characters that the page is read from its text layer, not by OCR
        text = pdfium_c.FPDFPageObj_CreateTextObj(pdf.raw, font, 11.0)
        buffer = ctypes.create_string_buffer((line + "\0").encode("utf-16-le"))
        pdfium_c.FPDFText_SetText(text, ctypes.cast(buffer, ctypes.POINTER(pdfium_c.FPDF_WCHAR)))
        pdfium_c.FPDFPageObj_Transform(text, 1, 0, 0, 1, 40, 700 - 20 * row)
        pdfium_c.FPDFPage_InsertObject(page.raw, text)
    pdfium_c.FPDFPage_GenerateContent(page.raw)
    pdf.save(str(path))
    return path


def plant(folder: Path) -> Path:
    folder.mkdir()
    (folder / "note.txt").write_text(f"Private note.\n\nThe vault code is {CANARIES['note.txt']}.\n")
    write_pdf(folder / "scan.pdf", CANARIES["scan.pdf"])
    sign = Image.new("RGB", (1000, 160), "white")
    ImageDraw.Draw(sign).text((30, 50), CANARIES["sign.png"], font=ImageFont.truetype(FONT, 52), fill="black")
    sign.save(folder / "sign.png")
    (folder / "kept.txt").write_text("An ordinary note about tomatoes and the garden shed.\n")
    return folder


def leftovers(data_dir: Path) -> dict[str, list[str]]:
    """Each file under ``data_dir`` that holds a canary phrase or one of its words, in either case."""
    needles = {form for phrase in CANARIES.values() for form in (phrase, *phrase.split()) if len(form) > 4}
    needles |= {needle.lower() for needle in needles}
    found: dict[str, list[str]] = {}
    for path in data_dir.rglob("*"):
        if path.is_file():
            content = path.read_bytes()
            hits = sorted(needle for needle in needles if needle.encode() in content)
            if hits:
                found[str(path.relative_to(data_dir))] = hits
    return found


def settings(data_dir: Path, **index) -> Settings:
    return Settings(
        data_dir=data_dir, model="builtin:shapes", ocr={"enabled": True}, text={"model": ""}, **index
    )


@pytest.mark.parametrize("index", ["flat", "milvus"])
def test_deleted_documents_leave_no_bytes_behind(
    index, tmp_path, shapes_encoder, build_without_secure_delete
):
    pytest.importorskip("rapidocr", reason="the picture's phrase is read by OCR")
    if index == "milvus":
        pytest.importorskip("milvus_lite", reason="Milvus Lite is not installed")
    folder = plant(tmp_path / "source")
    data_dir = tmp_path / "data"
    with Engine(settings(data_dir, index={"kind": index}), encoder=shapes_encoder) as engine:
        assert engine.index(folder, progress=False).added == 4
        planted = {}
        for name, phrase in CANARIES.items():  # each phrase is really in the catalog: found by its words
            hits = engine.search(
                phrase.split()[0], k=5, options=RankingOptions(relevance_floor=False)
            ).results
            planted[name] = next(r for r in hits if Path(r.path).name == name)
        talk = engine.conversation(None, LOCAL)  # a stored turn quotes the note
        assert CANARIES["note.txt"] in engine.ask("What is the vault code?", conversation=talk).text
        assert "catalog.sqlite3" in leftovers(data_dir)  # the scan sees them before the delete
        item_ids = [hit.item_id for hit in planted.values()]
        if index == "milvus":
            milvus = engine.store.index
            assert len(milvus.client.get(milvus.collection, ids=item_ids)) == len(item_ids)
        for hit in planted.values():
            engine.store.delete_document(hit.document_id)
        assert not engine.search(CANARIES["note.txt"].split()[0], k=5).results
        if index == "milvus":  # a query for the deleted ids finds none
            assert milvus.client.get(milvus.collection, ids=item_ids) == []
        assert engine.search("tomatoes", k=1).results[0].path.endswith("kept.txt")
        (turn,) = engine.store.conversation(talk.id, LOCAL)["turns"]
        assert turn["answer"]["source_deleted"] and turn["answer"]["answer"] == ""
        assert turn["question"] == "What is the vault code?"  # the user's own words stay
    assert build_without_secure_delete  # the catalog's connections really started insecure
    assert leftovers(data_dir) == {}


def test_a_changed_file_forgets_its_old_words(tmp_path, shapes_encoder, build_without_secure_delete):
    folder = tmp_path / "source"
    folder.mkdir()
    note = folder / "note.txt"
    note.write_text(f"The vault code is {CANARIES['note.txt']}.\n")
    data_dir = tmp_path / "data"
    with Engine(settings(data_dir), encoder=shapes_encoder) as engine:
        engine.index(folder, progress=False)
        note.write_text("The vault code was changed to something else entirely.\n")
        assert engine.index(folder, progress=False).updated == 1
    assert leftovers(data_dir) == {}


def test_compact_cleans_a_catalog_written_before_forgetting_existed(tmp_path, shapes_encoder):
    """Words deleted behind Spyglass's back (here: FTS5 told of a deletion, as older versions left
    them) stay until ``spyglass compact`` merges and rewrites the catalog."""
    folder = plant(tmp_path / "source")
    (folder / "sign.png").unlink()
    data_dir = tmp_path / "data"
    with Engine(settings(data_dir), encoder=shapes_encoder) as engine:
        engine.index(folder, progress=False)
    catalog = sqlite3.connect(data_dir / "catalog.sqlite3")
    catalog.execute("PRAGMA foreign_keys=ON")  # items and vectors go with their documents, as in Spyglass
    with catalog:  # what a delete did before the triggers of migration v10 (no flag raised)
        catalog.execute("DROP TRIGGER items_words_forgotten")
        catalog.execute("DELETE FROM documents WHERE path LIKE '%note.txt' OR path LIKE '%scan.pdf'")
    catalog.close()
    assert leftovers(data_dir)
    done = subprocess.run(
        [sys.executable, "-m", "spyglass", "compact"],
        env={**os.environ, "SPYGLASS_DATA_DIR": str(data_dir)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0 and "catalog compacted" in done.stdout, done.stderr
    assert leftovers(data_dir) == {}


def test_the_shared_pdfs_still_index_after_forgetting(tmp_path, shapes_encoder):
    """Merging the word indexes keeps what was not deleted searchable, word for word."""
    docs = shared_path("data", "docs")
    data_dir = tmp_path / "data"
    with Engine(settings(data_dir), encoder=shapes_encoder) as engine:
        engine.index(docs, progress=False)
        before = [r.item_id for r in engine.search("attention", k=10).results]
        note = tmp_path / "extra.txt"
        note.write_text(f"{CANARIES['note.txt']}\n")
        engine.index(note, progress=False)
        engine.store.delete_document(
            engine.search(CANARIES["note.txt"].split()[0], k=1).results[0].document_id
        )
        assert [r.item_id for r in engine.search("attention", k=10).results] == before
