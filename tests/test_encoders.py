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


# ------------------------------------------------------------------------------------------- families
@pytest.fixture(scope="module")
def tiny_siglip(tmp_path_factory):
    from pipeline.randomclip import build_random_siglip

    return build_random_siglip(tmp_path_factory.mktemp("siglip") / "tiny", "tiny", seed=0)


def test_a_prefix_or_the_directory_chooses_the_family(tiny_clip, tiny_siglip, tmp_path):
    from pipeline.encoders import resolve_model
    from pipeline.errors import ParamsError

    assert resolve_model(str(tiny_clip)) == ("hf_clip", tiny_clip) == resolve_model(f"hf_clip:{tiny_clip}")
    assert resolve_model(str(tiny_siglip))[0] == "siglip" == load_encoder(f"siglip:{tiny_siglip}", "cpu").family
    with pytest.raises(ParamsError, match="model.name: unknown encoder family 'sigilp' \\(did you mean 'siglip'\\?\\)"):
        resolve_model(f"sigilp:{tiny_siglip}")
    with pytest.raises(ModelLoadError, match="is not a open_clip directory"):
        resolve_model(f"open_clip:{tiny_clip}")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelLoadError, match="is no model directory of any family"):
        resolve_model(str(tmp_path / "empty"))


def test_siglip_features_equal_transformers_documented_usage(tiny_siglip, pacs_root):
    """SigLIP's model card: ``processor(text=..., images=..., padding="max_length")`` then the model. The pipeline's
    text features (max-length padding from the processor), image features (its own preprocessing of the
    decoded image) and logit semantics equal that."""
    from transformers import AutoModel, AutoProcessor

    from pipeline.images import decode_image, read_image_bytes

    enc = load_encoder(str(tiny_siglip), "cpu")
    model, processor = AutoModel.from_pretrained(tiny_siglip).eval(), AutoProcessor.from_pretrained(tiny_siglip)
    texts = ["a photo of 2 cats", "a photo of a dog"]
    paths = [str(sorted((pacs_root / d / "dog").iterdir())[0]) for d in ("photo", "sketch")]
    images = [decode_image(read_image_bytes(p)) for p in paths]
    inputs = processor(text=texts, images=images, padding="max_length", return_tensors="pt")
    assert inputs["input_ids"].shape[1] == enc.text["max_length"] == processor.tokenizer.model_max_length
    with torch.no_grad():
        out = model(**inputs)
        ref_t = model.get_text_features(**{k: v for k, v in inputs.items() if k != "pixel_values"})
        ref_i = model.get_image_features(pixel_values=inputs["pixel_values"])
    ours_i, _ = embed_images(paths, enc, batch_size=2, workers=1, progress=False)
    np.testing.assert_allclose(enc.encode_texts(texts), getattr(ref_t, "pooler_output", ref_t).numpy(), atol=1e-5)
    np.testing.assert_allclose(ours_i, getattr(ref_i, "pooler_output", ref_i).numpy(), atol=1e-4)
    assert (enc.objective, enc.padding) == ("sigmoid", "max_length")
    t, i = enc.encode_texts(texts), ours_i
    cos = (i / np.linalg.norm(i, axis=1, keepdims=True)) @ (t / np.linalg.norm(t, axis=1, keepdims=True)).T
    np.testing.assert_allclose(enc.logit_scale * cos + enc.logit_bias, out.logits_per_image.numpy(), atol=1e-4)
    meta = provenance(enc)
    assert (meta["objective"], meta["logit_scale"], meta["logit_bias"]) == ("sigmoid", 1.0, 0.0)


