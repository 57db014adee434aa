"""The embedding engine: E_I(x) of every image once, near the machine's matmul ceiling.

- Decode + preprocess run in worker threads (PIL releases the GIL), overlapped with inference;
  at most ``depth`` batches are in flight, so memory is bounded by the batch, not the dataset.
- The image tower runs in one of two runtimes: ``torch`` (inference mode) or ``onnx`` (the tower
  exported once per run and executed by ONNX Runtime, whose fused attention / GELU / LayerNorm
  kernels run ViT-B/32 nearer the GEMM ceiling on CPU; outputs equal torch within cos 0.9999, tested).
- Images are embedded in fixed blocks of ``shard_size`` (a multiple of ``batch_size``) that land in
  the feature cache (:mod:`pipeline.featcache`) one shard at a time: the unit of reuse, resume and
  scale-out. Blocks are cut from the unique images in manifest order whatever the cache holds, and
  process ``i`` of ``n`` takes blocks ``i, i + n, ...``, so every batch holds the same images whether
  a run is sharded, resumed or not, and the stores come out identical.
"""
from __future__ import annotations

import logging
import os
import resource
import tempfile
import time
import warnings
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from .encoders.base import Encoder, layer_index, layer_kind, provenance, run_tower
from .errors import NonFiniteError
from .featcache import FeatureCaches
from .images import decode_image, read_image_bytes
from .params import Embed, project_path

RUNTIMES = ("auto", "torch", "onnx")
log = logging.getLogger(__name__)


def load_pixels(path: str, preprocess: Callable) -> np.ndarray:
    return preprocess(decode_image(read_image_bytes(path)))


def prefetched_batches(paths: Sequence[str], fn: Callable[[str], np.ndarray], batch_size: int,
                       workers: int, depth: int = 2) -> Iterator[np.ndarray]:
    """Yield stacked ``fn(path)`` batches in order, keeping at most ``depth`` batches in flight
    (memory is bounded by batch size, not by dataset size)."""
    with ThreadPoolExecutor(max(1, workers)) as pool:
        pending: deque = deque()
        for start in range(0, len(paths), batch_size):
            pending.append([pool.submit(fn, p) for p in paths[start:start + batch_size]])
            if len(pending) > depth:
                yield np.stack([f.result() for f in pending.popleft()])
        while pending:
            yield np.stack([f.result() for f in pending.popleft()])


def export_image_tower(encoder: Encoder, path: str | Path, kinds: tuple[str, ...] = ("projected",)) -> Path:
    """The encoder's image tower as ONNX (opset 17, TorchScript exporter, dynamic batch): pixels -> one output
    per feature kind."""
    h, w = encoder.preprocess.output_hw() or (224, 224)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(encoder.image_tower(kinds).eval(), (torch.zeros(2, 3, h, w),), str(path),
                          input_names=["pixels"], output_names=list(kinds), opset_version=17,
                          dynamic_axes={"pixels": {0: "batch"}, **{k: {0: "batch"} for k in kinds}}, dynamo=False)
    return Path(path)


class OnnxTower:
    """The encoder's image tower exported once per run and run by ONNX Runtime on ``threads``
    intra-op threads (0: torch's count) with every graph optimisation on."""

    def __init__(self, encoder: Encoder, threads: int = 0, kinds: tuple[str, ...] = ("projected",)):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        with tempfile.TemporaryDirectory() as tmp:
            path = export_image_tower(encoder, Path(tmp) / "image_tower.onnx", kinds)
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def __call__(self, pixels: np.ndarray) -> tuple[np.ndarray, ...]:
        return tuple(self.session.run(None, {"pixels": np.ascontiguousarray(pixels, np.float32)}))


def resolve_runtime(runtime: str, device: str) -> str:
    """``auto`` -> ``onnx`` on CPU when onnxruntime is installed, else ``torch``."""
    if runtime not in RUNTIMES:
        raise ValueError(f"embed.runtime={runtime!r}: choose one of {RUNTIMES}")
    if runtime == "onnx" and device != "cpu":
        raise ValueError(f"embed.runtime='onnx' runs on the CPU only, but embed.device resolved to {device!r}")
    if runtime == "auto":
        from importlib.util import find_spec

        return "onnx" if device == "cpu" and find_spec("onnxruntime") else "torch"
    return runtime


