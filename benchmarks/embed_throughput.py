"""Embedding throughput (img/s) of the embed_images engine on real PACS images, per random-CLIP preset.

    python benchmarks/embed_throughput.py --presets tiny,vit-b-32 --images 256

Random weights cost the same FLOPs as trained ones, so ``vit-b-32`` times openai/clip-vit-base-patch32.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import typer

from pipeline.data import PACS_CLASSES, PACS_DOMAINS
from pipeline.embed import embed_images
from pipeline.encoders import load_encoder
from pipeline.randomclip import build_random_clip

REPO = Path(__file__).resolve().parents[1]


def pacs_paths(root: Path, n: int) -> list[str]:
    """n images taken round-robin over the 28 domain/class folders (JPEG and PNG alike)."""
    folders = [sorted((root / d / c).iterdir()) for d in PACS_DOMAINS for c in PACS_CLASSES]
    return [str(folders[i % len(folders)][i // len(folders)]) for i in range(n)]


def main(presets: str = "tiny,vit-b-32", images: int = 256, batch_size: int = 32, workers: int = 2,
         pacs: Path = Path(os.environ.get("PACS_ROOT", REPO.parent / "shared" / "pacs"))) -> None:
    paths = pacs_paths(pacs, images)
    print(f"{'preset':<10} {'dim':>5} {'images':>7} {'seconds':>8} {'img/s':>8}")
    for preset in presets.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            enc = load_encoder(str(build_random_clip(Path(tmp) / preset, preset)), "cpu")
            embed_images(paths[:batch_size], enc, batch_size, workers, progress=False)  # warm-up
            _, stats = embed_images(paths, enc, batch_size, workers, progress=False)
            print(f"{preset:<10} {enc.dim:>5} {stats['images']:>7} {stats['seconds']:>8.2f} "
                  f"{stats['images_per_second']:>8.1f}")


if __name__ == "__main__":
    typer.run(main)
