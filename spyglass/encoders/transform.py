"""open_clip's evaluation transform for PIL images, without torchvision.

Importing torchvision imports ``torch._dynamo`` (its ``ops.roi_align`` does), a second
that a frozen model (``frozen``) must not pay just to resize and normalise a picture.
The two resize modes open_clip models use for evaluation are reproduced here with the
same PIL calls and the same rounding as torchvision's ``Resize``, ``CenterCrop`` and
``ToTensor``; an export is used only after its pictures came out equal to the
original transform's on probe images (``frozen_export``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch
from PIL import Image

_RESAMPLING = {
    "bicubic": Image.Resampling.BICUBIC,
    "bilinear": Image.Resampling.BILINEAR,
    "nearest": Image.Resampling.NEAREST,
}


@dataclass(frozen=True)
class PixelTransform:
    """Resize, centre-crop, RGB, scale to [0, 1], normalise: one image into a float32 CHW tensor."""

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

    def __call__(self, image: Image.Image) -> torch.Tensor:
        image = self._resize(image)
        if self.resize_mode == "shortest":
            left = round((image.width - self.size) / 2)
            top = round((image.height - self.size) / 2)
            image = image.crop((left, top, left + self.size, top + self.size))
        pixels = torch.from_numpy(np.asarray(image.convert("RGB"), dtype=np.uint8).copy())
        mean, std = self._normalisation
        return (pixels.permute(2, 0, 1).float().div(255) - mean) / std

    @cached_property
    def _normalisation(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and std as (3, 1, 1) tensors, made once rather than for every image."""
        return torch.tensor(self.mean).view(3, 1, 1), torch.tensor(self.std).view(3, 1, 1)

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
