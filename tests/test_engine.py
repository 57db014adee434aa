"""The embedding engine (issue 6): incremental cache, kill + resume, sharding, Ray, ONNX runtime."""
from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from pipeline.params import Data
from pipeline.data import LOCATOR_COLUMNS, MANIFEST_COLUMNS, make_subset
from pipeline.datasets import prepare_dataset
from pipeline.embed import embed_to_cache, embed_with_ray, image_runtime, parse_shard, plan_blocks
from pipeline.encoders import load_encoder, model_fingerprint, provenance
from pipeline.featcache import FeatureCache
from pipeline.miniclip import MiniCLIP, build_spec, load_tokenizer, save_miniclip
from pipeline.randomclip import build_random_clip
from pipeline.store import read_table, write_json, write_table

REPO = Path(__file__).resolve().parents[1]


def build_manifest(root, data=Data(), cache=None):
    """Stage prepare's manifest, locator and report (the label space discovered as the stage does)."""
    return prepare_dataset(root, data, cache=cache)[:3]


def sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def manifest6(pacs_root, tmp_path_factory) -> pd.DataFrame:
    """6 real PACS images per domain x class (168)."""
    manifest, locator, _ = build_manifest(make_subset(pacs_root, tmp_path_factory.mktemp("pacs6"), per_class=6))
    return manifest.assign(path=locator["path"].to_numpy())


@pytest.fixture(scope="module")
def encoder(tiny_clip):
    return load_encoder(str(tiny_clip), "cpu")


def embed_and_assemble(df, enc, cache_dir, out, **kw):
    kw = {"batch_size": 4, "shard_size": 8, "progress": False, **kw}
    cache, stats = embed_to_cache(df, enc, cache_dir, **kw)
    cache.assemble(out, df[MANIFEST_COLUMNS], provenance(enc))
    return stats


def test_incremental_reuse_counts_on_real_pacs(manifest6, encoder, tiny_clip, tmp_path):
    """Adding 10 images embeds 10; removing drops rows only; a duplicate file is embedded once;
    another model recomputes all."""
    rng = np.random.default_rng(0)
    new = rng.choice(len(manifest6), 10, replace=False)
    base = manifest6.drop(index=new).reset_index(drop=True)
    stats = embed_and_assemble(base, encoder, tmp_path / "c", tmp_path / "a.parquet")
    assert (stats["embedded"], stats["reused"]) == (158, 0)

    stats = embed_and_assemble(manifest6, encoder, tmp_path / "c", tmp_path / "b.parquet")
    assert (stats["embedded"], stats["reused"]) == (10, 158)
    fresh = embed_and_assemble(manifest6, encoder, tmp_path / "fresh", tmp_path / "f.parquet")
    assert fresh["embedded"] == 168
    b, Xb, meta = read_table(tmp_path / "b.parquet")
    f, Xf, _ = read_table(tmp_path / "f.parquet")
    pd.testing.assert_frame_equal(b, f)
    np.testing.assert_allclose(Xb, Xf, atol=1e-5)  # the 10 new images were batched apart from the rest
    assert meta["weight_sha256"] == encoder.weight_hash

    fewer = manifest6.iloc[20:].reset_index(drop=True)
    dup = fewer.iloc[[0]].assign(path="elsewhere/same_bytes.jpg")  # same content, another path
    fewer = pd.concat([fewer, dup], ignore_index=True)
    stats = embed_and_assemble(fewer, encoder, tmp_path / "c", tmp_path / "c.parquet")
    assert (stats["embedded"], stats["reused"]) == (0, 148)
    c, Xc, _ = read_table(tmp_path / "c.parquet")
    assert len(c) == 149 and c["image_id"].tolist() == fewer["image_id"].tolist() and "path" not in c
    np.testing.assert_array_equal(Xc[-1], Xc[0])
    rows = {h: i for i, h in enumerate(b["image_id"])}
    np.testing.assert_array_equal(Xc[:-1], Xb[[rows[h] for h in c["image_id"][:-1]]])

    other = load_encoder(str(build_random_clip(tmp_path / "seed1", "tiny", seed=1)), "cpu")
    stats = embed_and_assemble(manifest6, other, tmp_path / "c", tmp_path / "d.parquet")
    assert (stats["embedded"], stats["reused"]) == (168, 0)
    assert len(list((tmp_path / "c").iterdir())) == 2  # one namespace per model


def test_a_truncated_shard_is_logged_and_embedded_again(manifest6, encoder, tmp_path, caplog):
    df = manifest6.iloc[:24]
    embed_and_assemble(df, encoder, tmp_path / "c", tmp_path / "a.parquet")
    shard = sorted((tmp_path / "c").rglob("shard-*.parquet"))[1]
    shard.write_bytes(shard.read_bytes()[:200])  # a crash mid-copy, a full disk
    stats = embed_and_assemble(df, encoder, tmp_path / "c", tmp_path / "b.parquet")
    assert "deleting unreadable shard" in caplog.text and (stats["embedded"], stats["reused"]) == (8, 16)
    assert sha(tmp_path / "a.parquet") == sha(tmp_path / "b.parquet")


