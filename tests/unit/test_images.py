"""Image decoding on the real files in ../shared/data/formats and on crafted edge cases."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from support.bombs import png_header

from spyglass.errors import ImageLoadError
from spyglass.images import open_image

IMAGE_SUFFIXES = {
    ".jpg",
    ".jpeg",
    ".png",
    ".gif",
    ".tiff",
    ".bmp",
    ".webp",
    ".jp2",
    ".pnm",
    ".pbm",
    ".pgm",
    ".ppm",
}


def test_every_real_format_loads_as_rgb(formats_dir):
    files = [p for p in sorted(formats_dir.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES]
    assert len(files) >= 20
    for path in files:
        image = open_image(path)
        assert image.mode == "RGB", path.name
        assert image.size == Image.open(path).size, path.name  # none of these carry a rotating EXIF tag


def test_bilevel_and_grey_keep_their_tones(formats_dir):
    magpie = np.asarray(open_image(formats_dir / "magpie.pbm"))
    assert set(np.unique(magpie)) <= {0, 255} and magpie.min() == 0 and magpie.max() == 255
    parrot = np.asarray(open_image(formats_dir / "parrot-and-flowers.pgm"))
    assert (parrot[..., 0] == parrot[..., 1]).all() and parrot.std() > 10


def test_animated_gif_gives_first_frame(formats_dir):
    image = open_image(formats_dir / "bee_animated.gif")
    with Image.open(formats_dir / "bee_animated.gif") as gif:
        first = np.asarray(gif.convert("RGB"))
    assert np.array_equal(np.asarray(image), first)


def test_not_an_image_is_a_clear_error(formats_dir):
    with pytest.raises(ImageLoadError, match="not a recognised image format"):
        open_image(formats_dir / "not-an-image.txt")


def _jpeg(image: Image.Image, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=92, **kwargs)
    return buffer.getvalue()


def test_exif_orientation_is_applied():
    # A wide image whose top-left quarter is red; orientation 6 means "rotate 90° clockwise to view".
    pixels = np.zeros((60, 100, 3), np.uint8)
    pixels[:30, :50] = (255, 0, 0)
    exif = Image.Exif()
    exif[0x0112] = 6
    image = open_image(_jpeg(Image.fromarray(pixels), exif=exif))
    assert image.size == (60, 100)
    array = np.asarray(image).astype(int)
    assert array[10, 50][0] > 200 and array[10, 10][0] < 60  # red moved to the top-right


def test_transparency_is_flattened_onto_white():
    rgba = Image.new("RGBA", (8, 8), (255, 0, 0, 0))
    assert np.asarray(open_image(_png(rgba)))[0, 0].tolist() == [255, 255, 255]
    palette = Image.new("P", (8, 8), 0)
    palette.putpalette([0, 0, 0] * 256)
    palette.info["transparency"] = 0
    assert np.asarray(open_image(_png(palette)))[0, 0].tolist() == [255, 255, 255]


def test_sixteen_bit_is_scaled_not_clipped():
    grey = Image.fromarray(np.full((8, 8), 32768, np.uint16))
    value = np.asarray(open_image(_png(grey)))[0, 0]
    assert 120 <= value[0] <= 135, value


def test_cmyk_jpeg_keeps_its_colour():
    cmyk = Image.new("RGB", (16, 16), (200, 30, 30)).convert("CMYK")
    red, green, blue = np.asarray(open_image(_jpeg(cmyk))).reshape(-1, 3).mean(axis=0)
    assert red > 150 and green < 80 and blue < 80


def test_large_jpeg_is_drafted_but_keeps_enough_pixels():
    rng = np.random.default_rng(0)
    big = Image.fromarray(rng.integers(0, 255, (30, 40, 3), dtype=np.uint8)).resize((4000, 3000))
    data = _jpeg(big)
    full = open_image(data)
    drafted = open_image(data, min_side=224)
    assert full.size == (4000, 3000)
    assert min(drafted.size) >= 224 and drafted.size[0] <= 1000
    assert drafted.size[0] * 3 == drafted.size[1] * 4  # aspect ratio kept


def test_draft_barely_changes_embeddings(shapes_encoder):
    rng = np.random.default_rng(1)
    big = Image.fromarray(rng.integers(0, 255, (24, 32, 3), dtype=np.uint8)).resize(
        (3200, 2400), Image.BICUBIC
    )
    data = _jpeg(big)
    full, drafted = shapes_encoder.encode_images(
        [open_image(data), open_image(data, min_side=shapes_encoder.image_size)]
    )
    assert float(full @ drafted) > 0.99


def test_decompression_bomb_refused_before_decoding():
    with pytest.raises(ImageLoadError, match="50000x50000 pixels exceeds the limit"):
        open_image(png_header(50_000, 50_000))


def test_truncated_and_empty_files(tmp_path):
    data = _jpeg(Image.new("RGB", (64, 64), (0, 128, 0)))
    with pytest.raises(ImageLoadError, match="cannot decode"):
        open_image(data[: len(data) // 2])
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    with pytest.raises(ImageLoadError, match="not a recognised image format"):
        open_image(empty)
    with pytest.raises(ImageLoadError, match="file not found"):
        open_image(tmp_path / "missing.png")


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()