def test_softmax_over_sigmoid_logits_is_the_exactly_one_class_posterior():
    """What the CLIP inception score reads from a SigLIP: its independent sigmoids conditioned on exactly one
    class, which is softmax(s cos) whatever the bias."""
    from pipeline.imagefree.zeroshot import ZeroShotClassifier

    rng = np.random.default_rng(0)
    W, X = rng.normal(size=(5, 8)), rng.normal(size=(3, 8))
    zs = ZeroShotClassifier.for_model(W, {"logit_scale": 10.0, "logit_bias": -10.0, "objective": "sigmoid"})
    z = 10.0 * zs.decision_function(X) - 10.0
    p = 1 / (1 + np.exp(-z))
    exactly_one = np.stack([p[:, c] * np.prod(np.delete(1 - p, c, axis=1), axis=1) for c in range(5)], axis=1)
    np.testing.assert_allclose(zs.predict_proba(X), exactly_one / exactly_one.sum(1, keepdims=True), rtol=1e-9)


def test_pooled_features_are_the_pre_projection_outputs(tiny_clip, tmp_path):
    from pipeline.miniclip import MiniCLIP, build_spec, load_tokenizer, save_miniclip

    x = torch.randn(2, 3, 224, 224)
    enc = load_encoder(str(tiny_clip), "cpu")
    both = enc.encode_images(x.numpy(), ("projected", "pooled"))
    with torch.no_grad():
        pooled = enc.model.vision_model(pixel_values=x).pooler_output
        ref = enc.model.get_image_features(pixel_values=x)
    np.testing.assert_allclose(both["pooled"], pooled.numpy(), atol=1e-5)
    np.testing.assert_allclose(both["projected"], getattr(ref, "pooler_output", ref).numpy(), atol=1e-5)
    assert enc.pooled_dim == 64 == both["pooled"].shape[1]
    torch.manual_seed(0)
    spec = build_spec("resnet", "gpt2", embed_dim=16, image_size=32, image={"width": 8},
                      text={"width": 32, "depth": 1, "heads": 2}, max_length=16)
    mini = load_encoder(str(save_miniclip(MiniCLIP(spec).eval(), load_tokenizer(spec), tmp_path / "m")), "cpu")
    x = torch.randn(2, 3, 32, 32)
    feats = mini.encode_images(x.numpy(), ("projected", "pooled"))
    with torch.no_grad():
        np.testing.assert_allclose(feats["pooled"], mini.model.image(x).numpy(), atol=1e-5)
        np.testing.assert_allclose(feats["projected"], mini.model.encode_image(x).numpy(), atol=1e-5)
    assert feats["pooled"].shape == (2, 64) and mini.pooled_dim == 64


# -------------------------------------------------------------------------------------------- open_clip
@pytest.fixture(scope="module")
def open_clip_model():
    """open_clip's own model code (open_clip.model), imported without open_clip/__init__: the package imports
    torchvision, which no wheel on the index imports beside the pinned CPU torch; the model code needs only
    torchvision's FrozenBatchNorm2d (to freeze ResNet towers), given here as an inert stand-in for the import."""
    import importlib
    import importlib.util
    import types
    from pathlib import Path

    import transformers  # noqa: F401  (imported first: its availability checks must not see the stand-in)

    saved = {k: sys.modules.get(k) for k in ("open_clip", "torchvision", "torchvision.ops", "torchvision.ops.misc")}
    stand_in = {n: types.ModuleType(n) for n in ("torchvision", "torchvision.ops", "torchvision.ops.misc")}
    stand_in["torchvision.ops.misc"].FrozenBatchNorm2d = type("FrozenBatchNorm2d", (torch.nn.Module,), {})
    spec = importlib.util.find_spec("open_clip")
    package = types.ModuleType("open_clip")
    package.__spec__, package.__path__ = spec, [str(Path(spec.origin).parent)]
    sys.modules.update({"open_clip": package, **stand_in})
    try:
        model = importlib.import_module("open_clip.model")
    finally:
        for k, v in saved.items():
            if k != "open_clip":
                sys.modules.pop(k, None) if v is None else sys.modules.__setitem__(k, v)
    return model


