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
_PHRASES = ("a {c} {s}", "a photo of a {c} {s}", "a {size} {c} {s}", "one {c} {s} on a grey background")


@dataclass(frozen=True)
class ShapeSample:
    image: Image.Image
    caption: str
    colour: str
    shape: str

    @property
    def label(self) -> str:
        """The class name, which is also the canonical query: ``"a red circle"``."""
        return f"a {self.colour} {self.shape}"


def class_names() -> list[str]:
    """All colour x shape classes as queries, in a fixed order."""
    return [f"a {c} {s}" for c in COLOURS for s in SHAPES]


def render(colour: str, shape: str, rng: random.Random, size: int = 64) -> Image.Image:
    """Draw one shape; position, size, background and noise come from ``rng``."""
    grey = rng.randint(90, 200)
    image = Image.new("RGB", (size, size), (grey, grey, grey))
    draw = ImageDraw.Draw(image)
    radius = rng.uniform(0.22, 0.4) * size
    cx = rng.uniform(radius, size - radius)
    cy = rng.uniform(radius, size - radius)
    fill = COLOURS[colour]
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
    noise = np.random.default_rng(rng.getrandbits(32)).normal(0, 6, (size, size, 3))
    return Image.fromarray(np.clip(np.asarray(image, np.float32) + noise, 0, 255).astype(np.uint8))


def generate(count: int, seed: int = 0, size: int = 64) -> list[ShapeSample]:
    """``count`` samples cycling through every class, deterministic for a seed."""
    rng = random.Random(seed)
    classes = [(c, s) for c in COLOURS for s in SHAPES]
    samples = []
    for index in range(count):
        colour, shape = classes[index % len(classes)]
        phrase = rng.choice(_PHRASES).format(c=colour, s=shape, size=rng.choice(("small", "big", "large")))
        samples.append(ShapeSample(render(colour, shape, rng, size), phrase, colour, shape))
    return samples
