"""What storing every block costs at ViT-B/32 shape: embedding throughput and store bytes per image with
``embed.layers`` off, all 13 blocks in float32, and in float16 (a random CLIP of openai/clip-vit-base-patch32's
shapes, real PACS images, the torch runtime, interleaved rounds so drift hits every variant alike).

    python benchmarks/layer_store.py --images 192 --rounds 2
"""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import typer

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.data import MANIFEST_COLUMNS, make_subset  # noqa: E402
from pipeline.datasets import prepare_dataset  # noqa: E402
from pipeline.embed import embed_to_cache, feature_kinds, split_kinds  # noqa: E402
from pipeline.encoders import load_encoder  # noqa: E402
from pipeline.params import Data  # noqa: E402
from pipeline.randomclip import build_random_clip  # noqa: E402

PACS = Path(__file__).resolve().parents[2] / "shared" / "pacs"
FULL_PACS = 9991


def main(images: int = 192, rounds: int = 2, batch_size: int = 32) -> None:
    tmp = Path(tempfile.mkdtemp())
    manifest, locator, _ = prepare_dataset(make_subset(PACS, tmp / "pacs", per_class=images // 28 + 1), Data())[:3]
    df = manifest.assign(path=locator["path"].to_numpy()).iloc[:images]
    enc = load_encoder(str(build_random_clip(tmp / "b32", "vit-b-32")), "cpu")
    n_blocks = len(enc.blocks())
    variants = {"projected only": ((), "float32"), f"+ {n_blocks} blocks float32": (tuple(range(n_blocks)), "float32"),
                f"+ {n_blocks} blocks float16": (tuple(range(n_blocks)), "float16")}
    seconds = {v: [] for v in variants}
    for r in range(rounds):
        for name, (layers, dtype) in variants.items():
            cache = tmp / f"cache-{r}-{len(layers)}-{dtype}"
            t0 = time.perf_counter()
            caches, _ = embed_to_cache(df, enc, cache, batch_size=batch_size, shard_size=batch_size * 4, runtime="torch",
                                       kinds=feature_kinds("projected", layers), layer_dtype=dtype, progress=False)
            seconds[name].append(time.perf_counter() - t0)
            if r == 0 and layers:
                out = tmp / f"layers-{dtype}.parquet"
                caches.assemble(out, df[MANIFEST_COLUMNS], {}, kinds=split_kinds(caches.kinds)[1])
                per = out.stat().st_size / len(df)
                print(f"{name}: features/layers.parquet {per / 1024:.1f} KiB per image -> full PACS "
                      f"{per * FULL_PACS / 1e6:.0f} MB")
    base = min(seconds["projected only"])
    for name, s in seconds.items():
        print(f"{name}: best of {rounds} {min(s):.2f} s for {len(df)} images ({len(df) / min(s):.1f} img/s), "
              f"x{min(s) / base:.2f} of projected only; rounds {[round(x, 2) for x in s]}")


if __name__ == "__main__":
    typer.run(main)