def image_runtime(encoder: Encoder, runtime: str = "auto", threads: int = 0, kinds: tuple[str, ...] = ("projected",)
                  ) -> tuple[str, Callable]:
    """(resolved runtime name, pixels -> one float32 feature array per kind) for ``encoder``."""
    asked, runtime = runtime, resolve_runtime(runtime, encoder.device)
    if threads and encoder.device == "cpu":
        torch.set_num_threads(threads)
    if runtime == "onnx":
        try:
            return runtime, OnnxTower(encoder, threads, kinds)
        except Exception as exc:  # an architecture the exporter cannot trace: torch still works
            if asked == "onnx":
                raise
            runtime = "torch"
            log.warning("embed.runtime=auto: ONNX export of %s failed (%s: %s); using torch",
                        encoder.name, type(exc).__name__, exc)
    tower = encoder.image_tower(kinds).eval()
    return runtime, lambda pixels: run_tower(tower, pixels, encoder.device)


def embed_images(paths: Sequence[str], encoder: Encoder, batch_size: int = 64, workers: int = 2,
                 progress: bool = True, run: Callable | None = None, bar: tqdm | None = None,
                 kinds: tuple[str, ...] = ("projected",)) -> tuple[np.ndarray | dict, dict]:
    """Image features of every path, in order, through ``run`` (default: the encoder's tower in torch);
    returns (float32 [n, d] for one kind, or {kind: [n, d_kind]}, timing stats)."""
    if batch_size < 1:
        raise ValueError(f"embed.batch_size={batch_size} must be >= 1")
    if run is None:
        tower = encoder.image_tower(kinds).eval()
        run = lambda pixels: run_tower(tower, pixels, encoder.device)  # noqa: E731
    out = {k: np.empty((len(paths), encoder.kind_dim(k)), np.float32) for k in kinds}
    t0, i = time.perf_counter(), 0
    own = bar is None
    bar = bar or tqdm(total=len(paths), desc="embed images", unit="img", disable=not progress, mininterval=2)
    for batch in prefetched_batches(paths, lambda p: load_pixels(p, encoder.preprocess), batch_size, workers):
        for k, feats in zip(kinds, run(batch)):
            out[k][i:i + len(batch)] = feats
        i += len(batch)
        bar.update(len(batch))
    if own:
        bar.close()
    seconds = time.perf_counter() - t0
    return out[kinds[0]] if len(kinds) == 1 else out, {
        "images": len(paths), "seconds": round(seconds, 3),
        "images_per_second": round(len(paths) / seconds, 2) if seconds > 0 else None}


def feature_kinds(features: str, layers: tuple[int, ...] = ()) -> tuple[str, ...]:
    """``embed.features`` (projected | pooled | both) and the checked ``embed.layers`` -> the feature kinds to embed."""
    base = {"projected": ("projected",), "pooled": ("pooled",), "both": ("projected", "pooled")}[features]
    return base + tuple(layer_kind(i) for i in layers)