def test_pooled_features_have_their_own_namespace_and_both_come_from_one_pass(manifest6, encoder, tmp_path):
    """embed.features: both stores the joint-space and the pre-projection features; asking for pooled later
    embeds only what that kind lacks, and the projected store is unchanged."""
    df = manifest6.iloc[:16]
    embed_and_assemble(df, encoder, tmp_path / "c", tmp_path / "proj.parquet")
    stats = embed_and_assemble(df, encoder, tmp_path / "c", tmp_path / "both.parquet", kinds=("projected", "pooled"))
    assert stats["embedded"] == 16 and len({p.parent for p in (tmp_path / "c").rglob("shard-*.parquet")}) == 2
    proj, pooled = read_table(tmp_path / "both.parquet")[1], read_table(tmp_path / "both.parquet", "pooled")[1]
    np.testing.assert_array_equal(proj, read_table(tmp_path / "proj.parquet")[1])
    with torch.no_grad():
        from pipeline.embed import load_pixels

        px = torch.from_numpy(np.stack([load_pixels(p, encoder.preprocess) for p in df["path"]]))
        ref = encoder.model.vision_model(pixel_values=px).pooler_output.numpy()
    np.testing.assert_allclose(pooled, ref, atol=1e-4)
    again = embed_and_assemble(df, encoder, tmp_path / "c", tmp_path / "again.parquet", kinds=("pooled",))
    assert again["embedded"] == 0 and read_table(tmp_path / "again.parquet")[1] is None


def test_sharded_runs_build_the_identical_store(manifest6, encoder, tmp_path):
    embed_and_assemble(manifest6, encoder, tmp_path / "one", tmp_path / "one.parquet")
    left = []
    for i in range(3):
        _, stats = embed_to_cache(manifest6, encoder, tmp_path / "three", batch_size=4, shard_size=8,
                                  shard=(i, 3), progress=False)
        left.append((stats["embedded"], stats["left_to_other_shards"]))
    assert left == [(56, 112), (56, 56), (56, 0)]  # 21 blocks of 8: 7 each; later shards see earlier ones
    stats = embed_and_assemble(manifest6, encoder, tmp_path / "three", tmp_path / "three.parquet")
    assert (stats["embedded"], stats["reused"]) == (0, 168)
    assert sha(tmp_path / "one.parquet") == sha(tmp_path / "three.parquet")


def write_stage_inputs(tmp_path: Path, df: pd.DataFrame, model: Path, **embed) -> Path:
    params = {"model": {"name": str(model)},
              "embed": {"batch_size": 4, "device": "cpu", "workers": 2, "runtime": "auto", "threads": 0,
                        "shard_size": 4, "cache_dir": str(tmp_path / "cache"), "engine": "local",
                        "ray": {"address": None, "actors": 2, "cpus_per_actor": 1, "gpus_per_actor": 0}, **embed}}
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    write_table(tmp_path / "manifest.parquet", df[MANIFEST_COLUMNS])
    write_table(tmp_path / "paths.parquet", df[LOCATOR_COLUMNS])
    write_json(tmp_path / "model.json", model_fingerprint(str(model)))  # what stage model writes
    return tmp_path


def stage(cwd: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(REPO / "stages" / "embed_images.py"), "--params", "params.yaml",
                             "--manifest", "manifest.parquet", "--locator", "paths.parquet", "--out", "images.parquet", "--report", "embed.json",
                             "--model", "model.json",
                             *extra], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, HF_HUB_OFFLINE="1"))


def finish(proc: subprocess.Popen) -> str:
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-3000:]
    return out


@pytest.mark.slow  # stage processes / a local Ray cluster: 25 s each
def test_sigkill_then_resume_gives_the_identical_store(manifest6, tiny_clip, tmp_path):
    whole = write_stage_inputs(tmp_path / "whole", manifest6, tiny_clip)
    finish(stage(whole))
    killed = write_stage_inputs(tmp_path / "killed", manifest6, tiny_clip)
    proc = stage(killed)
    deadline = time.time() + 300

    def complete_blocks() -> int:  # blocks stored in every kind (projected and each block of the tower)
        spaces = [d for d in (killed / "cache").glob("*") if d.is_dir()]
        return min((len(list(d.glob("shard-*.parquet"))) for d in spaces), default=0)

    while not complete_blocks() and time.time() < deadline:
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = complete_blocks()
    assert len(list((killed / "cache").glob("*/namespace.json"))) == 4  # projected + the tiny CLIP's 3 blocks
    assert 1 <= done < 42 and not (killed / "images.parquet").exists()
    finish(stage(killed))
    report = json.loads((killed / "embed.json").read_text())
    assert report["reused"] == 4 * done and report["embedded"] == 168 - 4 * done
    assert sha(killed / "images.parquet") == sha(whole / "images.parquet")
    assert sha(killed / "features/layers.parquet") == sha(whole / "features/layers.parquet")


