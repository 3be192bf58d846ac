"""The indexer on the real files in ../shared/data and on crafted bad input, with builtin:shapes."""

from __future__ import annotations

import builtins
import io
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import shared_path
from PIL import Image
from support.bombs import png_header

from spyglass.encoders.clip import shapes
from spyglass.indexer import Indexer
from spyglass.indexer.loaders import LoadOptions
from spyglass.indexer.loaders import pdf as pdf_loader
from spyglass.store import Store


@pytest.fixture
def store(tmp_path, shapes_encoder):
    with Store(tmp_path / "data", shapes_encoder.model_id, shapes_encoder.dim) as opened:
        yield opened


@pytest.fixture
def indexer(store, shapes_encoder):
    return Indexer(store, shapes_encoder, options=LoadOptions(max_pixels=50_000_000))


def rows(store: Store, sql: str, **params) -> list[dict]:
    """Read the real SQLite file directly: an independent look at what the store wrote."""
    import sqlite3

    with sqlite3.connect(store.data_dir / "catalog.sqlite3") as conn:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute(sql, params)]


def items_of(store: Store, path: Path) -> list[dict]:
    return rows(
        store,
        "SELECT i.* FROM items i JOIN documents d ON d.id = i.document_id WHERE d.path = :p ORDER BY i.id",
        p=str(path),
    )


def test_real_image_formats(indexer, store, formats_dir):
    report = indexer.index(formats_dir, kinds=["image"], progress=False)
    assert report.added == 22 and report.items == 22
    assert [(Path(p).name, reason) for p, reason in report.errors] == [
        ("not-an-image.txt", "text file; this source indexes only image")
    ]
    for path in formats_dir.iterdir():
        if path.suffix != ".txt":
            (item,) = items_of(store, path)
            assert item["kind"] == "image" and Image.open(io.BytesIO(item["thumbnail"])).size[0] <= 256
    gif = store.metadata(rows(store, "SELECT id FROM documents WHERE path LIKE '%bee_animated.gif'")[0]["id"])
    assert gif["width"] == "200" and gif["height"] == "133"
    assert store.index.ntotal == 22
    status = store.status()
    assert status["errors"] == 1 and store.errors()[0]["error"].startswith("text file")


def test_text_file_in_a_mixed_folder_is_text(indexer, store, formats_dir):
    indexer.index(formats_dir / "not-an-image.txt", progress=False)
    kinds = [item["kind"] for item in items_of(store, formats_dir / "not-an-image.txt")]
    assert kinds == ["passage", "chunk"]


@pytest.mark.parametrize("reopen_pages", [pdf_loader.REOPEN_PAGES, 4])
def test_attention_pdf_pages_figures_and_text(indexer, store, reopen_pages, monkeypatch):
    """Also with the document reopened every 4 of its 15 pages (PDFium's caches are dropped so)."""
    monkeypatch.setattr(pdf_loader, "REOPEN_PAGES", reopen_pages)
    pdf = shared_path("data", "docs", "attention.pdf")
    indexer.index(pdf, progress=False)
    items = items_of(store, pdf)
    pages = [i for i in items if i["kind"] == "page"]
    assert [p["page"] for p in pages] == list(range(1, 16))
    figures = [i for i in items if i["kind"] == "figure"]
    by_page = {}
    for figure in figures:
        by_page.setdefault(figure["page"], []).append(json.loads(figure["bbox"]))
        assert figure["parent_id"] == next(p["id"] for p in pages if p["page"] == figure["page"])
    assert len(by_page[3]) == 1 and len(by_page[4]) == 2  # Figure 1; Figure 2's two panels
    x0, y0, x1, y1 = by_page[3][0]  # the Transformer diagram, top-left origin, in points
    assert abs(x0 - 197) < 3 and abs(y0 - 72) < 3 and abs(x1 - 415) < 3 and abs(y1 - 394) < 3
    assert {13, 14, 15} <= set(by_page)  # attention visualisations drawn as vector forms
    chunks = [i for i in items if i["kind"] == "chunk"]
    assert {c["page"] for c in chunks} == set(range(1, 16))
    assert any("Scaled Dot-Product Attention" in c["text"] for c in chunks if c["page"] == 4)
    # PDFium's mark for a hyphen removed at a line break ("multi-/plicative") is gone: one searchable word
    assert not any("\ufffe" in c["text"] for c in chunks)
    assert any("(multiplicative)" in c["text"] for c in chunks if c["page"] == 4)
    # each passage knows where it is on its page (points from the top-left, as figures do)
    heading = next(c for c in chunks if c["page"] == 4 and c["text"].startswith("3.2.1 Scaled Dot-Product"))
    x0, y0, x1, y1 = json.loads(heading["bbox"])
    assert 100 < x0 < 115 and 340 < y0 < 360 and 495 < x1 < 512 and y0 < y1 < 400, (x0, y0, x1, y1)
    assert all(c["bbox"] for c in chunks)
    meta = store.metadata(rows(store, "SELECT id FROM documents WHERE path = :p", p=str(pdf))[0]["id"])
    assert meta["pages"] == "15" and meta["kind"] == "pdf"