OPEN_CLIP_CFG = {"embed_dim": 32, "quick_gelu": True,
                 "vision_cfg": {"image_size": 64, "layers": 2, "width": 64, "patch_size": 16, "head_width": 32},
                 "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 48, "heads": 4, "layers": 2}}


def save_open_clip(model_module, out, cfg=OPEN_CLIP_CFG, seed=0):
    """A random open_clip CLIP saved in open_clip's hf-hub layout (open_clip_config.json + safetensors)."""
    import json

    from safetensors.torch import save_file

    torch.manual_seed(seed)
    model = model_module.CLIP(**{k: v for k, v in cfg.items() if k != "quick_gelu"}, quick_gelu=cfg["quick_gelu"]).eval()
    with torch.no_grad():
        model.logit_scale.fill_(4.2)
    out.mkdir(parents=True)
    (out / "open_clip_config.json").write_text(json.dumps({"model_cfg": cfg, "preprocess_cfg": {
        "mean": [0.5, 0.4, 0.3], "std": [0.2, 0.25, 0.3]}}))
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(out / "open_clip_model.safetensors"))
    return model


def test_open_clip_loads_by_conversion_equal_to_open_clips_own_features(open_clip_model, tmp_path):
    """The open_clip: loader (and `clipdg convert`) give open_clip's own encode_image / encode_text."""
    from pipeline.encoders.open_clip import save_converted

    ref = save_open_clip(open_clip_model, tmp_path / "oc")
    texts = ["a photo of a dog.", "an art painting of an electric guitar"]
    x = torch.randn(3, 3, 64, 64)
    enc = load_encoder(f"open_clip:{tmp_path / 'oc'}", "cpu")
    assert enc.family == "open_clip" == load_encoder(str(tmp_path / "oc"), "cpu").family
    ids = [enc.tokenizer(t)["input_ids"] for t in texts]
    tokens = torch.zeros(len(texts), 77, dtype=torch.long)  # open_clip's tokenizer: <sot> ... <eot>, 0-padded
    for row, i in zip(tokens, ids):
        row[:len(i)] = torch.tensor(i)
    with torch.no_grad():
        want_i, want_t = ref.encode_image(x).numpy(), ref.encode_text(tokens).numpy()
    np.testing.assert_allclose(enc.encode_images(x.numpy()), want_i, atol=1e-5)
    np.testing.assert_allclose(enc.encode_texts(texts), want_t, atol=1e-5)
    assert abs(enc.logit_scale - np.exp(4.2)) < 1e-3
    assert enc.preprocess.mean == (0.5, 0.4, 0.3) and enc.preprocess.crop_hw == (64, 64)
    with torch.no_grad():
        pooled = ref.visual.ln_post(_open_clip_tokens(ref.visual, x)[:, 0]).numpy()
    np.testing.assert_allclose(enc.encode_images(x.numpy(), ("pooled",)), pooled, atol=1e-5)
    converted = load_encoder(str(save_converted(tmp_path / "oc", tmp_path / "hf")), "cpu")
    assert converted.family == "hf_clip" and converted.weight_hash == enc.weight_hash
    np.testing.assert_allclose(converted.encode_texts(texts), want_t, atol=1e-5)


def _open_clip_tokens(visual, x):
    """open_clip's VisionTransformer up to its final LayerNorm (the class token before ``proj``)."""
    z = visual.conv1(x).flatten(2).transpose(1, 2)
    z = torch.cat([visual.class_embedding.expand(len(z), 1, -1), z], 1) + visual.positional_embedding
    return visual.transformer(visual.ln_pre(z))


def test_open_clip_configs_without_a_counterpart_are_refused_by_name(open_clip_model, tmp_path):
    import json

    save_open_clip(open_clip_model, tmp_path / "oc")
    cfg = json.loads((tmp_path / "oc" / "open_clip_config.json").read_text())
    cfg["model_cfg"]["vision_cfg"]["attentional_pool"] = True
    (tmp_path / "oc" / "open_clip_config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelLoadError, match="vision_cfg.attentional_pool=True has no transformers CLIPModel"):
        load_encoder(str(tmp_path / "oc"), "cpu")
