"""open_clip's evaluation transform for PIL images, without torchvision.

The fast image tower (``image_tower``) runs without torch, so its preprocessing must too:
numpy arrays in, numpy arrays out.
The two resize modes open_clip models use for evaluation are reproduced here with the
same PIL calls and the same rounding as torchvision's ``Resize``, ``CenterCrop`` and
``ToTensor``; an export is used only after its pictures came out equal to the
original transform's on probe images (``image_export``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
from PIL import Image

_RESAMPLING = {
    "bicubic": Image.Resampling.BICUBIC,
    "bilinear": Image.Resampling.BILINEAR,
    "nearest": Image.Resampling.NEAREST,
}


@dataclass(frozen=True)
class PixelTransform:
    """Resize, centre-crop, RGB, scale to [0, 1], normalise: one image into a float32 CHW array."""

    size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    interpolation: str = "bicubic"
    resize_mode: str = "shortest"  # shortest side to ``size`` then a centre crop; "squash": both sides

    @classmethod
    def of(cls, preprocess_cfg: dict) -> PixelTransform | None:
        """The transform an open_clip model's ``preprocess_cfg`` describes; None when it is not one of
        those reproduced here (a non-square size, the ``longest`` mode, another interpolation)."""
        size = preprocess_cfg.get("size", 224)
        if isinstance(size, (tuple, list)):
            if len(set(size)) != 1:
                return None
            size = size[0]
        interpolation = preprocess_cfg.get("interpolation", "bicubic")
        resize_mode = preprocess_cfg.get("resize_mode", "shortest")
        if interpolation not in _RESAMPLING or resize_mode not in ("shortest", "squash"):
            return None
        return cls(
            size=int(size),
            mean=tuple(float(v) for v in preprocess_cfg["mean"]),
            std=tuple(float(v) for v in preprocess_cfg["std"]),
            interpolation=interpolation,
            resize_mode=resize_mode,
        )

    def __call__(self, image: Image.Image) -> np.ndarray:
        image = self._resize(image)
        if self.resize_mode == "shortest":
            left = round((image.width - self.size) / 2)
            top = round((image.height - self.size) / 2)
            image = image.crop((left, top, left + self.size, top + self.size))
        pixels = np.asarray(image.convert("RGB"), dtype=np.uint8).transpose(2, 0, 1)
        mean, std = self._normalisation
        return (pixels.astype(np.float32) / np.float32(255) - mean) / std  # torchvision's float32 steps

    @cached_property
    def _normalisation(self) -> tuple[np.ndarray, np.ndarray]:
        """Mean and std as float32 (3, 1, 1) arrays, made once rather than for every image."""
        return (
            np.asarray(self.mean, np.float32).reshape(3, 1, 1),
            np.asarray(self.std, np.float32).reshape(3, 1, 1),
        )

    def _resize(self, image: Image.Image) -> Image.Image:
        width, height = image.size
        if self.resize_mode == "squash":
            target = (self.size, self.size)
        elif width <= height:  # torchvision: the short side to ``size``, the long side truncated
            target = (self.size, int(self.size * height / width))
        else:
            target = (int(self.size * width / height), self.size)
        if target == image.size:
            return image
        return image.resize(target, _RESAMPLING[self.interpolation])
