"""Layer-wise features (embed.layers): each block pooled as the family pools its last one, stored from the same
pass, its own cache namespace (an added block writes only itself), float16 storage, and stage layerwise's maths."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import torch

from pipeline.data import MANIFEST_COLUMNS, make_subset
from pipeline.datasets import prepare_dataset
from pipeline.embed import embed_to_cache, feature_kinds, load_pixels
from pipeline.encoders import load_encoder
from pipeline.encoders.base import pooled_output
from pipeline.miniclip import SmallResNet, SmallViT
from pipeline.params import Data
from pipeline.store import read_table


@pytest.fixture(scope="module")
def manifest(pacs_root, tmp_path_factory) -> pd.DataFrame:
    manifest, locator, _ = prepare_dataset(make_subset(pacs_root, tmp_path_factory.mktemp("pacs2"), per_class=2), Data())[:3]
    return manifest.assign(path=locator["path"].to_numpy()).iloc[:24]


@pytest.fixture(scope="module")
def encoder(tiny_clip):
    return load_encoder(str(tiny_clip), "cpu")


def pixels(enc, df) -> torch.Tensor:
    return torch.from_numpy(np.stack([load_pixels(p, enc.preprocess) for p in df["path"]]))


def test_clip_layers_equal_transformers_hidden_states_pooled_as_the_model_pools(encoder, manifest):
    """layer_i = post_layernorm(hidden_states[i][:, 0]) from transformers itself; the last one is pooler_output."""
    x = pixels(encoder, manifest.iloc[:4])
    names = encoder.blocks()
    assert [n for n, _ in names] == ["embeddings", "block 1", "block 2"] and encoder.check_layers("all") == (0, 1, 2)
    with torch.no_grad():
        ours = encoder.image_features(x, (0, 1, 2))
        ref = encoder.model.vision_model(pixel_values=x, output_hidden_states=True)
        last = len(ref.hidden_states) - 1
        assert last == 2
        for i in range(3):
            want = encoder.model.vision_model.post_layernorm(ref.hidden_states[i][:, 0])
            torch.testing.assert_close(ours[f"layer_{i}"], want, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(ours["layer_2"], ref.pooler_output, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(ours["projected"], pooled_output(encoder.model.get_image_features(pixel_values=x)),
                                   atol=1e-5, rtol=1e-5)


def test_siglip_layers_go_through_the_attention_pooling_head(tmp_path):
    from pipeline.randomclip import build_random_siglip

    enc = load_encoder(f"siglip:{build_random_siglip(tmp_path / 's', 'tiny')}", "cpu")
    x = torch.randn(2, 3, *enc.preprocess.output_hw())
    with torch.no_grad():
        ours = enc.image_features(x, (1, 2))
        vision = enc.model.vision_model
        ref = vision(pixel_values=x, output_hidden_states=True)
        torch.testing.assert_close(ours["layer_1"], vision.head(vision.post_layernorm(ref.hidden_states[1])))
        torch.testing.assert_close(ours["layer_2"], ref.pooler_output, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("tower", [SmallResNet(8, 2), SmallViT(32, 8, 32, 3, 2)], ids=["resnet", "vit"])
def test_miniclip_towers_expose_each_block_and_the_last_is_the_pooled_output(tower):
    tower.eval()
    x = torch.randn(3, 3, 32, 32)
    n = len(tower.block_names())
    with torch.no_grad():
        pooled, per = tower.forward_blocks(x, tuple(range(n)))
        torch.testing.assert_close(pooled, tower(x))
        torch.testing.assert_close(per[n - 1], pooled)
    assert [per[i].shape[1] for i in range(n)] == [w for _, w in tower.block_names()]


def test_an_added_layer_writes_only_its_own_namespace(encoder, manifest, tmp_path):
    """Asking for block 2 after blocks 0 leaves every shard already written untouched and writes block 2 only; the
    layers come from the same pass as the projected feature (the projected store is unchanged)."""
    kw = {"batch_size": 4, "shard_size": 8, "progress": False}
    first, _ = embed_to_cache(manifest, encoder, tmp_path / "c", kinds=feature_kinds("projected", (0,)), **kw)
    before = {p: p.stat().st_mtime_ns for p in (tmp_path / "c").rglob("shard-*.parquet")}
    assert len({p.parent for p in before}) == 2
    second, stats = embed_to_cache(manifest, encoder, tmp_path / "c", kinds=feature_kinds("projected", (0, 2)), **kw)
    after = {p: p.stat().st_mtime_ns for p in (tmp_path / "c").rglob("shard-*.parquet")}
    assert {p: after[p] for p in before} == before  # nothing rewritten
    new = set(after) - set(before)
    assert {p.parent for p in new} == {second["layer_2"].dir} and len(new) == 3  # 24 images, shards of 8
    df = manifest[MANIFEST_COLUMNS]
    second.assemble(tmp_path / "layers.parquet", df, {}, kinds=("layer_0", "layer_2"))
    second.assemble(tmp_path / "images.parquet", df, {}, kinds=("projected",))
    L2 = read_table(tmp_path / "layers.parquet", "layer_2")[1]
    with torch.no_grad():
        ref = encoder.model.vision_model(pixel_values=pixels(encoder, manifest)).pooler_output.numpy()
    np.testing.assert_allclose(L2, ref, atol=1e-4)
    assert read_table(tmp_path / "images.parquet", "layer_2")[1] is None


def test_float16_layers_are_their_own_namespace_and_half_the_bytes(encoder, manifest, tmp_path):
    kw = {"batch_size": 4, "shard_size": 8, "progress": False, "kinds": feature_kinds("projected", (1,))}
    full, _ = embed_to_cache(manifest, encoder, tmp_path / "c", **kw)
    half, stats = embed_to_cache(manifest, encoder, tmp_path / "c", layer_dtype="float16", **kw)
    assert half["layer_1"].dir != full["layer_1"].dir and half["projected"].dir == full["projected"].dir
    df = manifest[MANIFEST_COLUMNS]
    full.assemble(tmp_path / "f32.parquet", df, {}, kinds=("layer_1",))
    half.assemble(tmp_path / "f16.parquet", df, {}, kinds=("layer_1",))
    assert str(pq.read_schema(tmp_path / "f16.parquet").field("layer_1").type.value_type) == "halffloat"
    a, b = read_table(tmp_path / "f32.parquet", "layer_1")[1], read_table(tmp_path / "f16.parquet", "layer_1")[1]
    assert b.dtype == np.float32 and np.abs(a - b).max() <= 2e-3 * np.abs(a).max()


def test_a_block_out_of_range_names_the_key(encoder):
    with pytest.raises(ValueError, match=r"embed.layers: block 7 does not exist; .* blocks 0..2 \(embeddings, block 1"):
        encoder.check_layers([0, 7])
    assert encoder.check_layers(None) == () and encoder.check_layers([2, 0, 2]) == (0, 2)


def test_layerwise_scores_each_block_and_finds_the_planted_one(tmp_path):
    """A world where block 1 carries the class and block 0 only noise: block 1's accuracy is the higher, the curve
    has a row per block and protocol, and its gaps follow the planted domain shift."""
    from pipeline.cellcache import CellCache
    from pipeline.layer_gaps import layer_gaps, rms_scaled
    from pipeline.layerwise import curve, headline, score_layers, wide_curve
    from pipeline.params import Params

    rng = np.random.default_rng(0)
    domains, n, d = ["a", "b", "c"], 60, 8
    dom = np.repeat(domains, n)
    y = np.tile(np.arange(3), len(dom) // 3)
    images = pd.DataFrame({"image_id": [f"{i:064x}" for i in range(len(dom))], "domain": dom, "label": y,
                           "class": y.astype(str), "split": "train"})
    shift = {"a": 0.0, "b": 1.0, "c": 3.0}
    X0 = rng.normal(size=(len(dom), d)).astype(np.float32)
    X1 = (rng.normal(size=(len(dom), d)) + 3 * np.eye(3, d)[y] + np.array([shift[k] for k in dom])[:, None]).astype(np.float32)
    p = Params.model_validate({"evaluation": {"trials": 2, "selection": ["train_val"]}, "classifier": {"C": [1.0]},
                               "gap": {"subset_size": 20, "n_boot": 3, "n_subsets": 3},
                               "layerwise": {"gap_metrics": ["fid", "coral"]}})
    blocks = [(0, "noise", X0), (1, "signal", lambda: X1)]  # an array, or a loader the stages pass
    acc = score_layers(images, blocks, domains, ["0", "1", "2"], p, CellCache(tmp_path / "cells"), fixed_test=False,
                       progress=False)
    gaps = layer_gaps(dom, blocks, domains, p)
    assert set(gaps["metric"]) == {"fid", "coral"} and len(gaps) == 4
    s = curve(acc)
    wide = wide_curve(s, gaps)
    assert wide["name"].tolist() == ["noise", "signal"] and (wide["lodo"].iloc[1] > wide["lodo"].iloc[0] + 0.3)
    assert headline(s)["best_lodo_by_test_accuracy"] == "signal" and set(s["trials"]) == {2}
    assert wide["fid"].iloc[1] > wide["fid"].iloc[0]  # the planted shift lives in block 1
    assert np.isclose(np.sqrt(np.mean((rms_scaled(X1) - rms_scaled(X1).mean(0)) ** 2)), 1.0, atol=1e-5)


def test_a_layer_store_of_other_rows_is_refused(tmp_path):
    from pipeline.layer_gaps import read_layer
    from pipeline.store import write_table

    ids = pd.DataFrame({"image_id": ["a", "b"]})
    write_table(tmp_path / "layers.parquet", ids, vectors={"layer_0": np.ones((2, 3), np.float32)})
    assert read_layer(tmp_path / "layers.parquet", "layer_0", ids).shape == (2, 3)
    with pytest.raises(ValueError, match="hold different rows; rerun embed_images"):
        read_layer(tmp_path / "layers.parquet", "layer_0", pd.DataFrame({"image_id": ["b", "a"]}))