def test_image_only_pdf_still_gives_page_images(indexer, store):
    pdf = shared_path("data", "docs", "financial_report.pdf")
    indexer.index(pdf, progress=False)
    items = items_of(store, pdf)
    assert [i["page"] for i in items if i["kind"] == "page"] == [1, 2, 3, 4, 5, 6]
    assert sum(i["kind"] == "figure" for i in items) == 5  # one chart picture on pages 2-6


def test_wiki_text_chunks_point_back_into_the_source(indexer, store):
    wiki = shared_path("data", "wiki100")
    report = indexer.index(wiki, progress=False)
    assert report.added == len(list(wiki.glob("*.txt"))) and not report.errors
    africa = (wiki / "Africa.txt").read_text(encoding="utf-8")
    items = items_of(store, wiki / "Africa.txt")
    for item in items:
        assert africa[item["char_start"] : item["char_end"]] == item["text"]
    chunks = [i for i in items if i["kind"] == "chunk"]
    assert all(len(c["text"].split()) <= 45 for c in chunks)
    assert all(c["parent_id"] for c in chunks)
    assert store.bm25("Etymology Afri Latin")[0][0] in {i["id"] for i in items}


def _write_shapes(folder: Path, count: int, seed: int = 0) -> list[shapes.ShapeSample]:
    folder.mkdir(parents=True, exist_ok=True)
    samples = shapes.generate(count, seed=seed)
    for n, sample in enumerate(samples):
        sample.image.save(folder / f"{n:03d}-{sample.colour}-{sample.shape}.png")
    return samples


def test_end_to_end_a_red_circle_ranks_first(indexer, store, shapes_encoder, tmp_path):
    _write_shapes(tmp_path / "shapes", 48, seed=21)
    indexer.index(tmp_path / "shapes", progress=False)
    for query, colour, shape in (("a red circle", "red", "circle"), ("a blue triangle", "blue", "triangle")):
        hits = store.search(shapes_encoder.encode_texts([query])[0], 2)[0]
        found = store.items([h.item_id for h in hits])
        assert all(f"-{colour}-{shape}.png" in found[h.item_id]["path"] for h in hits), query


class CountingEncoder:
    """Wraps an encoder and counts what it embeds (to prove nothing is re-encoded)."""

    def __init__(self, encoder) -> None:
        self.inner, self.calls = encoder, 0

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def encode_preprocessed(self, pixels):
        self.calls += len(pixels)
        return self.inner.encode_preprocessed(pixels)

    def encode_texts(self, texts, **kwargs):
        self.calls += len(texts)
        return self.inner.encode_texts(texts, **kwargs)


def test_incremental_touch_rename_delete_edit_duplicate(store, shapes_encoder, tmp_path):
    encoder = CountingEncoder(shapes_encoder)
    indexer = Indexer(store, encoder)
    folder = tmp_path / "photos"
    _write_shapes(folder, 6)
    first = indexer.index(folder, progress=False)
    assert first.added == 6 and encoder.calls == 6
    ids = {
        Path(r["path"]).name: r["id"]
        for r in rows(store, "SELECT i.id, d.path FROM items i JOIN documents d ON d.id = i.document_id")
    }

    again = indexer.index(folder, progress=False)
    assert again.unchanged == 6 and encoder.calls == 6

    names = sorted(ids)
    os.utime(folder / names[0], (1, 1))  # touch: same content, new mtime
    (folder / names[1]).rename(folder / "renamed.png")
    (folder / "sub").mkdir()
    shutil.copy(folder / names[2], folder / "sub" / "copy.png")  # identical content elsewhere
    (folder / names[3]).unlink()
    shapes.generate(30, seed=99)[7].image.save(folder / names[4])  # edited in place
    report = indexer.index(folder, progress=False)
    assert (report.touched, report.renamed, report.copied, report.deleted, report.updated) == (1, 1, 1, 1, 1)
    assert encoder.calls == 7  # only the edited file was embedded again

    now = {
        Path(r["path"]).name: r["id"]
        for r in rows(store, "SELECT i.id, d.path FROM items i JOIN documents d ON d.id = i.document_id")
    }
    assert now[names[0]] == ids[names[0]]  # touched: untouched item
    assert now["renamed.png"] == ids[names[1]]  # moved without re-embedding
    assert names[3] not in now
    assert now[names[4]] != ids[names[4]]  # replaced
    assert "copy.png" in now and store.index.ntotal == 6
    copy_hit = store.search(
        shapes_encoder.encode_images([Image.open(folder / "sub" / "copy.png").convert("RGB")])[0], 2
    )[0]
    assert {h.item_id for h in copy_hit} == {now["copy.png"], now[names[2]]}