@pytest.mark.slow  # stage processes / a local Ray cluster: 25 s each
def test_stage_shard_option_fills_the_cache_only(manifest6, tiny_clip, tmp_path):
    cwd = write_stage_inputs(tmp_path, manifest6.iloc[:40], tiny_clip)
    out = finish(stage(cwd, "--shard", "1/2"))
    assert "embedded 20 images" in out and not (cwd / "images.parquet").exists()
    finish(stage(cwd))
    assert json.loads((cwd / "embed.json").read_text())["reused"] == 20
    for bad, message in ((["--shard", "2/2"], "need 0 <= i < n"), (["--engine", "spark"], "embed.engine='spark'")):
        proc = stage(cwd, *bad)
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 1 and message in err and "Traceback" not in err


@pytest.mark.slow  # stage processes / a local Ray cluster: 25 s each
def test_ray_data_engine_on_a_local_ray(manifest6, encoder, tmp_path):
    """Ray Data actors write the same shards, so the same store, as a local run."""
    pytest.importorskip("ray")
    df = manifest6.iloc[:48]
    embed_and_assemble(df, encoder, tmp_path / "local", tmp_path / "local.parquet")
    cache, stats = embed_with_ray(df, encoder, tmp_path / "ray", batch_size=4, shard_size=8, device="cpu",
                                  actors=2, cpus_per_actor=1, progress=False)
    assert (stats["embedded"], stats["reused"], stats["engine"]) == (48, 0, "ray")
    assert {read_table(p)[2]["engine"] for p in cache.shards()} == {"ray"} and len(cache.shards()) == 6
    cache.assemble(tmp_path / "ray.parquet", df[MANIFEST_COLUMNS], provenance(encoder))
    assert sha(tmp_path / "ray.parquet") == sha(tmp_path / "local.parquet")


def cos_min(a: np.ndarray, b: np.ndarray) -> float:
    return float(((a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)).min())


def test_onnx_runtime_equals_torch(manifest6, encoder, tmp_path):
    """HF CLIP and both MiniCLIP image towers: ONNX Runtime within cos 0.9999 of torch on real images."""
    torch.manual_seed(0)
    spec = dict(embed_dim=16, image_size=32, text={"width": 32, "depth": 1, "heads": 2}, max_length=16)
    minis = [load_encoder(str(save_miniclip(MiniCLIP(build_spec(arch, "gpt2", image=img, **spec)).eval(),
                                            load_tokenizer(build_spec(arch, "gpt2", **spec)), tmp_path / arch)))
             for arch, img in (("resnet", {"width": 8}), ("vit", {"patch": 8, "width": 32, "depth": 1, "heads": 2}))]
    paths = manifest6["path"].tolist()[::12]
    from pipeline.embed import embed_images

    for enc in (encoder, *minis):
        name, run = image_runtime(enc, "onnx")
        ours, _ = embed_images(paths, enc, 5, 2, progress=False, run=run)
        plain, _ = embed_images(paths, enc, 5, 2, progress=False)
        assert name == "onnx" and cos_min(ours, plain) > 0.9999
    assert image_runtime(encoder, "auto")[0] == "onnx" and image_runtime(encoder, "torch")[0] == "torch"


def test_bad_engine_settings_name_the_param(manifest6, encoder, tmp_path):
    with pytest.raises(ValueError, match="embed.shard_size=10 must be a positive multiple of embed.batch_size=4"):
        plan_blocks(manifest6, 4, 10)
    with pytest.raises(ValueError, match="embed.runtime='tensorrt'"):
        image_runtime(encoder, "tensorrt")
    assert parse_shard(None) == (0, 1) and parse_shard("3/4") == (3, 4)
    with pytest.raises(ValueError, match="expected i/n"):
        parse_shard("x")
    cache = FeatureCache(tmp_path / "empty", provenance(encoder))
    old, fresh = cache.dir / ".shard-a.parquet.1.tmp", cache.dir / ".shard-b.parquet.2.tmp"  # a killed run's
    old.write_bytes(b"half"), fresh.write_bytes(b"half")
    os.utime(old, (time.time() - 7200,) * 2)
    cache = FeatureCache(tmp_path / "empty", provenance(encoder))
    assert not old.exists() and fresh.exists() and cache.index().empty  # a concurrent writer's is kept
    with pytest.raises(RuntimeError, match="168 manifest images have no cached embedding"):
        cache.assemble(tmp_path / "x.parquet", manifest6[MANIFEST_COLUMNS], {})
    assert not (tmp_path / "x.parquet").exists() and not list(tmp_path.glob(".x.parquet*"))


def test_auto_runtime_falls_back_to_torch_when_export_fails(encoder, monkeypatch, caplog):
    import pipeline.embed as engine

    def broken(*_):
        raise RuntimeError("untraceable")
    monkeypatch.setattr(engine, "export_image_tower", broken)
    assert image_runtime(encoder, "auto")[0] == "torch" and "using torch" in caplog.text
    with pytest.raises(RuntimeError, match="untraceable"):
        image_runtime(encoder, "onnx")
