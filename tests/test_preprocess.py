"""Our PIL+numpy preprocessing must equal the model's own transformers image processor."""
import numpy as np
import pytest
from PIL import Image
from transformers import AutoImageProcessor

from pipeline.preprocess import Preprocess


@pytest.fixture(scope="module")
def processor(tiny_clip):
    return AutoImageProcessor.from_pretrained(tiny_clip)


def _real_images(pacs_root):
    files = [sorted((pacs_root / d / "horse").iterdir())[i] for d in ("photo", "art_painting", "cartoon", "sketch")
             for i in (0, 7)]
    return [Image.open(f) for f in files]


def _synthetic_images():
    rng = np.random.default_rng(0)
    shapes = [(300, 200), (150, 400), (224, 224), (97, 500), (640, 480)]
    return [Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)) for h, w in shapes] + [
        Image.fromarray(rng.integers(0, 256, (120, 260), dtype=np.uint8), mode="L")]


def test_settings_read_from_processor(processor):
    pre = Preprocess.from_processor(processor)
    assert pre.shortest_edge == 224 and pre.crop_hw == (224, 224) and pre.resample == 3
    assert pre.mean == pytest.approx((0.48145466, 0.4578275, 0.40821073))


def test_equals_transformers_on_real_pacs(processor, pacs_root):
    pre = Preprocess.from_processor(processor)
    for img in _real_images(pacs_root):
        ref = processor(images=img, return_tensors="np")["pixel_values"][0]
        ours = pre(img)
        assert ours.shape == ref.shape == (3, 224, 224)
        np.testing.assert_allclose(ours, ref, atol=1e-5)


def test_equals_transformers_on_odd_shapes_and_grayscale(processor):
    pre = Preprocess.from_processor(processor)
    for img in _synthetic_images():
        ref = processor(images=img, return_tensors="np")["pixel_values"][0]
        np.testing.assert_allclose(pre(img), ref, atol=1e-5)


def test_fixed_size_family_without_crop():
    """SigLIP-style processors resize to an exact size and do not crop."""
    from transformers import CLIPImageProcessor

    proc = CLIPImageProcessor(size={"height": 96, "width": 128}, do_center_crop=False)
    pre = Preprocess.from_processor(proc)
    img = _synthetic_images()[0]
    ref = proc(images=img, return_tensors="np")["pixel_values"][0]
    np.testing.assert_allclose(pre(img), ref, atol=1e-5)