def test_bad_input_is_reported_and_the_batch_continues(indexer, store, tmp_path, monkeypatch):
    folder = tmp_path / "mixed"
    _write_shapes(folder, 3)
    good = io.BytesIO()
    Image.new("RGB", (300, 200), (10, 200, 30)).save(good, "JPEG")
    (folder / "truncated.jpg").write_bytes(good.getvalue()[: len(good.getvalue()) // 3])
    # A JPEG signature over noise: seeded, since random bytes sometimes pass as a header and sometimes not.
    noise = np.random.default_rng(7).integers(0, 256, 2000, dtype=np.uint8).tobytes()
    (folder / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0" + noise)
    (folder / "empty.png").write_bytes(b"")
    (folder / "truncated.pdf").write_bytes(shared_path("data", "docs", "attention.pdf").read_bytes()[:5000])
    (folder / "junk.txt").write_bytes(b"\x00\x01\x02binary\x00")
    (folder / "latin1.txt").write_bytes("Caf\xe9 cr\xe8me br\xfbl\xe9e recipe".encode("cp1252"))
    (folder / "dangling.jpg").symlink_to(folder / "missing-target.jpg")
    os.mkfifo(folder / "pipe.jpg")  # regression: a FIFO was skipped without a word (and must never be opened)
    (folder / "locked.png").write_bytes((folder / sorted(os.listdir(folder))[0]).read_bytes() + b"x")
    (folder / "bomb.png").write_bytes(png_header(50_000, 50_000))
    real_open = builtins.open

    def deny(path, *args, **kwargs):  # root ignores chmod 000, so refuse reads the way the OS would
        if str(path).endswith("locked.png"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", deny)
    report = indexer.index(folder, progress=False)
    errors = {Path(p).name: reason for p, reason in report.errors}
    assert set(errors) == {
        "truncated.jpg",
        "corrupt.jpg",
        "empty.png",
        "truncated.pdf",
        "junk.txt",
        "dangling.jpg",
        "locked.png",
        "bomb.png",
        "pipe.jpg",
    }
    assert "cannot decode" in errors["truncated.jpg"]
    assert "cannot decode" in errors["corrupt.jpg"] or "not a recognised image" in errors["corrupt.jpg"]
    assert errors["empty.png"] == "empty file"
    assert errors["truncated.pdf"].startswith("cannot open PDF")
    assert errors["junk.txt"].startswith("unsupported file type")
    assert errors["dangling.jpg"] == "broken symbolic link"
    assert errors["pipe.jpg"] == "not a regular file (a named pipe); skipped"
    assert errors["locked.png"] == "cannot read file: Permission denied"
    assert "exceeds the limit" in errors["bomb.png"]
    assert report.added == 4  # the three shapes and the Windows-1252 text
    latin = items_of(store, folder / "latin1.txt")
    assert latin[0]["text"] == "Café crème brûlée recipe"
    assert store.counts()["errors"] == 9

    # a stored document that turns bad loses its items but the rest stays
    before = store.index.ntotal
    shape_file = sorted(folder.glob("000-*"))[0]
    shape_file.write_bytes(b"\xff\xd8\xff garbage")
    report = indexer.index(folder, progress=False)
    assert [Path(p).name for p, _ in report.errors if Path(p).name.startswith("000-")]
    assert store.index.ntotal == before - 1


def test_video_keyframes_with_timestamps(indexer, store, tmp_path):
    av = pytest.importorskip("av")
    path = tmp_path / "clip.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        for colour in ((220, 30, 30), (30, 30, 220), (30, 200, 60)):  # three 1.5 s scenes
            for _ in range(15):
                frame = av.VideoFrame.from_ndarray(np.full((64, 64, 3), colour, np.uint8), format="rgb24")
                container.mux(stream.encode(frame))
        container.mux(stream.encode())
    report = indexer.index(path, progress=False)
    assert not report.errors
    keyframes = items_of(store, path)
    assert [k["kind"] for k in keyframes] == ["keyframe"] * 3
    assert [round(k["timestamp"], 1) for k in keyframes] == [0.0, 1.5, 3.0]


def test_changing_the_model_reembeds_on_the_next_index_run(tmp_path, tiny_open_clip_dir, shapes_encoder):
    """Vectors of the old model stay apart; `index` again embeds every file with the new one."""
    from spyglass.encoders import load_encoder
    from spyglass.errors import ReindexRequiredError
    from spyglass.settings import EncoderSettings

    folder = tmp_path / "pics"
    _write_shapes(folder, 6)
    old = load_encoder(str(tiny_open_clip_dir), EncoderSettings(precision="fp32"))
    with Store(tmp_path / "data", old.model_id, old.dim) as first:
        Indexer(first, old).index(folder, progress=False)
    with Store(tmp_path / "data", shapes_encoder.model_id, shapes_encoder.dim) as second:
        assert second.status()["items_needing_reindex"] == 6
        with pytest.raises(ReindexRequiredError):
            second.search(shapes_encoder.encode_texts(["a red circle"])[0], 3)
        report = Indexer(second, shapes_encoder).index(folder, progress=False)
        assert report.updated == 6 and not report.errors
        status = second.status()
        assert status["reindex_needed"] is False and status["indexed_vectors"] == 6
        assert second.search(shapes_encoder.encode_texts(["a red circle"])[0], 1)[0][0].score > 0.5


def test_identical_new_files_in_one_run_are_embedded_once(store, shapes_encoder, tmp_path):
    encoder = CountingEncoder(shapes_encoder)
    folder = tmp_path / "twins"
    _write_shapes(folder, 2)
    first = sorted(folder.iterdir())[0]
    (folder / "sub").mkdir()
    shutil.copy(first, folder / "sub" / "same.png")
    (folder / "bad-a.jpg").write_bytes(b"\xff\xd8\xff broken")
    (folder / "bad-b.jpg").write_bytes(b"\xff\xd8\xff broken")
    report = Indexer(store, encoder).index(folder, progress=False)
    assert encoder.calls == 2 and report.added == 2 and report.copied == 1
    assert {Path(p).name for p, _ in report.errors} == {"bad-a.jpg", "bad-b.jpg"}
    assert len({reason for _, reason in report.errors}) == 1  # the copy reports the original's reason
    assert store.index.ntotal == 3


def test_file_names_that_are_not_utf8_are_indexed_and_shown_escaped(indexer, store, tmp_path):
    """Regression: one Latin-1 file name (b'bad\\xff\\xfe...') stopped the whole run with UnicodeEncodeError."""
    from spyglass.content import item_image

    folder = tmp_path / "card"
    _write_shapes(folder, 2)
    raw = os.fsencode(folder)
    with open(raw + b"/bad\xff\xfename.txt", "wb") as handle:
        handle.write(b"Latin-1 archives hold names like this one.")
    shutil.copy(next(folder.glob("*.png")), os.fsdecode(raw + b"/caf\xe9.png"))
    (folder / "caf\xe9.png").write_bytes(b"")  # a valid UTF-8 name that looks alike must stay distinct
    report = indexer.index(folder, progress=False)
    assert report.added + report.copied == 4 and [Path(p).name for p, _ in report.errors] == ["caf\xe9.png"]
    escaped = {row["path"] for row in rows(store, "SELECT path FROM documents")}
    assert str(folder / "bad\\xff\\xfename.txt") in escaped and str(folder / "caf\\xe9.png") in escaped
    json.dumps(report.errors)  # every path in a report is plain text
    (image_item,) = [r for r in items_of(store, folder / "caf\\xe9.png")]
    assert item_image(store.item(image_item["id"])).size[0] > 0  # the file is found again by its bytes
    assert indexer.index(folder, progress=False).unchanged == 5  # the escaped key matches on the next run
    os.rename(raw + b"/bad\xff\xfename.txt", raw + b"/renamed\xff.txt")
    again = indexer.index(folder, progress=False)
    assert again.renamed == 1 and again.added == 0