def split_kinds(kinds: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(the features/images.parquet kinds, the layer kinds of features/layers.parquet)."""
    return tuple(k for k in kinds if layer_index(k) is None), tuple(k for k in kinds if layer_index(k) is not None)


def layer_metadata(encoder: Encoder, kinds: tuple[str, ...], e: Embed) -> dict:
    """What features/layers.parquet records of its columns: each block's index, name and width, and the dtype."""
    blocks = encoder.blocks()
    return {"layers": [{"column": k, "index": layer_index(k), "name": blocks[layer_index(k)][0],
                        "dim": blocks[layer_index(k)][1]} for k in kinds],
            "n_blocks": len(blocks), "layer_dtype": e.layer_dtype}


def kind_dims(encoder: Encoder, kinds: tuple[str, ...]) -> dict[str, int]:
    return {k: encoder.kind_dim(k) for k in kinds}


def parse_shard(text: str | None) -> tuple[int, int]:
    """``"i/n"`` -> (i, n) with 0 <= i < n; ``None`` -> (0, 1)."""
    if not text:
        return 0, 1
    try:
        i, n = (int(v) for v in text.split("/"))
    except ValueError:
        raise ValueError(f"--shard {text!r}: expected i/n, e.g. 0/4") from None
    if not 0 <= i < n:
        raise ValueError(f"--shard {text!r}: need 0 <= i < n")
    return i, n


def plan_blocks(images: pd.DataFrame, batch_size: int, shard_size: int, shard: tuple[int, int] = (0, 1)
                ) -> tuple[list[pd.DataFrame], int]:
    """Cut the unique manifest images (manifest order, boolean column ``cached``) into fixed blocks of
    ``shard_size``; shard ``(i, n)`` owns blocks ``i, i + n, ...``. Returns (the uncached part of each
    owned block that has one, number of uncached images in blocks owned by other shards). The plan
    depends on the manifest only, so concurrent, resumed or sequential shards agree on it, and a
    block's images are always batched together."""
    if shard_size < batch_size or shard_size % batch_size:
        raise ValueError(f"embed.shard_size={shard_size} must be a positive multiple of embed.batch_size={batch_size}")
    i, n = shard
    blocks = [images.iloc[k:k + shard_size] for k in range(0, len(images), shard_size)]
    todo = [b.loc[~b["cached"], ["image_id", "path"]] for b in blocks]
    mine = [t for t in todo[i::n] if len(t)]
    return mine, sum(len(t) for t in todo) - sum(len(t) for t in mine)


def embed_blocks(blocks: list[pd.DataFrame], encoder: Encoder, run: Callable, caches: FeatureCaches,
                 batch_size: int, workers: int, info: dict, progress: bool = True) -> int:
    """Embed each block (columns ``image_id``, ``path``) and store it as one cache shard per feature kind;
    returns images embedded."""
    total = sum(len(b) for b in blocks)
    with tqdm(total=total, desc="embed images", unit="img", disable=not progress, mininterval=2) as bar:
        for block in blocks:
            feats, _ = embed_images(block["path"].tolist(), encoder, batch_size, workers, run=run, bar=bar,
                                    kinds=caches.kinds)
            feats = feats if isinstance(feats, dict) else {caches.kinds[0]: feats}
            for emb in feats.values():
                bad = ~np.isfinite(emb).all(axis=1)
                if bad.any():  # never cache a NaN: every later read would refuse the store
                    raise NonFiniteError(f"embed_images: {block['path'].iloc[int(np.flatnonzero(bad)[0])]} gives a "
                                         f"non-finite embedding with model {encoder.name!r} ({int(bad.sum())} image(s) "
                                         f"in its block of {len(block)})")
            caches.write_block(block["image_id"].tolist(), feats, info)
    return total


def unique_images(df: pd.DataFrame, caches: FeatureCaches) -> pd.DataFrame:
    """One row per distinct image (content hash) in manifest order: ``image_id``, ``path``, ``cached`` (in every
    kind the run embeds)."""
    unique = df.drop_duplicates("image_id")[["image_id", "path"]].reset_index(drop=True)
    return unique.assign(cached=unique["image_id"].isin(caches.cached_ids()))


def embed_to_cache(df: pd.DataFrame, encoder: Encoder, cache_dir: str | Path, batch_size: int = 32,
                   shard_size: int = 1024, workers: int = 2, runtime: str = "auto", threads: int = 0,
                   shard: tuple[int, int] = (0, 1), progress: bool = True, kinds: tuple[str, ...] = ("projected",),
                   layer_dtype: str = "float32") -> tuple[FeatureCaches, dict]:
    """Embed the manifest images the cache lacks (this process's share of them); returns (caches, stats)."""
    caches = FeatureCaches(cache_dir, provenance(encoder), kinds, kind_dims(encoder, kinds), layer_dtype)
    images = unique_images(df, caches)
    blocks, others = plan_blocks(images, batch_size, shard_size, shard)
    t0 = time.perf_counter()
    name, run = image_runtime(encoder, runtime, threads, caches.kinds) if blocks else \
        (resolve_runtime(runtime, encoder.device), None)
    info = shard_info("local", name, encoder, batch_size)
    embedded = embed_blocks(blocks, encoder, run, caches, batch_size, workers, info, progress)
    return caches, run_stats(embedded, int(images["cached"].sum()), others, time.perf_counter() - t0, info)


def shard_info(engine: str, runtime: str, encoder: Encoder, batch_size: int) -> dict:
    """What wrote a cache shard (kept in its metadata, and in the run's stats)."""
    return {"engine": engine, "runtime": runtime, "device": encoder.device, "batch_size": batch_size,
            "torch": torch.__version__}


def run_stats(embedded: int, reused: int, others: int, seconds: float, info: dict) -> dict:
    """What an embed run did, for ``reports/embed.json``."""
    return {"embedded": embedded, "reused": reused, "left_to_other_shards": others,
            "seconds": round(seconds, 3), "images_per_second": round(embedded / seconds, 2) if embedded else None,
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1), **info}


