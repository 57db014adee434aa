"""Image preprocessing equal to a model's own Hugging Face image processor, in PIL + numpy.

CLIP (Radford et al., 2021): resize the shortest side to S with bicubic resampling, centre-crop
to H x W, scale to [0, 1], normalise with the model's mean / std. Reading the numbers from the
model's ``preprocessor_config.json`` keeps this equal to ``transformers`` (tested), while letting
the embed stage decode and preprocess in worker threads without the processor's overhead.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from PIL import Image


@dataclass(frozen=True)
class Preprocess:
    shortest_edge: int | None      # resize shortest side to this (aspect kept) ...
    resize_hw: tuple[int, int] | None  # ... or to exactly (height, width)
    crop_hw: tuple[int, int] | None
    resample: int                  # PIL resampling id (3 = bicubic)
    rescale_factor: float
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    @classmethod
    def from_processor(cls, proc) -> "Preprocess":
        """Read the settings of a ``transformers`` image processor (CLIP, SigLIP, ... families)."""
        size = _as_dict(getattr(proc, "size", None))
        shortest = size.get("shortest_edge") if getattr(proc, "do_resize", True) else None
        resize_hw = None
        if shortest is None and getattr(proc, "do_resize", True) and size.get("height"):
            resize_hw = (int(size["height"]), int(size["width"]))
        crop = _as_dict(getattr(proc, "crop_size", None)) if getattr(proc, "do_center_crop", False) else {}
        resample = getattr(proc, "resample", 3)
        return cls(
            shortest_edge=int(shortest) if shortest else None,
            resize_hw=resize_hw,
            crop_hw=(int(crop["height"]), int(crop["width"])) if crop.get("height") else None,
            resample=int(getattr(resample, "value", resample)),
            rescale_factor=float(proc.rescale_factor) if getattr(proc, "do_rescale", True) else 1.0,
            mean=tuple(float(m) for m in proc.image_mean) if getattr(proc, "do_normalize", True) else (0.0,) * 3,
            std=tuple(float(s) for s in proc.image_std) if getattr(proc, "do_normalize", True) else (1.0,) * 3,
        )

    def output_hw(self) -> tuple[int, int] | None:
        return self.crop_hw or self.resize_hw

    def __call__(self, img: Image.Image) -> np.ndarray:
        """RGB PIL image -> float32 array (3, H, W)."""
        img = img.convert("RGB")
        if self.shortest_edge:
            w, h = img.size
            short, long = (w, h) if w <= h else (h, w)
            new_long = int(self.shortest_edge * long / short)
            new = (self.shortest_edge, new_long) if w <= h else (new_long, self.shortest_edge)
            img = img.resize(new, resample=self.resample)
        elif self.resize_hw:
            img = img.resize(self.resize_hw[::-1], resample=self.resample)
        x = np.asarray(img)
        if self.crop_hw:
            x = _center_crop(x, *self.crop_hw)
        x = x.astype(np.float32) * np.float32(self.rescale_factor)
        x = (x - np.asarray(self.mean, np.float32)) / np.asarray(self.std, np.float32)
        return np.ascontiguousarray(x.transpose(2, 0, 1))

    def to_dict(self) -> dict:
        return asdict(self)


def _as_dict(size) -> dict:
    if size is None:
        return {}
    if isinstance(size, dict):
        return {k: v for k, v in size.items() if v is not None}
    return {k: getattr(size, k) for k in ("shortest_edge", "height", "width") if getattr(size, k, None) is not None}


def _center_crop(x: np.ndarray, ch: int, cw: int) -> np.ndarray:
    """Centre crop (HWC), zero-padding when the image is smaller, as transformers does."""
    h, w = x.shape[:2]
    if h < ch or w < cw:
        nh, nw = max(h, ch), max(w, cw)
        pad = np.zeros((nh, nw) + x.shape[2:], x.dtype)
        top, left = -(-(nh - h) // 2), -(-(nw - w) // 2)
        pad[top:top + h, left:left + w] = x
        x, h, w = pad, nh, nw
    top, left = (h - ch) // 2, (w - cw) // 2
    return x[top:top + ch, left:left + cw]
