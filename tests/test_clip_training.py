"""Training a tiny MiniCLIP on real PACS images drives the loss down and retrieval up (issue 4)."""
import numpy as np
import torch

from pipeline.clip_training import caption_set, decode_uint8, retrieval, train
from pipeline.data import PACS_CLASSES
from pipeline.datasets import prepare_dataset
from pipeline.params import Data
from pipeline.miniclip import MiniCLIP, build_spec, load_tokenizer

DESCRIPTIONS = {"photo": "a photo", "sketch": "a black and white drawing"}


def build_manifest(root, data=Data(), cache=None):
    """Stage prepare's manifest, locator and report (the label space discovered as the stage does)."""
    return prepare_dataset(root, data, cache=cache)[:3]


def test_caption_set():
    texts, index = caption_set(DESCRIPTIONS, ["dog", "elephant"])
    assert texts == ["a photo of a dog", "a photo of an elephant",
                     "a black and white drawing of a dog", "a black and white drawing of an elephant"]
    assert index["sketch", "elephant"] == 3


def test_class_only_captions_never_name_a_domain_and_train_domains_pick_the_rows():
    """clip.captions: class_only -- one caption per class, shared by every domain, with no domain word;
    clip.train_domains -- the train split of those domains only, an unknown one refused naming the key."""
    import pandas as pd
    import pytest

    from pipeline.clip_training import training_rows
    from pipeline.errors import ParamsError

    texts, index = caption_set(DESCRIPTIONS, ["dog", "elephant"], mode="class_only")
    assert texts == ["a dog", "an elephant"]
    assert index["photo", "dog"] == index["sketch", "dog"] == 0
    assert not any(w in t for t in texts for desc in DESCRIPTIONS.values() for w in desc.split() if len(w) > 2)
    m = pd.DataFrame({"domain": ["photo", "photo", "sketch", "sketch"], "split": ["train", "test", "train", "train"]})
    assert training_rows(m, ["photo"]).tolist() == [True, False, False, False]
    assert training_rows(m, None).tolist() == [True, False, True, True]
    with pytest.raises(ParamsError, match="clip.train_domains: 'cartoon' is not a domain of this dataset"):
        training_rows(m, ["cartoon"])


def test_decode_is_cached_uint8(pacs_subset):
    _, loc, _ = build_manifest(pacs_subset, Data(domains=list(DESCRIPTIONS), on_bad_image="skip"))
    x = decode_uint8(loc["path"].tolist()[:4], 32)
    assert x.dtype == np.uint8 and x.shape == (4, 3, 32, 32) and x.max() > 100


def test_training_on_real_pacs_lowers_loss_and_raises_retrieval(pacs_subset):
    df, loc, _ = build_manifest(pacs_subset, Data(domains=list(DESCRIPTIONS), on_bad_image="skip"))
    captions, index = caption_set(DESCRIPTIONS, PACS_CLASSES)
    cap = np.array([index[d, c] for d, c in zip(df["domain"], df["class"])])
    images = decode_uint8(loc["path"].tolist(), 32)
    torch.manual_seed(0)
    spec = build_spec("resnet", "gpt2", embed_dim=32, image_size=32, image={"width": 8},
                      text={"width": 32, "depth": 1, "heads": 2}, max_length=16)
    model, tok = MiniCLIP(spec), load_tokenizer(spec)
    before = retrieval(model, tok, images, cap, captions, ks=(1, 5))
    log = train(model, tok, images, cap, captions, epochs=40, batch_size=35, lr=3e-3, text_lr_scale=1.0,
                triplet_weight=0.5, seed=0)
    after = retrieval(model, tok, images, cap, captions, ks=(1, 5))
    first, last = np.mean([r["loss"] for r in log[:3]]), np.mean([r["loss"] for r in log[-3:]])
    assert last < 0.6 * first, (first, last)
    assert after[1] > max(before[1] + 0.2, 3 / len(captions)), (before, after)
    assert log[-1]["temperature"] != log[0]["temperature"]  # the temperature is learned