def embed_with_ray(df: pd.DataFrame, encoder: Encoder, cache_dir: str | Path, batch_size: int = 32,
                   shard_size: int = 1024, workers: int = 2, runtime: str = "auto", threads: int = 0,
                   device: str = "auto", address: str | None = None, actors: int = 2, cpus_per_actor: float = 1,
                   gpus_per_actor: float = 0, progress: bool = True, kinds: tuple[str, ...] = ("projected",),
                   layer_dtype: str = "float32") -> tuple[FeatureCaches, dict]:
    """Embed the missing blocks on Ray Data: ``actors`` long-lived actors each load the model once and
    write whole blocks as cache shards (the same blocks and batches as a local run, so the same store).
    Workers load ``encoder.name`` on ``device`` (``auto``: their GPU when ``gpus_per_actor`` gives one).
    ``address``: an existing cluster (``auto`` or ``ray://host:10001``); ``None`` starts a local one.
    The cache directory must be visible to every node (a shared filesystem) for a multi-node run."""
    import ray
    import ray.data

    from .encoders import load_encoder

    model = encoder.name
    dims = kind_dims(encoder, kinds)
    caches = FeatureCaches(cache_dir, provenance(encoder), kinds, dims, layer_dtype)
    images = unique_images(df, caches)
    blocks, _ = plan_blocks(images, batch_size, shard_size)
    reused = int(images["cached"].sum())
    if not blocks:
        return caches, run_stats(0, reused, 0, 0.0, {"engine": "ray"})
    started = not ray.is_initialized()
    if started:
        ray.init(address=address, include_dashboard=False, log_to_driver=progress,
                 **({} if address else {"num_cpus": max(1, int(actors * cpus_per_actor))}))
    cwd, root = os.getcwd(), os.path.abspath(cache_dir)

    class BlockEmbedder:
        def __init__(self):
            os.chdir(cwd)  # relative model / image paths resolve as in the driver
            self.encoder = load_encoder(model, device)
            self.caches = FeatureCaches(root, provenance(self.encoder), kinds, dims, layer_dtype)
            if self.caches.key != caches.key:
                raise RuntimeError(f"model {model!r} loaded with other weights on a Ray worker ({self.caches.key} "
                                   f"vs {caches.key})")
            name, self.run = image_runtime(self.encoder, runtime, threads, kinds)
            self.info = shard_info("ray", name, self.encoder, batch_size)

        def __call__(self, batch: dict) -> dict:
            blocks = [pd.DataFrame({"image_id": list(i), "path": list(p)}) for i, p in zip(batch["image_id"], batch["path"])]
            n = embed_blocks(blocks, self.encoder, self.run, self.caches, batch_size, workers, self.info, progress=False)
            return {"images": np.array([n])}

    t0 = time.perf_counter()
    try:
        items = [{"image_id": b["image_id"].tolist(), "path": b["path"].tolist()} for b in blocks]
        done = ray.data.from_items(items).map_batches(
            BlockEmbedder, batch_size=1, concurrency=actors, num_cpus=cpus_per_actor, num_gpus=gpus_per_actor
        ).take_all()
    finally:
        if started:
            ray.shutdown()
    embedded = int(sum(int(r["images"]) for r in done))
    return caches, run_stats(embedded, reused, 0, time.perf_counter() - t0,
                             {"engine": "ray", "actors": actors, "batch_size": batch_size})


def embed_manifest(df: pd.DataFrame, encoder: Encoder, e: Embed, shard: tuple[int, int] = (0, 1),
                   engine: str = "local", progress: bool = True) -> tuple[FeatureCaches, dict]:
    """What stage embed_images runs: the manifest rows' images (``image_id``, ``path``) the cache lacks,
    embedded by ``engine`` (local | ray) with the ``embed`` params; the cache is ``embed.cache_dir``
    resolved against the project (:func:`pipeline.params.project_path`), so that experiments run in
    temporary copies of the project share it."""
    if engine not in ("local", "ray") or (engine == "ray" and shard != (0, 1)):
        raise ValueError(f"embed.engine={engine!r}: choose local or ray (--shard runs locally only)")
    common = dict(batch_size=e.batch_size, shard_size=e.shard_size, workers=e.workers, runtime=e.runtime,
                  threads=e.threads, progress=progress, layer_dtype=e.layer_dtype,
                  kinds=feature_kinds(e.features, encoder.check_layers(e.layers)))
    cache_dir = project_path(e.cache_dir)
    if engine == "ray":
        return embed_with_ray(df, encoder, cache_dir, device=e.device, **common, **e.ray.model_dump())
    return embed_to_cache(df, encoder, cache_dir, shard=shard, **common)
