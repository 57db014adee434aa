"""MiniCLIP towers, save / load, and the encoder interface (issue 4)."""
import numpy as np
import pytest
import torch

from pipeline.encoders import ModelLoadError, load_encoder
from pipeline.miniclip import (MiniCLIP, build_spec, load_miniclip, load_tokenizer, save_miniclip, tokenize,
                               write_not_trained)

TEXTS = ["a photo of a dog", "a picture of a dog", "an art painting of an electric guitar"]


@pytest.fixture(scope="module")
def resnet_gpt2():
    torch.manual_seed(0)
    spec = build_spec("resnet", "gpt2", embed_dim=16, image_size=32, image={"width": 8},
                      text={"width": 32, "depth": 1, "heads": 2}, max_length=16)
    return MiniCLIP(spec).eval(), load_tokenizer(spec)


def test_towers_give_normalised_embeddings_of_the_shared_dim(resnet_gpt2):
    model, tok = resnet_gpt2
    x = torch.randn(3, 3, 32, 32)
    e = model.encode_image(x)
    assert e.shape == (3, 16) and torch.allclose(e.norm(dim=1), torch.ones(3))
    ids, mask = tokenize(tok, TEXTS, 16)
    assert ids[0, 0].item() == 49406  # CLIP's real BPE: <|startoftext|>
    t = model.encode_text(ids, mask)
    assert t.shape == (3, 16) and torch.allclose(t.norm(dim=1), torch.ones(3))
    torch.manual_seed(0)
    vit = MiniCLIP(build_spec("vit", "gpt2", embed_dim=16, image_size=32, image={"patch": 8, "width": 32, "depth": 1,
                                                                               "heads": 2}, text={"width": 32, "depth": 1, "heads": 2}))
    assert vit.encode_image(x).shape == (3, 16)
    with pytest.raises(ValueError, match="clip.image"):
        build_spec("alexnet")


def test_save_load_roundtrip_and_encoder_interface(resnet_gpt2, tmp_path):
    model, tok = resnet_gpt2
    out = save_miniclip(model, tok, tmp_path / "m")
    assert not (tmp_path / "m.tmp").exists()
    again, tok2 = load_miniclip(out)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(again.encode_image(x), model.encode_image(x.clone()), atol=1e-6)
    enc = load_encoder(str(out), "cpu")
    got = enc.encode_texts(TEXTS)
    ids, mask = tokenize(tok, TEXTS, 16)
    with torch.no_grad():
        np.testing.assert_allclose(got, model.encode_text(ids, mask).numpy(), atol=1e-6)
    assert enc.dim == 16 and enc.preprocess.crop_hw == (32, 32)
    assert len(enc.weight_hash) == 64


def test_minilm_tower_is_pretrained():
    spec = build_spec("resnet", "minilm", embed_dim=16, image_size=32, image={"width": 8})
    model = MiniCLIP(spec).eval()
    tok = load_tokenizer(spec)
    ids, mask = tokenize(tok, TEXTS, 32)
    with torch.no_grad():
        h = torch.nn.functional.normalize(model.text(ids, mask), dim=-1)
    # real sentence embeddings: paraphrases are closer than unrelated captions
    assert (h[0] @ h[1]) > (h[0] @ h[2]) + 0.2


def test_missing_miniclip_names_the_stage(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match="train_clip"):
        load_encoder("models/miniclip", "cpu")
    write_not_trained(tmp_path / "models" / "miniclip")  # train_clip's note for another model.name
    with pytest.raises(ModelLoadError, match="holds no trained MiniCLIP"):
        load_encoder("miniclip:models/miniclip", "cpu")


def test_minilm_roundtrip(tmp_path):
    spec = build_spec("vit", "minilm", embed_dim=8, image_size=32, image={"patch": 16, "width": 16, "depth": 1, "heads": 2})
    model, tok = MiniCLIP(spec).eval(), load_tokenizer(spec)
    enc = load_encoder(str(save_miniclip(model, tok, tmp_path / "m")), "cpu")
    ids, mask = tokenize(tok, TEXTS, 32)
    with torch.no_grad():
        np.testing.assert_allclose(enc.encode_texts(TEXTS), model.encode_text(ids, mask).numpy(), atol=1e-5)
