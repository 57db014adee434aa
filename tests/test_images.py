"""One decode for every stage: equal to transformers' load_image + image processor on tortured
images, 16-bit data scaled (not clipped), EXIF orientation applied (down to the embedding)."""
import io

import numpy as np
import pytest
from PIL import Image
from transformers import AutoImageProcessor
from transformers.image_utils import load_image

from pipeline.encoders import load_encoder
from pipeline.images import check_image, decode_image
from pipeline.preprocess import Preprocess

RNG = np.random.default_rng(0)


def _rgb(h=61, w=83):
    """A smooth colour image (JPEG-friendly) with some texture."""
    y, x = np.mgrid[0:h, 0:w]
    img = np.stack([x * 255 / w, y * 255 / h, (x + y) * 127 / (h + w) + 60], -1)
    return np.clip(img + RNG.normal(0, 8, img.shape), 0, 255).astype(np.uint8)


def _save(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def tortured() -> dict[str, bytes]:
    """Every PIL mode the issue names (that transformers' path handles the same way), as files."""
    rgb = Image.fromarray(_rgb())
    rgba = rgb.copy()
    rgba.putalpha(Image.fromarray(RNG.integers(0, 256, rgb.size[::-1], dtype=np.uint8)))
    pal = rgb.convert("P", palette=Image.Palette.ADAPTIVE, colors=32)
    pal_t = pal.copy()
    pal_t.info["transparency"] = 3
    la = rgb.convert("L")
    la.putalpha(128)
    flt = Image.fromarray((RNG.random((45, 70)) * 400 - 50).astype(np.float32), mode="F")
    return {
        "1.png": _save(rgb.convert("1"), "PNG"),
        "L.png": _save(rgb.convert("L"), "PNG"),
        "L.jpg": _save(rgb.convert("L"), "JPEG", quality=90),
        "LA.png": _save(la, "PNG"),
        "P.png": _save(pal, "PNG"),
        "P_transparency.png": _save(pal_t, "PNG"),
        "P_transparency.gif": _save(pal_t, "GIF"),
        "RGB.jpg": _save(rgb, "JPEG", quality=90),
        "RGB.webp": _save(rgb, "WEBP"),
        "RGB.bmp": _save(rgb, "BMP"),
        "RGBA.png": _save(rgba, "PNG"),
        "RGB_tRNS.png": _save(rgb, "PNG", transparency=tuple(int(v) for v in np.asarray(rgb)[0, 0])),
        "L_tRNS.png": _save(rgb.convert("L"), "PNG", transparency=int(np.asarray(rgb.convert("L"))[0, 0])),
        "CMYK.jpg": _save(rgb.convert("CMYK"), "JPEG", quality=90),
        "CMYK.tif": _save(rgb.convert("CMYK"), "TIFF"),
        "F.tif": _save(flt, "TIFF"),
    }


@pytest.fixture(scope="module")
def processor(tiny_clip):
    return AutoImageProcessor.from_pretrained(tiny_clip)


@pytest.mark.parametrize("name", sorted(tortured()))
def test_decode_and_preprocess_equal_transformers_path(name, processor, tmp_path):
    data = tortured()[name]
    path = tmp_path / name
    path.write_bytes(data)
    assert Image.open(path).mode == name.split(".")[0].split("_")[0]  # the file really has that mode
    ref = processor(images=load_image(str(path)), return_tensors="np")["pixel_values"][0]
    ours = Preprocess.from_processor(processor)(decode_image(data))
    np.testing.assert_allclose(ours, ref, atol=1e-5)


def _sixteen_bit_files(v8: np.ndarray) -> dict[str, bytes]:
    v16 = v8.astype(np.uint16) * 257  # the 16-bit rendering of an 8-bit image (255 -> 65535)
    h, w = v8.shape
    return {
        "I;16 png": _save(Image.fromarray(v16), "PNG"),
        "I;16 tiff": _save(Image.fromarray(v16), "TIFF"),
        "I;16B tiff": _save(Image.frombytes("I;16B", (w, h), v16.astype(">u2").tobytes()), "TIFF"),
        "I tiff": _save(Image.fromarray(v16.astype(np.int32), mode="I"), "TIFF"),
    }


def test_sixteen_bit_equals_its_eight_bit_rendering(tmp_path):
    v8 = np.asarray(Image.fromarray(_rgb()).convert("L"))
    eight = np.asarray(decode_image(_save(Image.fromarray(v8), "PNG")))
    for name, data in _sixteen_bit_files(v8).items():
        assert Image.open(io.BytesIO(data)).mode == name.split()[0], name
        np.testing.assert_array_equal(np.asarray(decode_image(data)), eight, err_msg=name)
        # the deliberate difference: PIL's convert("RGB") (and so load_image) clips 16-bit data to white
        path = tmp_path / "x.png"
        path.write_bytes(data)
        assert np.asarray(load_image(str(path))).mean() > 250 > eight.mean()


def _exif_rotated(upright: Image.Image, orientation: int) -> bytes:
    """A JPEG whose pixels are stored so that EXIF ``orientation`` displays them as ``upright``."""
    inverse = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
               5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_90, 7: Image.Transpose.TRANSVERSE,
               8: Image.Transpose.ROTATE_270}[orientation]
    stored = upright.transpose(inverse)
    exif = Image.Exif()
    exif[0x0112] = orientation
    return _save(stored, "PNG", exif=exif.tobytes())


@pytest.mark.parametrize("orientation", range(2, 9))
def test_exif_orientation_is_applied(orientation):
    upright = Image.fromarray(_rgb(48, 96))
    data = _exif_rotated(upright, orientation)
    assert np.asarray(Image.open(io.BytesIO(data))).shape != np.asarray(upright).shape or orientation in (2, 3, 4)
    np.testing.assert_array_equal(np.asarray(decode_image(data)), np.asarray(upright))


def test_embedding_of_an_exif_rotated_image_equals_the_upright_one(tiny_clip, pacs_root):
    upright = Image.open(sorted((pacs_root / "photo" / "dog").iterdir())[0]).convert("RGB")
    enc = load_encoder(str(tiny_clip), "cpu")
    pixels = [enc.preprocess(decode_image(_save(upright, "PNG"))),
              enc.preprocess(decode_image(_exif_rotated(upright, 6))),
              enc.preprocess(upright.transpose(Image.Transpose.ROTATE_90))]  # what ignoring EXIF would embed
    E = enc.encode_images(np.stack(pixels))
    np.testing.assert_allclose(E[1], E[0], atol=1e-6)
    assert np.abs(E[2] - E[0]).max() > 1e-3


def test_bad_bytes_give_a_deterministic_reason():
    assert check_image(b"") == "zero-byte file"
    reasons = {check_image(b"not an image at all") for _ in range(2)}
    assert len(reasons) == 1 and "0x" not in reasons.pop()
