import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import AutoImageProcessor, AutoTokenizer, CLIPModel

from pipeline.embed import embed_images, prefetched_batches
from pipeline.encoders import ModelLoadError, fetch, load_encoder, provenance
from pipeline.randomclip import build_random_clip

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_real_clip_token_ids(tiny_clip):
    """The rebuilt vocabulary gives OpenAI CLIP's ids: <sot> a photo of a dog . <eot>."""
    tok = AutoTokenizer.from_pretrained(tiny_clip)
    assert tok("a photo of a dog.")["input_ids"] == [49406, 320, 1125, 539, 320, 1929, 269, 49407]
    assert len(tok) == 49408


def test_encoder_equals_plain_transformers(tiny_clip, pacs_root):
    enc = load_encoder(str(tiny_clip), "cpu")
    model = CLIPModel.from_pretrained(tiny_clip).eval()
    proc = AutoImageProcessor.from_pretrained(tiny_clip)
    tok = AutoTokenizer.from_pretrained(tiny_clip)
    paths = [str(sorted((pacs_root / d / "dog").iterdir())[0]) for d in ("photo", "sketch")]
    ours, _ = embed_images(paths, enc, batch_size=1, workers=2, progress=False)
    with torch.no_grad():
        ref = model.get_image_features(**proc(images=[Image.open(p) for p in paths], return_tensors="pt"))
        ref = getattr(ref, "pooler_output", ref).numpy()
        texts = ["a photo of a dog.", "a black and white drawing"]
        tref = model.get_text_features(**tok(texts, padding=True, return_tensors="pt"))
        tref = getattr(tref, "pooler_output", tref).numpy()
    assert ours.shape == (2, 64) and enc.dim == 64
    np.testing.assert_allclose(ours, ref, atol=1e-4, rtol=1e-4)
    np.testing.assert_allclose(enc.encode_texts(texts), tref, atol=1e-5, rtol=1e-5)


def test_batching_and_prefetch_keep_order(tiny_clip, pacs_root):
    enc = load_encoder(str(tiny_clip), "cpu")
    paths = [str(p) for p in sorted((pacs_root / "cartoon" / "giraffe").iterdir())[:7]]
    a, stats = embed_images(paths, enc, batch_size=3, workers=2, progress=False)
    b, _ = embed_images(paths, enc, batch_size=7, workers=1, progress=False)
    np.testing.assert_allclose(a, b, atol=1e-5)
    assert stats["images"] == 7 and stats["images_per_second"] > 0
    batches = list(prefetched_batches(list(range(10)), lambda i: np.array([i]), 4, 2, depth=1))
    assert [b.ravel().tolist() for b in batches] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


def test_weight_hash_and_provenance(tiny_clip, tmp_path):
    a = load_encoder(str(tiny_clip))
    other = load_encoder(str(build_random_clip(tmp_path / "s1", "tiny", seed=1)))
    again = load_encoder(str(build_random_clip(tmp_path / "s0", "tiny", seed=0)))
    assert a.weight_hash == again.weight_hash != other.weight_hash
    meta = provenance(a)
    assert meta["dim"] == 64 and meta["preprocessing"]["shortest_edge"] == 224 and "device" not in meta


def test_missing_local_dir_names_model_name(tmp_path):
    with pytest.raises(ModelLoadError, match="model.name="):
        load_encoder(str(tmp_path))


def test_a_hub_id_in_params_is_refused_with_the_fetch_command(tmp_path):
    """Stage model with a hub id: one line naming model.name and how to save it as a directory; exit 1."""
    params = tmp_path / "params.yaml"
    params.write_text("model: {name: openai/clip-vit-base-patch32}\nembed: {device: cpu}\n")
    r = subprocess.run([sys.executable, os.path.join(REPO, "stages", "model.py"), "--params", str(params),
                        "--out", str(tmp_path / "model.json")], capture_output=True, text=True, timeout=300,
                       cwd=tmp_path, env=dict(os.environ, HF_HUB_OFFLINE="1"))
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "model.name='openai/clip-vit-base-patch32'" in r.stderr
    assert "clipdg fetch openai/clip-vit-base-patch32 models/clip-vit-base-patch32" in r.stderr
    assert not (tmp_path / "model.json").exists()


def test_fetch_saves_a_directory_that_loads_the_same_weights(tiny_clip, tmp_path):
    """fetch goes through from_pretrained, which takes a hub id or a directory; offline we give it a directory."""
    out = fetch(str(tiny_clip), tmp_path / "fetched")
    assert load_encoder(str(out), "cpu").weight_hash == load_encoder(str(tiny_clip), "cpu").weight_hash
    with pytest.raises(ModelLoadError, match="cannot fetch 'no-such-org/no-such-model'"):
        fetch("no-such-org/no-such-model", tmp_path / "x")
