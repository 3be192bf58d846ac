"""Decode images into what the encoders expect: oriented, RGB, and not larger than needed.

Everything Pillow opens is accepted. Three things make this more than ``Image.open``:

* ``draft()``: a 12-megapixel JPEG decoded at 1/4 or 1/8 scale by the JPEG decoder
  itself (an area average in the DCT domain) is several times faster than a full
  decode followed by a resize, and the encoder only needs a few hundred pixels. The
  shorter side stays at least the model's input size, so the model's own resize
  and crop still do the final step.
* EXIF orientation is applied, so a portrait photo is not embedded sideways.
* Modes are converted faithfully: transparency is flattened onto white (not black),
  16-bit and float images are rescaled instead of clipped to white.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from spyglass.errors import ImageLoadError

ImageSource = str | Path | bytes | BinaryIO

# Our own pixel cap replaces Pillow's global one, which only warns below 2x its limit.
Image.MAX_IMAGE_PIXELS = None

try:  # HEIC/HEIF (iPhone photos) when the optional pillow-heif is installed; AVIF Pillow reads itself
    from pillow_heif import register_heif_opener
except ImportError:
    pass
else:
    register_heif_opener()


def open_image(
    source: ImageSource, *, min_side: int | None = None, max_pixels: int = 178_956_970
) -> Image.Image:
    """Open ``source`` as an oriented RGB image.

    ``min_side`` lets JPEG decoding skip detail the caller will discard: the result's
    shorter side stays at least ``min_side``. Raises :class:`ImageLoadError` with a
    reason for anything that is not a decodable image within ``max_pixels``.
    """
    name = str(source) if isinstance(source, (str, Path)) else "image data"
    if isinstance(source, bytes):
        source = io.BytesIO(source)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. "Truncated File Read", "Palette images with Transparency"
            image = Image.open(source)
            width, height = image.size
            if width * height > max_pixels:
                raise ImageLoadError(
                    f"{name}: {width}x{height} pixels exceeds the limit of {max_pixels:,} (possible decompression bomb)."
                )
            if min_side and image.format == "JPEG":
                scale = min(width, height) / min_side
                if scale >= 2:
                    image.draft("RGB", (max(1, int(width / scale)), max(1, int(height / scale))))
            image.load()
            image = ImageOps.exif_transpose(image)
            return to_rgb(image)
    except ImageLoadError:
        raise
    except UnidentifiedImageError:
        raise ImageLoadError(f"{name}: not a recognised image format.") from None
    except FileNotFoundError:
        raise ImageLoadError(f"{name}: file not found.") from None
    except PermissionError:
        raise ImageLoadError(f"{name}: permission denied.") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise ImageLoadError(f"{name}: cannot decode image ({exc}).") from None


def to_rgb(image: Image.Image) -> Image.Image:
    """Convert any Pillow mode to RGB without the usual surprises."""
    mode = image.mode
    if mode == "RGB":
        return image
    if mode.startswith("I") or mode == "F":
        return _high_depth_to_rgb(image)
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    # "1", "L", "P", "CMYK" (Pillow undoes Adobe's inverted CMYK when decoding), "YCbCr", "LAB", "HSV".
    return image.convert("RGB")


def _high_depth_to_rgb(image: Image.Image) -> Image.Image:
    """16-bit and 32-bit images: scale into 0..255 instead of clipping everything above 255."""
    pixels = np.asarray(image, dtype=np.float64)
    high = float(pixels.max(initial=0))
    if image.mode == "F" or pixels.min(initial=0) < 0 or high > 65535:
        low = float(pixels.min(initial=0))  # arbitrary range: stretch it
        pixels = (pixels - low) * (255.0 / (high - low)) if high > low else np.zeros_like(pixels)
    elif image.mode.startswith("I;16") or high > 255:
        pixels = pixels / 257.0  # 16-bit samples
    grey = Image.fromarray(np.clip(pixels + 0.5, 0, 255).astype(np.uint8), mode="L")
    return grey.convert("RGB")


THUMBNAIL_SIDE = 256


def thumbnail(image: Image.Image, side: int = THUMBNAIL_SIDE) -> bytes:
    """A small JPEG for result grids; stored in the catalog so the UI never reopens originals."""
    copy = image.copy()
    copy.thumbnail((side, side), Image.BILINEAR, reducing_gap=2.0)  # fast; a thumbnail needs no more
    buffer = io.BytesIO()
    copy.save(buffer, "JPEG", quality=80)
    return buffer.getvalue()
