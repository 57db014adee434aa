"""The one way the pipeline reads pixels: image bytes -> an upright RGB PIL image.

Equal to ``transformers``' own path (``transformers.image_utils.load_image``, then the model's image
processor): EXIF orientation is applied (``PIL.ImageOps.exif_transpose``) and every PIL mode is
converted with ``Image.convert("RGB")`` -- 1, L, LA and RGBA (alpha dropped), P (a transparent
palette colour becomes white, as the processor's ``convert_to_rgb`` composites it), CMYK, YCbCr,
F (float, clipped to [0, 255]) -- with one deliberate exception: 16-bit
integer data (modes ``I;16``, ``I;16B``, ``I;16L``, ``I;16N`` and the 32-bit ``I`` that PIL opens
16-bit PNG / TIFF as) is *scaled* to 8 bits, v -> round(v * 255 / 65535), where ``convert("RGB")``
clips every value above 255 and turns a 16-bit photograph near-white. So a 16-bit image equals its
8-bit rendering (tested), and an EXIF-rotated JPEG embeds as the upright image (tested).

Every stage that reads pixels (``prepare`` validates with it, ``embed_images``, ``train_clip``)
goes through :func:`decode_image`.
"""
from __future__ import annotations

import functools
import io
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
from PIL import Image, ImageOps

PARQUET_ROW_SEP = "#"  # "<file.parquet>#<row>" addresses an image stored inside a parquet file
SIXTEEN_BIT_MODES = {"I;16", "I;16B", "I;16L", "I;16N", "I"}
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


@functools.lru_cache(maxsize=2)
def _parquet_images(file: str) -> list:
    col = pq.read_table(file, columns=["image"]).column("image").to_pylist()
    return [c["bytes"] if isinstance(c, dict) else c for c in col]


def read_image_bytes(path: str) -> bytes:
    """Bytes of an image file, or of row ``k`` of a parquet file addressed as ``file.parquet#k``."""
    if PARQUET_ROW_SEP in path and path.split(PARQUET_ROW_SEP)[0].endswith(".parquet"):
        file, row = path.rsplit(PARQUET_ROW_SEP, 1)
        return _parquet_images(file)[int(row)]
    return Path(path).read_bytes()


def sixteen_to_eight_bit(img: Image.Image) -> Image.Image:
    """A 16-bit grayscale image (``I;16*`` or ``I``) as 8-bit ``L``: v -> round(v * 255 / 65535),
    values clipped to [0, 65535] first (``I`` is 32-bit signed)."""
    v = np.asarray(img).astype(np.float64)
    return Image.fromarray(np.rint(np.clip(v, 0, 65535) * (255.0 / 65535.0)).astype(np.uint8), mode="L")


def to_rgb(img: Image.Image) -> Image.Image:
    """Upright RGB: EXIF orientation applied, then ``convert("RGB")`` (16-bit data scaled, not clipped).
    A colour-key transparency that survives the conversion (palette or tRNS images) is composited
    onto white, as the image processors' ``convert_to_rgb`` does with it."""
    img = ImageOps.exif_transpose(img)
    if img.mode in SIXTEEN_BIT_MODES:
        img = sixteen_to_eight_bit(img)
    if img.mode != "RGB":
        img = img.convert("RGB")
    if img.info.get("transparency") is not None:
        white = Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = Image.alpha_composite(white, img.convert("RGBA")).convert("RGB")
    return img


def decode_image(data: bytes) -> Image.Image:
    """Fully decode ``data`` to an upright RGB PIL image (raises on truncated / non-image data)."""
    img = Image.open(io.BytesIO(data))
    img.load()
    return to_rgb(img)


def check_image(data: bytes) -> str | None:
    """None if ``data`` decodes completely as an image, else a short, deterministic reason."""
    if not data:
        return "zero-byte file"
    try:
        decode_image(data)
    except Exception as exc:  # PIL raises several types: UnidentifiedImageError, OSError, SyntaxError
        return f"unreadable image ({type(exc).__name__}: {_first_line(exc)})"
    return None


def _first_line(exc: Exception) -> str:
    """The exception's message without object addresses (``<_io.BytesIO object at 0x...>``), so that
    the reason is the same on every run."""
    import re

    text = str(exc).splitlines()[0] if str(exc) else ""
    return re.sub(r" at 0x[0-9a-fA-F]+", "", text)
