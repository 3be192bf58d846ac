"""Generated images of coloured shapes with captions: a dataset whose truth is known.

Each image shows one shape of one colour at a random position and size on a random
grey background with a little noise, so a model must learn colour and shape, not
pixel positions. Captions use a few phrasings so the text tower learns the words.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "green": (30, 170, 60),
    "blue": (40, 70, 225),
    "yellow": (240, 215, 30),
    "purple": (140, 45, 175),
    "orange": (250, 135, 20),
}
SHAPES = ("circle", "square", "triangle", "cross")
# A second domain the builtin model never saw: colours it has no words for, and textured fills
# (what fine-tuning tests adapt to: see ``spyglass.training.tune``).
NEW_COLOURS: dict[str, tuple[int, int, int]] = {
    "teal": (0, 128, 128),
    "pink": (255, 120, 190),
    "brown": (120, 65, 20),
    "black": (20, 20, 20),
    "white": (245, 245, 245),
}
PATTERNS = ("striped", "dotted")
_PHRASES = ("a {c} {s}", "a photo of a {c} {s}", "a {size} {c} {s}", "one {c} {s} on a grey background")


@dataclass(frozen=True)
class ShapeSample:
    image: Image.Image
    caption: str
    colour: str
    shape: str
    pattern: str = ""  # the second domain's texture ("striped"), or "" for a plain fill

    @property
    def label(self) -> str:
        """The class name, which is also the canonical query: ``"a red circle"``, ``"a striped teal cross"``."""
        return " ".join(word for word in ("a", self.pattern, self.colour, self.shape) if word)


def class_names() -> list[str]:
    """All colour x shape classes as queries, in a fixed order."""
    return [f"a {c} {s}" for c in COLOURS for s in SHAPES]


def render(colour: str, shape: str, rng: random.Random, size: int = 64, pattern: str = "") -> Image.Image:
    """Draw one shape; position, size, background and noise come from ``rng``."""
    grey = rng.randint(90, 200)
    image = Image.new("RGB", (size, size), (grey, grey, grey))
    mask = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(mask)
    radius = rng.uniform(0.22, 0.4) * size
    cx = rng.uniform(radius, size - radius)
    cy = rng.uniform(radius, size - radius)
    fill = 255
    if shape == "circle":
        draw.ellipse([cx - radius, cy - radius, cx + radius, cy + radius], fill=fill)
    elif shape == "square":
        half = radius * 0.85
        draw.rectangle([cx - half, cy - half, cx + half, cy + half], fill=fill)
    elif shape == "triangle":
        points = [
            (cx + radius * math.cos(a), cy + radius * math.sin(a))
            for a in (-math.pi / 2, math.pi / 6, 5 * math.pi / 6)
        ]
        draw.polygon(points, fill=fill)
    elif shape == "cross":
        arm = radius * 0.35
        draw.rectangle([cx - radius, cy - arm, cx + radius, cy + arm], fill=fill)
        draw.rectangle([cx - arm, cy - radius, cx + arm, cy + radius], fill=fill)
    else:
        raise ValueError(f"unknown shape {shape!r}")
    image.paste(_texture(({**COLOURS, **NEW_COLOURS})[colour], pattern, size), mask=mask)
    noise = np.random.default_rng(rng.getrandbits(32)).normal(0, 6, (size, size, 3))
    return Image.fromarray(np.clip(np.asarray(image, np.float32) + noise, 0, 255).astype(np.uint8))


def _texture(rgb: tuple[int, int, int], pattern: str, size: int) -> Image.Image:
    """A shape's fill: plain, or stripes / dots of the colour on a paler shade of it."""
    if not pattern:
        return Image.new("RGB", (size, size), rgb)
    pale = tuple(int(v + (255 - v) * 0.55) if sum(rgb) < 600 else int(v * 0.6) for v in rgb)
    texture = Image.new("RGB", (size, size), pale)
    draw = ImageDraw.Draw(texture)
    step = max(4, size // 8)
    for offset in range(-size, 2 * size, step):
        if pattern == "striped":
            draw.polygon(
                [
                    (offset, 0),
                    (offset + step // 2, 0),
                    (offset + step // 2 + size, size),
                    (offset + size, size),
                ],
                fill=rgb,
            )
        elif pattern == "dotted":
            for y in range(step // 2, size, step):
                dot = step * 0.3
                draw.ellipse([offset - dot, y - dot, offset + dot, y + dot], fill=rgb)
        else:
            raise ValueError(f"unknown pattern {pattern!r}")
    return texture


def generate(count: int, seed: int = 0, size: int = 64) -> list[ShapeSample]:
    """``count`` samples cycling through every class, deterministic for a seed."""
    return _generate(count, seed, size, [(c, s, "") for c in COLOURS for s in SHAPES])


def generate_new_domain(count: int, seed: int = 0, size: int = 64) -> list[ShapeSample]:
    """Like ``generate``, in the second domain: new colour names, striped or dotted fills."""
    return _generate(count, seed, size, [(c, s, p) for p in PATTERNS for c in NEW_COLOURS for s in SHAPES])


def _generate(count: int, seed: int, size: int, classes: list[tuple[str, str, str]]) -> list[ShapeSample]:
    rng = random.Random(seed)
    samples = []
    for index in range(count):
        colour, shape, pattern = classes[index % len(classes)]
        textured = f"{pattern} {colour}" if pattern else colour
        phrase = rng.choice(_PHRASES).format(c=textured, s=shape, size=rng.choice(("small", "big", "large")))
        samples.append(ShapeSample(render(colour, shape, rng, size, pattern), phrase, colour, shape, pattern))
    return samples
